"""How well a segment holds for a new shopper: sampled shoppers' first 2, 3 and 4 orders."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cluster.kmeans import nearest_block
from ..preprocess import project_block, standardise_block
from ..rows import Column
from ..short_history import ShortHistory, short_history_agreement
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .pca import Pca
from .scale import Scale


class ShortHistoryStage(Stage[ShortHistory, ShortHistory]):
    """Cut a seeded sample's histories and assign them with the run's own scaler, PCA and
    centres (:mod:`gpuseg.short_history`); runs where the rows carry order histories."""

    name = "short_history"
    sample_field = "short_history_sample"
    # Shoppers of their own, not another stage's sample.
    sample_seed = 6

    def applies(self, state: RunState) -> bool:
        return state.features.model_catalog is not None

    def fit(self, state: RunState, rows: FitRows) -> ShortHistory:
        backend = state.backend
        positions = np.arange(state.n_users) if rows.positions is None else rows.positions
        user_ids = state.features.user_ids[positions]
        labels = backend.to_numpy(rows.take(state.outputs[KMeans].labels), np.int64)
        history = state.rows.histories(user_ids)
        if history is None:
            return ShortHistory(cuts=(), users=(), agreement=(), n_sample=0)
        scaler = state.outputs[Scale].scaler.params()
        pcs = state.outputs[Pca].pcs
        centres = state.outputs[KMeans].centroids

        def assign(X: Any) -> Any:
            projected = project_block(backend, standardise_block(backend, X, **scaler),
                                      mean=pcs.mean, components=pcs.kept)
            return nearest_block(backend, projected, centres=centres)

        return short_history_agreement(history, user_ids, labels, state.features.names,
                                       backend, assign)

    def finish(self, state: RunState, fitted: ShortHistory, assigned: Column | None,
               rows: FitRows) -> ShortHistory:
        return fitted
