"""The final KMeans segmentation, with segments numbered by size.

:func:`fit_kmeans` runs the backend's KMeans (``n_init`` initialisations) on the
users it is given; the KMeans stage hands it a seeded sample on a CPU and then
refines the best fit with Lloyd iterations over every user (:func:`refine_centres`,
sums over a row source), so one process and Dask workers run the same algorithm.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import setting
from ..errors import GpusegError
from ..numerics.arrays import nearest_centre, segment_sums, size_rank
from ..rows import Column, RowSource
from .checks import check_matrix

if TYPE_CHECKING:
    from ..backend import Backend


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
    n = check_matrix(X, "KMeans")
    if k < 1:
        raise GpusegError(f"KMeans needs at least one segment (got k={k})")
    if k > n:
        raise GpusegError(f"cannot form {k} segments from {n} users; "
                          f"choose {setting('k', n)} or fewer")
    model = backend.KMeans(k, n_init=n_init, random_state=seed).fit(X)
    labels = backend.asarray(model.labels_)
    order, rank = size_rank(xp.bincount(labels, minlength=k), xp=xp)
    labels = rank[labels].astype(xp.int32)
    sizes = backend.to_host(xp.bincount(labels, minlength=k))
    return KMeansFit(labels=labels, centroids=backend.asarray(model.cluster_centers_)[order],
                     inertia=float(backend.to_host(model.inertia_)),
                     sizes=tuple(int(s) for s in sizes))


# -- Lloyd iterations over every user, through a row source ----------------------------------
#: Lloyd iterations refining a sample's KMeans fit over every user (it starts near convergence).
LLOYD_MAX_ITER = 300
#: scikit-learn's relative tolerance: the squared centre shift is compared with this share of
#: the mean variance of the data's columns.
LLOYD_TOL = 1e-4


def lloyd_block(backend: Backend, X: Any, centres: np.ndarray) -> np.ndarray:
    """A block's sums and counts per nearest centre: (k, n_components + 1) on the host."""
    xp = backend.xp
    labels, _ = nearest_centre(X, xp.asarray(centres), xp=xp)
    sums, counts = segment_sums(X, labels, int(centres.shape[0]), xp=xp)
    return backend.to_numpy(xp.concatenate([sums, counts[:, None].astype(X.dtype)], axis=1),
                            np.float64)


def nearest_block(backend: Backend, X: Any, centres: np.ndarray) -> Any:
    """A block's nearest centre (int32), as ``gpuseg assign`` computes it."""
    xp = backend.xp
    return nearest_centre(X, xp.asarray(centres), xp=xp)[0].astype(xp.int32)


def totals_block(backend: Backend, X: Any, labels: Any, centres: np.ndarray) -> np.ndarray:
    """A block's users per label and its share of the inertia (the last value), on the host."""
    xp = backend.xp
    centres = xp.asarray(centres)
    k = int(centres.shape[0])
    squared = ((X - centres[labels]) ** 2).sum()
    return np.append(backend.to_numpy(xp.bincount(labels, minlength=k), np.float64),
                     float(backend.to_host(squared)))


def refine_centres(rows: RowSource, X: Column, centres: np.ndarray, *,
                   variance: float) -> tuple[np.ndarray, int]:
    """Lloyd iterations from ``centres`` over every user of ``rows``, until the squared centre
    shift is within :data:`LLOYD_TOL` of ``variance`` (the mean column variance); the final
    centres and the iterations run. A centre that loses every user stays where it was."""
    tol = LLOYD_TOL * variance
    for iteration in range(1, LLOYD_MAX_ITER + 1):
        totals = rows.sum(lloyd_block, X, centres=centres)
        counts = totals[:, -1]
        moved = centres.copy()
        filled = counts > 0
        moved[filled] = totals[filled, :-1] / counts[filled, None]
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if shift <= tol:
            return centres, iteration
    return centres, LLOYD_MAX_ITER
