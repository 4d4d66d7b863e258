"""Seed and bootstrap stability of the segmentation, refitted on a seeded sample."""
from __future__ import annotations

from ..quality import Stability as StabilityReport
from ..quality import stability
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .pca import Pca
from .sweep import Sweep


class Stability(Stage[StabilityReport, StabilityReport]):
    """Does the answer depend on the seed, or on which customers were drawn?"""

    name = "stability"
    sample_field = "stability_sample"

    def fit(self, state: RunState, rows: FitRows) -> StabilityReport:
        config = state.config
        return stability(rows.take(state.outputs[Pca].X_pca),
                         rows.take(state.outputs[KMeans].labels), state.backend,
                         k=state.outputs[Sweep].k, n_seeds=config.stability_seeds,
                         n_bootstrap=config.bootstrap_rounds, n_init=config.n_init,
                         seed=config.seed)

    def finish(self, state: RunState, fitted: StabilityReport, assigned: Column | None,
               rows: FitRows) -> StabilityReport:
        return fitted
