"""umap-learn's UMAP with a ``transform`` fast enough to place a whole customer base.

umap-learn's own ``transform`` queries its NN-descent index and builds the
starting positions in a Python loop over rows: about two minutes for 155,000
new users on two cores, longer than fitting the sample they are placed
against. :class:`PlacingUMAP` follows the same recipe (umap-learn 0.5,
``UMAP.transform``) with faster parts:

1. the exact ``n_neighbors`` nearest fitted users, from scikit-learn's BLAS
   search (umap-learn's index is approximate);
2. fuzzy memberships ``exp(-d / sigma)``, ``sigma`` found by the same
   bisection as umap-learn's ``smooth_knn_dist`` (with the transform's
   local connectivity of 0, so no ``rho`` offset), vectorised over users;
3. each new user starts at the membership-weighted mean of its neighbours'
   positions (at a neighbour's position when it coincides with it);
4. umap-learn's layout optimiser then refines the new positions for the
   transform's epochs (30 above 10,000 new users, 100 below, or a third of
   ``n_epochs``) with the fitted users held fixed, seeded by
   ``transform_seed``. With the fitted users fixed, each new user's path is
   its own, so :mod:`cpu_fallback.placement` runs it user by user over
   threads and gives umap-learn's single-threaded result bit for bit: the
   same input gives the same map on any number of cores.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .numba_cache import umap_import_cache

with umap_import_cache():
    from umap import UMAP
    from umap.umap_ import find_ab_params

from .placement import optimise_placement

#: umap-learn's convergence tolerance and floor of ``sigma`` (as a share of the mean distance).
SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3
BISECTION_STEPS = 64
#: Fits of up to this many users get exact neighbours from scikit-learn (see :class:`PlacingUMAP`):
#: up to where the quadratic search costs more than NN-descent.
EXACT_KNN_UP_TO = 60_000
#: The bounds umap-learn draws its transform's random state from.
_INT32_MIN, _INT32_MAX = np.iinfo(np.int32).min + 1, np.iinfo(np.int32).max - 1


def membership_sigmas(distances: np.ndarray, k: float) -> np.ndarray:
    """Per-row bandwidth: ``sum_j>=1 exp(-d_ij / sigma) = log2(k)``, as umap-learn bisects it.

    ``distances`` are each row's sorted neighbour distances; the first
    neighbour is left out of the sum, as in ``umap.umap_.smooth_knn_dist``.
    """
    n = distances.shape[0]
    tail = distances[:, 1:].astype(np.float64)
    target = np.log2(k)
    lo, hi, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    rows = np.arange(n)  # rows still searching; umap-learn stops a row once it is within tolerance
    for _ in range(BISECTION_STEPS):
        psum = np.exp(-tail[rows] / mid[rows, None]).sum(axis=1)
        still = np.abs(psum - target) >= SMOOTH_K_TOLERANCE
        rows, psum = rows[still], psum[still]
        if not rows.size:
            break
        above = psum > target
        hi[rows[above]] = mid[rows[above]]
        lo[rows[~above]] = mid[rows[~above]]
        unbounded = np.isinf(hi[rows])
        mid[rows] = np.where(unbounded, mid[rows] * 2.0, (lo[rows] + hi[rows]) / 2.0)
    return np.maximum(mid, MIN_K_DIST_SCALE * distances.mean())


def memberships(distances: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Fuzzy membership of each new user in each neighbour's set (1 at distance 0)."""
    return np.where(distances <= 0.0, 1.0, np.exp(-distances / sigmas[:, None]))


def initial_positions(indices: np.ndarray, weights: np.ndarray,
                      embedding: np.ndarray) -> np.ndarray:
    """Membership-weighted mean of the neighbours' positions; a coinciding neighbour's own."""
    totals = weights.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # all-zero rows stay NaN, as upstream
        start = np.einsum("ij,ijd->id", weights / totals, embedding[indices])
    coincide = weights == 1.0
    rows = np.flatnonzero(coincide.any(axis=1))
    start[rows] = embedding[indices[rows, coincide[rows].argmax(axis=1)]]
    return start.astype(np.float32)


def exact_neighbours(fitted: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of each query's ``k`` nearest fitted rows (scikit-learn's BLAS search)."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k, algorithm="brute").fit(fitted).kneighbors(queries)


class PlacingUMAP(UMAP):
    """umap-learn's UMAP whose ``transform`` places many new points quickly (see the module).

    Its ``fit`` also hands umap-learn exact nearest neighbours from
    scikit-learn's BLAS search for fits of up to :data:`EXACT_KNN_UP_TO`
    users. From 4,096 users umap-learn would otherwise run NN-descent: at
    20,000 users the exact search takes about 3 s, while NN-descent's numba
    kernels alone take over 30 s to compile in every process (they take a
    distance function as an argument, which numba cannot cache), and the
    exact graph is at least as good as the approximate one. Below 4,096 users
    umap-learn would build the whole distance matrix with kernels of its own:
    the same exact neighbours, but a second set of kernels to compile (about
    6 s of a first run). Above the upper bound the quadratic search would
    cost more than NN-descent.
    """

    precomputed_knn: tuple[Any, ...]  # umap-learn's parameter, set by UMAP.__init__

    def fit(self, X: Any, *args: Any, **kwargs: Any) -> PlacingUMAP:
        # Kept for the exact neighbour search of transform (umap-learn keeps float32 too).
        self._placement_data = np.ascontiguousarray(X, dtype=np.float32)
        n = self._placement_data.shape[0]
        given = self.precomputed_knn
        if n <= EXACT_KNN_UP_TO and given[0] is None:
            distances, indices = exact_neighbours(self._placement_data, self._placement_data,
                                                  min(self.n_neighbors, n))
            self.precomputed_knn = (indices, distances)
        try:
            with warnings.catch_warnings():
                # umap-learn warns that its own transform needs an NN-descent index; ours does not.
                warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
                return super().fit(X, *args, **kwargs)
        finally:
            self.precomputed_knn = given

    def transform(self, X: Any) -> np.ndarray:
        from sklearn.utils import check_random_state

        fitted = self._placement_data
        X = np.ascontiguousarray(X, dtype=np.float32)
        k = min(self.n_neighbors, fitted.shape[0])
        distances, indices = exact_neighbours(fitted, X, k)
        weights = memberships(distances, membership_sigmas(distances, float(k)))
        anchors = self.embedding_.astype(np.float32, copy=True)
        start = initial_positions(indices, weights, anchors)

        n_new = X.shape[0]
        if self.n_epochs is None:
            n_epochs = 100 if n_new <= 10_000 else 30
        else:
            n_epochs = int(self.n_epochs // 3.0)
        head = np.repeat(np.arange(n_new, dtype=np.int32), k)
        tail = indices.ravel().astype(np.int32)
        weight = weights.ravel()
        keep = weight >= weight.max() / float(n_epochs)  # umap-learn drops the rarely sampled
        head, tail, weight = head[keep], tail[keep], weight[keep]
        epochs_per_sample = float(n_epochs) / (n_epochs * (weight / weight.max()))
        a, b = (self.a, self.b) if self.a is not None and self.b is not None else \
            find_ab_params(self.spread, self.min_dist)
        rng_state = check_random_state(self.transform_seed).randint(
            _INT32_MIN, _INT32_MAX, 3).astype(np.int64)
        return optimise_placement(
            start, anchors, head, tail, n_epochs, epochs_per_sample, a, b, rng_state,
            self.repulsion_strength, self.learning_rate / 4.0, self.negative_sample_rate)
