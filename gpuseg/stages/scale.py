"""Standardise and cap every feature: column moments summed over every user, then a map."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import resources
from ..preprocess import Scaler, fit_scaler, standardise_block
from ..rows import Column
from .base import FitRows, RunState, Stage


@dataclass(frozen=True)
class Scaling:
    """The scaler and every user's standardised, capped features (a column, computed when
    read): what the PCA and eta squared read."""

    scaler: Scaler
    X_scaled: Column
    zero_variance_features: tuple[str, ...]


class Scale(Stage[Scaler, Scaling]):
    """Standardise the features (constant ones to 0) and cap them at ``feature_cap``."""

    name = "scale"
    assign = staticmethod(standardise_block)

    def fit(self, state: RunState, rows: FitRows) -> Scaler:
        if not state.config.distributed:
            # Across Dask workers the users x features matrices stay in the workers' blocks
            # (under Dask's memory limit); the client only sums features x features moments.
            resources.check_preprocess(state.n_users, len(state.features.names), state.backend)
        return fit_scaler(state.rows, state.features.X, cap=state.config.feature_cap)

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.features.X,)

    def assign_params(self, state: RunState, fitted: Scaler) -> dict[str, Any]:
        return fitted.params()

    def width(self, state: RunState, fitted: Scaler) -> int | None:
        return len(state.features.names)

    def on_host(self, output: Scaling) -> Scaling:
        return dataclasses.replace(output, X_scaled=None)

    def finish(self, state: RunState, fitted: Scaler, assigned: Column | None,
               rows: FitRows) -> Scaling:
        names = state.features.names
        return Scaling(scaler=fitted, X_scaled=assigned,
                       zero_variance_features=tuple(n for n, flat in zip(names, fitted.constant)
                                                    if flat))

    def metrics(self, output: Scaling) -> dict[str, Any]:
        # What scaling found is reported with the projection, under "preprocess".
        return {}
