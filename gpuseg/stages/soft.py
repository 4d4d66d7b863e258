"""Soft membership: the Gaussian mixture fitted on a seeded sample, every user's E-step mapped."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cluster.soft import MixtureFit, SoftFit, fit_mixture, membership_block, soft_fit
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .pca import Pca


class Soft(Stage[MixtureFit, SoftFit]):
    """How surely each user belongs to its segment, and the segment it leans to next."""

    name = "soft"
    sample_field = "gmm_sample"
    assign = staticmethod(membership_block)
    assign_width = 4

    def fit(self, state: RunState, rows: FitRows) -> MixtureFit:
        config, backend = state.config, state.backend
        segments = state.outputs[KMeans]
        return fit_mixture(rows.take(state.outputs[Pca].X_pca), rows.take(segments.labels),
                           backend.asarray(segments.centroids), backend,
                           covariance_type=config.gmm_covariance, space=config.gmm_space,
                           seed=config.seed)

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.outputs[Pca].X_pca, state.outputs[KMeans].labels)

    def assign_params(self, state: RunState, fitted: MixtureFit) -> dict[str, Any]:
        return {"mixture": fitted.mixture}

    def finish(self, state: RunState, fitted: MixtureFit, assigned: Column | None,
               rows: FitRows) -> SoftFit:
        return soft_fit(state.rows.host(assigned, np.float64), state.outputs[KMeans].host_labels,
                        fitted)
