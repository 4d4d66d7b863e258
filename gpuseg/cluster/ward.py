"""Ward hierarchical clustering of every user through KMeans micro-clusters."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import setting
from ..errors import GpusegError
from ..numerics.arrays import finite_or_none, size_rank
from ..numerics.sampling import seeded_sample
from .checks import check_matrix

if TYPE_CHECKING:
    from ..backend import Backend

#: Lloyd iterations for the Ward micro-clusters: they only quantise the space, so
#: running to full convergence would buy nothing the linkage can see.
MICRO_MAX_ITER = 20
#: Users per micro-cluster in the seeded sample the micro-clusters are fit on; every
#: user is then assigned to its nearest micro-centre.
MICRO_FIT_USERS_PER_CLUSTER = 25


# -- hierarchical: Ward over KMeans micro-clusters --------------------------------------------
def ward_linkage(points: Any, weights: Any) -> np.ndarray:
    """Ward linkage of weighted points, in scipy's linkage format.

    Each point stands for a group of ``weights[i]`` users sitting at
    ``points[i]``. Merging groups a and b raises the within-group sum of
    squares by ``w_a w_b / (w_a + w_b) * |c_a - c_b|^2``; the height recorded
    is ``sqrt(2 *`` that ``)``, scipy's convention, so with unit weights the
    result equals ``scipy.cluster.hierarchy.linkage(points, "ward")``. Distances
    are updated with the Lance-Williams formula for Ward using the weights as
    sizes, which is exact for weighted groups; no point is replicated. The
    globally closest pair is merged at each step, with a nearest-neighbour
    cache (Ward is reducible, so a merge never brings a third group closer
    than its cached nearest neighbour): O(m^2) memory and time in practice.

    Parameters
    ----------
    points : array-like, shape (m, d)
        Host array of group centres.
    weights : array-like, shape (m,)
        Positive group sizes.

    Returns
    -------
    numpy.ndarray, shape (m - 1, 4)
        Rows ``[id_a, id_b, height, leaves]`` in merge order (non-decreasing
        height); ids below m are points, id ``m + i`` is the group of row i;
        ``leaves`` counts points (not weights), as scipy's dendrogram expects.
    """
    from scipy.spatial.distance import pdist, squareform

    points = np.asarray(points, dtype=np.float64)
    size = np.asarray(weights, dtype=np.float64).copy()
    m = points.shape[0]
    if points.ndim != 2 or size.shape != (m,):
        raise GpusegError(f"ward_linkage needs (m, d) points and m weights "
                          f"(got {points.shape}, {size.shape})")
    if m and not (size > 0).all():
        raise GpusegError("ward_linkage needs positive weights")
    if m < 2:
        return np.empty((0, 4))
    # Squared Ward distances between singleton groups: 2 w_a w_b / (w_a + w_b) |c_a - c_b|^2.
    d2 = squareform(pdist(points, "sqeuclidean"))
    d2 *= 2.0 * np.outer(size, size) / (size[:, None] + size[None, :])
    np.fill_diagonal(d2, np.inf)
    nearest = d2.argmin(axis=1)
    nearest_d2 = d2[np.arange(m), nearest]
    node = np.arange(m)
    leaves = np.ones(m)
    active = np.ones(m, dtype=bool)
    linkage = np.empty((m - 1, 4))
    for step in range(m - 1):
        a = int(np.argmin(nearest_d2))
        b = int(nearest[a])
        d2_ab = nearest_d2[a]
        w_a, w_b = size[a], size[b]
        merged = ((w_a + size) * d2[a] + (w_b + size) * d2[b] - size * d2_ab) / (w_a + w_b + size)
        linkage[step] = (min(node[a], node[b]), max(node[a], node[b]), math.sqrt(d2_ab),
                         leaves[a] + leaves[b])
        # Slot a holds the merged group from now on; slot b retires.
        active[b] = False
        size[a] = w_a + w_b
        leaves[a] += leaves[b]
        node[a] = m + step
        merged[~active] = np.inf
        merged[a] = np.inf
        d2[a, :] = merged
        d2[:, a] = merged
        d2[b, :] = np.inf
        d2[:, b] = np.inf
        nearest_d2[b] = np.inf
        stale = np.flatnonzero(active & ((nearest == a) | (nearest == b)))
        if stale.size:
            nearest[stale] = d2[stale].argmin(axis=1)
            nearest_d2[stale] = d2[stale, nearest[stale]]
        closer = np.flatnonzero(merged < nearest_d2)
        nearest[closer] = a
        nearest_d2[closer] = merged[closer]
    return linkage


def cut_linkage(linkage: np.ndarray, n_clusters: int) -> np.ndarray:
    """Group of each leaf when the tree is cut into ``n_clusters`` groups (numbered 0..k-1).

    Replays the first ``m - n_clusters`` merges, so the cut is exact even where
    heights tie (``fcluster(..., "maxclust")`` may return fewer groups then).
    """
    m = linkage.shape[0] + 1
    if not 1 <= n_clusters <= m:
        raise GpusegError(f"cannot cut {m} leaves into {n_clusters} groups")
    parent = np.arange(2 * m - 1)
    for step in range(m - n_clusters):
        parent[linkage[step, :2].astype(np.int64)] = m + step
    roots = parent[:m]
    while True:
        higher = parent[roots]
        if np.array_equal(higher, roots):
            break
        roots = higher
    return np.unique(roots, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class HierarchicalFit:
    """Ward clustering over KMeans micro-clusters, cut at K.

    Attributes
    ----------
    labels : backend int32 array, shape (n_users,)
        Segment of each user, numbered by size (0 largest).
    linkage : numpy.ndarray, shape (m - 1, 4)
        scipy-format Ward linkage over the m micro-clusters (for a dendrogram).
    micro_sizes : tuple of int
        Users per micro-cluster, in leaf order of ``linkage``.
    micro_labels : backend array, shape (n_users,)
        Leaf (micro-cluster) of each user.
    micro_centres : numpy.ndarray, shape (m, n_components)
        Mean of each micro-cluster's users, in leaf order (the points Ward merged).
    ari_vs_kmeans : float
        Adjusted Rand index between these labels and the KMeans labels.
    host_step : str
        Which step ran on the host and why.
    sizes : tuple of int
        Users per segment, largest first.
    """

    labels: Any
    linkage: np.ndarray
    micro_sizes: tuple[int, ...]
    micro_labels: Any
    micro_centres: np.ndarray
    ari_vs_kmeans: float
    host_step: str
    sizes: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Host summary; the linkage and per-user arrays stay out (they are large)."""
        return {"k": len(self.sizes), "sizes": list(self.sizes),
                "n_micro_clusters": len(self.micro_sizes),
                "ari_vs_kmeans": finite_or_none(self.ari_vs_kmeans), "host_step": self.host_step}


def _micro_clusters(X: Any, backend: Backend, *, m: int, seed: int
                    ) -> tuple[Any, np.ndarray, np.ndarray]:
    """KMeans micro-clusters of every user: each user's micro-cluster, and their sizes and sums.

    Fit on a seeded sample of :data:`MICRO_FIT_USERS_PER_CLUSTER` users per
    micro-cluster with random initialisation and at most
    :data:`MICRO_MAX_ITER` iterations, then every user joins its nearest
    centre. Sizes and per-component sums come to the host (m rows), for Ward.
    """
    xp = backend.xp
    n = int(X.shape[0])
    fit_rows = seeded_sample(n, MICRO_FIT_USERS_PER_CLUSTER * m, seed=seed, backend=backend)
    micro = backend.KMeans(m, n_init=1, random_state=seed, init="random",
                           max_iter=MICRO_MAX_ITER).fit(X if fit_rows is None else X[fit_rows])
    # predict only reads cluster_centers_, however they were initialised (cuML as scikit-learn).
    raw = backend.asarray(micro.predict(X))
    counts = xp.bincount(raw, minlength=m)
    # Centres as the exact means of the final assignment, which Ward's merge cost assumes.
    sums = xp.stack([xp.bincount(raw, weights=X[:, j], minlength=m) for j in range(X.shape[1])],
                    axis=1)
    # The host step: Ward needs the m x m distance matrix and m sequential merges, and cuML's
    # AgglomerativeClustering implements single linkage only; m (~1,000) centroids are a
    # few hundred kilobytes to move and take well under a second to merge with numpy.
    return raw, backend.to_numpy(counts), backend.to_numpy(sums)


@dataclass(frozen=True)
class _MicroTree:
    """Micro-clusters of every user and Ward's tree over the occupied ones."""

    raw: Any  # backend int array: each user's micro-cluster, 0..m-1
    m: int  # micro-clusters fitted
    occupied: np.ndarray  # the micro-clusters some user joined: the tree's leaves, in order
    weights: np.ndarray  # users in each leaf
    sums: np.ndarray  # per-component sums of each leaf
    centres: np.ndarray  # mean of each leaf's users
    linkage: np.ndarray


def _micro_tree(X: Any, backend: Backend, *, n_micro: int, seed: int) -> _MicroTree:
    m = min(n_micro, int(X.shape[0]))
    raw, counts, sums = _micro_clusters(X, backend, m=m, seed=seed)
    occupied = np.flatnonzero(counts > 0)
    weights = counts[occupied].astype(np.float64)
    sums = sums[occupied]
    centres = sums / weights[:, None]
    return _MicroTree(raw=raw, m=m, occupied=occupied, weights=weights, sums=sums,
                      centres=centres, linkage=ward_linkage(centres, weights))


def hierarchical(X: Any, kmeans_labels: Any, backend: Backend, *, k: int, n_micro: int,
                 seed: int) -> HierarchicalFit:
    """Ward hierarchical clustering of every user through KMeans micro-clusters.

    KMeans with ``min(n_micro, n_users)`` clusters quantises the users on the
    device: it is fit on a seeded sample of
    :data:`MICRO_FIT_USERS_PER_CLUSTER` users per micro-cluster with random
    initialisation and at most :data:`MICRO_MAX_ITER` iterations (k-means++
    seeding of a thousand centres over every user costs minutes on a CPU and
    buys nothing a quantiser needs), then every user joins its nearest
    micro-centre, and the centres are recomputed as the exact means of their
    users. Ward linkage then runs over the micro-cluster centroids weighted by
    their sizes (:func:`ward_linkage`), the tree is cut at ``k``, and each user
    takes the segment of its micro-cluster. Ward over size-weighted centroids
    is the exact Ward merge cost of the micro-clusters as groups, so the result
    approximates full Ward by treating each micro-cluster as indivisible.

    Parameters
    ----------
    X : backend array, shape (n_users, n_components)
    kmeans_labels : backend array, shape (n_users,)
        The final KMeans labels, for the agreement score.
    backend : Backend
    k : int
        Segments to cut the tree into.
    n_micro : int
        Micro-clusters to build (at most one per user).
    seed : int

    Returns
    -------
    HierarchicalFit

    Raises
    ------
    GpusegError
        When ``k`` or ``n_micro`` is below 1, or ``k`` exceeds the number of users.
    """
    xp = backend.xp
    n = check_matrix(X, "hierarchical clustering")
    if k < 1 or n_micro < 1:
        raise GpusegError(
            f"hierarchical clustering needs k >= 1 and n_micro >= 1 (got {k}, {n_micro})")
    if k > n:
        raise GpusegError(f"cannot form {k} segments from {n} users; "
                          f"choose {setting('k', n)} or fewer")
    tree = _micro_tree(X, backend, n_micro=n_micro, seed=seed)
    occupied, weights, linkage = tree.occupied, tree.weights, tree.linkage
    groups = cut_linkage(linkage, min(k, occupied.size))
    leaf_of_micro = np.full(tree.m, -1, dtype=np.int64)
    leaf_of_micro[occupied] = np.arange(occupied.size)
    segment_of_micro = np.full(tree.m, -1, dtype=np.int64)
    segment_of_micro[occupied] = groups
    micro_labels = backend.asarray(leaf_of_micro)[tree.raw]
    labels = backend.asarray(segment_of_micro)[tree.raw]
    n_groups = int(groups.max()) + 1
    _, rank = size_rank(xp.bincount(labels, minlength=n_groups), xp=xp)
    labels = rank[labels].astype(xp.int32)
    sizes = backend.to_host(xp.bincount(labels, minlength=n_groups))
    host_step = (f"Ward linkage over {occupied.size:,} size-weighted micro-cluster centroids ran "
                 "on the host with numpy, because cuML's agglomerative clustering implements "
                 "single linkage only; the micro-clustering and the mapping back to users stayed "
                 "on the compute device.")
    return HierarchicalFit(labels=labels, linkage=linkage,
                           micro_sizes=tuple(int(c) for c in weights), micro_labels=micro_labels,
                           micro_centres=tree.centres,
                           ari_vs_kmeans=backend.adjusted_rand_score(kmeans_labels, labels),
                           host_step=host_step, sizes=tuple(int(s) for s in sizes))


def ward_starts(X: Any, backend: Backend, *, ks: tuple[int, ...], n_micro: int,
                seed: int) -> dict[int, Any]:
    """KMeans starting centroids for each K: Ward's tree over micro-clusters, cut at K.

    The two-step "Ward, then KMeans from Ward's centroids" that segmentation
    studies have used since Punj & Stewart (1983): the tree places every
    centre at once from the data's own merge order, where k-means++ seeds one
    centre at a time and, on synthetic shoppers with five planted personas,
    merges two of them in a quarter of its 3-initialisation runs.

    Parameters
    ----------
    X : backend array, shape (n_users, n_components)
    backend : Backend
    ks : tuple of int
        The K to cut the tree at; a K above the number of occupied
        micro-clusters gets no start.
    n_micro : int
        Micro-clusters (at most one per user).
    seed : int

    Returns
    -------
    dict of int to backend array, shape (k, n_components)
        The size-weighted mean of the micro-cluster centres in each group.
    """
    tree = _micro_tree(X, backend, n_micro=n_micro, seed=seed)
    starts = {}
    for k in ks:
        if k > tree.occupied.size:
            continue
        groups = cut_linkage(tree.linkage, k)
        group_sums = np.stack([tree.sums[groups == j].sum(axis=0) for j in range(k)])
        group_sizes = np.bincount(groups, weights=tree.weights, minlength=k)
        starts[k] = backend.from_host(group_sums / group_sizes[:, None])
    return starts
