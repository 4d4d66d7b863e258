"""The whole segmentation as one call: open the rows, run every stage over them, hand back the result.

One orchestrator for every row source: a data set loaded in this process
(:func:`gpuseg.stages.features.in_memory`) or a partitioned folder on a Dask
cluster (:func:`gpuseg.distributed.session.dask_session`). Each stage of
:data:`STAGES` fits on its rows (or its declared seeded sample) and assigns
every user through the row source (:func:`gpuseg.stages.base.run_stage`), so
the same data and seed give the same segments whatever runs them. The result
is assembled on the host once, at the end (:func:`_result`).
"""
from __future__ import annotations

import dataclasses
import os
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd

from . import resources
from .backend import Backend
from .config import PipelineConfig, option
from .data.tables import InstacartData
from .errors import ConfigError
from .metrics import run_metrics
from .registry import get_backend
from .result import SegmentationResult
from .stages.base import Outputs, RunState, Session, Stage
from .stages.certainty import Certainty
from .stages.density import Density
from .stages.features import in_memory
from .stages.hierarchical import Hierarchical
from .stages.importance import FeatureImportance
from .stages.kmeans import KMeans
from .stages.pca import Pca
from .stages.personas import Personas
from .stages.rules import Rules
from .stages.saved_model import segment_model
from .stages.scale import Scale
from .stages.short_history import ShortHistoryStage
from .stages.silhouette import Silhouette
from .stages.stability import Stability
from .stages.sweep import Sweep
from .stages.umap import Umap
from .timing import ProgressCallback, StageTimer

#: The stages of a run, in the order they run (after the rows are opened: load, features).
STAGES: tuple[Stage[Any, Any], ...] = (
    Scale(), Pca(), Sweep(), KMeans(), Certainty(), ShortHistoryStage(), Silhouette(),
    Stability(), Hierarchical(), Density(), Personas(), FeatureImportance(), Rules(), Umap())


#: The stage after which the run's plan is checked (enough users, memory for every stage):
#: the first moment the segmented users and the kept components are known.
PLAN_CHECKED_AFTER: type[Stage[Any, Any]] = Pca


def stage_names(config: PipelineConfig | None = None) -> tuple[str, ...]:
    """Every timed step of a run, in order: ``features``, then each stage's name (the density
    stage is named after ``config.density``)."""
    config = config or PipelineConfig()
    return ("features",) + tuple(stage.key(config) for stage in STAGES)


def segment(data: InstacartData | str | os.PathLike[str], config: PipelineConfig | None = None, *,
            backend: Backend | None = None, progress: ProgressCallback | None = None,
            embed: bool = True) -> SegmentationResult:
    """Segment the shoppers of an Instacart-layout data set.

    Parameters
    ----------
    data : InstacartData or path
        Loaded tables (moved to ``backend`` if they are elsewhere, e.g. from
        :meth:`InstacartData.from_frames <gpuseg.data.tables.InstacartData.from_frames>`),
        or a folder / ``"kaggle"`` to load. With ``workers`` or ``scheduler``
        set in ``config``, a partitioned folder that Dask workers read.
    config : PipelineConfig, optional
        Defaults to ``PipelineConfig()``.
    backend : Backend, optional
        Built from ``config.backend`` when omitted (each Dask worker builds the
        backend of the same name).
    progress : callable, optional
        Called with each stage's name as it starts.
    embed : bool
        Run the UMAP stage (the report needs it; ``gpuseg assign`` does not).

    Returns
    -------
    SegmentationResult
        Host-only result: segments, profiles, personas, metrics, timings, model
        (and, across Dask workers, the performance report in ``files``).
    """
    config = config or PipelineConfig()
    backend = backend or get_backend(config.backend)
    timer = StageTimer(backend, progress)
    backend.prepare(embed=embed)
    with _open(data, config, backend, timer) as session:
        state = RunState(config=config, backend=backend, rows=session.rows,
                         features=session.features, embed=embed)
        for stage in STAGES:
            if not stage.applies(state):
                continue
            with session.stage(stage.key(config)):
                session.run(stage, state)
            if type(stage) is PLAN_CHECKED_AFTER:
                _check_plan(state, session)
        result = _result(state, timer.seconds)
    return dataclasses.replace(result, metrics=dataclasses.replace(
        result.metrics, distributed=session.facts), files=dict(session.files))


def _open(data: InstacartData | str | os.PathLike[str], config: PipelineConfig,
          backend: Backend, timer: StageTimer) -> AbstractContextManager[Session]:
    """The row source of ``data``: in this process, or on the Dask cluster ``config`` names."""
    if not config.distributed:
        return in_memory(data, config, backend, timer)
    if isinstance(data, InstacartData):
        raise ConfigError(f"a run with {option('workers')} or {option('scheduler')} reads a "
                          "partitioned folder, not tables already loaded in this process")
    from .distributed.session import dask_session

    return dask_session(data, config, backend, timer)


def _check_plan(state: RunState, session: Session) -> None:
    """Before clustering: enough users for every stage, and memory where the work runs.

    In one process every user's rows are there; across Dask workers only the
    largest seeded sample a stage gathers reaches the client.
    """
    n_users = state.n_users
    held = n_users
    if state.config.distributed:
        sizes = [stage.sample_size(state) for stage in STAGES if stage.applies(state)]
        held = min(n_users, max(n_users if size is None else size for size in sizes))
    resources.check_run(state.config, state.backend, n_users=held,
                        n_components=state.outputs[Pca].n_components,
                        n_excluded=state.features.users.excluded_min_orders, embed=state.embed)


def _stage_of(kind: type[Stage[Any, Any]]) -> Stage[Any, Any]:
    return next(stage for stage in STAGES if type(stage) is kind)


def _host_outputs(state: RunState) -> Outputs:
    """Each stage's output without the per-user columns the row source holds."""
    outputs = Outputs()
    for stage, output in state.outputs:
        outputs.add(stage, _stage_of(stage).on_host(output))
    return outputs


def _result(state: RunState, timings: dict[str, float]) -> SegmentationResult:
    """The single host boundary of a run."""
    backend, outputs = state.backend, state.outputs
    segments_fit = outputs[KMeans]
    certainty, profiles = outputs[Certainty], outputs[Personas]
    density = outputs[Density]
    labels = segments_fit.host_labels
    names = profiles.names
    segments = pd.DataFrame({
        "user_id": state.features.user_ids.astype(np.int64),
        "segment": labels,
        "persona": pd.Categorical.from_codes(labels, categories=list(names)),
        "membership": np.asarray(certainty.membership, dtype=np.float64),
        "second_segment": np.asarray(certainty.second_segment, dtype=np.int32),
        "second_membership": np.asarray(certainty.second_membership, dtype=np.float64),
        "silhouette": np.asarray(outputs[Silhouette].per_user, dtype=np.float64),
        "hierarchical": np.asarray(outputs[Hierarchical].labels, dtype=np.int32),
        density.method: np.asarray(density.labels, dtype=np.int32),
    })
    embedding = outputs.get(Umap)
    if embedding is not None:
        coords = np.asarray(embedding.coords, dtype=np.float64)
        segments["umap_x"], segments["umap_y"] = coords[:, 0], coords[:, 1]
    persona_of_segment = dict(enumerate(names))
    table = profiles.profiles.assign(persona=profiles.profiles["segment"].map(persona_of_segment))
    features = state.features
    metrics = run_metrics(STAGES, _host_outputs(state), backend=backend.name,
                          device=backend.device, versions=backend.versions(),
                          config=state.config, input=features.input, catalog=features.catalog,
                          users=features.users, distributed=None)
    return SegmentationResult(
        segments=segments, profiles=table, metrics=metrics, timings=dict(timings),
        model=segment_model(state), linkage=np.asarray(outputs[Hierarchical].linkage),
        activity=np.asarray(profiles.activity, dtype=np.int64), backend=backend.name,
        device=backend.device, config=state.config, personas=tuple(profiles.personas))

