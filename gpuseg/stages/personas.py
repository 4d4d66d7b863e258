"""Profiles, persona names and ordering times of the segments: sums over every user.

A persona name must come back: a segment that dissolves on the certainty stage's subsample
refits gets none, and neither does one whose matched refit segments (profiled on the refit's
users and named by the same rules) do not win the same persona. Each profile row carries the
segment's reproducibility (mean best-match Jaccard over the refits) and its verdict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..cluster.certainty import Certainty as CertaintyOutput
from ..cluster.refits import DISSOLVES_BELOW
from ..personas import Persona, name_segments, profiles_from_moments
from ..personas.claims import Claim
from ..personas.profile import segment_moments, segment_volume, volume_positions
from ..personas.signals import MATCH_THRESHOLD
from ..rows import Column
from .base import FitRows, RunState, Stage
from .certainty import Certainty
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
        population = (pd.Series(scaler.mean, index=names),
                      pd.Series(np.sqrt(scaler.variance), index=names))

        def profile(moments: np.ndarray, volume: np.ndarray | None = None) -> pd.DataFrame:
            counts = moments[:, -1]
            return profiles_from_moments(
                pd.DataFrame(moments[:, :-1] / np.maximum(counts, 1)[:, None], columns=names),
                pd.Series(counts.astype(np.int64)), *population,
                **state.features.catalog.as_keywords(), volume=volume)

        positions = volume_positions(names)
        volume = (None if positions is None else
                  state.rows.sum(segment_volume, state.features.X, segments.labels,
                                 k=segments.k, **positions))
        profiles = profile(moments, volume)
        certainty = state.outputs[Certainty]
        refit_names = [[p.name if p.matched else None for p in name_segments(profile(m))]
                       for m in refit_moments(state, certainty, segments.k)]
        personas = named_if_they_come_back(profiles, certainty, refit_names)
        profiles = profiles.assign(
            reproducibility=[s.reproducibility for s in certainty.segments],
            comes_back=[s.verdict for s in certainty.segments])
        return Profiles(profiles=profiles, personas=personas,
                        activity=state.rows.ordering_heatmap(segments.labels, segments.k))

    def finish(self, state: RunState, fitted: Profiles, assigned: Column | None,
               rows: FitRows) -> Profiles:
        return fitted

    def metrics(self, output: Profiles) -> dict[str, Any]:
        return {"personas": [p.to_dict() for p in output.personas]}


def refit_moments(state: RunState, certainty: CertaintyOutput, k: int) -> list[np.ndarray]:
    """Per certainty refit, the feature sums and user counts of each of its clusters (over the
    refit's users, the raw features as the segments' own profiles use)."""
    backend = state.backend
    X = state.rows.take(state.features.X, certainty.fit_positions)
    refits = certainty.refits
    return [segment_moments(backend, X[backend.asarray(rows)], backend.asarray(labels), k)
            for rows, labels in zip(refits.positions, refits.labels)]


def named_if_they_come_back(profiles: pd.DataFrame, certainty: CertaintyOutput,
                            refit_names: list[list[str | None]]) -> list[Persona]:
    """Name the segments, withholding a persona name from a segment that dissolves on the
    refits or whose matched refit clusters do not carry the same persona.

    ``refit_names`` holds, per refit, each cluster's persona name (None: a descriptive one).
    Withholding a name can free it for another segment, so naming repeats until no further
    segment loses its name (at most K times).
    """
    refits = len(refit_names)
    withheld = {s.segment: Claim(
        "rule_withheld", "", "persona withheld",
        f"the segment does not come back on {refits} subsample refits (best-match Jaccard "
        f"{s.reproducibility:.2f}, under {DISSOLVES_BELOW:g}); named from its own traits and "
        "material differences",
        {"reproducibility": s.reproducibility, "dissolves_below": DISSOLVES_BELOW,
         "threshold": MATCH_THRESHOLD})
        for s in certainty.segments if not s.comes_back}
    matches = certainty.refits.matches
    while True:
        personas = name_segments(profiles, withheld)
        lost: dict[int, Claim] = {}
        for persona in personas:
            j = persona.segment
            if not persona.matched:
                continue
            others = [names[matches[r, j]] if matches[r, j] >= 0 else None
                      for r, names in enumerate(refit_names)]
            differ = sum(name != persona.name for name in others)
            if differ:
                lost[j] = Claim(
                    "rule_withheld", persona.name, "persona withheld",
                    f"{persona.name} scores {persona.score:.2f}, but is not the persona of the "
                    f"matched segment in {differ} of {refits} subsample refits; named from its "
                    "own traits and material differences",
                    {"score": persona.score, "threshold": MATCH_THRESHOLD,
                     "refits_differing": float(differ), "refits": float(refits)})
        if not lost:
            return personas
        withheld.update(lost)
