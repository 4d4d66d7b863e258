"""The placement optimiser: umap-learn's, user by user over threads (``cpu_fallback.placement``)."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cpu_fallback import placement


def _graph(n_new: int, n_fitted: int, k: int, seed: int):
    """A transform's inputs: starts, fitted positions, each new user's k edges (the rarely
    sampled dropped, as a transform drops them) and their sampling schedule."""
    rng = np.random.default_rng(seed)
    anchors = rng.normal(size=(n_fitted, 2)).astype(np.float32)
    start = rng.normal(size=(n_new, 2)).astype(np.float32)
    start[1] = anchors[0]  # a new user on a fitted one: distance 0 to a neighbour
    head = np.repeat(np.arange(n_new, dtype=np.int32), k)
    tail = rng.integers(0, n_fitted, size=n_new * k).astype(np.int32)
    tail[k] = 0
    weight = rng.random(n_new * k)
    keep = weight >= weight.max() / 30.0
    head, tail, weight = head[keep], tail[keep], weight[keep]
    return start, anchors, head, tail, 30.0 / (30.0 * (weight / weight.max()))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_placement_is_umap_learns_serial_optimiser_bit_for_bit_on_any_thread_count(threads):
    from umap.layouts import optimize_layout_euclidean

    start, anchors, head, tail, schedule = _graph(3_000, 800, 15, seed=0)
    rng_state = np.array([11, -7, 123_456_789], dtype=np.int64)
    expected = optimize_layout_euclidean(
        start.copy(), anchors, head, tail, 30, anchors.shape[0], schedule, 1.58, 0.9,
        rng_state.copy(), 1.0, 0.25, 5, False)
    ours = placement.optimise_placement(start.copy(), anchors, head, tail, 30, schedule, 1.58, 0.9,
                                        rng_state.copy(), 1.0, 0.25, 5, threads=threads)
    assert not np.array_equal(ours, start)  # the users moved
    np.testing.assert_array_equal(ours, expected)


def test_a_users_place_does_not_depend_on_the_other_users_in_the_call():
    """Each user's path is its own: placed alone, in a block, or among others, it lands the same."""
    start, anchors, head, tail, schedule = _graph(400, 300, 10, seed=1)
    rng_state = np.array([3, 5, 7], dtype=np.int64)
    whole = placement.optimise_placement(start.copy(), anchors, head, tail, 30, schedule, 1.58,
                                         0.9, rng_state, 1.0, 0.25, 5, threads=2)
    block = head >= 250
    part = placement.optimise_placement(start[250:].copy(), anchors, head[block] - 250,
                                        tail[block], 30, schedule[block], 1.58, 0.9, rng_state,
                                        1.0, 0.25, 5, threads=1)
    np.testing.assert_array_equal(part, whole[250:])


def test_edges_out_of_user_order_are_refused():
    start, anchors, head, tail, schedule = _graph(50, 40, 5, seed=2)
    with pytest.raises(ValueError, match="sorted"):
        placement.optimise_placement(start, anchors, head[::-1].copy(), tail, 30, schedule, 1.58,
                                     0.9, np.zeros(3, dtype=np.int64), 1.0, 0.25, 5)


def test_threads_follow_the_processs_thread_limits_and_the_users_count():
    assert placement.placement_threads(10) == 1  # too few users to split
    with threadpool_limits(limits=1):  # e.g. a Dask worker of one thread
        assert placement.placement_threads(10_000_000) == 1
    with threadpool_limits(limits=2):
        assert placement.placement_threads(10_000_000) <= 2
