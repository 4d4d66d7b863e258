"""Gaussian mixture EM written once over an array namespace, for the GPU (cuML has none).

:class:`GaussianMixtureEM` is scikit-learn's ``GaussianMixture`` algorithm,
step for step, on ``xp`` (numpy or cupy): responsibilities in log space,
log-densities through the Cholesky factors of the precisions, ``reg_covar``
added to every covariance diagonal, the same convergence test on the mean
log-likelihood. It starts from given parameters only (the pipeline starts it
from the KMeans segments), so it draws no random numbers. The RAPIDS backend
hands it out as its ``GaussianMixture``; the CPU backend hands out
scikit-learn's own, and ``tests/test_mixture.py`` holds the numpy run of this
code to scikit-learn's results. The module-level functions are the E-step
that both the pipeline and ``gpuseg assign`` use on fitted parameters.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from ..backend import Backend

CovarianceType = Literal["full", "diag"]
COVARIANCE_TYPES = ("full", "diag")
#: scikit-learn's message when a covariance is not positive definite.
ILL_DEFINED = ("Fitting the mixture model failed because some components have ill-defined "
               "empirical covariance (for instance caused by singleton or collapsed samples). "
               "Try to decrease the number of components, increase reg_covar, or scale the "
               "input data.")


def _check_covariance_type(covariance_type: str) -> None:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)} "
                         f"(got {covariance_type!r})")


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters of the mixture: covariances, means and K - 1 weights (for the BIC)."""
    _check_covariance_type(covariance_type)
    covariance = (n_features * (n_features + 1) // 2 if covariance_type == "full"
                  else n_features)
    return n_components * (covariance + n_features) + n_components - 1


def precision_cholesky(covariances: Any, covariance_type: str, *, xp: ModuleType) -> Any:
    """Cholesky factors ``P`` of the precisions (``P @ P.T`` = inverse covariance).

    ``full``: ``P = inv(L).T`` with ``L`` the lower Cholesky factor of each
    covariance, an upper-triangular matrix as in scikit-learn; ``diag``:
    ``1 / sqrt(variance)``.

    Every covariance is factored in one batched call. On CuPy a matrix that
    is not positive definite raises only under ``cupyx.errstate(linalg="raise")``
    (:class:`GaussianMixtureEM` calls this within its ``linalg_errors``).

    Raises
    ------
    ValueError
        When a covariance is not positive definite (scikit-learn's message).
    """
    _check_covariance_type(covariance_type)
    if covariance_type == "diag":
        if bool((covariances <= 0.0).any()):
            raise ValueError(ILL_DEFINED)
        return 1.0 / xp.sqrt(covariances)
    try:
        lower = xp.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ValueError(ILL_DEFINED) from None
    # A NaN covariance (from a NaN row) may pass a factorisation's pivot test and come back NaN.
    if not bool(xp.isfinite(lower).all()):
        raise ValueError(ILL_DEFINED)
    eye = xp.broadcast_to(xp.eye(int(covariances.shape[1]), dtype=covariances.dtype),
                          covariances.shape).copy()
    return xp.linalg.solve(lower, eye).transpose(0, 2, 1)


def precision_cholesky_from_precisions(precisions: Any, covariance_type: str, *,
                                       xp: ModuleType) -> Any:
    """Upper-triangular ``U`` with ``U @ U.T`` = each precision, as scikit-learn factors it.

    The lower Cholesky factor of the precision with rows and columns reversed,
    reversed back (scikit-learn's ``_compute_precision_cholesky_from_precisions``).
    """
    _check_covariance_type(covariance_type)
    if covariance_type == "diag":
        return xp.sqrt(precisions)
    return xp.linalg.cholesky(precisions[:, ::-1, ::-1])[:, ::-1, ::-1]


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


def gaussian_parameters(X: Any, resp: Any, reg_covar: float, covariance_type: str, *,
                        xp: ModuleType) -> tuple[Any, Any, Any]:
    """The M-step: component sizes, means and covariances from responsibilities.

    ``reg_covar`` is added to every covariance diagonal; sizes get scikit-learn's
    ``10 * eps`` so that an empty component divides by a positive number.
    """
    _check_covariance_type(covariance_type)
    nk = resp.sum(axis=0) + 10 * np.finfo(np.dtype(resp.dtype)).eps
    means = (resp.T @ X) / nk[:, None]
    if covariance_type == "diag":
        covariances = (resp.T @ (X * X)) / nk[:, None] - means ** 2 + reg_covar
        return nk, means, covariances
    n_features = int(X.shape[1])
    blocks = []
    for k in range(int(means.shape[0])):
        diff = X - means[k]
        covariance = ((resp[:, k] * diff.T) @ diff) / nk[k]
        covariance[xp.arange(n_features), xp.arange(n_features)] += reg_covar
        blocks.append(covariance)
    return nk, means, xp.stack(blocks)


class GaussianMixtureEM:
    """A Gaussian mixture fitted by EM, with scikit-learn's ``GaussianMixture`` API and results.

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "diag"}
    tol : float
        EM stops when the mean log-likelihood changes by less than this.
    reg_covar : float
        Added to every covariance diagonal, keeping each positive definite.
    max_iter : int
        At most this many EM iterations (at least 1).
    weights_init, means_init, precisions_init : arrays
        The starting mixture (all three are required: this EM does not
        initialise itself); precisions are inverse covariances, shaped
        (K, d, d) for ``full`` and (K, d) for ``diag``.
    xp : module
        numpy or cupy; the arrays handed to :meth:`fit` live there.
    linalg_errors : callable returning a context manager
        The factorisations run within ``linalg_errors()``: where a failed
        factorisation does not raise by default (CuPy, whose ``cholesky``
        returns what cuSOLVER left), the caller passes the context that makes
        it raise, so EM stops with scikit-learn's message instead of carrying
        on with a bad factor. numpy raises anyway.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_cholesky_ : arrays
        The fitted mixture.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood at the last E-step of the fit (before its M-step),
        as scikit-learn reports it.
    """

    def __init__(self, n_components: int, *, covariance_type: CovarianceType = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 weights_init: Any, means_init: Any, precisions_init: Any,
                 xp: ModuleType = np,
                 linalg_errors: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.xp = xp
        self.linalg_errors = linalg_errors

    def _validate_parameters(self) -> None:
        _check_covariance_type(self.covariance_type)
        if self.n_components < 1:
            raise ValueError(f"n_components must be at least 1 (got {self.n_components})")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1 (got {self.max_iter})")
        if self.reg_covar < 0:
            raise ValueError(f"reg_covar must be non-negative (got {self.reg_covar})")

    def fit(self, X: Any, y: Any = None) -> GaussianMixtureEM:
        """Run EM from the given parameters until the log-likelihood settles or max_iter."""
        xp = self.xp
        self._validate_parameters()
        if int(X.shape[0]) < self.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {int(X.shape[0])}")
        dtype = X.dtype
        self.weights_ = xp.asarray(self.weights_init, dtype=dtype)
        self.means_ = xp.asarray(self.means_init, dtype=dtype)
        with self.linalg_errors():
            self.precisions_cholesky_ = precision_cholesky_from_precisions(
                xp.asarray(self.precisions_init, dtype=dtype), self.covariance_type, xp=xp)
        lower_bound = -math.inf
        self.converged_ = False
        self.n_iter_ = 0
        while self.n_iter_ < self.max_iter:
            self.n_iter_ += 1
            previous = lower_bound
            log_likelihood, log_resp = log_responsibilities(
                X, self.weights_, self.means_, self.precisions_cholesky_, self.covariance_type,
                xp=xp)
            nk, self.means_, self.covariances_ = gaussian_parameters(
                X, xp.exp(log_resp), self.reg_covar, self.covariance_type, xp=xp)
            self.weights_ = nk / nk.sum()
            with self.linalg_errors():
                self.precisions_cholesky_ = precision_cholesky(self.covariances_,
                                                               self.covariance_type, xp=xp)
            # One scalar per iteration leaves the device: the convergence test needs it.
            lower_bound = float(log_likelihood.mean())
            if abs(lower_bound - previous) < self.tol:
                self.converged_ = True
                break
        self.lower_bound_ = lower_bound
        return self

    def _log_resp(self, X: Any) -> tuple[Any, Any]:
        return log_responsibilities(X, self.weights_, self.means_, self.precisions_cholesky_,
                                    self.covariance_type, xp=self.xp)

    def predict_proba(self, X: Any) -> Any:
        """Posterior probability of each component for each row."""
        return self.xp.exp(self._log_resp(X)[1])

    def predict(self, X: Any) -> Any:
        """Most probable component of each row."""
        return self._log_resp(X)[1].argmax(axis=1)

    def score_samples(self, X: Any) -> Any:
        """Log-likelihood of each row."""
        return self._log_resp(X)[0]

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood of the rows."""
        return float(self.score_samples(X).mean())

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X`` (lower is better), scikit-learn's formula."""
        n = int(X.shape[0])
        k, d = (int(s) for s in self.means_.shape)
        return -2.0 * self.score(X) * n + n_parameters(k, d, self.covariance_type) * math.log(n)


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
    """Log-likelihood and log posteriors of users in PCA space under a fitted mixture.

    The one computation behind every membership: the run's, the distributed
    run's map over partitions and ``gpuseg assign``'s from a saved model.
    """
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
