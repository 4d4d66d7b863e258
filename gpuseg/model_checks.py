"""What a saved model must satisfy before it assigns anyone: checksums, shapes, finite values.

A damaged model does not fail loudly by itself: a NaN in the centroids or a
zero scale puts every user in one segment and ``assign`` would exit 0.
:func:`check_model_arrays` runs on every load (:func:`gpuseg.model.load_model`)
and names the file and the array of the first problem:

* ``model.json``'s fields have their types (``min_orders`` an integer >= 1, the
  names lists of text, ``k`` one per persona, ``feature_cap`` null or a positive number,
  the certainty a positive temperature, a slope >= 0 and one finite intercept per segment);
* each array matches the SHA-256 that ``model.json`` records for it
  (``arrays_sha256``; a model saved before checksums were recorded is checked
  on the rules below only);
* each array has the shape the feature list, ``n_components`` and ``k`` give;
* every value is finite, every scale positive, the mixture's weights a
  probability vector and each component's covariance positive definite.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GpusegError

log = logging.getLogger(__name__)

#: model.json's key for the arrays' checksums: array name -> SHA-256 hex digest.
ARRAYS_CHECKSUM = "arrays_sha256"
#: How far the mixture weights may sum from 1 (float64 rounding over K terms).
_WEIGHTS_TOLERANCE = 1e-6


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's shape and float64 values (little-endian, C order)."""
    values = np.ascontiguousarray(array, dtype="<f8")
    digest = hashlib.sha256(repr(values.shape).encode())
    digest.update(values.tobytes())
    return digest.hexdigest()


def check_model_arrays(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], *,
                       arrays_path: Path, meta_path: Path) -> None:
    """Raise unless a saved model's arrays and fields are whole and usable.

    Parameters
    ----------
    arrays : Mapping[str, numpy.ndarray]
        Every array of ``arrays.npz``, as stored.
    meta : Mapping[str, Any]
        ``model.json``, already checked for its format version.
    arrays_path, meta_path : Path
        The two files, for the messages.

    Raises
    ------
    GpusegError
        One line naming the file, the array or field, and what is wrong with it.
    """
    k, n_features, n_components, covariance = _check_fields(meta, meta_path)
    recorded = meta.get(ARRAYS_CHECKSUM)
    if recorded is None:
        log.info("%s records no array checksums (saved by an older gpuseg): checking the arrays' "
                 "shapes and values only", meta_path)
    else:
        _check_checksums(arrays, recorded, arrays_path, meta_path)
    r = _shape_of(arrays, "mixture_means", arrays_path)[1] if covariance is not None else 0
    expected = {"scaler_mean": (n_features,), "scaler_scale": (n_features,),
                "pca_mean": (n_features,), "pca_components": (n_components, n_features),
                "centroids": (k, n_components)}
    if covariance is not None:
        expected.update({"mixture_basis": (r, n_components), "mixture_weights": (k,),
                         "mixture_means": (k, r),
                         "mixture_precisions_cholesky": (k, r, r) if covariance == "full"
                         else (k, r)})
    for name, shape in expected.items():
        found = _shape_of(arrays, name, arrays_path)
        if found != shape:
            raise GpusegError(
                f"{arrays_path}: {name} has shape {found}, but {meta_path.name}'s {n_features} "
                f"features, {n_components} components and k={k} need {shape}; the model is "
                "damaged: rerun gpuseg run")
        values = np.asarray(arrays[name], dtype=np.float64)
        if not np.isfinite(values).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
            raise GpusegError(f"{arrays_path}: {name} holds {values[where]} at {list(where)}; "
                              "every value must be finite: the model is damaged: rerun gpuseg run")
    _check_values(arrays, meta, covariance, arrays_path)


def _check_fields(meta: Mapping[str, Any], meta_path: Path) -> tuple[int, int, int, str | None]:
    """k, features, components and the mixture's covariance type, each checked for its type."""
    def names(field: str) -> list[str]:
        value = meta.get(field)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise _field(meta_path, field, "a non-empty list of names", value)
        return value

    def count(field: str) -> int:
        value = meta.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _field(meta_path, field, "an integer >= 1", value)
        return value

    features = names("feature_names")
    if len(set(features)) != len(features):
        repeated = next(name for name in features if features.count(name) > 1)
        raise _field(meta_path, "feature_names", "names without repeats", repeated)
    personas = names("persona_names")
    k, n_components = count("k"), count("n_components")
    count("min_orders")
    cap = meta.get("feature_cap")
    if cap is not None and not (_number(cap) and cap > 0):
        raise _field(meta_path, "feature_cap", "null or a positive number", cap)
    if len(personas) != k:
        raise _field(meta_path, "persona_names", f"one name per segment (k={k})", personas)
    _check_certainty(meta.get("certainty"), k, meta_path)
    mixture = meta.get("mixture")
    covariance = mixture.get("covariance_type") if isinstance(mixture, dict) else None
    if mixture is not None and covariance not in ("full", "diag"):
        raise _field(meta_path, "mixture", 'null or {"covariance_type": "full" or "diag"}',
                     mixture)
    return k, len(features), n_components, covariance


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and bool(np.isfinite(value)))


def _check_certainty(certainty: Any, k: int, meta_path: Path) -> None:
    """The certainty's numbers: what :class:`~gpuseg.numerics.certainty.CertaintyParams` reads."""
    if certainty is None:
        return
    expected = ('null or {"temperature": > 0, "slope": >= 0, "intercepts": k numbers, '
                '"short_history": {orders: {"slope": >= 0, "intercept": number}}}')

    def at_least(value: Any, low: float, *, strictly: bool = False) -> bool:
        return _number(value) and (value > low if strictly else value >= low)

    if not isinstance(certainty, dict):
        raise _field(meta_path, "certainty", expected, certainty)
    intercepts = certainty.get("intercepts")
    short = certainty.get("short_history", {})
    valid = (at_least(certainty.get("temperature"), 0.0, strictly=True)
             and at_least(certainty.get("slope"), 0.0)
             and isinstance(intercepts, list) and len(intercepts) == k
             and all(_number(b) for b in intercepts) and isinstance(short, dict)
             and all(str(n).isdigit() and isinstance(c, dict) and at_least(c.get("slope"), 0.0)
                     and _number(c.get("intercept")) for n, c in short.items()))
    if not valid:
        raise _field(meta_path, "certainty", expected, certainty)


def _field(meta_path: Path, field: str, expected: str, value: Any) -> GpusegError:
    return GpusegError(f"{meta_path}: {field} must be {expected} (got {value!r}); the model is "
                       "damaged: rerun gpuseg run")


def _check_checksums(arrays: Mapping[str, np.ndarray], recorded: Any, arrays_path: Path,
                     meta_path: Path) -> None:
    if not isinstance(recorded, dict):
        raise _field(meta_path, ARRAYS_CHECKSUM, "a mapping of array names to SHA-256 digests",
                     recorded)
    for name, digest in recorded.items():
        if name not in arrays:
            raise GpusegError(f"{arrays_path}: array {name!r} is missing ({meta_path.name} "
                              "records it); the model is damaged: rerun gpuseg run")
        if array_sha256(_numeric(arrays, name, arrays_path)) != digest:
            raise GpusegError(
                f"{arrays_path}: {name} does not match the SHA-256 {meta_path.name} records for "
                "it; the array changed after gpuseg saved the model: rerun gpuseg run")


def _numeric(arrays: Mapping[str, np.ndarray], name: str, arrays_path: Path) -> np.ndarray:
    array = arrays[name]
    if array.dtype.kind not in "biuf":
        raise GpusegError(f"{arrays_path}: {name} holds {array.dtype} values, not numbers; the "
                          "model is damaged: rerun gpuseg run")
    return array


def _shape_of(arrays: Mapping[str, np.ndarray], name: str, arrays_path: Path) -> tuple[int, ...]:
    if name not in arrays:
        raise GpusegError(f"{arrays_path}: array {name!r} is missing; the model is damaged: "
                          "rerun gpuseg run")
    return tuple(_numeric(arrays, name, arrays_path).shape)


def _check_values(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                  covariance: str | None, arrays_path: Path) -> None:
    """Scales positive; mixture weights a probability vector; covariances positive definite."""
    scale = np.asarray(arrays["scaler_scale"], dtype=np.float64)
    if (scale <= 0).any():
        i = int(np.argmax(scale <= 0))
        raise GpusegError(f"{arrays_path}: scaler_scale is {scale[i]} for feature "
                          f"{meta['feature_names'][i]!r}; every scale must be positive: the "
                          "model is damaged: rerun gpuseg run")
    if covariance is None:
        return
    weights = np.asarray(arrays["mixture_weights"], dtype=np.float64)
    if (weights < 0).any() or abs(weights.sum() - 1.0) > _WEIGHTS_TOLERANCE:
        raise GpusegError(f"{arrays_path}: mixture_weights {weights.tolist()} are not "
                          "probabilities summing to 1; the model is damaged: rerun gpuseg run")
    factors = np.asarray(arrays["mixture_precisions_cholesky"], dtype=np.float64)
    for component, factor in enumerate(factors):
        # The E-step takes log |P| as the sum of the log diagonal: P must be triangular with a
        # positive diagonal, which is exactly a positive definite precision (and covariance).
        diagonal = factor if covariance == "diag" else np.diagonal(factor)
        triangular = covariance == "diag" or not np.triu(factor, 1).any() \
            or not np.tril(factor, -1).any()
        if not triangular or (diagonal <= 0).any():
            raise GpusegError(
                f"{arrays_path}: mixture component {component}'s covariance is not positive "
                "definite (mixture_precisions_cholesky must be triangular with a positive "
                "diagonal); the model is damaged: rerun gpuseg run")
