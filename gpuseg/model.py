"""The saved segment model: write it, read it back, assign new users without refitting.

A model folder holds two files, both readable without gpuseg and without
pickle: ``arrays.npz`` (float64 scaler, PCA and centroid arrays, and the
Gaussian mixture's weights, means and precision Cholesky factors) and
``model.json`` (feature and persona names, ``min_orders``, the mixture's
covariance type, the gpuseg version and the backend the model was fitted on).
Either backend assigns with a model fitted on either backend.
"""
from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .backend import Backend
from .cluster.soft import e_step, membership_columns
from .errors import GpusegError
from .numerics.arrays import nearest_centre
from .result import MixtureParams, SegmentModel
from .run_layout import MODEL_DIR
from .timing import ProgressCallback, StageTimer

log = logging.getLogger(__name__)

ARRAYS_FILE = "arrays.npz"
META_FILE = "model.json"
#: Bumped when the files change shape; a reader refuses formats it does not know.
#: 2: the Gaussian mixture of the soft memberships (``mixture_*`` arrays).
FORMAT_VERSION = 2
_ARRAY_FIELDS = ("scaler_mean", "scaler_scale", "pca_mean", "pca_components", "centroids")
#: The mixture's arrays in the npz, by MixtureParams field.
_MIXTURE_ARRAYS = {"basis": "mixture_basis", "weights": "mixture_weights",
                   "means": "mixture_means",
                   "precisions_cholesky": "mixture_precisions_cholesky"}


def save_model(model: SegmentModel, folder: str | os.PathLike, *,
               fitted_on: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` into ``folder`` (created if missing) as ``arrays.npz`` + ``model.json``.

    Parameters
    ----------
    model : SegmentModel
        Host arrays from a finished run.
    folder : path
        Folder to write into.
    fitted_on : mapping, optional
        Provenance stored beside the model, e.g. ``{"backend": "gpu",
        "device": "NVIDIA H100"}``.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.asarray(getattr(model, name), dtype=np.float64) for name in _ARRAY_FIELDS}
    if model.mixture is not None:
        arrays.update({stored: np.asarray(getattr(model.mixture, field), dtype=np.float64)
                       for field, stored in _MIXTURE_ARRAYS.items()})
    # numpy's stub types the keyword arrays as its allow_pickle flag.
    np.savez(folder / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
    meta = {
        "format_version": FORMAT_VERSION,
        "gpuseg_version": __version__,
        "fitted_on": dict(fitted_on or {}),
        "k": model.k,
        "n_components": int(model.pca_components.shape[0]),
        "min_orders": model.min_orders,
        "feature_names": list(model.feature_names),
        "persona_names": list(model.persona_names),
        "mixture": (None if model.mixture is None
                    else {"covariance_type": model.mixture.covariance_type}),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


def read_model_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The JSON half of a saved model (names, provenance), checked for its format version."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise GpusegError(f"{folder} is not a gpuseg model folder: {META_FILE} is missing "
                          "(pass a run directory written by 'gpuseg run' or 'gpuseg demo')")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GpusegError(f"{path} is corrupt: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise GpusegError(f"{path} has model format {found!r}; this gpuseg ({__version__}) "
                          f"reads format {FORMAT_VERSION}: rerun 'gpuseg run' to refit")
    return meta


def load_model(folder: str | os.PathLike) -> SegmentModel:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    GpusegError
        When the folder or one of its files is missing, unreadable or
        inconsistent (the message names the file).
    """
    folder = Path(folder)
    meta = read_model_meta(folder)
    arrays_path = folder / ARRAYS_FILE
    if not arrays_path.is_file():
        raise GpusegError(f"{folder} is not a complete gpuseg model: {ARRAYS_FILE} is missing")
    try:
        with np.load(arrays_path, allow_pickle=False) as arrays:
            loaded = {name: np.asarray(arrays[name], dtype=np.float64) for name in _ARRAY_FIELDS}
            mixture = None
            if meta["mixture"] is not None:
                mixture = MixtureParams(
                    covariance_type=str(meta["mixture"]["covariance_type"]),
                    **{field: np.asarray(arrays[stored], dtype=np.float64)
                       for field, stored in _MIXTURE_ARRAYS.items()})
        return SegmentModel(feature_names=tuple(meta["feature_names"]),
                            persona_names=tuple(meta["persona_names"]),
                            min_orders=int(meta["min_orders"]), mixture=mixture, **loaded)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        # np.load raises OSError, ValueError, EOFError or BadZipFile for a damaged file and
        # KeyError for a missing array; SegmentModel raises ValueError for shapes that do not fit.
        raise GpusegError(f"{folder} holds a corrupt model: {exc}") from None


def project_features(model: SegmentModel, features_table: Any, backend: Backend) -> Any:
    """The rows of a feature table in the model's PCA space (float64 backend array).

    ``features_table`` is a backend dataframe holding every ``model.feature_names``
    (extra columns are ignored; order does not matter).
    """
    X = backend.asarray(features_table[list(model.feature_names)], dtype="float64")
    mean, scale, pca_mean, components = (
        backend.asarray(array, dtype=np.float64)
        for array in (model.scaler_mean, model.scaler_scale, model.pca_mean, model.pca_components))
    return ((X - mean) / scale - pca_mean) @ components.T


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


def nearest_centroid(model: SegmentModel, projected: Any, backend: Backend) -> Any:
    """int32 segment of each row of ``projected`` (users in the model's PCA space)."""
    xp = backend.xp
    labels, _ = nearest_centre(projected, backend.asarray(model.centroids, dtype=np.float64),
                               xp=xp)
    return labels.astype(xp.int32)


def memberships(model: SegmentModel, projected: Any, segments: Any,
                backend: Backend) -> tuple[Any, Any, Any]:
    """Each row's membership of ``segments``, its next segment and that one's membership.

    The E-step of the model's Gaussian mixture, the same function the fitted
    run computed its memberships with.

    Raises
    ------
    GpusegError
        When the model holds no mixture.
    """
    mixture = model.mixture
    if mixture is None:
        raise GpusegError("this model holds no Gaussian mixture, so it gives no memberships")
    _, log_resp = e_step(projected, mixture, backend)
    return membership_columns(log_resp, segments, xp=backend.xp)


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


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """``path`` itself if it is a model folder, else its model subfolder (a run directory)."""
    path = Path(path)
    if not path.exists():
        raise GpusegError(f"model folder {path} does not exist")
    if (path / META_FILE).is_file():
        return path
    return path / MODEL_DIR
