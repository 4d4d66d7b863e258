"""Ward hierarchical clustering of every user through KMeans micro-clusters.

KMeans with ``min(n_micro, n_users)`` clusters quantises the users: it is fitted
on a seeded sample (:func:`fit_micro_centres`), every user joins its nearest
micro-centre and the centres become the exact means of their users
(:func:`micro_sums_block`, summed over every user). Ward linkage then runs over
the micro-cluster centroids weighted by their sizes (:func:`ward_linkage`), the
tree is cut at K (:func:`ward_tree`), and each user takes the segment of its
micro-cluster (:func:`hierarchy_block`). Ward over size-weighted centroids is
the exact Ward merge cost of the micro-clusters as groups, so the result
approximates full Ward by treating each micro-cluster as indivisible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GpusegError
from ..numerics.arrays import finite_or_none, size_rank
from ..numerics.sampling import seeded_sample

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
    labels : numpy int32 array, shape (n_users,)
        Segment of each user, numbered by size (0 largest).
    linkage : numpy.ndarray, shape (m - 1, 4)
        scipy-format Ward linkage over the m micro-clusters (for a dendrogram).
    micro_sizes : tuple of int
        Users per micro-cluster, in leaf order of ``linkage``.
    micro_labels : numpy array, shape (n_users,)
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


def fit_micro_centres(X: Any, backend: Backend, *, m: int, seed: int) -> Any:
    """KMeans micro-cluster centres fitted on the users ``X`` holds (random initialisation, at
    most :data:`MICRO_MAX_ITER` iterations): a quantiser of the space, not a segmentation.

    k-means++ seeding of a thousand centres over every user costs minutes on a
    CPU and buys nothing a quantiser needs; the hierarchical stage fits them
    on a seeded sample of :data:`MICRO_FIT_USERS_PER_CLUSTER` users per
    micro-cluster.
    """
    micro = backend.KMeans(m, n_init=1, random_state=seed, init="random",
                           max_iter=MICRO_MAX_ITER).fit(X)
    return backend.asarray(micro.cluster_centers_)


def micro_sums_block(backend: Backend, X: Any, centres: Any) -> np.ndarray:
    """A block's users per micro-cluster (nearest centre) and their per-component sums:
    (m, n_components + 1) on the host, the count last."""
    xp = backend.xp
    m = int(centres.shape[0])
    raw = _nearest_micro(backend, X, centres)
    # One bincount per component: a users x m one-hot matrix would take gigabytes.
    columns = [xp.bincount(raw, weights=X[:, j], minlength=m) for j in range(int(X.shape[1]))]
    columns.append(xp.bincount(raw, minlength=m).astype(xp.float64))
    return backend.to_numpy(xp.stack(columns, axis=1), np.float64)


def _nearest_micro(backend: Backend, X: Any, centres: Any) -> Any:
    """Each user's nearest micro-centre, by the backend's nearest-neighbour search (a thousand
    centres: one distance GEMM rather than a thousand passes over the users)."""
    search = backend.NearestNeighbors(n_neighbors=1).fit(backend.xp.asarray(centres))
    return backend.asarray(search.kneighbors(X, return_distance=False)).reshape(-1)


@dataclass(frozen=True)
class WardTree:
    """Ward's tree over the occupied micro-clusters, cut at K."""

    occupied: np.ndarray  # the micro-clusters some user joined: the tree's leaves, in order
    weights: np.ndarray  # users in each leaf
    sums: np.ndarray  # per-component sums of each leaf
    centres: np.ndarray  # mean of each leaf's users (the points Ward merges)
    linkage: np.ndarray
    leaf_of_micro: np.ndarray  # leaf of each micro-cluster (-1: empty)
    segment_of_micro: np.ndarray  # segment of each micro-cluster at the cut (-1: empty)


def ward_tree(micro_sums: np.ndarray, k: int) -> WardTree:
    """Ward linkage over the micro-clusters' exact means, weighted by their sizes, cut at ``k``.

    ``micro_sums`` is :func:`micro_sums_block` summed over every user. The host
    step: Ward needs the m x m distance matrix and m sequential merges, and
    cuML's AgglomerativeClustering implements single linkage only; m (~1,000)
    centroids are a few hundred kilobytes and take well under a second to merge.
    """
    counts, sums = micro_sums[:, -1], micro_sums[:, :-1]
    occupied = np.flatnonzero(counts > 0)
    weights = counts[occupied].astype(np.float64)
    sums = sums[occupied]
    centres = sums / weights[:, None]
    linkage = ward_linkage(centres, weights)
    groups = cut_linkage(linkage, min(k, occupied.size))
    m = int(counts.shape[0])
    leaf_of_micro = np.full(m, -1, dtype=np.int64)
    leaf_of_micro[occupied] = np.arange(occupied.size)
    segment_of_micro = np.full(m, -1, dtype=np.int64)
    segment_of_micro[occupied] = groups
    return WardTree(occupied=occupied, weights=weights, sums=sums, centres=centres,
                    linkage=linkage, leaf_of_micro=leaf_of_micro,
                    segment_of_micro=segment_of_micro)


def hierarchy_block(backend: Backend, X: Any, centres: Any, leaf_of_micro: np.ndarray,
                    segment_of_micro: np.ndarray) -> Any:
    """A block's leaf (micro-cluster) and Ward segment: (n, 2) int64."""
    xp = backend.xp
    raw = _nearest_micro(backend, X, centres)
    return xp.stack([xp.asarray(leaf_of_micro)[raw], xp.asarray(segment_of_micro)[raw]], axis=1)


def hierarchical_fit(leaf_segment: np.ndarray, kmeans_labels: np.ndarray, tree: WardTree,
                     backend: Backend, *, n_fit: int) -> HierarchicalFit:
    """The hierarchical segmentation of every user from each user's leaf and Ward segment
    (host), segments numbered by size; ``n_fit`` users shaped the micro-clusters."""
    leaf, segment = leaf_segment[:, 0], leaf_segment[:, 1]
    n_groups = int(segment.max()) + 1
    _, rank = size_rank(np.bincount(segment, minlength=n_groups), xp=np)
    labels = rank[segment].astype(np.int32)
    sizes = np.bincount(labels, minlength=n_groups)
    host_step = (f"Ward linkage over {tree.occupied.size:,} size-weighted micro-cluster centroids "
                 "ran on the host (scipy); the micro-clustering and the mapping back to users ran "
                 "on the backend's device.")
    if n_fit < int(labels.shape[0]):
        host_step += (f" The micro-clusters were fitted on a seeded sample of {n_fit:,} users; "
                      "every user then joined the nearest micro-cluster centre.")
    ari = backend.adjusted_rand_score(backend.asarray(kmeans_labels), backend.asarray(labels))
    return HierarchicalFit(labels=labels, linkage=tree.linkage,
                           micro_sizes=tuple(int(c) for c in tree.weights),
                           micro_labels=leaf, micro_centres=tree.centres,
                           ari_vs_kmeans=ari, host_step=host_step,
                           sizes=tuple(int(s) for s in sizes))


def _micro_tree(X: Any, backend: Backend, *, n_micro: int, seed: int) -> WardTree:
    """The sweep's Ward tree: micro-clusters fitted on a seeded sub-sample of the sweep's users,
    every one of them then summed into its nearest micro-cluster."""
    m = min(n_micro, int(X.shape[0]))
    fit_rows = seeded_sample(int(X.shape[0]), MICRO_FIT_USERS_PER_CLUSTER * m, seed=seed,
                             backend=backend)
    centres = fit_micro_centres(X if fit_rows is None else X[fit_rows], backend, m=m, seed=seed)
    return ward_tree(micro_sums_block(backend, X, centres), 1)


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
