"""How sure each user's segment is: refits on a seeded sample calibrate it, a map gives everyone theirs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cluster.certainty import Certainty as CertaintyOutput
from ..cluster.certainty import certainty_block, certainty_summary, fit_certainty
from ..cluster.refits import Refits, subsample_refits
from ..numerics.certainty import CertaintyParams, certainty_columns, squared_distances
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .pca import Pca


@dataclass(frozen=True)
class Calibrated:
    """The certainty's parameters, the refits they were fitted on, and the fitted users'
    certainty (for the reliability table)."""

    params: CertaintyParams
    refits: Refits
    sample_certainty: np.ndarray


class Certainty(Stage[Calibrated, CertaintyOutput]):
    """Refit KMeans on subsamples of a seeded sample, calibrate the certainty on what the refits
    keep, and give every user its certainty and next segment."""

    name = "certainty"
    sample_field = "certainty_sample"
    # Users of their own, not the KMeans initialisation sample's.
    sample_seed = 5
    assign = staticmethod(certainty_block)
    assign_width = 3

    def fit(self, state: RunState, rows: FitRows) -> Calibrated:
        config, backend, xp = state.config, state.backend, state.backend.xp
        segments = state.outputs[KMeans]
        X = rows.take(state.outputs[Pca].X_pca)
        labels = backend.to_numpy(rows.take(segments.labels), np.int64)
        refits = subsample_refits(X, labels, backend, k=segments.k, n_init=config.n_init,
                                  seed=config.seed, n_refits=config.certainty_refits)
        centres = backend.asarray(segments.centroids)
        d2 = backend.to_numpy(squared_distances(X, centres, xp=xp), np.float64)
        params = fit_certainty(d2, labels, refits.kept, refits.seen)
        own, _, _ = certainty_columns(X, backend.asarray(labels), centres, params, xp=xp)
        return Calibrated(params=params, refits=refits,
                          sample_certainty=backend.to_numpy(own, np.float64))

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.outputs[Pca].X_pca, state.outputs[KMeans].labels)

    def assign_params(self, state: RunState, fitted: Calibrated) -> dict[str, Any]:
        return {"centres": state.outputs[KMeans].centroids, "params": fitted.params}

    def finish(self, state: RunState, fitted: Calibrated, assigned: Column | None,
               rows: FitRows) -> CertaintyOutput:
        columns = state.rows.host(assigned, np.float64)
        own, second, second_p = columns.T
        segments = state.outputs[KMeans]
        labels = segments.host_labels.astype(np.int64)
        return CertaintyOutput(
            membership=own, second_segment=second.astype(np.int32), second_membership=second_p,
            params=fitted.params, refits=fitted.refits, fit_positions=rows.positions,
            n_fit=rows.n, n_users=state.n_users,
            **certainty_summary(own, labels, fitted.refits, fitted.sample_certainty,
                                segments.k))
