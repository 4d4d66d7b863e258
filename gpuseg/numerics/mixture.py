"""The Gaussian mixture of a format-2 or -3 model: its E-step, over ``xp`` (numpy or CuPy).

Runs before model format 4 fitted a Gaussian mixture (one component per
segment) and gave each shopper its posterior as the membership; the run now
gives a calibrated certainty instead (:mod:`gpuseg.numerics.certainty`), and
``gpuseg assign`` still reads the older models: these functions compute their
memberships exactly as the run that saved them did (responsibilities in log
space, log-densities through the Cholesky factors of the precisions, as
scikit-learn's ``GaussianMixture`` computes them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..backend import Backend

COVARIANCE_TYPES = ("full", "diag")


def _check_covariance_type(covariance_type: str) -> None:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)} "
                         f"(got {covariance_type!r})")


def log_gaussian_prob(X: Any, means: Any, precisions_cholesky: Any, covariance_type: str, *,
                      xp: ModuleType) -> Any:
    """Log-density of every row under every component, shape (n_samples, n_components).

    With ``P`` the precision's Cholesky factor, ``log N(x) = -(d log 2 pi + |(x - mu) P|^2) / 2
    + log det P``: one triangular-factor product per component, no inverse.
    """
    n_features = int(X.shape[1])
    if covariance_type == "full":
        log_det = xp.log(xp.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
        squared = xp.stack([((X @ P - mu @ P) ** 2).sum(axis=1)
                            for mu, P in zip(means, precisions_cholesky)], axis=1)
    else:
        _check_covariance_type(covariance_type)
        log_det = xp.log(precisions_cholesky).sum(axis=1)
        precisions = precisions_cholesky ** 2
        squared = ((means ** 2 * precisions).sum(axis=1) - 2.0 * (X @ (means * precisions).T)
                   + (X ** 2) @ precisions.T)
    return -0.5 * (n_features * math.log(2 * math.pi) + squared) + log_det


def _logsumexp_rows(values: Any, *, xp: ModuleType) -> Any:
    top = values.max(axis=1, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0.0)
    return xp.log(xp.exp(values - top).sum(axis=1)) + top[:, 0]


def log_responsibilities(X: Any, weights: Any, means: Any, precisions_cholesky: Any,
                         covariance_type: str, *, xp: ModuleType) -> tuple[Any, Any]:
    """The E-step: each row's log-likelihood and its log posterior over the components.

    Returns
    -------
    log_likelihood : array, shape (n_samples,)
        ``log sum_k w_k N(x | k)``.
    log_resp : array, shape (n_samples, n_components)
        ``log P(k | x)``; ``exp`` of a row sums to 1.
    """
    weighted = log_gaussian_prob(X, means, precisions_cholesky, covariance_type, xp=xp) \
        + xp.log(weights)
    log_likelihood = _logsumexp_rows(weighted, xp=xp)
    return log_likelihood, weighted - log_likelihood[:, None]


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


def e_step(X: Any, mixture: MixtureParams, backend: Backend) -> tuple[Any, Any]:
    """Log-likelihood and log posteriors of users in PCA space under a saved mixture."""
    def on(array: np.ndarray) -> Any:
        return backend.asarray(array, dtype=np.float64)

    return log_responsibilities(X @ on(mixture.basis).T, on(mixture.weights), on(mixture.means),
                                on(mixture.precisions_cholesky), mixture.covariance_type,
                                xp=backend.xp)


def membership_columns(log_resp: Any, labels: Any, *, xp: Any) -> tuple[Any, Any, Any]:
    """Own-segment posterior, the most probable other segment and its posterior.

    Parameters
    ----------
    log_resp : backend array, shape (n_users, k)
        Log posteriors over the components, component j beside segment j.
    labels : backend int array, shape (n_users,)
        Each user's segment.
    """
    resp = xp.exp(log_resp)
    rows = xp.arange(int(resp.shape[0]))
    own = resp[rows, labels]
    others = resp.copy()
    others[rows, labels] = -1.0
    second = others.argmax(axis=1)
    return own, second.astype(xp.int32), others[rows, second]
