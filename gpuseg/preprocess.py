"""Scaling and dimensionality reduction: standardise every feature, cap it, then PCA to a variance target.

Both are fitted from sums over every user's rows, through a row source
(:mod:`gpuseg.rows`), so one process and a run across Dask workers compute the
same numbers the same way: column sums and squared deviations for the scaler;
the Gram matrix of the standardised features for the PCA, whose covariance is
then eigendecomposed on the host (scikit-learn's ``covariance_eigh`` solver,
cuML's ``full`` one). Signs follow scikit-learn: each component's largest
loading is positive. Between the two, standardised values are clipped to
``[-cap, cap]`` (``feature_cap``, :data:`gpuseg.config.FEATURE_CAP` says why):
the scaler's mean and scale are those of the features as they are, and the
PCA (and everything after it) sees the capped values. Applying either is a block function (every user's rows,
wherever they are). :func:`preprocess` runs both on a table in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Array, Backend
from .config import FEATURE_CAP, option, setting
from .errors import GpusegError
from .rows import Column, InMemoryRows, RowSource


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


# -- block functions (every user's rows, wherever they are) ---------------------------------------
def column_sums(backend: Backend, X: Array) -> np.ndarray:
    """A block's column sums (host)."""
    return backend.to_numpy(X.sum(axis=0), np.float64)


def squared_deviations(backend: Backend, X: Array, mean: np.ndarray) -> np.ndarray:
    """A block's per-column sums of squared deviations from ``mean`` (host)."""
    return backend.to_numpy(((X - backend.xp.asarray(mean)) ** 2).sum(axis=0), np.float64)


def standardise_block(backend: Backend, X: Array, mean: np.ndarray, scale: np.ndarray,
                      constant: np.ndarray, cap: float | None = None) -> Array:
    """``(x - mean) / scale`` clipped to ``[-cap, cap]`` (unless ``cap`` is None), with the
    constant features set to 0."""
    xp = backend.xp
    scaled = (X - xp.asarray(mean)) / xp.asarray(scale)
    if cap is not None:
        scaled = xp.clip(scaled, -cap, cap)
    if constant.any():
        scaled[:, xp.asarray(np.flatnonzero(constant))] = 0.0
    return scaled


def capped_counts(backend: Backend, X: Array, mean: np.ndarray, scale: np.ndarray,
                  cap: float) -> np.ndarray:
    """A block's per-column count of standardised values beyond ``cap`` (host)."""
    xp = backend.xp
    beyond = xp.abs((X - xp.asarray(mean)) / xp.asarray(scale)) > cap
    return backend.to_numpy(beyond.sum(axis=0), np.float64)


def gram_block(backend: Backend, X: Array) -> np.ndarray:
    """A block's ``X.T @ X`` with its column sums as one more row: shape (p + 1, p), host."""
    return backend.to_numpy(backend.xp.concatenate([X.T @ X, X.sum(axis=0)[None, :]]),
                            np.float64)


def project_block(backend: Backend, X: Array, mean: np.ndarray, components: np.ndarray) -> Array:
    """Principal-component scores of a block: ``(x - mean) @ components.T``."""
    xp = backend.xp
    return (X - xp.asarray(mean)) @ xp.asarray(components).T


# -- fits from sums over the rows -----------------------------------------------------------------
@dataclass(frozen=True)
class Scaler:
    """What standardising found: per-feature mean, variance (ddof 0), scale and constant flags,
    and the cap on the standardised values (``None``: none).

    The scale is the standard deviation, 1 where it is (near) zero and for the
    constant features, whose scaled values are 0: a scaler that divides by a
    constant column's rounding noise (cuML's treats only an exact 0.0 as
    constant) turns it into unit-variance noise that PCA and KMeans would then
    fit, and ``assign`` on other data would divide by ~1e-17.
    """

    mean: np.ndarray
    variance: np.ndarray
    scale: np.ndarray
    constant: np.ndarray
    cap: float | None = None
    #: Per feature, the users whose standardised value lies beyond the cap (zeros without one).
    capped: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        """Keywords of :func:`standardise_block`."""
        return {"mean": self.mean, "scale": self.scale, "constant": self.constant,
                "cap": self.cap}


def fit_scaler(rows: RowSource, X: Column, *, cap: float | None = None) -> Scaler:
    """The standardisation of ``X``'s columns over every user of ``rows`` (two passes), whose
    values are then capped at ``cap`` standard deviations."""
    n_users = rows.n_users
    check_users(n_users)
    mean = rows.sum(column_sums, X) / n_users
    variance = rows.sum(squared_deviations, X, mean=mean) / n_users
    constant = constant_features(variance, mean, n_users)
    scale = np.sqrt(variance)
    scale[(scale < 10 * np.finfo(np.float64).eps) | constant] = 1.0
    capped = np.zeros_like(mean)
    if cap is not None:
        capped = rows.sum(capped_counts, X, mean=mean, scale=scale, cap=cap)
        capped[constant] = 0.0
    return Scaler(mean=mean, variance=variance, scale=scale, constant=constant, cap=cap,
                  capped=capped)


@dataclass(frozen=True)
class Pcs:
    """The principal components of the standardised features (every component fitted).

    Attributes
    ----------
    mean : numpy.ndarray
        Column means of the standardised features (subtracted before projecting).
    components : numpy.ndarray, shape (n_fit, n_features)
        Every component, largest variance first.
    explained_variance, explained_variance_ratio : numpy.ndarray
    n_components : int
        Components kept (the variance target, or a fixed count).
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    n_components: int

    @property
    def kept(self) -> np.ndarray:
        return self.components[:self.n_components]

    @property
    def retained_variance(self) -> float:
        return float(self.explained_variance_ratio[:self.n_components].sum())


def fit_pca(rows: RowSource, X_scaled: Column, n_features: int, *, pca_variance: float,
            pca_components: int | None) -> Pcs:
    """PCA of the standardised features from their Gram matrix summed over the rows."""
    n_users = rows.n_users
    n_fit = components_to_fit(n_users, n_features, pca_components)
    summed = rows.sum(gram_block, X_scaled)
    gram, sums = summed[:-1], summed[-1]
    mean = sums / n_users
    covariance = (gram - n_users * np.outer(mean, mean)) / max(n_users - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:n_fit]
    components = vectors[:, order].T
    largest = np.abs(components).argmax(axis=1)
    components *= np.sign(components[np.arange(n_fit), largest])[:, None]
    variance = np.clip(values[order], 0.0, None)
    total = float(np.clip(values, 0.0, None).sum())
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    n_keep = pca_components or components_for_variance(ratio, pca_variance)
    return Pcs(mean=mean, components=components, explained_variance=variance,
               explained_variance_ratio=ratio, n_components=n_keep)


# -- a table in memory ------------------------------------------------------------------------
@dataclass(frozen=True)
class Preprocessed:
    """A feature table in memory, standardised and projected (see :func:`preprocess`)."""

    user_ids: Any
    feature_names: tuple[str, ...]
    X_scaled: Any
    X_pca: Any
    scaler: Scaler
    pcs: Pcs

    @property
    def n_components(self) -> int:
        return self.pcs.n_components

    @property
    def retained_variance(self) -> float:
        return self.pcs.retained_variance

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        return self.pcs.explained_variance_ratio

    @property
    def zero_variance_features(self) -> tuple[str, ...]:
        return tuple(name for name, flat in zip(self.feature_names, self.scaler.constant)
                     if flat)

    def scaler_params(self) -> dict[str, Any]:
        """Mean, scale and cap of the standardisation (for a saved model)."""
        return {"mean": self.scaler.mean, "scale": self.scaler.scale, "cap": self.scaler.cap}

    def pca_params(self) -> dict[str, np.ndarray]:
        """Mean and the kept components of the PCA (for a saved model)."""
        return {"mean": self.pcs.mean, "components": self.pcs.kept}


def preprocess(features: Any, backend: Backend, *, pca_variance: float = 0.95,
               pca_components: int | None = None,
               feature_cap: float | None = FEATURE_CAP) -> Preprocessed:
    """Standardise a feature table in memory, cap it and project it on its principal components.

    Parameters
    ----------
    features : DataFrame
        Backend dataframe indexed by user_id (already filtered by min_orders).
    backend : Backend
    pca_variance : float
        Variance share the kept components must reach (ignored if ``pca_components``).
    pca_components : int, optional
        Fixed number of components.
    feature_cap : float or None
        Cap on the standardised values (``None``: none), as a run's ``feature_cap``.

    Returns
    -------
    Preprocessed
    """
    X = backend.asarray(features, dtype="float64")
    rows = InMemoryRows(backend, int(X.shape[0]))
    scaler = fit_scaler(rows, X, cap=feature_cap)
    X_scaled = standardise_block(backend, X, **scaler.params())
    pcs = fit_pca(rows, X_scaled, int(X.shape[1]), pca_variance=pca_variance,
                  pca_components=pca_components)
    return Preprocessed(user_ids=backend.asarray(features.index),
                        feature_names=tuple(str(c) for c in features.columns),
                        X_scaled=X_scaled,
                        X_pca=project_block(backend, X_scaled, pcs.mean, pcs.kept),
                        scaler=scaler, pcs=pcs)

