"""Kneedle knee detection on short host curves."""
from __future__ import annotations

import numpy as np
import pytest

from gpuseg.errors import GpusegError
from gpuseg.numerics.knee import find_knee


def test_elbow_of_a_decreasing_wcss_curve():
    k = np.arange(1, 8)
    wcss = np.array([100.0, 40.0, 15.0, 12.0, 10.0, 9.0, 8.0])
    assert k[find_knee(k, wcss, curve="convex", direction="decreasing")] == 3


def test_knee_of_a_rising_k_distance_curve_sits_where_it_turns_up():
    rank = np.arange(100)
    distance = np.where(rank < 90, 1.0 + rank * 0.001, 1.0 + (rank - 89) ** 2)
    assert find_knee(rank, distance, curve="convex", direction="increasing") in (89, 90, 91)


def test_knee_of_a_concave_saturating_curve():
    x = np.arange(7)
    explained = np.array([0.0, 60.0, 85.0, 92.0, 95.0, 97.0, 98.0])
    assert find_knee(x, explained, curve="concave", direction="increasing") == 2


def test_knee_ignores_the_scale_of_either_axis():
    k = np.arange(1, 8)
    wcss = np.array([100.0, 40.0, 15.0, 12.0, 10.0, 9.0, 8.0])
    rescaled = find_knee(k * 10.0 + 3, wcss * 1e6 - 5, curve="convex")
    assert rescaled == find_knee(k, wcss, curve="convex")


def test_unevenly_spaced_x_is_measured_against_the_true_chord():
    x = np.array([1.0, 4.0, 5.0, 6.0, 7.0])
    y = np.array([10.0, 2.0, 1.5, 1.2, 1.0])
    assert find_knee(x, y, curve="convex", direction="decreasing") == 1


@pytest.mark.parametrize("y", [[5.0, 4.0, 3.0, 2.0, 1.0], [3.0, 3.0, 3.0, 3.0]])
def test_a_straight_or_flat_curve_has_no_knee(y):
    assert find_knee(np.arange(len(y)), y, curve="convex", direction="decreasing") == 0


@pytest.mark.parametrize("n", [1, 2])
def test_curves_too_short_to_bend_return_the_first_point(n):
    assert find_knee(np.arange(n), np.arange(n, dtype=float)) == 0


@pytest.mark.parametrize("x, y, match", [
    ([1, 2, 3], [1, 2], "equal, non-zero length"),
    ([], [], "equal, non-zero length"),
    ([1, 1, 2], [3, 2, 1], "strictly increasing"),
    ([1, 2, 3], [3, np.nan, 1], "finite"),
])
def test_malformed_curves_are_refused_with_a_reason(x, y, match):
    with pytest.raises(GpusegError, match=match):
        find_knee(x, y)


def test_unknown_options_are_refused():
    with pytest.raises(GpusegError, match="curve must be"):
        find_knee([1, 2, 3], [3, 2, 1], curve="wiggly")
    with pytest.raises(GpusegError, match="direction must be"):
        find_knee([1, 2, 3], [3, 2, 1], direction="sideways")
