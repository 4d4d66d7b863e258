"""The K sweep on a seeded sample, and the choice of K."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..cluster import KChoice, KSweep, choose_k, k_sweep
from ..config import DEFAULT_K
from ..rows import Column
from .base import FitRows, RunState, Stage
from .pca import Pca


@dataclass(frozen=True)
class SweepChoice:
    """The sweep's curves and the K chosen from them."""

    sweep: KSweep
    choice: KChoice

    @property
    def k(self) -> int:
        return self.choice.k


class Sweep(Stage[SweepChoice, SweepChoice]):
    """KMeans for every K of the sweep range on the sweep sample; then K (given, or chosen)."""

    name = "k_sweep"
    sample_field = "sweep_sample"

    def fit(self, state: RunState, rows: FitRows) -> SweepChoice:
        config = state.config
        sweep = k_sweep(rows.take(state.outputs[Pca].X_pca), state.backend,
                        k_range=config.k_sweep_range, seed=config.seed,
                        n_init=config.sweep_n_init,
                        score_sample=config.sample_size("sweep_score_sample", state.backend),
                        # Refits for the rule's stability test only when the rule will run.
                        stability_range=config.k_business_range if config.k == "auto" else None)
        sweep = dataclasses.replace(sweep, n_users=state.n_users)
        return SweepChoice(sweep=sweep, choice=choose_k(
            sweep, k=config.k, business_range=config.k_business_range,
            default=config.k == DEFAULT_K))

    def finish(self, state: RunState, fitted: SweepChoice, assigned: Column | None,
               rows: FitRows) -> SweepChoice:
        return fitted

    def metrics(self, output: SweepChoice) -> dict[str, Any]:
        return {"k_sweep": output.sweep.to_dict(), "k_choice": output.choice.to_dict()}
