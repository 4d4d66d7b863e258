"""PCA of the standardised features: the Gram matrix summed over every user, then a map."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..preprocess import Pcs, fit_pca, project_block
from ..rows import Column
from .base import FitRows, RunState, Stage
from .scale import Scale


@dataclass(frozen=True)
class Projection:
    """The principal components and every user's scores on the kept ones (held where the rows
    live: every later stage reads them)."""

    pcs: Pcs
    X_pca: Column
    n_users: int
    n_features: int
    zero_variance_features: tuple[str, ...]
    #: The cap on the standardised values the components were fitted on (None: none), the
    #: features any user reached it on, and the share of all values it clipped.
    feature_cap: float | None = None
    capped_features: int = 0
    capped_share: float = 0.0

    @property
    def n_components(self) -> int:
        return self.pcs.n_components

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_users": self.n_users,
            "n_features": self.n_features,
            "n_components": self.pcs.n_components,
            "retained_variance": self.pcs.retained_variance,
            "explained_variance_ratio": [float(v) for v in self.pcs.explained_variance_ratio],
            "zero_variance_features": list(self.zero_variance_features),
            "feature_cap": self.feature_cap,
            "capped_features": self.capped_features,
            "capped_share": self.capped_share,
        }


class Pca(Stage[Pcs, Projection]):
    """Project the standardised features on the fewest components reaching the variance target."""

    name = "pca"
    assign = staticmethod(project_block)

    def fit(self, state: RunState, rows: FitRows) -> Pcs:
        config = state.config
        return fit_pca(state.rows, state.outputs[Scale].X_scaled, len(state.features.names),
                       pca_variance=config.pca_variance, pca_components=config.pca_components)

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.outputs[Scale].X_scaled,)

    def assign_params(self, state: RunState, fitted: Pcs) -> dict[str, Any]:
        return {"mean": fitted.mean, "components": fitted.kept}

    def width(self, state: RunState, fitted: Pcs) -> int | None:
        return fitted.n_components

    def on_host(self, output: Projection) -> Projection:
        return dataclasses.replace(output, X_pca=None)

    def finish(self, state: RunState, fitted: Pcs, assigned: Column | None,
               rows: FitRows) -> Projection:
        scaling = state.outputs[Scale]
        capped = scaling.scaler.capped
        n_features = len(state.features.names)
        return Projection(pcs=fitted, X_pca=state.rows.persist(assigned), n_users=state.n_users,
                          n_features=n_features,
                          zero_variance_features=scaling.zero_variance_features,
                          feature_cap=scaling.scaler.cap,
                          capped_features=0 if capped is None else int((capped > 0).sum()),
                          capped_share=0.0 if capped is None else
                          float(capped.sum()) / (state.n_users * n_features))

    def metrics(self, output: Projection) -> dict[str, Any]:
        return {"preprocess": output.to_dict()}
