"""The segment model: what it holds, its arithmetic (projection, nearest centroid, memberships), its files.

A model folder holds two files, both readable without gpuseg and without
pickle: ``arrays.npz`` (float64 scaler, PCA and centroid arrays, and the
integer ``catalog_*`` arrays of :mod:`gpuseg.model_catalog`; a format-2 or -3
model also the Gaussian mixture's weights, means and precision Cholesky
factors) and ``model.json`` (feature and persona names, ``min_orders``, the cap
on the standardised features, the certainty's K + 2 numbers (and those of the
short histories), the aisle and department names, the gpuseg version, the
backend the model was fitted on, its provenance: ``model_id``, ``created`` and
``source_fingerprint``, and a SHA-256 of each array). Loading checks both
(:mod:`gpuseg.model_checks`). Either backend assigns with a model fitted on
either backend.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backend import Backend
from .errors import GpusegError
from .model_catalog import ModelCatalog
from .model_checks import ARRAYS_CHECKSUM, array_sha256, check_model_arrays
from .numerics.arrays import nearest_centre
from .numerics.certainty import CertaintyParams, certainty_columns
from .numerics.mixture import MixtureParams, e_step, membership_columns
from .run_layout import MODEL_DIR

log = logging.getLogger(__name__)

ARRAYS_FILE = "arrays.npz"
META_FILE = "model.json"
#: Bumped when the files change shape; a reader refuses formats it does not know.
#: 2: the Gaussian mixture of the soft memberships (``mixture_*`` arrays).
#: 3: the product catalog (``catalog_*`` arrays, aisle and department names) and provenance
#: (``model_id``, ``created``, ``source_fingerprint``).
#: 4: the cap on the standardised features (``feature_cap``), and the certainty calibrated on
#: subsample refits (``certainty``) in place of the mixture.
FORMAT_VERSION = 4
#: Formats this gpuseg reads: a format-2 model still assigns (``gpuseg assign``), without a
#: catalog; formats 2 and 3 project without a cap.
READABLE_FORMATS = (2, 3, 4)
_ARRAY_FIELDS = ("scaler_mean", "scaler_scale", "pca_mean", "pca_components", "centroids")
#: The mixture's arrays in the npz, by MixtureParams field.
_MIXTURE_ARRAYS = {"basis": "mixture_basis", "weights": "mixture_weights",
                   "means": "mixture_means",
                   "precisions_cholesky": "mixture_precisions_cholesky"}


@dataclass(frozen=True)
class SegmentModel:
    """What it takes to assign new users without refitting (backend-neutral arrays).

    ``segment = argmin_j || z @ pca_components.T - centroids[j] ||`` with
    ``z = clip((x - scaler_mean) / scaler_scale, -feature_cap, feature_cap) - pca_mean``
    (no clip where ``feature_cap`` is None). ``certainty`` gives each user how surely it
    stays in its segment (:mod:`gpuseg.numerics.certainty`); a model from before format 4
    holds a Gaussian ``mixture`` instead, whose posterior was the membership then.
    """

    feature_names: tuple[str, ...]
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray
    centroids: np.ndarray
    persona_names: tuple[str, ...]
    min_orders: int
    mixture: MixtureParams | None = None
    #: What turns raw orders into the features (``gpuseg serve``); None in a format-2 model.
    catalog: ModelCatalog | None = None
    #: The cap on the standardised features, in standard deviations (None: none, as in every
    #: model before format 4).
    feature_cap: float | None = None
    #: The calibrated certainty (format 4); None in a model from before it.
    certainty: CertaintyParams | None = None

    def __post_init__(self) -> None:
        n_features = len(self.feature_names)
        if self.scaler_mean.shape != (n_features,) or self.scaler_scale.shape != (n_features,):
            raise ValueError("scaler_mean and scaler_scale must have one value per feature")
        if self.pca_components.shape[1] != n_features or self.pca_mean.shape != (n_features,):
            raise ValueError("pca_components must be (n_components, n_features)")
        if self.centroids.shape[1] != self.pca_components.shape[0]:
            raise ValueError("centroids must live in the PCA space (k, n_components)")
        if len(self.persona_names) != self.centroids.shape[0]:
            raise ValueError("one persona name per centroid")
        if self.mixture is not None and (
                self.mixture.means.shape[0] != self.centroids.shape[0]
                or self.mixture.basis.shape[1] != self.centroids.shape[1]):
            raise ValueError("the mixture needs one component per centroid, on the PCA space")
        if self.certainty is not None and self.certainty.intercepts.shape != (self.k,):
            raise ValueError("the certainty needs one intercept per centroid")

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def gives_memberships(self) -> bool:
        """Whether the model gives each user a membership (a certainty, or an old mixture)."""
        return self.certainty is not None or self.mixture is not None


def save_model(model: SegmentModel, folder: str | os.PathLike, *,
               fitted_on: Mapping[str, Any] | None = None,
               source_fingerprint: str | None = None) -> Path:
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
    source_fingerprint : str, optional
        The fingerprint of the input the model was fitted on (a run's
        ``metrics.json`` ``input.fingerprint``).

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = saved_arrays(model)
    # numpy's stub types the keyword arrays as its allow_pickle flag.
    np.savez(folder / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
    meta = {
        "format_version": FORMAT_VERSION,
        "gpuseg_version": __version__,
        "fitted_on": dict(fitted_on or {}),
        "k": model.k,
        "n_components": int(model.pca_components.shape[0]),
        **_decisive_meta(model),
        "model_id": model_id(model),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source_fingerprint": source_fingerprint,
        ARRAYS_CHECKSUM: {name: array_sha256(array) for name, array in arrays.items()},
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder


def saved_arrays(model: SegmentModel) -> dict[str, np.ndarray]:
    """The arrays of ``arrays.npz``: float64 model arrays, plus the catalog's when it has one."""
    arrays = {name: np.asarray(getattr(model, name), dtype=np.float64) for name in _ARRAY_FIELDS}
    if model.mixture is not None:
        arrays.update({stored: np.asarray(getattr(model.mixture, field), dtype=np.float64)
                       for field, stored in _MIXTURE_ARRAYS.items()})
    if model.catalog is not None:
        arrays.update(model.catalog.to_saved()[0])
    return arrays


def _decisive_meta(model: SegmentModel) -> dict[str, Any]:
    """What ``model.json`` holds besides the arrays that decides an assignment."""
    return {
        "min_orders": model.min_orders,
        "feature_cap": model.feature_cap,
        "feature_names": list(model.feature_names),
        "persona_names": list(model.persona_names),
        "mixture": (None if model.mixture is None
                    else {"covariance_type": model.mixture.covariance_type}),
        "certainty": None if model.certainty is None else model.certainty.to_dict(),
        "catalog": None if model.catalog is None else model.catalog.to_saved()[1],
    }


def model_id(model: SegmentModel) -> str:
    """A digest of what decides an assignment: every saved array and the names beside them.

    The same fit gives the same id whenever it is saved, and a model read back
    gives the id it was saved with (``model.json``'s ``model_id``), so a
    reader can tell that the two files it read belong together.
    """
    digest = hashlib.sha256()
    arrays = saved_arrays(model)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(_decisive_meta(model), sort_keys=True).encode())
    return digest.hexdigest()[:16]


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
    if not isinstance(meta, dict) or meta.get("format_version") not in READABLE_FORMATS:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        readable = " and ".join(map(str, READABLE_FORMATS))
        raise GpusegError(f"{path} has model format {found!r}; this gpuseg ({__version__}) "
                          f"reads formats {readable}: rerun 'gpuseg run' to refit")
    return meta


def load_model(folder: str | os.PathLike) -> SegmentModel:
    """Read a model written by :func:`save_model`, and check it (:func:`check_model_arrays`).

    Raises
    ------
    GpusegError
        When the folder or one of its files is missing, unreadable or
        inconsistent, or an array is damaged (the message names the file and
        the array).
    """
    folder = Path(folder)
    meta = read_model_meta(folder)
    arrays_path = folder / ARRAYS_FILE
    if not arrays_path.is_file():
        raise GpusegError(f"{folder} is not a complete gpuseg model: {ARRAYS_FILE} is missing")
    try:
        with np.load(arrays_path, allow_pickle=False) as arrays:
            stored = {name: np.asarray(arrays[name]) for name in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # np.load raises OSError, ValueError, EOFError or BadZipFile for a damaged file.
        raise GpusegError(f"{folder} holds a corrupt model: {exc}") from None
    check_model_arrays(stored, meta, arrays_path=arrays_path, meta_path=folder / META_FILE)
    try:
        loaded = {name: np.asarray(stored[name], dtype=np.float64) for name in _ARRAY_FIELDS}
        mixture = None
        if meta["mixture"] is not None:
            mixture = MixtureParams(
                covariance_type=str(meta["mixture"]["covariance_type"]),
                **{field: np.asarray(stored[name], dtype=np.float64)
                   for field, name in _MIXTURE_ARRAYS.items()})
        return SegmentModel(feature_names=tuple(meta["feature_names"]),
                            persona_names=tuple(meta["persona_names"]),
                            min_orders=meta["min_orders"], mixture=mixture,
                            catalog=saved_catalog(stored, meta),
                            feature_cap=meta.get("feature_cap"),
                            certainty=(None if meta.get("certainty") is None
                                       else CertaintyParams.from_dict(meta["certainty"])),
                            **loaded)
    except (ValueError, KeyError, TypeError) as exc:
        # KeyError for a missing array; SegmentModel raises ValueError for shapes that do not fit.
        raise GpusegError(f"{folder} holds a corrupt model: {exc}") from None


def saved_catalog(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> ModelCatalog | None:
    """The catalog of a saved model, or None for a format-2 model (which kept none).

    Raises KeyError, ValueError or TypeError when the files are damaged; the
    caller names the folder.
    """
    if meta.get("catalog") is None:
        return None
    return ModelCatalog.from_saved(arrays, meta["catalog"])


def project_features(model: SegmentModel, features_table: Any, backend: Backend) -> Any:
    """The rows of a feature table in the model's PCA space (float64 backend array).

    ``features_table`` is a backend dataframe holding every ``model.feature_names``
    (extra columns are ignored; order does not matter).
    """
    X = backend.asarray(features_table[list(model.feature_names)], dtype="float64")
    pca_mean, components = (backend.asarray(array, dtype=np.float64)
                            for array in (model.pca_mean, model.pca_components))
    return (standardise(model, X, backend) - pca_mean) @ components.T


def standardise(model: SegmentModel, X: Any, backend: Backend) -> Any:
    """``clip((x - scaler_mean) / scaler_scale, -feature_cap, feature_cap)`` of the rows of
    ``X`` (features in ``model.feature_names`` order): what the model's PCA reads."""
    mean, scale = (backend.asarray(array, dtype=np.float64)
                   for array in (model.scaler_mean, model.scaler_scale))
    z = (X - mean) / scale
    if model.feature_cap is not None:
        z = backend.xp.clip(z, -model.feature_cap, model.feature_cap)
    return z


def nearest_centroid(model: SegmentModel, projected: Any, backend: Backend) -> Any:
    """int32 segment of each row of ``projected`` (users in the model's PCA space)."""
    xp = backend.xp
    labels, _ = nearest_centre(projected, backend.asarray(model.centroids, dtype=np.float64),
                               xp=xp)
    return labels.astype(xp.int32)


def memberships(model: SegmentModel, projected: Any, segments: Any, backend: Backend, *,
                orders: Any = None) -> tuple[Any, Any, Any]:
    """Each row's membership of ``segments``, its next segment and that one's membership.

    The certainty of the model (:func:`gpuseg.numerics.certainty.certainty_columns`, the
    function the fitted run computed its memberships with); a row whose ``orders`` (orders
    with products, optional) has a short-history calibration gets that one. A model from
    before format 4 gives its Gaussian mixture's posterior instead (its E-step).

    Raises
    ------
    GpusegError
        When the model holds neither.
    """
    xp = backend.xp
    if model.certainty is not None:
        centroids = backend.asarray(model.centroids, dtype=np.float64)
        return certainty_columns(projected, segments, centroids, model.certainty, xp=xp,
                                 orders=orders)
    if model.mixture is None:
        raise GpusegError("this model holds neither a certainty nor a Gaussian mixture, so it "
                          "gives no memberships")
    _, log_resp = e_step(projected, model.mixture, backend)
    return membership_columns(log_resp, segments, xp=xp)


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """``path`` itself if it is a model folder, else its model subfolder (a run directory)."""
    path = Path(path)
    if not path.exists():
        raise GpusegError(f"model folder {path} does not exist")
    if (path / META_FILE).is_file():
        return path
    return path / MODEL_DIR
