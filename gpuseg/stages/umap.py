"""The UMAP map: a layout fitted on a seeded sample, every other user placed on it in a map."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..embed import (
    TRUSTWORTHINESS_SAMPLE,
    Embedding,
    Layout,
    fit_layout,
    place_block,
    trustworthiness,
)
from ..numerics.sampling import seeded_sample
from ..rows import Column
from .base import FitRows, RunState, Stage
from .pca import Pca


class Umap(Stage[Layout, Embedding]):
    """Fit the layout on ``umap_fit_sample`` users; place everyone else with its ``transform``.

    With ``umap_sample`` only a seeded sample of that many users is mapped (the
    others get NaN coordinates): its layout and placements then run where the
    sample is gathered.
    """

    name = "umap"
    sample_field = "umap_fit_sample"
    sample_seed = 2
    assign = staticmethod(place_block)
    assign_width = 2
    assign_offsets = True

    def applies(self, state: RunState) -> bool:
        return state.embed

    def _embedded(self, state: RunState) -> np.ndarray | None:
        """The mapped users (``None``: every user)."""
        return state.sample(state.config.umap_sample, seed=state.config.seed)

    def fit_positions(self, state: RunState) -> np.ndarray | None:
        embedded = self._embedded(state)
        if embedded is None:
            return super().fit_positions(state)
        inner = seeded_sample(int(embedded.shape[0]), self.sample_size(state),
                              seed=state.config.seed + self.sample_seed, backend=state.backend)
        return embedded if inner is None else embedded[state.backend.to_numpy(inner, np.int64)]

    def fit(self, state: RunState, rows: FitRows) -> Layout:
        config = state.config
        return fit_layout(rows.take(state.outputs[Pca].X_pca), state.backend,
                          n_neighbors=config.umap_neighbors, min_dist=config.umap_min_dist,
                          seed=config.seed)

    def assigns(self, state: RunState, rows: FitRows) -> bool:
        return rows.sampled and state.config.umap_sample is None

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.outputs[Pca].X_pca,)

    def assign_params(self, state: RunState, fitted: Layout) -> dict[str, Any]:
        return {"reducer": fitted.reducer,
                "fitted": state.sample(self.sample_size(state),
                                       seed=state.config.seed + self.sample_seed)}

    def finish(self, state: RunState, fitted: Layout, assigned: Column | None,
               rows: FitRows) -> Embedding:
        backend, config = state.backend, state.config
        X = state.outputs[Pca].X_pca
        embedded = self._embedded(state)
        if embedded is not None:
            # Everyone mapped is gathered: the layout's users keep their fit, the rest are placed.
            within = (None if rows.positions is None
                      else np.searchsorted(embedded, rows.positions))
            coords = backend.to_numpy(place_block(backend, state.rows.take(X, embedded),
                                                  fitted.reducer, within, 0), np.float64)
            coords[slice(None) if within is None else within] = fitted.coords
        elif assigned is None:
            coords = fitted.coords
        else:
            coords = state.rows.host(assigned, np.float64)
            coords[rows.positions] = fitted.coords
        n_embedded = state.n_users if embedded is None else int(embedded.shape[0])
        check = seeded_sample(n_embedded, TRUSTWORTHINESS_SAMPLE, seed=config.seed + 1,
                              backend=backend)
        check = None if check is None else backend.to_numpy(check, np.int64)
        checked = coords if check is None else coords[check]
        rows_checked = check if embedded is None else (embedded if check is None
                                                       else embedded[check])
        score = trustworthiness(state.rows.take(X, rows_checked), checked, backend)
        if embedded is not None:
            spread = np.full((state.n_users, 2), np.nan)
            spread[embedded] = coords
            coords = spread
        placed_some = rows.n < n_embedded
        return Embedding(coords=coords, sample_size=None if embedded is None else n_embedded,
                         fit_sample_size=rows.n if placed_some else None,
                         fitted=(np.asarray(rows.positions, dtype=np.int64)
                                 if placed_some and rows.positions is not None else None),
                         trustworthiness=score,
                         trustworthiness_sample=n_embedded if check is None else int(check.size),
                         n_neighbors=fitted.n_neighbors, min_dist=config.umap_min_dist)
