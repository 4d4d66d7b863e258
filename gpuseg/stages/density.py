"""Density clustering beside KMeans (DBSCAN or HDBSCAN), fitted on a seeded sample."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cluster.density import (
    DbscanFit,
    DbscanModel,
    HdbscanFit,
    HdbscanModel,
    dbscan_block,
    fit_dbscan,
    fit_hdbscan,
    hdbscan_block,
)
from ..config import PipelineConfig
from ..numerics.arrays import numbered_by_size
from ..rows import Column
from .base import FitRows, RunState, Stage
from .pca import Pca


def density_block(backend: Any, X: Any, model: DbscanModel | HdbscanModel) -> Any:
    """A block of users joining the fitted clusters by the method's own rule (-1: outlier)."""
    if isinstance(model, DbscanModel):
        return dbscan_block(backend, X, model.points, model.point_labels, model.eps)
    return hdbscan_block(backend, X, model.fitted, model.core, model.fit_labels, model.scale,
                         model.min_samples)


class Density(Stage[DbscanModel | HdbscanModel, DbscanFit | HdbscanFit]):
    """DBSCAN (one radius, at the k-distance knee) or HDBSCAN, as ``density`` says.

    Fitted on a seeded sample on the CPU; every other user joins a fitted
    cluster by the method's rule for a point near it (DBSCAN: the nearest core
    point within eps; HDBSCAN: the nearest fitted user, when their mutual
    reachability is within the cluster's scale) or is an outlier.
    """

    name = "dbscan"
    assign = staticmethod(density_block)
    assign_dtype = np.int64

    def key(self, config: PipelineConfig) -> str:
        return config.density

    def sample_size(self, state: RunState) -> int | None:
        return state.config.sample_size(f"{state.config.density}_sample", state.backend)

    def fit(self, state: RunState, rows: FitRows) -> DbscanModel | HdbscanModel:
        config = state.config
        X_fit = rows.take(state.outputs[Pca].X_pca)
        if config.density == "hdbscan":
            return fit_hdbscan(X_fit, state.backend,
                               min_cluster_size=config.hdbscan_min_cluster_size,
                               min_samples=config.hdbscan_min_samples)
        return fit_dbscan(X_fit, state.backend, eps=config.dbscan_eps,
                          min_samples=config.dbscan_min_samples)

    def assigns(self, state: RunState, rows: FitRows) -> bool:
        return rows.sampled

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.outputs[Pca].X_pca,)

    def assign_params(self, state: RunState,
                      fitted: DbscanModel | HdbscanModel) -> dict[str, Any]:
        return {"model": fitted}

    def finish(self, state: RunState, fitted: DbscanModel | HdbscanModel,
               assigned: Column | None, rows: FitRows) -> DbscanFit | HdbscanFit:
        backend = state.backend
        fit_labels = backend.to_numpy(fitted.fit_labels, np.int64)
        assignment = None
        if rows.positions is None:
            labels = fit_labels
        else:
            labels = state.rows.host(assigned, np.int64)
            labels[rows.positions] = fit_labels
            outside = state.n_users - rows.n
            joined = (int(np.count_nonzero(labels >= 0))
                      - int(np.count_nonzero(fit_labels >= 0)))
            method = type(fitted).__name__.removesuffix("Model").upper()
            rule = ("took the cluster of its nearest core point within eps"
                    if isinstance(fitted, DbscanModel) else
                    "took the cluster of its nearest fitted user when their mutual reachability "
                    "distance is within the cluster's largest core distance")
            assignment = (f"{method} ran on a seeded sample of {rows.n:,} users; each of the "
                          f"other {outside:,} {rule} ({joined:,} did, the rest are outliers)")
        labels, n_clusters, outlier_share = numbered_by_size(labels, xp=np)
        if isinstance(fitted, DbscanModel):
            return DbscanFit(labels=labels, eps=fitted.eps, eps_source=fitted.eps_source,
                             n_clusters=n_clusters, outlier_share=outlier_share,
                             n_fit=fitted.n_fit, core_assignment=assignment,
                             core=backend.to_numpy(fitted.core, np.int64),
                             k_distance_curve=fitted.k_distance_curve)
        return HdbscanFit(labels=labels, n_clusters=n_clusters, outlier_share=outlier_share,
                          min_cluster_size=fitted.min_cluster_size,
                          min_samples=fitted.min_samples, n_fit=fitted.n_fit,
                          assignment=assignment)

    def metrics(self, output: DbscanFit | HdbscanFit) -> dict[str, Any]:
        return {output.method: output.to_dict()}
