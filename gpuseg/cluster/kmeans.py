"""The final KMeans segmentation, with segments numbered by size."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import setting
from ..errors import GpusegError
from ..numerics.arrays import size_rank
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
