"""Segment discovery: the K sweep, KMeans, Ward over micro-clusters, and DBSCAN.

Every function takes the PCA-space matrix ``X`` (a backend array, users x
components) and a :class:`~gpuseg.backend.Backend`, computes with
``backend.xp`` and the backend's estimators, and returns a frozen dataclass
whose ``to_dict()`` is JSON-ready. Per-user arrays (labels) stay backend
arrays; K-sized summaries are host values. Two steps leave the device on
purpose, each with its reason at the spot: the Ward linkage over the
micro-cluster centroids, and the short curves that knees are found on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import GpusegError
from .knee import find_knee
from .result import finite_or_none
from .sampling import seeded_sample

if TYPE_CHECKING:
    from .backend import Backend

#: Silhouettes closer than this to the best one count as a tie in ``choose_k``.
SILHOUETTE_TIE = 0.01
#: Lloyd iterations for the Ward micro-clusters: they only quantise the space, so
#: running to full convergence would buy nothing the linkage can see.
MICRO_MAX_ITER = 20
#: Users per micro-cluster in the seeded sample the micro-clusters are fit on; every
#: user is then assigned to its nearest micro-centre.
MICRO_FIT_USERS_PER_CLUSTER = 25
#: Points of the sorted k-distance curve handed to the knee finder.
KNEE_CURVE_POINTS = 2_000


# -- shared helpers -----------------------------------------------------------------------
def dense_codes(labels: Any, xp: Any) -> tuple[Any, Any]:
    """Labels recoded to ``0..m-1`` (in sorted label order) and the distinct labels."""
    uniques, codes = xp.unique(labels, return_inverse=True)
    return codes.reshape(-1), uniques


def segment_sums(values: Any, codes: Any, n_segments: int, xp: Any) -> tuple[Any, Any]:
    """Per-segment column sums and sizes of ``values`` (users x columns).

    A one-hot matrix product: one GEMM on either backend, cheap for the few
    segments (K up to a few dozen) it is used with.
    """
    one_hot = (codes[:, None] == xp.arange(n_segments)[None, :]).astype(values.dtype)
    return one_hot.T @ values, xp.bincount(codes, minlength=n_segments)


def _size_rank(sizes: Any, xp: Any) -> tuple[Any, Any]:
    """Order of segments by size (largest first, ties to the lower label) and its inverse."""
    k = sizes.shape[0]
    # One integer key sorts by size descending and breaks ties by the lower label, so the
    # result does not depend on the sort being stable (CuPy's argsort takes no ``kind``).
    key = (int(sizes.sum()) - sizes.astype(xp.int64)) * k + xp.arange(k)
    order = xp.argsort(key)
    rank = xp.empty_like(order)
    rank[order] = xp.arange(k)
    return order, rank


def _check_matrix(X: Any, what: str) -> int:
    if X.ndim != 2:
        raise GpusegError(f"{what} needs a 2-D users x components matrix (got {X.ndim} dimensions)")
    n = int(X.shape[0])
    if n < 1:
        raise GpusegError(f"{what} needs at least one user (got none)")
    return n


def _n_labels_ok(n_labels: int, n_samples: int) -> bool:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin are defined for 2 <= labels < samples."""
    return 2 <= n_labels <= n_samples - 1


# -- internal validity indices (cuML has neither) -------------------------------------------
def _segment_centroids(X: Any, labels: Any, backend: Backend, what: str,
                       index_name: str) -> tuple[int, int, Any, Any, Any]:
    """Rows, segment count, dense codes, sizes and centroids that both validity indices start from."""
    xp = backend.xp
    n = _check_matrix(X, what)
    codes, uniques = dense_codes(labels, xp)
    k = int(uniques.shape[0])
    if not _n_labels_ok(k, n):
        raise GpusegError(f"{index_name} needs 2 to {n - 1} segments (got {k})")
    sums, counts = segment_sums(X, codes, k, xp)
    return n, k, codes, counts, sums / counts[:, None]


def calinski_harabasz(X: Any, labels: Any, backend: Backend) -> float:
    """Calinski-Harabasz index, computed with ``backend.xp`` (scikit-learn's definition).

    Between-segment dispersion over within-segment dispersion, each divided by
    its degrees of freedom; higher is better. 1.0 when every segment is a
    single point, as in scikit-learn.
    """
    n, k, codes, counts, centroids = _segment_centroids(X, labels, backend, "calinski_harabasz",
                                                        "Calinski-Harabasz")
    spread = counts * ((centroids - X.mean(axis=0)) ** 2).sum(axis=1)
    between = float(backend.to_host(spread.sum()))
    within = float(backend.to_host(((X - centroids[codes]) ** 2).sum()))
    if within == 0.0:
        return 1.0
    return between * (n - k) / (within * (k - 1.0))


def davies_bouldin(X: Any, labels: Any, backend: Backend) -> float:
    """Davies-Bouldin index, computed with ``backend.xp`` (scikit-learn's definition).

    The mean over segments of the worst ratio (spread_i + spread_j) / distance
    between centroids i and j, with spread the mean distance to the centroid;
    lower is better, 0 for point-like segments.
    """
    xp = backend.xp
    n, k, codes, counts, centroids = _segment_centroids(X, labels, backend, "davies_bouldin",
                                                        "Davies-Bouldin")
    to_centroid = xp.sqrt(((X - centroids[codes]) ** 2).sum(axis=1))
    spread = xp.bincount(codes, weights=to_centroid, minlength=k) / counts
    between = xp.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2))
    if bool(xp.allclose(spread, 0)) or bool(xp.allclose(between, 0)):
        return 0.0
    between[between == 0] = xp.inf
    ratios = (spread[:, None] + spread[None, :]) / between
    return float(backend.to_host(ratios.max(axis=1).mean()))


# -- K sweep --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KSweep:
    """KMeans quality across K.

    Attributes
    ----------
    ks : tuple of int
        The K evaluated (the sweep range, less any K not below the user count).
    inertia : tuple of float
        Within-cluster sum of squares (WCSS) of the KMeans fit on the sweep sample, per K.
    silhouette, calinski_harabasz, davies_bouldin : tuple of float
        The three indices on the seeded sample, per K; NaN (``null`` in
        ``to_dict``) where undefined (fewer than two segments in the sample).
    elbow_k : int
        The knee of the WCSS curve over K = 1 and the swept K (see
        :func:`gpuseg.knee.find_knee`); a curve without a bend reports the
        smallest swept K.
    wcss_k1 : float
        WCSS of a single segment: the total sum of squares around the mean.
    sample_size : int
        Users the three indices were computed on.
    n_users : int
        Users in the segmentation.
    fit_size : int
        Users the sweep's KMeans fits (and WCSS) ran on.
    """

    ks: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    calinski_harabasz: tuple[float, ...]
    davies_bouldin: tuple[float, ...]
    elbow_k: int
    wcss_k1: float
    sample_size: int
    n_users: int
    fit_size: int

    def inertia_at(self, k: int) -> float | None:
        """WCSS at ``k``: ``wcss_k1`` for K=1, ``None`` for a K the sweep did not fit."""
        if k == 1:
            return self.wcss_k1
        return self.inertia[self.ks.index(k)] if k in self.ks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ks": list(self.ks),
            "inertia": [finite_or_none(v) for v in self.inertia],
            "silhouette": [finite_or_none(v) for v in self.silhouette],
            "calinski_harabasz": [finite_or_none(v) for v in self.calinski_harabasz],
            "davies_bouldin": [finite_or_none(v) for v in self.davies_bouldin],
            "elbow_k": self.elbow_k,
            "wcss_k1": self.wcss_k1,
            "sample_size": self.sample_size,
            "n_users": self.n_users,
            "fit_size": self.fit_size,
        }


def total_sum_of_squares(X: Any, backend: Backend) -> float:
    """WCSS of one segment holding every row (the K=1 point of the elbow curve)."""
    return float(backend.to_host(((X - X.mean(axis=0)) ** 2).sum()))


def k_sweep(X: Any, backend: Backend, *, k_range: tuple[int, int] = (2, 10), seed: int,
            n_init: int, sample_size: int | None, score_sample: int | None = None) -> KSweep:
    """Fit KMeans for every K in ``k_range`` and score each fit.

    Parameters
    ----------
    X : backend array, shape (n_users, n_components)
        Users in PCA space.
    backend : Backend
        Where to compute.
    k_range : (int, int)
        Inclusive range of K. K values not below the number of users are left
        out (a segmentation needs fewer segments than users).
    seed : int
        Seed of every KMeans fit and of the scoring sample.
    n_init : int
        KMeans initialisations per K (the best inertia is kept).
    sample_size : int or None
        Users (seeded sample) the whole sweep runs on: KMeans fits, WCSS,
        silhouette, Calinski-Harabasz and Davies-Bouldin; ``None`` is every
        user. A 20,000-user sample keeps the sweep's 9 x n_init fits within the
        CPU budget at Instacart scale; the elbow and the indices are ratios and
        change little with the sample.
    score_sample : int or None
        Users of the fit sample (a seeded sub-sample) the silhouette,
        Calinski-Harabasz and Davies-Bouldin indices are computed on;
        ``None`` is the whole fit sample. Silhouette is quadratic: nine of them
        on 20,000 users cost a CPU run about 45 s, on 5,000 about 3 s.

    Returns
    -------
    KSweep

    Raises
    ------
    GpusegError
        When the range is invalid or no K in it is below the number of users.
    """
    xp = backend.xp
    n = _check_matrix(X, "the K sweep")
    lo, hi = k_range
    ks = tuple(k for k in range(lo, hi + 1) if k < n)
    if lo >= 2 and n <= lo:
        raise GpusegError(
            f"the K sweep needs more users than its smallest K ({lo}); "
            f"got {n} user{'s' if n != 1 else ''}")
    if lo < 2 or not ks:
        raise GpusegError(
            f"k_sweep_range must be (low, high) with 2 <= low <= high (got {k_range!r})")
    sample = seeded_sample(n, sample_size, seed=seed, backend=backend)
    X_fit = X if sample is None else X[sample]
    scored = seeded_sample(int(X_fit.shape[0]), score_sample, seed=seed + 1, backend=backend)
    X_sample = X_fit if scored is None else X_fit[scored]
    n_sample = int(X_sample.shape[0])
    inertia, silhouette, ch, db = [], [], [], []
    for k in ks:
        model = backend.KMeans(k, n_init=n_init, random_state=seed).fit(X_fit)
        inertia.append(float(backend.to_host(model.inertia_)))
        labels = backend.asarray(model.labels_)
        labels_sample = labels if scored is None else labels[scored]
        if _n_labels_ok(int(xp.unique(labels_sample).shape[0]), n_sample):
            silhouette.append(backend.silhouette_score(X_sample, labels_sample))
            ch.append(calinski_harabasz(X_sample, labels_sample, backend))
            db.append(davies_bouldin(X_sample, labels_sample, backend))
        else:
            silhouette.append(math.nan)
            ch.append(math.nan)
            db.append(math.nan)
    wcss_k1 = total_sum_of_squares(X_fit, backend)
    curve_k = (1,) + ks
    knee = find_knee(curve_k, (wcss_k1,) + tuple(inertia), curve="convex", direction="decreasing")
    return KSweep(ks=ks, inertia=tuple(inertia), silhouette=tuple(silhouette),
                  calinski_harabasz=tuple(ch), davies_bouldin=tuple(db),
                  elbow_k=max(curve_k[knee], ks[0]), wcss_k1=wcss_k1,
                  sample_size=n_sample, n_users=n, fit_size=int(X_fit.shape[0]))


@dataclass(frozen=True)
class KChoice:
    """The number of segments and why.

    Attributes
    ----------
    k : int
    reason : str
        One sentence a reader can check against the sweep.
    wcss_reduction : float or None
        ``1 - WCSS(K) / WCSS(1)``: the share of total variance the segments
        explain; ``None`` when the sweep did not fit this K (a ``--k`` outside
        the sweep range; compute it from ``KMeansFit.inertia`` then).
    source : {"auto", "user"}
        Whether the sweep chose K or ``--k`` set it.
    """

    k: int
    reason: str
    wcss_reduction: float | None
    source: Literal["auto", "user"]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "reason": self.reason, "wcss_reduction": self.wcss_reduction,
                "source": self.source}


def _wcss_reduction(sweep: KSweep, k: int) -> float | None:
    wcss = sweep.inertia_at(k)
    if wcss is None:
        return None
    return 0.0 if sweep.wcss_k1 == 0 else 1.0 - wcss / sweep.wcss_k1


def choose_k(sweep: KSweep, *, k: int | Literal["auto"] = "auto",
             business_range: tuple[int, int] = (3, 8)) -> KChoice:
    """Pick the number of segments.

    Rule for ``k="auto"``: among the swept K inside ``business_range``, take
    the best silhouette; every K whose silhouette is within
    :data:`SILHOUETTE_TIE` (0.01) of the best counts as tied, and the tie goes
    to the K nearest the WCSS elbow (then to the smaller K). Silhouette leads
    because it measures separation directly; the elbow only settles
    differences too small to mean anything. Where silhouette is undefined for
    every K in range (data without spread), the K nearest the elbow is taken.

    Parameters
    ----------
    sweep : KSweep
    k : "auto" or int
        An integer is taken as given (``--k``), provided it is at least 2 and
        below the number of users.
    business_range : (int, int)
        Inclusive range of K the business can act on.

    Returns
    -------
    KChoice

    Raises
    ------
    GpusegError
        For an integer K below 2 or not below the number of users, or a
        business range that shares no K with the sweep.
    """
    if k != "auto":
        if isinstance(k, bool) or not isinstance(k, int):
            raise GpusegError(f"--k must be 'auto' or an integer (got {k!r})")
        if k < 2:
            raise GpusegError(f"--k must be at least 2 (got {k})")
        if k >= sweep.n_users:
            raise GpusegError(
                f"--k {k} is not below the number of users ({sweep.n_users}); "
                f"choose --k {sweep.n_users - 1} or fewer, or load more users")
        return KChoice(k=k, reason=f"K={k} was fixed by the configuration (--k {k}).",
                       wcss_reduction=_wcss_reduction(sweep, k), source="user")
    lo, hi = business_range
    in_range = [(kk, s) for kk, s in zip(sweep.ks, sweep.silhouette) if lo <= kk <= hi]
    if not in_range:
        raise GpusegError(
            f"k_business_range {lo}-{hi} shares no K with the sweep "
            f"({sweep.ks[0]}-{sweep.ks[-1]}); widen k_sweep_range or k_business_range")

    def nearest_elbow(candidates: list[int]) -> int:
        return min(candidates, key=lambda kk: (abs(kk - sweep.elbow_k), kk))

    scored = [(kk, s) for kk, s in in_range if math.isfinite(s)]
    if not scored:
        chosen = nearest_elbow([kk for kk, _ in in_range])
        reason = (f"K={chosen}: silhouette is undefined for every K in {lo}-{hi} (the users do not "
                  f"spread into separate groups), so the K nearest the WCSS elbow "
                  f"(K={sweep.elbow_k}) was taken.")
    else:
        best_k, best = max(scored, key=lambda item: (item[1], -item[0]))
        tied = [kk for kk, s in scored if s >= best - SILHOUETTE_TIE]
        chosen = nearest_elbow(tied)
        sample = f"a {sweep.sample_size:,}-user sample"
        if len(tied) == 1:
            reason = (f"K={chosen} has the best silhouette ({best:.3f}) in {lo}-{hi} on {sample}; "
                      f"the WCSS elbow is at K={sweep.elbow_k}.")
        else:
            listed = ", ".join(f"K={kk}" for kk in tied)
            reason = (f"{listed} score within {SILHOUETTE_TIE} of the best silhouette "
                      f"({best:.3f} at K={best_k}) in {lo}-{hi} on {sample}; K={chosen} is "
                      f"nearest the WCSS elbow (K={sweep.elbow_k}).")
    return KChoice(k=chosen, reason=reason, wcss_reduction=_wcss_reduction(sweep, chosen),
                   source="auto")


# -- KMeans ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class KMeansFit:
    """The final KMeans segmentation.

    Attributes
    ----------
    labels : backend int32 array, shape (n_users,)
        Segment of each user, numbered by size: 0 is the largest segment
        (ties go to the lower original label).
    centroids : backend array, shape (k, n_components)
        Segment centres in PCA space, in the same order as the labels.
    inertia : float
        WCSS of the fit.
    sizes : tuple of int
        Users per segment, largest first.
    """

    labels: Any
    centroids: Any
    inertia: float
    sizes: tuple[int, ...]

    @property
    def k(self) -> int:
        return len(self.sizes)

    def to_dict(self) -> dict[str, Any]:
        """Host summary; ``labels`` and ``centroids`` stay out (they go through ``to_host``)."""
        return {"k": self.k, "inertia": self.inertia, "sizes": list(self.sizes)}


def fit_kmeans(X: Any, backend: Backend, *, k: int, n_init: int, seed: int) -> KMeansFit:
    """Fit KMeans with ``k`` segments on every user and number segments by size.

    Parameters
    ----------
    X : backend array, shape (n_users, n_components)
    backend : Backend
    k : int
        Number of segments, 1 to the number of users.
    n_init : int
        Initialisations (the best inertia is kept).
    seed : int
        Same ``X`` and seed give the same labels, bit for bit, on the CPU.

    Returns
    -------
    KMeansFit

    Raises
    ------
    GpusegError
        When ``k`` is below 1 or above the number of users.
    """
    xp = backend.xp
    n = _check_matrix(X, "KMeans")
    if k < 1:
        raise GpusegError(f"--k must be at least 1 (got {k})")
    if k > n:
        raise GpusegError(f"cannot form {k} segments from {n} users; choose --k {n} or fewer")
    model = backend.KMeans(k, n_init=n_init, random_state=seed).fit(X)
    labels = backend.asarray(model.labels_)
    order, rank = _size_rank(xp.bincount(labels, minlength=k), xp)
    labels = rank[labels].astype(xp.int32)
    sizes = backend.to_host(xp.bincount(labels, minlength=k))
    return KMeansFit(labels=labels, centroids=backend.asarray(model.cluster_centers_)[order],
                     inertia=float(backend.to_host(model.inertia_)),
                     sizes=tuple(int(s) for s in sizes))


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
    ari_vs_kmeans: float
    host_step: str
    sizes: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Host summary; the linkage and per-user arrays stay out (they are large)."""
        return {"k": len(self.sizes), "sizes": list(self.sizes),
                "n_micro_clusters": len(self.micro_sizes),
                "ari_vs_kmeans": finite_or_none(self.ari_vs_kmeans), "host_step": self.host_step}


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
    n = _check_matrix(X, "hierarchical clustering")
    if k < 1 or n_micro < 1:
        raise GpusegError(
            f"hierarchical clustering needs k >= 1 and n_micro >= 1 (got {k}, {n_micro})")
    if k > n:
        raise GpusegError(f"cannot form {k} segments from {n} users; choose --k {n} or fewer")
    m = min(n_micro, n)
    fit_rows = seeded_sample(n, MICRO_FIT_USERS_PER_CLUSTER * m, seed=seed, backend=backend)
    micro = backend.KMeans(m, n_init=1, random_state=seed, init="random",
                           max_iter=MICRO_MAX_ITER).fit(X if fit_rows is None else X[fit_rows])
    raw = backend.asarray(micro.predict(X))
    counts = xp.bincount(raw, minlength=m)
    # Centres as the exact means of the final assignment, which Ward's merge cost assumes.
    sums = xp.stack([xp.bincount(raw, weights=X[:, j], minlength=m) for j in range(X.shape[1])],
                    axis=1)
    # The host step: Ward needs the m x m distance matrix and m sequential merges, and cuML's
    # AgglomerativeClustering implements single linkage only; m (~1,000) centroids are a
    # few hundred kilobytes to move and take well under a second to merge with numpy.
    counts_host = np.asarray(backend.to_host(counts))
    sums_host = np.asarray(backend.to_host(sums))
    occupied = np.flatnonzero(counts_host > 0)
    weights = counts_host[occupied].astype(np.float64)
    linkage = ward_linkage(sums_host[occupied] / weights[:, None], weights)
    groups = cut_linkage(linkage, min(k, occupied.size))
    leaf_of_micro = np.full(m, -1, dtype=np.int64)
    leaf_of_micro[occupied] = np.arange(occupied.size)
    segment_of_micro = np.full(m, -1, dtype=np.int64)
    segment_of_micro[occupied] = groups
    micro_labels = backend.asarray(leaf_of_micro)[raw]
    labels = backend.asarray(segment_of_micro)[raw]
    n_groups = int(groups.max()) + 1
    _, rank = _size_rank(xp.bincount(labels, minlength=n_groups), xp)
    labels = rank[labels].astype(xp.int32)
    sizes = backend.to_host(xp.bincount(labels, minlength=n_groups))
    host_step = (f"Ward linkage over {occupied.size:,} size-weighted micro-cluster centroids ran "
                 "on the host with numpy, because cuML's agglomerative clustering implements "
                 "single linkage only; the micro-clustering and the mapping back to users stayed "
                 "on the compute device.")
    return HierarchicalFit(labels=labels, linkage=linkage,
                           micro_sizes=tuple(int(c) for c in weights), micro_labels=micro_labels,
                           ari_vs_kmeans=backend.adjusted_rand_score(kmeans_labels, labels),
                           host_step=host_step, sizes=tuple(int(s) for s in sizes))


# -- DBSCAN ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DbscanFit:
    """Density-based segments and outliers.

    Attributes
    ----------
    labels : backend int32 array, shape (n_users,)
        Cluster of each user numbered by size (0 largest), -1 for outliers.
    eps : float
        Neighbourhood radius used.
    eps_source : str
        ``"given"`` or how the knee chose it.
    n_clusters : int
        Clusters found (outliers excluded).
    outlier_share : float
        Share of all users labelled -1.
    n_fit : int
        Users DBSCAN itself ran on (all, or the seeded sample).
    core_assignment : str or None
        How users outside the sample were labelled; ``None`` when DBSCAN ran on
        every user.
    n_core : int
        Core points of the fit.
    k_distance_curve : tuple of (int, float)
        The subsampled sorted k-distance curve the knee was found on, as
        (rank, distance) pairs; empty when eps was given.
    """

    labels: Any
    eps: float
    eps_source: str
    n_clusters: int
    outlier_share: float
    n_fit: int
    core_assignment: str | None
    n_core: int
    k_distance_curve: tuple[tuple[int, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Host summary; labels and the k-distance curve stay out."""
        return {"eps": self.eps, "eps_source": self.eps_source, "n_clusters": self.n_clusters,
                "outlier_share": self.outlier_share, "n_fit": self.n_fit,
                "core_assignment": self.core_assignment, "n_core": self.n_core}


def _eps_from_knee(X_fit: Any, min_samples: int, backend: Backend
                   ) -> tuple[float, str, tuple[tuple[int, float], ...]]:
    """eps at the knee of the sorted distances to each user's ``min_samples``-th neighbour."""
    xp = backend.xp
    n_fit = int(X_fit.shape[0])
    # The query set is the fitted set, so each user is its own first neighbour: the last
    # column is the distance at which the user has min_samples points within eps (itself
    # included), DBSCAN's core condition.
    distances, _ = backend.NearestNeighbors(n_neighbors=min_samples).fit(X_fit).kneighbors(X_fit)
    k_distance = xp.sort(backend.asarray(distances)[:, -1].astype(xp.float64))
    ranks = np.unique(np.linspace(0, n_fit - 1, num=min(n_fit, KNEE_CURVE_POINTS)).round()
                      .astype(np.int64))
    # Only the few-thousand-point curve comes to the host, for the knee finder.
    curve = np.asarray(backend.to_host(k_distance[backend.asarray(ranks)]), dtype=np.float64)
    eps = float(curve[find_knee(ranks, curve, curve="convex", direction="increasing")])
    source = (f"knee of the sorted distance to the {min_samples}th nearest neighbour "
              f"over {n_fit:,} users")
    if eps <= 0:
        positive = curve[curve > 0]
        # Many identical users put the knee at distance 0, which DBSCAN cannot use.
        eps = float(positive.min()) if positive.size else 1e-9
        source += ("; the knee sat at distance 0 (identical users), so the smallest positive "
                   "distance was used")
    return eps, source, tuple(zip(ranks.tolist(), curve.tolist()))


def dbscan(X: Any, backend: Backend, *, eps: float | None = None, min_samples: int = 20,
           sample: int | None = None, seed: int) -> DbscanFit:
    """DBSCAN with eps from the k-distance knee, optionally fit on a sample.

    Parameters
    ----------
    X : backend array, shape (n_users, n_components)
    backend : Backend
    eps : float or None
        Neighbourhood radius; ``None`` picks the knee of the sorted curve of
        each user's distance to its ``min_samples``-th neighbour (itself
        counted, as DBSCAN counts it).
    min_samples : int
        Users within eps (itself included) that make a user a core point.
    sample : int or None
        The CPU budget strategy: when an int below the number of users,
        DBSCAN (and the eps knee) runs on a seeded sample of that many users,
        and every other user takes the label of its nearest core point if that
        point is within eps, else is an outlier (-1). This is DBSCAN's own rule
        for border points, so a user near a sampled cluster joins it; what the
        sample cannot see is a cluster too sparse to have core points in it.
        ``None`` fits every user.
    seed : int
        Seed of the sample.

    Returns
    -------
    DbscanFit

    Raises
    ------
    GpusegError
        When eps is not positive, min_samples is below 2, or fewer users than
        min_samples are available to fit on.
    """
    xp = backend.xp
    n = _check_matrix(X, "DBSCAN")
    if min_samples < 2:
        raise GpusegError(f"dbscan_min_samples must be at least 2 (got {min_samples})")
    if eps is not None and not eps > 0:
        raise GpusegError(f"dbscan_eps must be positive (got {eps})")
    fit_rows = seeded_sample(n, sample, seed=seed, backend=backend)
    X_fit = X if fit_rows is None else X[fit_rows]
    n_fit = int(X_fit.shape[0])
    if n_fit < min_samples:
        raise GpusegError(
            f"DBSCAN with min_samples={min_samples} needs at least {min_samples} users to fit on "
            f"(got {n_fit}); lower dbscan_min_samples or raise dbscan_sample")
    curve: tuple[tuple[int, float], ...] = ()
    if eps is None:
        eps, eps_source, curve = _eps_from_knee(X_fit, min_samples, backend)
    else:
        eps_source = "given"
    model = backend.DBSCAN(eps=eps, min_samples=min_samples).fit(X_fit)
    fit_labels = backend.asarray(model.labels_).astype(xp.int64)
    core = backend.asarray(model.core_sample_indices_).astype(xp.int64)
    n_core = int(core.shape[0])
    core_assignment = None
    if fit_rows is None:
        labels = fit_labels
    else:
        labels = xp.full(n, -1, dtype=xp.int64)
        labels[fit_rows] = fit_labels
        outside = xp.ones(n, dtype=bool)
        outside[fit_rows] = False
        rest = xp.flatnonzero(outside)
        joined = 0
        if n_core:
            nearest = backend.NearestNeighbors(n_neighbors=1).fit(X_fit[core])
            distance, position = nearest.kneighbors(X[rest])
            distance = backend.asarray(distance).reshape(-1)
            near_label = fit_labels[core][backend.asarray(position).reshape(-1)]
            assigned = xp.where(distance <= eps, near_label, -1)
            labels[rest] = assigned
            joined = int(backend.to_host((assigned >= 0).sum()))
        core_assignment = (f"DBSCAN ran on a seeded sample of {n_fit:,} users; each of the other "
                           f"{n - n_fit:,} took the cluster of its nearest core point within eps "
                           f"({joined:,} did, the rest are outliers)")
    clustered = labels >= 0
    n_clusters = int(backend.to_host(labels.max())) + 1
    if n_clusters > 0:
        safe = xp.where(clustered, labels, 0)
        _, rank = _size_rank(xp.bincount(labels[clustered], minlength=n_clusters), xp)
        labels = xp.where(clustered, rank[safe], -1)
        n_clusters = int(xp.unique(labels[clustered]).shape[0])
    outlier_share = float(backend.to_host((~clustered).sum())) / n
    return DbscanFit(labels=labels.astype(xp.int32), eps=float(eps), eps_source=eps_source,
                     n_clusters=n_clusters, outlier_share=outlier_share, n_fit=n_fit,
                     core_assignment=core_assignment, n_core=n_core, k_distance_curve=curve)
