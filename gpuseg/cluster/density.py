"""Density clustering beside KMeans: DBSCAN (eps from the k-distance knee) and HDBSCAN.

Each is fitted on the users it is given (:func:`fit_dbscan`,
:func:`fit_hdbscan`); the other users then join a fitted cluster by that
method's own rule for points near it, or become outliers (the block functions
:func:`dbscan_block`, :func:`hdbscan_block`, which the density stage maps over
every user).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import HDBSCAN_MAX_MIN_SAMPLES
from ..errors import GpusegError
from ..numerics.arrays import numbered_by_size
from ..numerics.knee import find_knee
from .checks import check_matrix

if TYPE_CHECKING:
    from ..backend import Backend

#: Points of the sorted k-distance curve handed to the knee finder.
KNEE_CURVE_POINTS = 2_000


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
    core : backend int64 array
        Positions of the fit's core points among the users DBSCAN ran on (the
        sample when there was one).
    k_distance_curve : tuple of (int, float)
        The subsampled sorted k-distance curve the knee was found on, as
        (rank, distance) pairs; empty when eps was given.
    """

    method = "dbscan"
    labels: Any
    eps: float
    eps_source: str
    n_clusters: int
    outlier_share: float
    n_fit: int
    core_assignment: str | None
    core: Any
    k_distance_curve: tuple[tuple[int, float], ...] = ()

    @property
    def n_core(self) -> int:
        """Core points of the fit."""
        return int(self.core.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """Host summary; labels, core points and the k-distance curve stay out."""
        return {"eps": self.eps, "eps_source": self.eps_source, "n_clusters": self.n_clusters,
                "outlier_share": self.outlier_share, "n_fit": self.n_fit,
                "core_assignment": self.core_assignment, "n_core": self.n_core}


def _eps_from_knee(X_fit: Any, min_samples: int, backend: Backend
                   ) -> tuple[float, str, tuple[tuple[int, float], ...]]:
    """eps at the knee of the sorted distances to each user's ``min_samples``-th neighbour."""
    xp = backend.xp
    n_fit = int(X_fit.shape[0])
    # Each user's core distance is the eps at which it has min_samples points within eps
    # (itself included), DBSCAN's core condition.
    k_distance = xp.sort(core_distances(X_fit, min_samples, backend)[1].astype(xp.float64))
    ranks = np.unique(np.linspace(0, n_fit - 1, num=min(n_fit, KNEE_CURVE_POINTS)).round()
                      .astype(np.int64))
    # Only the few-thousand-point curve comes to the host, for the knee finder.
    curve = backend.to_numpy(k_distance[backend.asarray(ranks)], np.float64)
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


@dataclass(frozen=True)
class DbscanModel:
    """DBSCAN fitted on the users it ran on (a seeded sample, or all).

    ``points`` and ``point_labels`` are the fit's core points and their
    clusters: a user outside the fit takes the cluster of its nearest core
    point when that point is within ``eps`` (DBSCAN's own rule for border
    points), else it is an outlier.
    """

    eps: float
    eps_source: str
    k_distance_curve: tuple[tuple[int, float], ...]
    fit_labels: Any
    core: Any
    points: Any
    point_labels: Any
    n_fit: int


def fit_dbscan(X: Any, backend: Backend, *, eps: float | None = None,
               min_samples: int = 20) -> DbscanModel:
    """DBSCAN on the users ``X`` holds, with eps from the k-distance knee.

    Parameters
    ----------
    X : backend array, shape (n_fit, n_components)
        The users DBSCAN runs on; the density stage hands it a seeded sample
        on a CPU (DBSCAN's neighbourhoods are quadratic at worst), and every
        other user then joins by :func:`dbscan_block`. What the sample cannot
        see is a cluster too sparse to have core points in it.
    backend : Backend
    eps : float or None
        Neighbourhood radius; ``None`` picks the knee of the sorted curve of
        each user's distance to its ``min_samples``-th neighbour (itself
        counted, as DBSCAN counts it).
    min_samples : int
        Users within eps (itself included) that make a user a core point.

    Raises
    ------
    GpusegError
        When eps is not positive, min_samples is below 2, or fewer users than
        min_samples are available to fit on.
    """
    xp = backend.xp
    n_fit = check_matrix(X, "DBSCAN")
    if min_samples < 2:
        raise GpusegError(f"dbscan_min_samples must be at least 2 (got {min_samples})")
    if eps is not None and not eps > 0:
        raise GpusegError(f"dbscan_eps must be positive (got {eps})")
    if n_fit < min_samples:
        raise GpusegError(
            f"DBSCAN with min_samples={min_samples} needs at least {min_samples} users to fit on "
            f"(got {n_fit}); lower dbscan_min_samples or raise dbscan_sample")
    curve: tuple[tuple[int, float], ...] = ()
    if eps is None:
        eps, eps_source, curve = _eps_from_knee(X, min_samples, backend)
    else:
        eps_source = "given"
    model = backend.DBSCAN(eps=eps, min_samples=min_samples).fit(X)
    fit_labels = backend.asarray(model.labels_).astype(xp.int64)
    core = backend.asarray(model.core_sample_indices_).astype(xp.int64)
    return DbscanModel(eps=float(eps), eps_source=eps_source, k_distance_curve=curve,
                       fit_labels=fit_labels, core=core, points=X[core],
                       point_labels=fit_labels[core], n_fit=n_fit)


def dbscan_block(backend: Backend, X: Any, points: Any, point_labels: Any, eps: float) -> Any:
    """A block of users' DBSCAN clusters by the fit's core points (:class:`DbscanModel`)."""
    xp = backend.xp
    return nearest_point_labels(X, xp.asarray(points), xp.asarray(point_labels), eps, backend)


def dbscan(X: Any, backend: Backend, *, eps: float | None = None,
           min_samples: int = 20) -> DbscanFit:
    """DBSCAN of every user in memory (the density stage does the same over any row source,
    fitted on its seeded sample)."""
    model = fit_dbscan(X, backend, eps=eps, min_samples=min_samples)
    labels, n_clusters, outlier_share = numbered_by_size(model.fit_labels, xp=backend.xp)
    return DbscanFit(labels=labels, eps=model.eps, eps_source=model.eps_source,
                     n_clusters=n_clusters, outlier_share=outlier_share, n_fit=model.n_fit,
                     core_assignment=None, core=model.core,
                     k_distance_curve=model.k_distance_curve)


# -- HDBSCAN --------------------------------------------------------------------------------
@dataclass(frozen=True)
class HdbscanFit:
    """Clusters of varying density, and outliers.

    Attributes
    ----------
    labels : backend int32 array, shape (n_users,)
        Cluster of each user numbered by size (0 largest), -1 for outliers.
    n_clusters : int
        Clusters found (outliers excluded).
    outlier_share : float
        Share of all users labelled -1.
    min_cluster_size, min_samples : int
        The parameters used (``min_samples`` counts the user itself).
    n_fit : int
        Users HDBSCAN itself ran on (all, or the seeded sample).
    assignment : str or None
        How users outside the sample were labelled; ``None`` when HDBSCAN ran
        on every user.
    """

    method = "hdbscan"
    labels: Any
    n_clusters: int
    outlier_share: float
    min_cluster_size: int
    min_samples: int
    n_fit: int
    assignment: str | None

    def to_dict(self) -> dict[str, Any]:
        """Host summary; the labels stay out."""
        return {"n_clusters": self.n_clusters, "outlier_share": self.outlier_share,
                "min_cluster_size": self.min_cluster_size, "min_samples": self.min_samples,
                "n_fit": self.n_fit, "assignment": self.assignment}


@dataclass(frozen=True)
class HdbscanModel:
    """HDBSCAN fitted on the users it ran on, with what :func:`hdbscan_block` needs."""

    fitted: Any
    fit_labels: Any
    core: Any
    scale: Any
    min_cluster_size: int
    min_samples: int
    n_fit: int


def fit_hdbscan(X: Any, backend: Backend, *, min_cluster_size: int = 50,
                min_samples: int = 5) -> HdbscanModel:
    """HDBSCAN on the users ``X`` holds.

    Parameters
    ----------
    X : backend array, shape (n_fit, n_components)
        The users HDBSCAN runs on; the density stage hands it a seeded sample
        on a CPU. Every other user joins the cluster of its nearest fitted user
        q when q is clustered and their mutual reachability distance (the
        largest of the two core distances and the distance between them, as
        HDBSCAN measures it) is no more than the largest core distance among
        the cluster's fitted users; else it is an outlier (-1). Every member of
        a cluster has a core distance below the scale at which the cluster
        forms, so the new user would have been linked into the cluster by then,
        as the fitted users were (:func:`hdbscan_block`).
    backend : Backend
        ``sklearn.cluster.HDBSCAN`` on the CPU, ``cuml.cluster.HDBSCAN`` on the GPU.
    min_cluster_size : int
        Smallest group of fitted users that counts as a cluster.
    min_samples : int
        A user's core distance is the distance to its ``min_samples``-th
        nearest fitted user, itself counted (scikit-learn's convention).

    Raises
    ------
    GpusegError
        When a parameter is out of range or fewer users than ``min_samples``
        are available to fit on.
    """
    xp = backend.xp
    n_fit = check_matrix(X, "HDBSCAN")
    if min_cluster_size < 2:
        raise GpusegError(f"hdbscan_min_cluster_size must be at least 2 (got {min_cluster_size})")
    if not 2 <= min_samples <= HDBSCAN_MAX_MIN_SAMPLES:
        raise GpusegError(f"hdbscan_min_samples must be in [2, {HDBSCAN_MAX_MIN_SAMPLES}] "
                          f"(got {min_samples})")
    if n_fit <= min_samples:
        raise GpusegError(
            f"HDBSCAN with min_samples={min_samples} needs more than {min_samples} users to fit "
            f"on (got {n_fit}); lower hdbscan_min_samples or raise hdbscan_sample")
    model = backend.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples).fit(X)
    fit_labels = backend.asarray(model.labels_).astype(xp.int64)
    _, core = core_distances(X, min_samples, backend)
    return HdbscanModel(fitted=X, fit_labels=fit_labels, core=core,
                        scale=cluster_scale(fit_labels, core, xp=xp),
                        min_cluster_size=min_cluster_size, min_samples=min_samples,
                        n_fit=n_fit)


def hdbscan_block(backend: Backend, X: Any, fitted: Any, core: Any, fit_labels: Any,
                  scale: Any, min_samples: int) -> Any:
    """A block of users' HDBSCAN clusters by the fit's rule (see :func:`fit_hdbscan`)."""
    xp = backend.xp
    if X.shape[0] == 0:
        return xp.empty(0, dtype=xp.int64)
    neighbours = backend.NearestNeighbors(n_neighbors=min_samples).fit(xp.asarray(fitted))
    return reachability_labels(X, neighbours, xp.asarray(core), xp.asarray(fit_labels),
                               xp.asarray(scale), min_samples, backend)


def hdbscan(X: Any, backend: Backend, *, min_cluster_size: int = 50,
            min_samples: int = 5) -> HdbscanFit:
    """HDBSCAN of every user in memory (the density stage does the same over any row source,
    fitted on its seeded sample)."""
    model = fit_hdbscan(X, backend, min_cluster_size=min_cluster_size, min_samples=min_samples)
    labels, n_clusters, outlier_share = numbered_by_size(model.fit_labels, xp=backend.xp)
    return HdbscanFit(labels=labels, n_clusters=n_clusters, outlier_share=outlier_share,
                      min_cluster_size=min_cluster_size, min_samples=min_samples,
                      n_fit=model.n_fit, assignment=None)


def nearest_point_labels(X: Any, points: Any, point_labels: Any, eps: float,
                         backend: Backend) -> Any:
    """The label of each row's nearest point among ``points`` when within ``eps``, else -1.

    DBSCAN's rule for a user outside its fitted sample (``points`` the core
    points), on one process and in the distributed run's map; with an infinite
    ``eps``, the nearest micro-cluster centre of the distributed hierarchical stage.
    """
    xp = backend.xp
    if X.shape[0] == 0 or points.shape[0] == 0:
        return xp.full(X.shape[0], -1, dtype=xp.int64)
    search = backend.NearestNeighbors(n_neighbors=1).fit(points)
    distance, position = search.kneighbors(X)
    distance = backend.asarray(distance).reshape(-1)
    nearest = point_labels[backend.asarray(position).reshape(-1)]
    return xp.where(distance <= eps, nearest, -1).astype(xp.int64)


def core_distances(X_fit: Any, min_samples: int, backend: Backend) -> tuple[Any, Any]:
    """A neighbour search over the fitted users, and each fitted user's core distance.

    The fitted set queried against itself: each user is its own first
    neighbour, so the last of ``min_samples`` columns is the core distance
    DBSCAN and HDBSCAN use.
    """
    # Distances, not squared ones, on both backends (cuML's "euclidean" is L2SqrtExpanded:
    # cuml/neighbors/nearest_neighbors.pyx, 26.10).
    neighbours = backend.NearestNeighbors(n_neighbors=min_samples).fit(X_fit)
    return neighbours, backend.asarray(neighbours.kneighbors(X_fit)[0])[:, -1]


def reachability_labels(X: Any, neighbours: Any, core: Any, fit_labels: Any, scale: Any,
                        min_samples: int, backend: Backend) -> Any:
    """HDBSCAN's rule for users outside the fitted sample (see :func:`hdbscan`).

    The cluster of the nearest fitted user when their mutual reachability
    distance is within the cluster's largest core distance (``scale``), else
    -1; ``neighbours`` and ``core`` come from :func:`core_distances`.
    """
    xp = backend.xp
    if X.shape[0] == 0:
        return xp.empty(0, dtype=xp.int64)
    # A new user counts itself too: its core distance is to its (min_samples - 1)-th
    # nearest fitted user, and the first of those is the one it may join.
    distance, position = neighbours.kneighbors(X, n_neighbors=min_samples - 1)
    distance = backend.asarray(distance)
    nearest = backend.asarray(position)[:, 0]
    near_label = fit_labels[nearest]
    reach = xp.maximum(xp.maximum(distance[:, -1], core[nearest]), distance[:, 0])
    joins = (near_label >= 0) & (reach <= scale[xp.maximum(near_label, 0)])
    return xp.where(joins, near_label, -1).astype(xp.int64)


def cluster_scale(labels: Any, core: Any, *, xp: Any) -> Any:
    """Per cluster, the largest core distance of its fitted users (0 where a label is unused).

    One segmented maximum over every fitted user (``maximum.at``, a scatter of
    atomic maxima on CuPy); the cluster count is the one value that leaves the
    device. Outliers (-1) go to a slot of their own, dropped at the end.
    """
    n_clusters = int(labels.max()) + 1
    scale = xp.zeros(max(n_clusters, 1) + 1, dtype=core.dtype)
    xp.maximum.at(scale, labels + 1, core)
    return scale[1:]
