"""The whole segmentation as one call: features -> preprocessing -> clustering -> validation -> personas.

Everything between loading and :class:`~gpuseg.result.SegmentationResult`
stays on the backend's device; the result is assembled on the host once, at
the end (:func:`_to_result`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, resources
from .activity import ordering_heatmap
from .backend import Array, Backend
from .cluster import (
    DbscanFit,
    HdbscanFit,
    HierarchicalFit,
    KChoice,
    KMeansFit,
    KSweep,
    SoftFit,
    choose_k,
    dbscan,
    fit_kmeans,
    hdbscan,
    hierarchical,
    k_sweep,
    soft_membership,
    total_sum_of_squares,
)
from .config import PipelineConfig, option
from .data.tables import InstacartData
from .embed import Embedding, embed_umap
from .errors import ConfigError
from .explain import GroupedImportance, SegmentRules, feature_groups, grouped_importance, segment_rules
from .features import compute_features
from .model import SegmentModel
from .model_catalog import ModelCatalog
from .personas import Persona, name_segments, profile_segments
from .preprocess import Preprocessed, project, standardise
from .quality import (
    Importance,
    SilhouetteReport,
    Stability,
    feature_importance,
    silhouette_report,
    stability,
    verdict,
)
from .registry import get_backend
from .result import SegmentationResult
from .timing import ProgressCallback, StageTimer

log = logging.getLogger(__name__)

#: Stages of a default run in the order they run (the density stage is named after
#: ``PipelineConfig.density``: ``hdbscan`` in its place when that method is chosen).
STAGES = ("features", "scale", "pca", "k_sweep", "kmeans", "soft", "silhouette", "stability",
          "hierarchical", "dbscan", "personas", "importance", "rules", "umap")


def segment(data: InstacartData | str | os.PathLike, config: PipelineConfig | None = None, *,
            backend: Backend | None = None, progress: ProgressCallback | None = None,
            embed: bool = True) -> SegmentationResult:
    """Segment the shoppers of an Instacart-layout data set.

    Parameters
    ----------
    data : InstacartData or path
        Loaded tables (moved to ``backend`` if they are elsewhere, e.g. from
        :meth:`InstacartData.from_frames <gpuseg.data.tables.InstacartData.from_frames>`),
        or a folder / ``"kaggle"`` to load.
    config : PipelineConfig, optional
        Defaults to ``PipelineConfig()``. With ``workers`` or ``scheduler`` set,
        ``data`` must be a partitioned folder and the run goes across Dask
        workers (:func:`gpuseg.distributed.run.segment_distributed`).
    backend : Backend, optional
        Built from ``config.backend`` when omitted.
    progress : callable, optional
        Called with each stage's name as it starts.
    embed : bool
        Run the UMAP stage (the report needs it; ``gpuseg assign`` does not).

    Returns
    -------
    SegmentationResult
        Host-only result: segments, profiles, personas, metrics, timings, model.
    """
    config = config or PipelineConfig()
    if config.distributed:
        from .distributed.run import segment_distributed

        if isinstance(data, InstacartData):
            raise ConfigError(f"a run with {option('workers')} or {option('scheduler')} reads a "
                              "partitioned folder, not tables already loaded in this process")
        return segment_distributed(data, config, backend=backend, progress=progress,
                                   embed=embed)
    backend = backend or get_backend(config.backend)
    timer = StageTimer(backend, progress)
    if not isinstance(data, InstacartData):
        from .data import load_instacart

        with timer.stage("load"):
            data = load_instacart(data, backend=backend)
    data = data.on(backend)

    with timer.stage("features"):
        resources.check_features(data, backend)
        user_features = compute_features(data, backend, min_orders=config.min_orders)
    n_rows, n_columns = user_features.table.shape
    resources.check_preprocess(n_rows, n_columns, backend)
    with timer.stage("scale"):
        scaled = standardise(user_features.table, backend)
    with timer.stage("pca"):
        prep = project(scaled, backend, pca_variance=config.pca_variance,
                       pca_components=config.pca_components)
    X = prep.X_pca
    n_users = int(X.shape[0])
    resources.check_run(config, backend, n_users=n_users, n_components=prep.n_components,
                        n_excluded=user_features.n_users_excluded, embed=embed)
    lo, hi = config.k_sweep_range
    with timer.stage("k_sweep"):
        sweep = k_sweep(X, backend, k_range=(lo, hi), seed=config.seed, n_init=config.sweep_n_init,
                        sample_size=config.sample_size("sweep_sample", backend),
                        score_sample=config.sample_size("sweep_score_sample", backend),
                        # Refits for the rule's stability test only when the rule will run.
                        stability_range=config.k_business_range if config.k == "auto" else None)
        k_choice = choose_k(sweep, k=config.k, business_range=config.k_business_range)
    k = k_choice.k
    with timer.stage("kmeans"):
        km = fit_kmeans(X, backend, k=k, n_init=config.n_init, seed=config.seed)
        resources.check_segments(km.sizes, n_users)
        total_ss = total_sum_of_squares(X, backend)
    with timer.stage("soft"):
        soft = soft_membership(X, km.labels, km.centroids, backend,
                               covariance_type=config.gmm_covariance, space=config.gmm_space,
                               sample=config.sample_size("gmm_sample", backend), seed=config.seed)
    with timer.stage("silhouette"):
        sil = silhouette_report(X, km.labels, backend, seed=config.seed,
                                sample=config.sample_size("silhouette_sample", backend))
    with timer.stage("stability"):
        stab = stability(X, km.labels, backend, k=k, n_seeds=config.stability_seeds,
                         n_bootstrap=config.bootstrap_rounds, n_init=config.n_init, seed=config.seed,
                         sample=config.sample_size("stability_sample", backend))
    with timer.stage("hierarchical"):
        hier = hierarchical(X, km.labels, backend, k=k,
                            n_micro=config.hierarchical_micro_clusters, seed=config.seed)
    density: DbscanFit | HdbscanFit
    with timer.stage(config.density):
        if config.density == "hdbscan":
            density = hdbscan(X, backend, min_cluster_size=config.hdbscan_min_cluster_size,
                              min_samples=config.hdbscan_min_samples,
                              sample=config.sample_size("hdbscan_sample", backend),
                              seed=config.seed)
        else:
            density = dbscan(X, backend, eps=config.dbscan_eps,
                             min_samples=config.dbscan_min_samples,
                             sample=config.sample_size("dbscan_sample", backend), seed=config.seed)
    with timer.stage("personas"):
        catalog = catalog_from_tables(data.aisles, data.departments, data.products, backend)
        profiles = profile_segments(user_features.table, km.labels, backend, **catalog)
        personas = name_segments(profiles)
        activity = ordering_heatmap(data.orders, data.order_products, prep.user_ids, km.labels,
                                    k, backend)
    model = replace(_segment_model(backend, config, prep, km, personas, soft),
                    catalog=ModelCatalog.from_tables(data.products, data.aisles, data.departments))
    with timer.stage("importance"):
        importance = feature_importance(prep.X_scaled, km.labels, backend,
                                        feature_names=list(prep.feature_names))
        groups = feature_groups(prep.feature_names, aisle_department=catalog["aisle_department"],
                                departments=catalog["departments"])
        grouped = grouped_importance(user_features.table, km.labels, backend, model=model,
                                     groups=groups, seed=config.seed)
    with timer.stage("rules"):
        rules = segment_rules(user_features.table, km.labels, backend,
                              personas=model.persona_names, seed=config.seed,
                              sample=config.rules_sample, **catalog)
    embedding = None
    if embed:
        with timer.stage("umap"):
            embedding = embed_umap(X, backend, n_neighbors=config.umap_neighbors,
                                   min_dist=config.umap_min_dist, seed=config.seed,
                                   sample=config.umap_sample,
                                   fit_sample=config.sample_size("umap_fit_sample", backend))

    outputs = _StageOutputs(prep=prep, sweep=sweep, k_choice=k_choice, kmeans=km,
                            total_ss=total_ss, soft=soft, silhouette=sil, stability=stab,
                            hierarchical=hier, density=density, importance=importance,
                            grouped=grouped, rules=rules, embedding=embedding,
                            profiles=profiles, personas=personas, activity=activity, model=model)
    metrics = _metrics(backend, config, outputs, catalog=catalog,
                       source={"source": data.source, "fingerprint": data.fingerprint,
                               "cleaning": dict(data.cleaning)},
                       users={"with_history": user_features.n_users_with_history,
                              "excluded_min_orders": user_features.n_users_excluded,
                              "segmented": n_users})
    return _to_result(backend, config, outputs, metrics, timer.seconds)


def catalog_from_tables(aisles: Any, departments: Any, products: Any,
                        backend: Backend) -> dict[str, dict[int, Any]]:
    """Aisle and department names and each aisle's department, as small host dicts, from the
    three catalog tables (backend or pandas frames)."""
    aisles = backend.to_host(aisles)
    departments = backend.to_host(departments)
    products = backend.to_host(products[["aisle_id", "department_id"]])
    # An aisle belongs to one department in Instacart's taxonomy; take the most common in case
    # an export disagrees with itself.
    aisle_department = (products.groupby("aisle_id")["department_id"]
                        .agg(lambda s: s.value_counts().index[0]))
    return {
        "aisles": dict(zip(aisles["aisle_id"].astype(int), aisles["aisle"].astype(str))),
        "departments": dict(zip(departments["department_id"].astype(int),
                                departments["department"].astype(str))),
        "aisle_department": {int(a): int(d) for a, d in aisle_department.items()},
    }


def _segment_model(backend: Backend, config: PipelineConfig, prep: Preprocessed, km: KMeansFit,
                   personas: list[Persona], soft: SoftFit) -> SegmentModel:
    """The saved model (host arrays): what ``gpuseg assign`` and the grouped importance use."""
    scaler, pca = prep.scaler_params(backend), prep.pca_params(backend)
    return SegmentModel(
        feature_names=prep.feature_names,
        scaler_mean=scaler["mean"], scaler_scale=scaler["scale"],
        pca_mean=pca["mean"], pca_components=pca["components"],
        centroids=backend.to_numpy(km.centroids, np.float64),
        persona_names=tuple(p.name for p in sorted(personas, key=lambda p: p.segment)),
        min_orders=config.min_orders, mixture=soft.mixture)


@dataclass(frozen=True)
class _StageOutputs:
    """What the stages produced, still on the backend's device: the input of :func:`_metrics`
    and :func:`_to_result`."""

    prep: Preprocessed
    sweep: KSweep
    k_choice: KChoice
    kmeans: KMeansFit
    total_ss: float
    soft: SoftFit
    silhouette: SilhouetteReport
    stability: Stability
    hierarchical: HierarchicalFit
    density: DbscanFit | HdbscanFit
    importance: Importance
    grouped: GroupedImportance
    rules: list[SegmentRules]
    embedding: Embedding | None
    profiles: pd.DataFrame
    personas: list[Persona]
    activity: Array
    model: SegmentModel


def _metrics(backend: Backend, config: PipelineConfig, out: _StageOutputs, *,
             source: dict[str, Any], catalog: dict[str, dict[int, Any]],
             users: dict[str, int]) -> dict[str, Any]:
    """metrics.json of a run, one process or distributed (which adds its own facts)."""
    km, total_ss, stab = out.kmeans, out.total_ss, out.stability
    judgement = verdict(out.silhouette.overall, stab.seed_ari_mean, stab.bootstrap_ari_mean)
    return {
        "gpuseg_version": __version__,
        "backend": backend.name,
        "device": backend.device,
        "versions": backend.versions(),
        "config": config.to_dict(),
        "input": source,
        "catalog": {"aisles": {str(k): v for k, v in catalog["aisles"].items()},
                    "departments": {str(k): v for k, v in catalog["departments"].items()}},
        "users": users,
        "preprocess": out.prep.to_dict(),
        "k_sweep": out.sweep.to_dict(),
        "k_choice": out.k_choice.to_dict(),
        "kmeans": {**km.to_dict(), "total_sum_of_squares": total_ss,
                   "wcss_reduction": 1.0 - km.inertia / total_ss if total_ss > 0 else 0.0},
        "soft": out.soft.to_dict(),
        "silhouette": out.silhouette.to_dict(),
        "stability": stab.to_dict(),
        "hierarchical": out.hierarchical.to_dict(),
        out.density.method: out.density.to_dict(),
        "importance": {**out.importance.to_dict(), **out.grouped.to_dict()},
        "rules": [segment.to_dict() for segment in out.rules],
        "verdict": judgement.to_dict(),
        "umap": None if out.embedding is None else out.embedding.to_dict(),
        "personas": [p.to_dict() for p in out.personas],
    }


def _to_result(backend: Backend, config: PipelineConfig, out: _StageOutputs,
               metrics: dict[str, Any], timings: dict[str, float]) -> SegmentationResult:
    """The single device-to-host boundary of a run."""
    labels = backend.to_numpy(out.kmeans.labels, np.int32)
    names = out.model.persona_names
    segments = pd.DataFrame({
        "user_id": backend.to_numpy(out.prep.user_ids, np.int64),
        "segment": labels,
        "persona": pd.Categorical.from_codes(labels, categories=list(names)),
        "membership": backend.to_numpy(out.soft.membership, np.float64),
        "second_segment": backend.to_numpy(out.soft.second_segment, np.int32),
        "second_membership": backend.to_numpy(out.soft.second_membership, np.float64),
        "silhouette": backend.to_numpy(out.silhouette.per_user, np.float64),
        "hierarchical": backend.to_numpy(out.hierarchical.labels, np.int32),
        out.density.method: backend.to_numpy(out.density.labels, np.int32),
    })
    if out.embedding is not None:
        coords = backend.to_numpy(out.embedding.coords, np.float64)
        segments["umap_x"], segments["umap_y"] = coords[:, 0], coords[:, 1]
    persona_of_segment = dict(enumerate(names))
    profiles = out.profiles.assign(persona=out.profiles["segment"].map(persona_of_segment))
    return SegmentationResult(
        segments=segments, profiles=profiles, metrics=metrics, timings=dict(timings),
        model=out.model, linkage=np.asarray(out.hierarchical.linkage),
        activity=backend.to_numpy(out.activity, np.int64),
        backend=backend.name, device=backend.device, config=config, personas=tuple(out.personas))
