"""Profiles, persona names and ordering times of the segments: sums over every user."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..personas import Persona, name_segments, profiles_from_moments
from ..personas.profile import segment_moments, segment_volume, volume_positions
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .scale import Scale


@dataclass(frozen=True)
class Profiles:
    """One profile row per segment, its persona, and its orders by weekday x hour."""

    profiles: pd.DataFrame
    personas: list[Persona]
    activity: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        """Persona name of each segment, by segment number."""
        return tuple(p.name for p in sorted(self.personas, key=lambda p: p.segment))


class Personas(Stage[Profiles, Profiles]):
    """Profile the segments from per-segment sums over every user, and name them."""

    name = "personas"

    def fit(self, state: RunState, rows: FitRows) -> Profiles:
        segments = state.outputs[KMeans]
        scaler = state.outputs[Scale].scaler
        names = list(state.features.names)
        moments = state.rows.sum(segment_moments, state.features.X, segments.labels,
                                 k=segments.k)
        counts = moments[:, -1]
        positions = volume_positions(names)
        volume = (None if positions is None else
                  state.rows.sum(segment_volume, state.features.X, segments.labels,
                                 k=segments.k, **positions))
        profiles = profiles_from_moments(
            pd.DataFrame(moments[:, :-1] / counts[:, None], columns=names),
            pd.Series(counts.astype(np.int64)), pd.Series(scaler.mean, index=names),
            pd.Series(np.sqrt(scaler.variance), index=names),
            **state.features.catalog.as_keywords(), volume=volume)
        return Profiles(profiles=profiles, personas=name_segments(profiles),
                        activity=state.rows.ordering_heatmap(segments.labels, segments.k))

    def finish(self, state: RunState, fitted: Profiles, assigned: Column | None,
               rows: FitRows) -> Profiles:
        return fitted

    def metrics(self, output: Profiles) -> dict[str, Any]:
        return {"personas": [p.to_dict() for p in output.personas]}
