"""The CPU backend's trustworthiness: scikit-learn's score, counted instead of sorted."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sklearn_trustworthiness
from sklearn.metrics import euclidean_distances
from sklearn.neighbors import NearestNeighbors

from cpu_fallback import trust


def _stable_reference(X: np.ndarray, embedded: np.ndarray, k: int) -> float:
    """scikit-learn's formula with a stable sort, so that tied distances have one order."""
    n = len(X)
    distances = euclidean_distances(X)
    np.fill_diagonal(distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, n + 1)[None, :].repeat(n, axis=0), axis=1)
    on_map = NearestNeighbors(n_neighbors=k).fit(embedded).kneighbors(return_distance=False)
    ranks = np.take_along_axis(rank, on_map, axis=1) - k
    return 1.0 - ranks[ranks > 0].sum() * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


@pytest.mark.parametrize("n, dims", [(700, 12), (trust.BLOCK_ROWS * 2 + 37, 3)])
def test_equals_scikit_learns_score(n, dims):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, dims))
    embedded = X[:, :2] + 0.5 * rng.normal(size=(n, 2))
    assert trust.trustworthiness(X, embedded, 10) == sklearn_trustworthiness(X, embedded,
                                                                              n_neighbors=10)


def test_a_perfect_map_scores_one_and_a_shuffled_one_less():
    X = np.random.default_rng(1).normal(size=(400, 2))
    assert trust.trustworthiness(X, X, 8) == 1.0
    shuffled = X[np.random.default_rng(2).permutation(400)]
    assert trust.trustworthiness(X, shuffled, 8) < 0.7


def test_tied_distances_are_ranked_as_a_stable_sort_ranks_them():
    """Duplicated shoppers tie: each tie is ordered by position, as a stable sort orders it."""
    rng = np.random.default_rng(3)
    X = np.repeat(rng.integers(0, 4, size=(150, 3)).astype(float), 2, axis=0)
    embedded = rng.normal(size=(300, 2))
    assert trust.trustworthiness(X, embedded, 5) == pytest.approx(
        _stable_reference(X, embedded, 5), abs=1e-12)


def test_too_many_neighbours_are_refused_as_scikit_learn_refuses_them():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="n_samples / 2"):
        trust.trustworthiness(X, X, 5)
