"""Segment new users with a saved model, without refitting: ``gpuseg assign``.

The data goes through the same loader and feature code as a run; the users
are then projected, assigned and given their memberships by the model's own
arithmetic (:mod:`gpuseg.model`).
"""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd

from .backend import Backend
from .errors import GpusegError
from .model import (
    SegmentModel,
    load_model,
    memberships,
    nearest_centroid,
    project_features,
    resolve_model_dir,
)
from .timing import ProgressCallback, StageTimer

log = logging.getLogger(__name__)


def assign(model: SegmentModel, features_table: Any, backend: Backend) -> Any:
    """Nearest-centroid segment of each row of a feature table, in float64.

    Parameters
    ----------
    model : SegmentModel
    features_table : DataFrame
        Backend dataframe whose columns include every ``model.feature_names``
        (extra columns are ignored; order does not matter).
    backend : Backend
        Where to compute; need not be the backend the model was fitted on.

    Returns
    -------
    array
        int32 segment numbers (backend array), numbered as in the fitted run.
    """
    return nearest_centroid(model, project_features(model, features_table, backend), backend)


def assign_users(model_dir: str | os.PathLike, data_source: Any, backend: Backend, *,
                 progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Segment and persona of every user of a data set, from a saved model (no refit).

    Parameters
    ----------
    model_dir : path
        A model folder, or a run directory holding one.
    data_source : path, str or InstacartData
        What :func:`gpuseg.data.load_instacart` accepts (a folder or
        ``"kaggle"``), or tables already loaded on ``backend``.
    backend : Backend
    progress : callable, optional
        Called with each stage's name (``load``, ``features``, ``assign``) as it starts.

    Returns
    -------
    pandas.DataFrame
        ``user_id`` (int64), ``segment`` (int32), ``persona`` (str), and when
        the model holds a mixture ``membership``, ``second_segment`` (int32) and
        ``second_membership`` (float64, as in the run's segments.parquet); one
        row per user with at least the model's ``min_orders`` orders, by user_id.

    Raises
    ------
    GpusegError
        When the model is missing or corrupt, or the data lacks features the
        model was fitted on (they are named).
    """
    from .data import load_instacart
    from .data.tables import InstacartData
    from .features import compute_features

    model = load_model(resolve_model_dir(model_dir))
    timer = StageTimer(backend, progress)
    data = data_source
    if not isinstance(data, InstacartData):
        with timer.stage("load"):
            data = load_instacart(data_source, backend=backend)
    data = data.on(backend)
    with timer.stage("features"):
        features = compute_features(data, backend, min_orders=model.min_orders)
    missing = [name for name in model.feature_names if name not in features.table.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise GpusegError(f"the data lacks {len(missing)} feature(s) the model was fitted on: "
                          f"{shown} (was it exported with another catalog?)")
    log.info("assigning %d users (%d excluded: fewer than %d orders)",
             features.n_users, features.n_users_excluded, model.min_orders)
    with timer.stage("assign"):
        projected = project_features(model, features.table, backend)
        labels = nearest_centroid(model, projected, backend)
        soft = (None if model.mixture is None
                else memberships(model, projected, labels, backend))
        segments = backend.to_numpy(labels, np.int32)
        user_ids = backend.to_numpy(backend.asarray(features.table.index), np.int64)
    names = np.asarray(model.persona_names, dtype=object)
    table = pd.DataFrame({
        "user_id": user_ids,
        "segment": segments,
        "persona": pd.array(names[segments], dtype="str"),
    })
    if soft is not None:
        own, second, second_p = soft
        table["membership"] = backend.to_numpy(own, np.float64)
        table["second_segment"] = backend.to_numpy(second, np.int32)
        table["second_membership"] = backend.to_numpy(second_p, np.float64)
    return table
