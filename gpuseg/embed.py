"""2-D UMAP map of the PCA space: a layout fitted on a sample, every other user placed on it.

:func:`fit_layout` fits the backend's UMAP on the users it is given (the map
stage hands it a seeded sample, 30,000 users on a CPU); :func:`place_block`
places any block of users on the fitted layout with the model's
``transform``; :func:`trustworthiness` scores the map on a sample of its users.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Backend

#: Users the trustworthiness check is computed on (it is quadratic in this count).
TRUSTWORTHINESS_SAMPLE = 5_000
TRUSTWORTHINESS_NEIGHBORS = 10


@dataclass(frozen=True)
class Embedding:
    """UMAP coordinates (NaN for users outside ``sample_size``) and a quality score.

    ``fit_sample_size`` users (``None``: every embedded user) shaped the
    layout; the other embedded users were placed with the fitted model's
    ``transform``. ``fitted`` holds the sorted positions (among every user) of
    the users the layout was fitted on (``None``: every embedded user), so that
    the report can tell fitted from placed users on the map.
    """

    coords: Any
    sample_size: int | None
    fit_sample_size: int | None
    trustworthiness: float
    trustworthiness_sample: int
    n_neighbors: int
    min_dist: float
    fitted: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sample_size": self.sample_size, "fit_sample_size": self.fit_sample_size,
                "trustworthiness": self.trustworthiness,
                "trustworthiness_sample": self.trustworthiness_sample,
                "n_neighbors": self.n_neighbors, "min_dist": self.min_dist}


@dataclass(frozen=True)
class Layout:
    """A UMAP model fitted on some users, and their coordinates (a host float64 array)."""

    reducer: Any
    coords: np.ndarray
    n_neighbors: int


def fit_layout(X: Any, backend: Backend, *, n_neighbors: int, min_dist: float,
               seed: int) -> Layout:
    """Fit the backend's UMAP on the users ``X`` holds (``n_neighbors`` capped below their count)."""
    n_neighbors = min(n_neighbors, int(X.shape[0]) - 1)
    reducer = backend.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed)
    coords = backend.to_numpy(reducer.fit_transform(X), np.float64)
    return Layout(reducer=reducer, coords=coords, n_neighbors=n_neighbors)


def place_block(backend: Backend, X: Any, reducer: Any, fitted: np.ndarray | None,
                first_row: int) -> Any:
    """Map coordinates of a block of users placed on a fitted layout (float64, shape (n, 2)).

    ``fitted`` holds the sorted positions (among every user) of the users the
    layout was fitted on: their rows are left NaN here, since they keep the
    coordinates of the fit; ``first_row`` is the block's first position.
    """
    xp = backend.xp
    n = int(X.shape[0])
    coords = xp.full((n, 2), xp.nan, dtype=xp.float64)
    placed = np.ones(n, dtype=bool)
    if fitted is not None:
        inside = fitted[(fitted >= first_row) & (fitted < first_row + n)] - first_row
        placed[inside] = False
    if placed.any():
        rows = backend.asarray(np.flatnonzero(placed))
        coords[rows] = xp.asarray(reducer.transform(X[rows]), dtype=xp.float64)
    return coords


def trustworthiness(X: Any, coords: Any, backend: Backend) -> float:
    """How well the map keeps each of these users' nearest neighbours (1 is perfect)."""
    k = min(TRUSTWORTHINESS_NEIGHBORS, (int(X.shape[0]) - 1) // 2)
    return backend.trustworthiness(X, backend.asarray(coords), n_neighbors=k)
