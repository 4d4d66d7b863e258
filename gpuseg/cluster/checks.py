"""Input checks that the clustering methods share."""
from __future__ import annotations

from typing import Any

from ..errors import GpusegError


def check_matrix(X: Any, what: str) -> int:
    if X.ndim != 2:
        raise GpusegError(f"{what} needs a 2-D users x components matrix (got {X.ndim} dimensions)")
    n = int(X.shape[0])
    if n < 1:
        raise GpusegError(f"{what} needs at least one user (got none)")
    return n


def n_labels_ok(n_labels: int, n_samples: int) -> bool:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin are defined for 2 <= labels < samples."""
    return 2 <= n_labels <= n_samples - 1
