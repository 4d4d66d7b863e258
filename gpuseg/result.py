"""The host boundary: everything a run produced, as numpy/pandas/plain Python only."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import PipelineConfig


def finite_or_none(value: float) -> float | None:
    """A metric as JSON can carry it: NaN or infinity (no defined value) becomes ``None``."""
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class MixtureParams:
    """A fitted Gaussian mixture, component k beside segment k (host arrays).

    The mixture lives in ``z = x @ basis.T``, ``x`` a user in the PCA space:
    ``basis`` (r, n_components) has orthonormal rows (the directions the
    segment centroids differ along, or every principal component).
    ``precisions_cholesky`` holds, per component, ``P`` with ``P @ P.T`` the
    inverse covariance: (k, r, r) for ``full``, (k, r) for ``diag`` (one
    ``1 / sd`` per dimension), as scikit-learn stores it.
    """

    covariance_type: str
    basis: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray

    def __post_init__(self) -> None:
        k, r = self.means.shape
        expected = {"full": (k, r, r), "diag": (k, r)}.get(self.covariance_type)
        if expected is None:
            raise ValueError(f"covariance_type must be full or diag (got {self.covariance_type!r})")
        if (self.weights.shape != (k,) or self.precisions_cholesky.shape != expected
                or self.basis.ndim != 2 or self.basis.shape[0] != r):
            raise ValueError(f"a {self.covariance_type} mixture of {k} components in {r} "
                             f"dimensions needs weights ({k},), precisions_cholesky {expected} "
                             f"and a basis of {r} rows")


@dataclass(frozen=True)
class SegmentModel:
    """What it takes to assign new users without refitting (backend-neutral arrays).

    ``segment = argmin_j || z @ pca_components.T - centroids[j] ||`` with
    ``z = (x - scaler_mean) / scaler_scale - pca_mean``; ``mixture``, when
    present, gives each user's posterior over the segments in the same space.
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

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])


@dataclass(frozen=True)
class SegmentationResult:
    """A finished segmentation run, entirely on the host.

    Attributes
    ----------
    segments : pandas.DataFrame
        One row per segmented user: ``user_id, segment, persona, silhouette``
        (NaN outside the silhouette sample), ``hierarchical``, ``dbscan``
        (-1 = outlier), and ``umap_x, umap_y`` when the embedding ran (NaN
        outside the UMAP sample).
    profiles : pandas.DataFrame
        One row per segment (size, share, feature means, department shares,
        top aisles/departments by lift, preferred hour, persona and actions).
    metrics : dict
        Every number of the run, JSON-ready (see :func:`gpuseg.pipeline.segment`).
    timings : dict
        Wall seconds per stage.
    model : SegmentModel
        Enough to assign new users.
    linkage : numpy.ndarray
        Ward linkage over the micro-clusters (scipy format), for a dendrogram.
    activity : numpy.ndarray
        Orders per segment x weekday x hour (k, 7, 24).
    files : Mapping[str, str]
        Further files of the run directory, name -> text (a distributed run's
        Dask performance report); empty for a one-process run.
    """

    segments: pd.DataFrame
    profiles: pd.DataFrame
    metrics: Mapping[str, Any]
    timings: Mapping[str, float]
    model: SegmentModel
    linkage: np.ndarray
    activity: np.ndarray
    backend: str
    device: str
    config: PipelineConfig
    personas: tuple[Any, ...] = field(default_factory=tuple)
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.segments["segment"].to_numpy()

    @property
    def k(self) -> int:
        return self.model.k
