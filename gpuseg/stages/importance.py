"""Which features tell the segments apart: eta squared over every user, grouped permutation
importance through the saved model on a seeded sample."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..explain import GroupedImportance, feature_groups, grouped_importance
from ..quality import Importance, importance_from_moments, importance_moments
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .saved_model import segment_model
from .scale import Scale


@dataclass(frozen=True)
class Explanations:
    """Single-feature eta squared (every user) and the families' importance (a sample)."""

    importance: Importance
    grouped: GroupedImportance
    sample_size: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.importance.to_dict(), **self.grouped.to_dict(),
                "sample_size": self.sample_size}


class FeatureImportance(Stage[Explanations, Explanations]):
    """Eta squared of every feature, and the accuracy drop when each family is shuffled."""

    name = "importance"
    sample_field = "importance_sample"

    def fit(self, state: RunState, rows: FitRows) -> Explanations:
        backend, features = state.backend, state.features
        segments = state.outputs[KMeans]
        moments = state.rows.sum(importance_moments, state.outputs[Scale].X_scaled,
                                 segments.labels, k=segments.k)
        importance = importance_from_moments(moments, feature_names=features.names)
        table = backend.df.DataFrame(rows.take(features.X), columns=list(features.names))
        groups = feature_groups(features.names,
                                aisle_department=features.catalog.aisle_department,
                                departments=features.catalog.departments)
        grouped = grouped_importance(table, rows.take(segments.labels), backend,
                                     model=segment_model(state), groups=groups,
                                     seed=state.config.seed)
        return Explanations(importance=importance, grouped=grouped, sample_size=rows.n)

    def finish(self, state: RunState, fitted: Explanations, assigned: Column | None,
               rows: FitRows) -> Explanations:
        return fitted
