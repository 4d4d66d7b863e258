"""2-D UMAP map of the PCA space, with its trustworthiness."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .backend import Backend
from .numerics.sampling import seeded_sample

#: Users the trustworthiness check is computed on (it is quadratic in this count).
TRUSTWORTHINESS_SAMPLE = 5_000
TRUSTWORTHINESS_NEIGHBORS = 10


@dataclass(frozen=True)
class Embedding:
    """UMAP coordinates (NaN for users outside ``sample_size``) and a quality score.

    ``fit_sample_size`` users (``None``: every embedded user) shaped the
    layout; the other embedded users were placed with the fitted model's
    ``transform``.
    """

    coords: Any
    sample_size: int | None
    fit_sample_size: int | None
    trustworthiness: float
    trustworthiness_sample: int
    n_neighbors: int
    min_dist: float

    def to_dict(self) -> dict[str, Any]:
        return {"sample_size": self.sample_size, "fit_sample_size": self.fit_sample_size,
                "trustworthiness": self.trustworthiness,
                "trustworthiness_sample": self.trustworthiness_sample,
                "n_neighbors": self.n_neighbors, "min_dist": self.min_dist}


def embed_umap(X: Any, backend: Backend, *, n_neighbors: int, min_dist: float, seed: int,
               sample: int | None = None, fit_sample: int | None = None) -> Embedding:
    """Embed ``X`` (or a seeded sample of ``sample`` rows) in 2-D with UMAP.

    With ``fit_sample``, the layout is fitted on a seeded sample of that many
    embedded users and the others are placed with ``transform``: every
    embedded user gets coordinates at a fraction of a full fit's cost.
    Trustworthiness is measured on a seeded sample of at most
    ``TRUSTWORTHINESS_SAMPLE`` embedded users (fitted and placed alike).
    """
    xp = backend.xp
    n = X.shape[0]
    rows = seeded_sample(n, sample, seed=seed, backend=backend)
    X_fit = X if rows is None else X[rows]
    n_embedded = X_fit.shape[0]
    fit_rows = seeded_sample(n_embedded, fit_sample, seed=seed + 2, backend=backend)
    n_layout = n_embedded if fit_rows is None else int(fit_rows.shape[0])
    n_neighbors = min(n_neighbors, n_layout - 1)
    reducer = backend.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed)
    if fit_rows is None:
        embedded = xp.asarray(reducer.fit_transform(X_fit), dtype=xp.float64)
    else:
        placed = xp.ones(n_embedded, dtype=bool)
        placed[fit_rows] = False
        embedded = xp.empty((n_embedded, 2), dtype=xp.float64)
        embedded[fit_rows] = xp.asarray(reducer.fit_transform(X_fit[fit_rows]), dtype=xp.float64)
        embedded[placed] = xp.asarray(reducer.transform(X_fit[placed]), dtype=xp.float64)
    coords = embedded
    if rows is not None:
        coords = xp.full((n, 2), xp.nan)
        coords[rows] = embedded

    check = seeded_sample(X_fit.shape[0], TRUSTWORTHINESS_SAMPLE, seed=seed + 1, backend=backend)
    X_check, E_check = (X_fit, embedded) if check is None else (X_fit[check], embedded[check])
    k = min(TRUSTWORTHINESS_NEIGHBORS, (X_check.shape[0] - 1) // 2)
    score = backend.trustworthiness(X_check, E_check, n_neighbors=k)
    return Embedding(coords=coords, sample_size=None if rows is None else int(rows.shape[0]),
                     fit_sample_size=None if fit_rows is None else n_layout,
                     trustworthiness=score, trustworthiness_sample=int(X_check.shape[0]),
                     n_neighbors=n_neighbors, min_dist=min_dist)
