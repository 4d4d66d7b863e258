"""Scaling and dimensionality reduction: StandardScaler, then PCA to a variance target."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Backend
from .config import option, setting
from .errors import GpusegError


@dataclass(frozen=True)
class Preprocessed:
    """The scaled and PCA-reduced feature matrix, still on the backend's device.

    Attributes
    ----------
    user_ids : array
        User id of each row (backend array).
    feature_names : tuple of str
        Columns of ``X_scaled``, in order.
    X_scaled : array
        Standardised features, float64 (n_users x n_features).
    X_pca : array
        The first ``n_components`` principal components (n_users x n_components).
    scaler_mean, scaler_scale : numpy.ndarray
        What standardising subtracted and divided by, per feature (host,
        small); ``scaler_scale`` is 1 for the zero-variance features.
    pca : fitted estimator
        Fitted with every component; only the first ``n_components`` are used.
    n_components : int
        Components kept.
    retained_variance : float
        Cumulative explained variance ratio of the kept components.
    explained_variance_ratio : numpy.ndarray
        Ratio of every fitted component (host, small).
    zero_variance_features : tuple of str
        Features constant over the users (scaled to 0; they carry no information).
    """

    user_ids: Any
    feature_names: tuple[str, ...]
    X_scaled: Any
    X_pca: Any
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    pca: Any
    n_components: int
    retained_variance: float
    explained_variance_ratio: np.ndarray
    zero_variance_features: tuple[str, ...]

    def scaler_params(self, backend: Backend) -> dict[str, np.ndarray]:
        """Mean and scale of the standardisation on the host (for the saved model)."""
        return {"mean": self.scaler_mean, "scale": self.scaler_scale}

    def pca_params(self, backend: Backend) -> dict[str, np.ndarray]:
        """Mean and the kept components of the PCA on the host (for the saved model)."""
        components = backend.to_host(self.pca.components_)[: self.n_components]
        return {"mean": backend.to_numpy(self.pca.mean_, np.float64),
                "components": np.asarray(components, dtype=np.float64)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_users": int(self.X_scaled.shape[0]),
            "n_features": len(self.feature_names),
            "n_components": self.n_components,
            "retained_variance": self.retained_variance,
            "explained_variance_ratio": [float(v) for v in self.explained_variance_ratio],
            "zero_variance_features": list(self.zero_variance_features),
        }


def components_for_variance(explained_variance_ratio: np.ndarray, target: float) -> int:
    """Fewest leading components whose cumulative explained variance reaches ``target``."""
    cumulative = np.cumsum(explained_variance_ratio)
    # A float sum may stop a hair short of 1.0; a target of 1.0 then means "every component".
    reached = np.flatnonzero(cumulative >= target - 1e-12)
    return int(reached[0]) + 1 if reached.size else len(explained_variance_ratio)


def constant_features(variances: np.ndarray, means: np.ndarray, n_users: int) -> np.ndarray:
    """Which features are constant over ``n_users`` users, from their variances and means.

    A constant column's variance is rounding noise, not 0 (e.g. hour_sin when
    every order is at one hour); scikit-learn's own bound for "constant" tells
    the two apart.
    """
    eps = np.finfo(np.float64).eps
    return variances <= n_users * eps * variances + (n_users * means * eps) ** 2


def check_users(n_users: int) -> None:
    """Refuse fewer than two users: nothing to scale or segment."""
    if n_users < 2:
        raise GpusegError(
            f"{n_users} user(s) left after filtering; segmentation needs at least 2 "
            f"(lower {option('min_orders')} or supply more data)")


def components_to_fit(n_users: int, n_features: int, pca_components: int | None) -> int:
    """Components a PCA of this data has (all are fitted), refusing a fixed count above it."""
    n_fit = min(n_users, n_features)
    if pca_components is not None and pca_components > n_fit:
        raise GpusegError(
            f"{setting('pca_components', pca_components)} exceeds the {n_fit} components this "
            f"data has ({n_users} users x {n_features} features)")
    return n_fit


@dataclass(frozen=True)
class Standardised:
    """The standardised feature matrix and what scaling found (first half of preprocessing)."""

    user_ids: Any
    feature_names: tuple[str, ...]
    X_scaled: Any
    mean: np.ndarray
    scale: np.ndarray
    zero_variance_features: tuple[str, ...]


def standardise(features: Any, backend: Backend) -> Standardised:
    """Scale every feature to zero mean and unit variance (constant features to 0).

    A feature counts as constant by scikit-learn's rounding bound, not by an
    exact zero variance: the mean of identical values may differ from them in
    the last bit, and a scaler that divides by that noise's square root (cuML's
    does; it treats only an exact 0.0 as constant) turns a constant column into
    unit-variance noise that PCA and KMeans would then fit. Constant columns
    are therefore set to 0 here and saved with a scale of 1, on every backend,
    so that ``assign`` on other data divides by 1 rather than by ~1e-17.

    Parameters
    ----------
    features : DataFrame
        Backend dataframe indexed by user_id (already filtered by min_orders).
    backend : Backend
    """
    n_users = features.shape[0]
    check_users(n_users)
    X = backend.asarray(features, dtype="float64")
    scaler = backend.StandardScaler()
    X_scaled = scaler.fit_transform(X)
    variances = backend.to_numpy(scaler.var_, np.float64)
    means = backend.to_numpy(scaler.mean_, np.float64)
    constant = constant_features(variances, means, n_users)
    scale = backend.to_numpy(scaler.scale_, np.float64).copy()
    scale[constant] = 1.0
    if constant.any():
        X_scaled[:, backend.asarray(np.flatnonzero(constant))] = 0.0
    feature_names = tuple(str(c) for c in features.columns)
    zero_variance = tuple(name for name, flat in zip(feature_names, constant) if flat)
    return Standardised(user_ids=backend.asarray(features.index), feature_names=feature_names,
                        X_scaled=X_scaled, mean=means, scale=scale,
                        zero_variance_features=zero_variance)


def project(scaled: Standardised, backend: Backend, *, pca_variance: float = 0.95,
            pca_components: int | None = None) -> Preprocessed:
    """PCA of the standardised features, cut at a variance target or a fixed count.

    Parameters
    ----------
    scaled : Standardised
    backend : Backend
    pca_variance : float
        Variance share the kept components must reach (ignored if ``pca_components``).
    pca_components : int, optional
        Fixed number of components.
    """
    n_users, n_features = scaled.X_scaled.shape
    n_fit = components_to_fit(n_users, n_features, pca_components)
    # cuML's PCA takes an integer count only: fit every component, then choose the count.
    pca = backend.PCA(n_components=n_fit)
    X_all = pca.fit_transform(scaled.X_scaled)
    ratio = backend.to_numpy(pca.explained_variance_ratio_, np.float64)
    ratio = np.nan_to_num(ratio)  # all-constant input gives 0/0 ratios
    n_keep = pca_components or components_for_variance(ratio, pca_variance)
    return Preprocessed(
        user_ids=scaled.user_ids,
        feature_names=scaled.feature_names,
        X_scaled=scaled.X_scaled,
        X_pca=X_all[:, :n_keep],
        scaler_mean=scaled.mean,
        scaler_scale=scaled.scale,
        pca=pca,
        n_components=n_keep,
        retained_variance=float(ratio[:n_keep].sum()),
        explained_variance_ratio=ratio,
        zero_variance_features=scaled.zero_variance_features,
    )


def preprocess(features: Any, backend: Backend, *, pca_variance: float = 0.95,
               pca_components: int | None = None) -> Preprocessed:
    """Standardise the feature table and project it on its principal components.

    :func:`standardise` then :func:`project` (the pipeline times them as two stages).

    Parameters
    ----------
    features : DataFrame
        Backend dataframe indexed by user_id (already filtered by min_orders).
    backend : Backend
    pca_variance : float
        Variance share the kept components must reach (ignored if ``pca_components``).
    pca_components : int, optional
        Fixed number of components.

    Returns
    -------
    Preprocessed
    """
    return project(standardise(features, backend), backend, pca_variance=pca_variance,
                   pca_components=pca_components)
