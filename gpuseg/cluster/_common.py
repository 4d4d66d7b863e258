"""Input checks and array helpers that the clustering methods share."""
from __future__ import annotations

from typing import Any

from ..errors import GpusegError


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
