"""One segmentation across Dask workers: the stages of :func:`gpuseg.pipeline.segment`, distributed.

The data is a partitioned folder (:mod:`gpuseg.data.partitions.source`). Features are
:func:`gpuseg.features.compute_features` mapped over the partitions; scaling and
PCA come from column moments and the covariance summed over the partitions;
KMeans refines a seeded sample's fit with distributed Lloyd iterations
(dask-ml, or cuML's multi-GPU KMeans) and assigns every user in a map. The K
sweep, silhouette, stability, hierarchical clustering, DBSCAN, feature
importance and the UMAP layout run the single-process code on seeded samples
gathered to the client (the same samples a one-process run of the same seed
draws when the partitions hold the users in ascending order); every user is
then assigned (nearest micro-cluster, nearest DBSCAN core point) or placed (the
UMAP model's transform) in a map over the partitions. Profiles and the
hour-by-weekday activity are sums over the partitions; no order row leaves its
worker. The result is the same :class:`~gpuseg.result.SegmentationResult`,
plus the Dask performance report and the cluster's facts in its metrics.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import resources
from ..backend import Backend
from ..cluster import (
    DbscanFit,
    HdbscanFit,
    SoftFit,
    choose_k,
    dbscan,
    fit_kmeans,
    hdbscan,
    hierarchical,
    k_sweep,
    soft_membership,
)
from ..cluster.density import cluster_scale, core_distances
from ..cluster.kmeans import KMeansFit
from ..cluster.soft import membership_summary
from ..cluster.ward import MICRO_FIT_USERS_PER_CLUSTER, HierarchicalFit
from ..config import PipelineConfig
from ..data.cache import file_stamps, fingerprint
from ..data.checks import CLEANING_KEYS, DataCleaningWarning
from ..data.partitions.source import PartitionedSource, find_partitioned, read_catalog
from ..data.tables import InstacartData
from ..embed import TRUSTWORTHINESS_NEIGHBORS, TRUSTWORTHINESS_SAMPLE, Embedding, embed_umap
from ..errors import GpusegError
from ..explain import feature_groups, grouped_importance, segment_rules
from ..features import feature_columns
from ..model_catalog import ModelCatalog
from ..numerics.arrays import numbered_by_size, size_rank
from ..numerics.sampling import seeded_sample
from ..personas import name_segments, profiles_from_moments
from ..pipeline import _metrics, _segment_model, _StageOutputs, _to_result, catalog_from_tables
from ..preprocess import Preprocessed
from ..quality import feature_importance, silhouette_report, stability
from ..registry import dask_engine, get_backend
from ..result import SegmentationResult
from ..timing import ProgressCallback, StageTimer
from . import stages
from .client import ClusterInfo, dask_client, peak_rss_bytes, worker_failure

#: The Dask performance report's file name in the run directory.
PERFORMANCE_REPORT = "dask-performance-report.html"
#: Users (seeded sample) whose features feature importance and the segment rules come from.
IMPORTANCE_SAMPLE = 100_000


def segment_distributed(data: str | os.PathLike[str], config: PipelineConfig, *,
                        backend: Backend | None = None, progress: ProgressCallback | None = None,
                        embed: bool = True) -> SegmentationResult:
    """Segment the shoppers of a partitioned folder across Dask workers.

    Parameters
    ----------
    data : path
        A folder in the partitioned layout.
    config : PipelineConfig
        With ``workers`` (start a local cluster) or ``scheduler`` (join one).
    backend : Backend, optional
        The client's backend (built from ``config.backend`` when omitted); the
        workers build the backend of the same name.
    progress : callable, optional
        Called with each stage's name as it starts.
    embed : bool
        Run the UMAP stage.

    Returns
    -------
    SegmentationResult
        As :func:`gpuseg.pipeline.segment`, with ``metrics["distributed"]`` and
        the performance report in ``files``.

    Raises
    ------
    GpusegError
        The folder is not partitioned, the scheduler does not answer, or a stage
        cannot run (bad data, too few users, a worker out of memory).
    """
    source = None if isinstance(data, InstacartData) else find_partitioned(
        Path(data).expanduser().resolve())
    if source is None:
        raise GpusegError(
            f"{data}: a run across Dask workers (--workers, --scheduler) reads the partitioned "
            "layout (orders/part-*.parquet, ...); write it with gpuseg partition --data "
            f"{data} --out DIR --partitions N and run on DIR")
    backend = get_backend(backend or config.backend)
    engine = dask_engine(backend)
    with tempfile.TemporaryDirectory(prefix="gpuseg-dask-") as scratch:
        report = Path(scratch) / PERFORMANCE_REPORT
        with dask_client(config, engine) as (client, info):
            from distributed import performance_report

            with performance_report(filename=str(report)):
                run = _Run(stages.Workers(client, backend, engine), info, source, config,
                           StageTimer(backend, progress))
                result = run.segment(embed)
        html = report.read_text(encoding="utf-8")
    return dataclasses.replace(result, files={PERFORMANCE_REPORT: html})


class _Run:
    """The state of one distributed run, stage by stage."""

    def __init__(self, workers: stages.Workers, info: ClusterInfo, source: PartitionedSource,
                 config: PipelineConfig, timer: StageTimer) -> None:
        self.workers = workers
        self.backend = workers.backend
        self.info = info
        self.source = source
        self.config = config
        self.timer = timer

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; a worker that kept dying in it becomes an error naming --partitions."""
        from distributed import KilledWorker

        with self.timer.stage(name):
            try:
                yield
            except KilledWorker as exc:
                raise worker_failure(name, self.source.n_partitions, self.info) from exc

    def sample(self, n: int, name: str, seed: int) -> Any | None:
        """The seeded positions the stage sized by field ``name`` runs on (``None``: every user)."""
        return seeded_sample(n, self.config.sample_size(name, self.backend), seed=seed,
                             backend=self.backend)

    def segment(self, embed: bool) -> SegmentationResult:
        config, backend, workers = self.config, self.backend, self.workers
        seed = config.seed
        with self.stage("load"):
            catalog_frames = read_catalog(self.source)
            catalog = workers.client.submit(read_catalog, self.source, pure=True)
            names = feature_columns(int(a) for a in catalog_frames["aisles"]["aisle_id"])
        with self.stage("features"):
            features = stages.compute_features(workers, self.source, catalog,
                                               min_orders=config.min_orders, feature_names=names)
            summaries = features.summaries
            for message in (m for s in summaries for m in s.messages):
                warnings.warn(message, DataCleaningWarning, stacklevel=3)
        n_users = int(features.X.shape[0])
        with self.stage("scale"):
            scaling = stages.standardise(workers, features.X)
        with self.stage("pca"):
            projection = stages.project(workers, scaling.X_scaled,
                                        pca_variance=config.pca_variance,
                                        pca_components=config.pca_components)
        X = projection.X_pca
        n_excluded = sum(s.n_excluded for s in summaries)
        self._check_client(n_users, projection.n_components, n_excluded, embed)
        with self.stage("k_sweep"):
            X_sweep = workers.rows(X, self.sample(n_users, "sweep_sample", seed))
            sweep = k_sweep(X_sweep, backend, k_range=config.k_sweep_range, seed=seed,
                            n_init=config.sweep_n_init, sample_size=None,
                            score_sample=config.sample_size("sweep_score_sample", backend),
                            stability_range=(config.k_business_range if config.k == "auto"
                                             else None))
            sweep = dataclasses.replace(sweep, n_users=n_users)
            k_choice = choose_k(sweep, k=config.k, business_range=config.k_business_range)
        k = k_choice.k
        with self.stage("kmeans"):
            start = fit_kmeans(X_sweep, backend, k=k, n_init=config.n_init, seed=seed)
            assignment = stages.kmeans(
                workers, X, backend.to_numpy(start.centroids, np.float64),
                seed=seed,
                variance=float(projection.explained_variance[:projection.n_components].mean()))
            resources.check_segments(assignment.sizes, n_users)
            # The kept components' variances are the PCA scores' own (n - 1 normalised).
            total_ss = float(projection.explained_variance[:projection.n_components].sum()
                             * (n_users - 1))
        labels = assignment.host_labels
        with self.stage("soft"):
            soft = self._soft(X, labels, assignment.centroids, n_users)
        with self.stage("silhouette"):
            rows = self.sample(n_users, "silhouette_sample", seed)
            sil = silhouette_report(workers.rows(X, rows), self._at(labels, rows), backend,
                                    sample=None, seed=seed)
            sil = dataclasses.replace(sil, per_user=self._spread(sil.per_user, rows, n_users),
                                      sample_size=None if rows is None else sil.n_scored)
        with self.stage("stability"):
            rows = self.sample(n_users, "stability_sample", seed)
            stab = stability(workers.rows(X, rows), self._at(labels, rows), backend, k=k,
                             n_seeds=config.stability_seeds, n_bootstrap=config.bootstrap_rounds,
                             n_init=config.n_init, seed=seed, sample=None)
        with self.stage("hierarchical"):
            hier = self._hierarchical(X, labels, k)
        density: DbscanFit | HdbscanFit
        with self.stage(config.density):
            density = (self._hdbscan(X, n_users) if config.density == "hdbscan"
                       else self._dbscan(X, n_users))
        with self.stage("personas"):
            moments = stages.segment_moments(workers, features, assignment.labels, k)
            counts = moments[:, -1]
            means = pd.DataFrame(moments[:, :-1] / counts[:, None], columns=list(names))
            catalog_names = catalog_from_tables(catalog_frames["aisles"],
                                                catalog_frames["departments"],
                                                catalog_frames["products"], backend)
            profiles = profiles_from_moments(
                means, pd.Series(counts.astype(np.int64)),
                pd.Series(scaling.mean, index=list(names)),
                pd.Series(np.sqrt(scaling.variance), index=list(names)), **catalog_names)
            personas = name_segments(profiles)
            activity = stages.activity(workers, features, assignment.labels, k)
        prep = Preprocessed(
            user_ids=features.user_ids, feature_names=features.feature_names,
            X_scaled=scaling.X_scaled, X_pca=X, scaler_mean=scaling.mean,
            scaler_scale=scaling.scale,
            pca=_FittedPca(projection.components, projection.mean),
            n_components=projection.n_components,
            retained_variance=projection.retained_variance,
            explained_variance_ratio=projection.explained_variance_ratio,
            zero_variance_features=tuple(name for name, flat in zip(names, scaling.constant)
                                         if flat))
        km = KMeansFit(labels=labels, centroids=assignment.centroids,
                       inertia=assignment.inertia, sizes=assignment.sizes)
        model = dataclasses.replace(_segment_model(backend, config, prep, km, personas, soft),
                                    catalog=ModelCatalog.from_tables(
                                        catalog_frames["products"], catalog_frames["aisles"],
                                        catalog_frames["departments"]))
        # Importance and the segment rules read users' original features: both run on one
        # seeded sample gathered to the client (the rules then take their own sample of it).
        rows = seeded_sample(n_users, IMPORTANCE_SAMPLE, seed=seed, backend=backend)
        n_explained = n_users if rows is None else int(rows.shape[0])
        table = backend.df.DataFrame(workers.rows(features.X, rows), columns=list(names))
        sample_labels = self._at(labels, rows)
        with self.stage("importance"):
            importance = feature_importance(workers.rows(scaling.X_scaled, rows), sample_labels,
                                            backend, feature_names=list(names))
            groups = feature_groups(names, aisle_department=catalog_names["aisle_department"],
                                    departments=catalog_names["departments"])
            grouped = grouped_importance(table, sample_labels, backend, model=model,
                                         groups=groups, seed=seed)
        with self.stage("rules"):
            rules = segment_rules(table, sample_labels, backend, personas=model.persona_names,
                                  seed=seed, sample=config.rules_sample, **catalog_names)
        embedding = None
        if embed:
            with self.stage("umap"):
                embedding = self._umap(X, n_users)

        outputs = _StageOutputs(prep=prep, sweep=sweep, k_choice=k_choice, kmeans=km,
                                total_ss=total_ss, soft=soft, silhouette=sil, stability=stab,
                                hierarchical=hier, density=density, importance=importance,
                                grouped=grouped, rules=rules, embedding=embedding,
                                profiles=profiles, personas=personas, activity=activity,
                                model=model)
        metrics = _metrics(
            backend, config, outputs, catalog=catalog_names,
            source={"source": str(self.source.folder),
                    "fingerprint": fingerprint(file_stamps(self.source.files())),
                    "cleaning": {key: sum(int(s.cleaning[key]) for s in summaries)
                                 for key in CLEANING_KEYS}},
            users={"with_history": sum(s.n_with_history for s in summaries),
                   "excluded_min_orders": n_excluded, "segmented": n_users})
        metrics["importance"]["sample_size"] = n_explained
        metrics["distributed"] = self._facts()
        return _to_result(backend, config, outputs, metrics, self.timer.seconds)

    def _check_client(self, n_users: int, n_components: int, n_excluded: int,
                      embed: bool) -> None:
        """Enough users for every stage, and memory for the largest sample the client gathers.

        The one-process check (:func:`gpuseg.resources.check_run`), for the users
        that reach the client: every sampled stage runs there on at most this many;
        the rest stays on the workers.
        """
        config = self.config
        sizes = [IMPORTANCE_SAMPLE,
                 MICRO_FIT_USERS_PER_CLUSTER * config.hierarchical_micro_clusters]
        for name in ("sweep_sample", "silhouette_sample", "stability_sample", "dbscan_sample",
                     "hdbscan_sample", "gmm_sample", "umap_fit_sample"):
            size = config.sample_size(name, self.backend)
            sizes.append(n_users if size is None else size)
        if embed and config.umap_sample is not None:
            sizes.append(config.umap_sample)
        resources.check_run(config, self.backend, n_users=min(n_users, max(sizes)),
                            n_components=n_components, n_excluded=n_excluded, embed=embed)

    # -- stages on samples, then every user --------------------------------------------------
    def _hierarchical(self, X: Any, labels: np.ndarray, k: int) -> HierarchicalFit:
        """Ward over micro-clusters of a seeded sample; each user joins its nearest one."""
        config, backend, xp = self.config, self.backend, self.backend.xp
        n_users = int(X.shape[0])
        n_micro = min(config.hierarchical_micro_clusters, n_users)
        rows = seeded_sample(n_users, MICRO_FIT_USERS_PER_CLUSTER * n_micro, seed=config.seed,
                             backend=backend)
        X_fit = self.workers.rows(X, rows)
        fit = hierarchical(X_fit, self._at(labels, rows), backend, k=k,
                           n_micro=config.hierarchical_micro_clusters, seed=config.seed)
        leaf = backend.asarray(fit.micro_labels).astype(xp.int64)
        n_leaves = len(fit.micro_sizes)
        segment_of_leaf = xp.zeros(n_leaves, dtype=xp.int64)
        segment_of_leaf[leaf] = backend.asarray(fit.labels).astype(xp.int64)
        leaf_all = stages.nearest_labels(self.workers, X, fit.micro_centres, np.arange(n_leaves),
                                         float("inf"))
        segment = backend.to_numpy(segment_of_leaf)[leaf_all]
        n_groups = int(segment.max()) + 1
        _, rank = size_rank(np.bincount(segment, minlength=n_groups), xp=np)
        segment = rank[segment].astype(np.int32)
        sizes = np.bincount(segment, minlength=n_groups)
        ari = backend.adjusted_rand_score(backend.asarray(labels), backend.asarray(segment))
        step = (f"{fit.host_step} The micro-clusters were fitted on a seeded sample of "
                f"{int(X_fit.shape[0]):,} users gathered from the Dask workers; every user then "
                "joined the nearest micro-cluster centre in a map over the partitions.")
        return dataclasses.replace(fit, labels=segment, micro_labels=leaf_all,
                                   ari_vs_kmeans=ari, host_step=step,
                                   sizes=tuple(int(s) for s in sizes))

    def _soft(self, X: Any, labels: np.ndarray, centroids: Any, n_users: int) -> SoftFit:
        """The mixture fitted on a seeded sample; every user's memberships from one E-step map."""
        config, backend = self.config, self.backend
        rows = self.sample(n_users, "gmm_sample", config.seed)
        fit = soft_membership(self.workers.rows(X, rows), self._at(labels, rows),
                              backend.asarray(centroids), backend,
                              covariance_type=config.gmm_covariance, space=config.gmm_space,
                              sample=None, seed=config.seed)
        if rows is None:
            return fit
        columns = stages.memberships(self.workers, X, labels, fit.mixture)
        own, second, second_p, log_likelihood = columns.T
        # The one-process stage's summary, over every user: the most probable component is
        # another segment's exactly when the next segment's posterior beats the user's own.
        summary = membership_summary(own, labels, second_p > own, float(log_likelihood.sum()),
                                     k=int(fit.mixture.weights.shape[0]),
                                     d=int(fit.mixture.basis.shape[0]),
                                     covariance_type=fit.mixture.covariance_type, xp=np)
        return dataclasses.replace(fit, membership=own, second_segment=second.astype(np.int32),
                                   second_membership=second_p, **summary)

    def _hdbscan(self, X: Any, n_users: int) -> HdbscanFit:
        """HDBSCAN on a seeded sample; every other user joins by its sample-then-assign rule."""
        config, backend, xp = self.config, self.backend, self.backend.xp
        rows = self.sample(n_users, "hdbscan_sample", config.seed)
        X_fit = self.workers.rows(X, rows)
        fit = hdbscan(X_fit, backend, min_cluster_size=config.hdbscan_min_cluster_size,
                      min_samples=config.hdbscan_min_samples, sample=None, seed=config.seed)
        if rows is None:
            return fit
        fit_labels = backend.asarray(fit.labels).astype(xp.int64)
        _, core = core_distances(X_fit, config.hdbscan_min_samples, backend)
        labels = stages.hdbscan_labels(self.workers, X, X_fit, core, fit_labels,
                                       cluster_scale(fit_labels, core, xp=xp),
                                       config.hdbscan_min_samples)
        labels, n_clusters, outlier_share, joined = self._joined(labels, rows, fit_labels)
        n_fit = int(X_fit.shape[0])
        assignment = (f"HDBSCAN ran on a seeded sample of {n_fit:,} users gathered from the Dask "
                      f"workers; each of the other {n_users - n_fit:,} took the cluster of its "
                      "nearest fitted user when their mutual reachability distance is within "
                      f"the cluster's largest core distance, in a map over the partitions "
                      f"({joined:,} did, the rest are outliers)")
        return dataclasses.replace(fit, labels=labels, n_clusters=n_clusters,
                                   outlier_share=outlier_share,
                                   n_fit=n_fit, assignment=assignment)

    def _dbscan(self, X: Any, n_users: int) -> DbscanFit:
        """DBSCAN on a seeded sample; every other user takes its nearest core point's cluster."""
        config, backend, xp = self.config, self.backend, self.backend.xp
        rows = self.sample(n_users, "dbscan_sample", config.seed)
        X_fit = self.workers.rows(X, rows)
        fit = dbscan(X_fit, backend, eps=config.dbscan_eps,
                     min_samples=config.dbscan_min_samples, sample=None, seed=config.seed)
        if rows is None:
            return fit
        fit_labels = backend.asarray(fit.labels).astype(xp.int64)
        labels = stages.nearest_labels(self.workers, X, X_fit[fit.core], fit_labels[fit.core],
                                       fit.eps)
        labels, n_clusters, outlier_share, joined = self._joined(labels, rows, fit_labels)
        n_fit = int(X_fit.shape[0])
        assignment = (f"DBSCAN ran on a seeded sample of {n_fit:,} users gathered from the Dask "
                      f"workers; each of the other {n_users - n_fit:,} took the cluster of its "
                      f"nearest core point within eps in a map over the partitions ({joined:,} "
                      "did, the rest are outliers)")
        return dataclasses.replace(fit, labels=labels, n_clusters=n_clusters,
                                   outlier_share=outlier_share,
                                   n_fit=n_fit, core_assignment=assignment)

    def _umap(self, X: Any, n_users: int) -> Embedding:
        """The UMAP layout fitted on a seeded sample; every other user placed in a map."""
        config, backend = self.config, self.backend
        fit_size = config.sample_size("umap_fit_sample", backend)
        fit_rows = None if config.umap_sample is not None else seeded_sample(
            n_users, fit_size, seed=config.seed + 2, backend=backend)
        if fit_rows is None:
            # Everyone embedded is gathered: the single-process stage, as it is.
            rows = seeded_sample(n_users, config.umap_sample, seed=config.seed, backend=backend)
            embedding = embed_umap(self.workers.rows(X, rows), backend,
                                   n_neighbors=config.umap_neighbors,
                                   min_dist=config.umap_min_dist, seed=config.seed,
                                   fit_sample=fit_size)
            return dataclasses.replace(
                embedding, coords=self._spread(embedding.coords, rows, n_users, width=2),
                sample_size=None if rows is None else int(rows.shape[0]))
        n_neighbors = min(config.umap_neighbors, int(fit_rows.shape[0]) - 1)
        reducer = backend.UMAP(n_neighbors=n_neighbors, min_dist=config.umap_min_dist,
                               random_state=config.seed)
        fitted = reducer.fit_transform(self.workers.rows(X, fit_rows))
        placed = self.workers.engine.place(self.workers.client, X, reducer).compute()
        coords = backend.to_numpy(placed, np.float64)
        coords[backend.to_numpy(fit_rows)] = backend.to_numpy(fitted)
        check = seeded_sample(n_users, TRUSTWORTHINESS_SAMPLE, seed=config.seed + 1,
                              backend=backend)
        n_check = n_users if check is None else int(check.shape[0])
        checked = coords if check is None else coords[backend.to_numpy(check)]
        score = backend.trustworthiness(
            self.workers.rows(X, check), backend.asarray(checked),
            n_neighbors=min(TRUSTWORTHINESS_NEIGHBORS, (n_check - 1) // 2))
        return Embedding(coords=coords, sample_size=None, fit_sample_size=int(fit_rows.shape[0]),
                         trustworthiness=score, trustworthiness_sample=n_check,
                         n_neighbors=n_neighbors, min_dist=config.umap_min_dist)

    # -- helpers -----------------------------------------------------------------------------
    def _joined(self, labels: np.ndarray, rows: Any,
                fit_labels: Any) -> tuple[np.ndarray, int, float, int]:
        """Density labels of every user: the fit's own for the sampled users, ``labels`` (from
        the assignment map) for the others; renumbered by size, with the cluster count, the
        outlier share and how many users outside the sample joined a cluster."""
        fitted = self.backend.to_numpy(fit_labels)
        labels[self.backend.to_numpy(rows)] = fitted
        labels, n_clusters, outlier_share = numbered_by_size(labels, xp=np)
        joined = int(np.count_nonzero(labels >= 0)) - int(np.count_nonzero(fitted >= 0))
        return labels, n_clusters, outlier_share, joined

    def _at(self, labels: np.ndarray, rows: Any | None) -> Any:
        """The labels of the sampled users, as a backend array."""
        picked = labels if rows is None else labels[self.backend.to_numpy(rows)]
        return self.backend.asarray(picked)

    def _spread(self, values: Any, rows: Any | None, n_users: int, width: int = 0) -> np.ndarray:
        """Per-user values of a sample on the host, NaN for the users outside it."""
        values = self.backend.to_numpy(values, np.float64)
        if rows is None:
            return values
        spread = np.full((n_users, width) if width else n_users, np.nan)
        spread[self.backend.to_numpy(rows)] = values
        return spread

    def _facts(self) -> dict[str, Any]:
        """Where the run computed and every process's peak memory so far."""
        client = self.workers.client
        workers = client.run(peak_rss_bytes)
        return {**self.info.to_dict(), "engine": self.workers.engine.name,
                "partitions": self.source.n_partitions,
                "peak_rss_bytes": {"client": peak_rss_bytes(),
                                   "scheduler": client.run_on_scheduler(peak_rss_bytes),
                                   "workers": dict(sorted(workers.items()))},
                "scheduler_in_client_process": self.info.started,
                "performance_report": PERFORMANCE_REPORT}


@dataclasses.dataclass(frozen=True)
class _FittedPca:
    """What :meth:`Preprocessed.pca_params` reads of a fitted PCA (host arrays)."""

    components_: np.ndarray
    mean_: np.ndarray
