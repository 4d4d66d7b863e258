"""Each segment's best rules: trees on a seeded sample, precision and coverage on every user."""
from __future__ import annotations

from typing import Any

from ..explain.rules import ChosenRules, SegmentRules, choose_rules, measured_rules, rule_counts
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .personas import Personas


class Rules(Stage[ChosenRules, list[SegmentRules]]):
    """One or two readable rules per segment (``rules_sample`` shoppers fit the trees)."""

    name = "rules"

    def sample_size(self, state: RunState) -> int | None:
        return state.config.rules_sample

    def fit(self, state: RunState, rows: FitRows) -> ChosenRules:
        features = state.features
        return choose_rules(rows.take(features.X), rows.take(state.outputs[KMeans].labels),
                            state.backend, feature_names=features.names,
                            personas=state.outputs[Personas].names, seed=state.config.seed,
                            **features.catalog.as_keywords())

    def finish(self, state: RunState, fitted: ChosenRules, assigned: Column | None,
               rows: FitRows) -> list[SegmentRules]:
        counts = state.rows.sum(rule_counts, state.features.X, state.outputs[KMeans].labels,
                                chosen=fitted)
        return measured_rules(fitted, counts)

    def metrics(self, output: list[SegmentRules]) -> dict[str, Any]:
        return {"rules": [segment.to_dict() for segment in output]}
