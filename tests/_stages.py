"""Run one stage over users held in memory, the earlier stages' outputs it reads stood in for.

The stages of :mod:`gpuseg.stages` read their inputs from the outputs of the
stages before them; a test of one stage's sampling and assignment gives it a
PCA-space matrix, labels and K directly (:func:`state`) and runs it through
the same :func:`gpuseg.stages.base.run_stage` a pipeline does.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gpuseg.cluster.kchoice import KChoice
from gpuseg.cluster.sweep import KSweep
from gpuseg.config import PipelineConfig
from gpuseg.facts import CatalogNames, InputFacts, UserCounts
from gpuseg.personas import Claim, Persona
from gpuseg.preprocess import Pcs
from gpuseg.rows import InMemoryRows
from gpuseg.stages.base import Features, RunState, Stage, run_stage
from gpuseg.stages.kmeans import KMeans, Segmentation
from gpuseg.stages.pca import Pca, Projection
from gpuseg.stages.personas import Personas, Profiles
from gpuseg.stages.sweep import Sweep, SweepChoice


def state(X: np.ndarray, backend: Any, *, labels: np.ndarray | None = None,
          config: PipelineConfig | None = None, embed: bool = True,
          features: pd.DataFrame | None = None, catalog: CatalogNames | None = None,
          personas: tuple[str, ...] | None = None) -> RunState:
    """A run whose PCA scores are ``X`` and whose KMeans labels (when given) are ``labels``.

    ``features`` (the per-user feature table, by default ``X`` itself), ``catalog``
    and ``personas`` (a name per segment) stand in for what the rules and
    profile stages read.
    """
    config = config or PipelineConfig(backend=backend.name)
    n, d = X.shape
    X_device = backend.from_host(np.asarray(X, dtype=np.float64))
    table = (backend.from_host(features.to_numpy(dtype=np.float64)) if features is not None
             else X_device)
    names = (tuple(str(c) for c in features.columns) if features is not None
             else tuple(f"f{j}" for j in range(d)))
    features_in = Features(
        X=table, user_ids=np.arange(n, dtype=np.int64), names=names,
        catalog=catalog or CatalogNames(aisles={}, departments={}, aisle_department={}),
        users=UserCounts(with_history=n, excluded_min_orders=0, segmented=n),
        input=InputFacts(source="test", fingerprint="", cleaning={}))
    run = RunState(config=config, backend=backend, rows=InMemoryRows(backend, n),
                   features=features_in, embed=embed)
    variance = np.asarray(X, dtype=np.float64).var(axis=0, ddof=1)
    run.outputs.add(Pca, Projection(
        pcs=Pcs(mean=np.zeros(d), components=np.eye(d), explained_variance=variance,
                explained_variance_ratio=variance / variance.sum(), n_components=d),
        X_pca=X_device, n_users=n, n_features=d, zero_variance_features=()))
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int32)
        k = int(labels.max()) + 1
        centroids = np.stack([np.asarray(X)[labels == j].mean(axis=0) for j in range(k)])
        sizes = tuple(int(s) for s in np.bincount(labels, minlength=k))
        run.outputs.add(KMeans, Segmentation(
            labels=backend.from_host(labels), host_labels=labels, centroids=centroids,
            inertia=0.0, sizes=sizes, total_ss=0.0, fit_size=n, lloyd_iterations=0))
        sweep = KSweep(ks=(k,), inertia=(0.0,), silhouette=(0.0,), calinski_harabasz=(0.0,),
                       davies_bouldin=(0.0,), elbow_k=k, wcss_k1=0.0, sample_size=n, n_users=n,
                       fit_size=n)
        run.outputs.add(Sweep, SweepChoice(sweep=sweep, choice=KChoice(
            k=k, reason="given", wcss_reduction=None, source="user")))
    if personas is not None:
        run.outputs.add(Personas, Profiles(
            profiles=pd.DataFrame(), activity=np.zeros((len(personas), 7, 24), dtype=np.int64),
            personas=[Persona(segment=j, name=name, rule=Claim("rule", name, name, ""),
                              actions=(), evidence=(), matched=True, score=1.0, scores={})
                      for j, name in enumerate(personas)]))
    return run


def run(stage: Stage[Any, Any], run_state: RunState) -> Any:
    """The stage's output, run as a pipeline runs it."""
    return run_stage(stage, run_state)
