"""Silhouette on a seeded sample (NaN for the users outside it)."""
from __future__ import annotations

import dataclasses

from ..quality import SilhouetteReport, silhouette_report
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .pca import Pca


class Silhouette(Stage[SilhouetteReport, SilhouetteReport]):
    """How well separated the segments are, per user, segment and overall."""

    name = "silhouette"
    sample_field = "silhouette_sample"

    def fit(self, state: RunState, rows: FitRows) -> SilhouetteReport:
        return silhouette_report(rows.take(state.outputs[Pca].X_pca),
                                 rows.take(state.outputs[KMeans].labels), state.backend)

    def finish(self, state: RunState, fitted: SilhouetteReport, assigned: Column | None,
               rows: FitRows) -> SilhouetteReport:
        return dataclasses.replace(fitted, per_user=rows.spread(fitted.per_user),
                                   sample_size=rows.n if rows.sampled else None)
