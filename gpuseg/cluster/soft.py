"""Soft membership: how surely each shopper belongs to its KMeans segment, from a Gaussian mixture.

After KMeans, a Gaussian mixture with one component per segment is fitted on
the PCA space, component k starting from segment k (its centroid, its share of
the users and its covariance). The posterior probability of a shopper's own
segment is its ``membership``; the most probable other segment and its
probability say which persona the shopper leans to next.

By default the mixture is fitted in the K-1 directions along which the
segment centroids differ (``gmm_space="centroids"``), not in all ~125
principal components (``"pca"``). Measured on synthetic shoppers (17,000
users, 5 segments, full covariances): in the whole PCA space EM models the
within-segment shape of skewed shopping features and walks away from the
segments (planted personas recovered by KMeans with ARI 1.00 fall to 0.58 by
the mixture's most likely components; on realistic data 74% of users end up
"belonging" to another segment's component) and takes 50-100 s on two CPU
cores; in the centroid directions, projections of many features each and so
close to Gaussian, memberships stay with the segments (strong: mean 1.00;
realistic: mean 0.71, 27% between personas) and EM converges in a few
iterations in well under a second. The mixture is fitted
with the backend's ``GaussianMixture`` (scikit-learn on the CPU,
:class:`~gpuseg.numerics.mixture.GaussianMixtureEM` on CuPy on the GPU),
optionally on a seeded sample, and every user's memberships come from one
E-step over ``xp`` (:func:`~gpuseg.numerics.mixture.log_responsibilities`), the
same function ``gpuseg assign`` applies to a saved model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import option, setting
from ..errors import GpusegError
from ..numerics.arrays import finite_or_none
from ..numerics.mixture import (
    MixtureParams,
    e_step,
    gaussian_parameters,
    membership_columns,
    n_parameters,
)
from .checks import check_matrix

if TYPE_CHECKING:
    from ..backend import Backend

#: Below this membership a shopper counts as "between personas": the mixture gives at least
#: 40% to other segments, so no single persona's actions fit them well.
BETWEEN_PERSONAS = 0.6
#: scikit-learn's default covariance regularisation, added to every diagonal.
REG_COVAR = 1e-6


@dataclass(frozen=True)
class SoftFit:
    """Each user's membership of its segment, and what the mixture says overall.

    Attributes
    ----------
    membership : numpy float64 array, shape (n_users,)
        Posterior probability of the user's own KMeans segment.
    second_segment : numpy int32 array, shape (n_users,)
        The most probable other segment.
    second_membership : numpy float64 array, shape (n_users,)
        Its posterior probability.
    mixture : MixtureParams
        The fitted mixture (host arrays), component k beside segment k.
    space : str
        ``"centroids"`` or ``"pca"``: where the mixture was fitted.
    mean_membership : dict of int to float
        Mean membership of each segment's users.
    between_share : float
        Share of users whose membership is below :data:`BETWEEN_PERSONAS`.
    disagree_share : float
        Share of users whose most probable component is not their KMeans segment.
    log_likelihood : float
        Mean log-likelihood per user under the mixture, over every user.
    bic : float
        Bayesian information criterion over every user (scikit-learn's formula).
    n_iter : int
        EM iterations.
    converged : bool
        Whether EM met its tolerance within its iteration limit.
    n_fit : int
        Users the mixture was fitted on.
    n_users : int
    """

    membership: Any
    second_segment: Any
    second_membership: Any
    mixture: MixtureParams
    space: str
    mean_membership: dict[int, float]
    between_share: float
    disagree_share: float
    log_likelihood: float
    bic: float
    n_iter: int
    converged: bool
    n_fit: int
    n_users: int

    def to_dict(self) -> dict[str, Any]:
        """Host summary; per-user arrays and the mixture's parameters stay out."""
        return {"covariance_type": self.mixture.covariance_type, "space": self.space,
                "dimensions": int(self.mixture.basis.shape[0]),
                "mean_membership": {str(k): finite_or_none(v)
                                    for k, v in self.mean_membership.items()},
                "between_threshold": BETWEEN_PERSONAS,
                "between_share": self.between_share, "disagree_share": self.disagree_share,
                "log_likelihood": finite_or_none(self.log_likelihood),
                "bic": finite_or_none(self.bic), "n_iter": self.n_iter,
                "converged": self.converged,
                "fit_sample": None if self.n_fit == self.n_users else self.n_fit}


def membership_summary(own: Any, labels: Any, disagree: Any, total_log_likelihood: float, *,
                       k: int, d: int, covariance_type: str, xp: Any) -> dict[str, Any]:
    """The :class:`SoftFit` fields that summarise every user's memberships.

    ``disagree`` marks the users whose most probable component is not their
    segment's; ``d`` is the number of dimensions the mixture was fitted in.
    """
    n = int(own.shape[0])
    counts = xp.bincount(labels, minlength=k)
    per_segment = (xp.bincount(labels, weights=own, minlength=k) / xp.maximum(counts, 1)).tolist()
    return {"mean_membership": {j: float(v) for j, v in enumerate(per_segment)},
            "between_share": int(xp.count_nonzero(own < BETWEEN_PERSONAS)) / n,
            "disagree_share": int(xp.count_nonzero(disagree)) / n,
            "log_likelihood": total_log_likelihood / n,
            "bic": -2.0 * total_log_likelihood + n_parameters(k, d, covariance_type) * math.log(n),
            "n_users": n}


def segment_basis(centroids: Any, *, xp: Any) -> Any:
    """Orthonormal rows spanning the directions along which the centroids differ.

    The right singular vectors of the centred centroids with a non-negligible
    singular value: K-1 rows for K distinct centroids in general position.
    """
    centred = centroids - centroids.mean(axis=0)
    _, singular, vt = xp.linalg.svd(centred, full_matrices=False)
    top = float(singular.max()) if int(singular.shape[0]) else 0.0
    keep = singular > max(top, 1.0) * 1e-10
    if not bool(keep.any()):
        # Identical centroids differ along no direction; one axis keeps the mixture defined.
        return xp.eye(1, int(centroids.shape[1]), dtype=centroids.dtype)
    return vt[keep]


def _initial_mixture(X_fit: Any, labels_fit: Any, centroids: Any, k: int, covariance_type: str,
                     *, xp: Any) -> tuple[Any, Any, Any]:
    """Weights, means and precisions of component j = segment j on the fitted users."""
    one_hot = (labels_fit[:, None] == xp.arange(k)[None, :]).astype(X_fit.dtype)
    nk, _, covariances = gaussian_parameters(X_fit, one_hot, REG_COVAR, covariance_type, xp=xp)
    if covariance_type == "diag":
        precisions = 1.0 / covariances
    else:
        inverse = xp.linalg.inv(covariances)
        # Symmetric to the last bit: scikit-learn checks that a given precision is symmetric.
        precisions = (inverse + inverse.transpose(0, 2, 1)) / 2
    return nk / nk.sum(), centroids.astype(X_fit.dtype), precisions


@dataclass(frozen=True)
class MixtureFit:
    """A Gaussian mixture fitted from the segments, before every user's E-step."""

    mixture: MixtureParams
    space: str
    n_iter: int
    converged: bool
    n_fit: int


def fit_mixture(X: Any, labels: Any, centroids: Any, backend: Backend, *,
                covariance_type: str = "full", space: str = "centroids",
                seed: int) -> MixtureFit:
    """Fit a Gaussian mixture on the users ``X`` holds, component j started from segment j.

    The soft-membership stage hands it a seeded sample (20,000 users on a
    CPU): full-covariance EM over ~130 components costs seconds per iteration
    at Instacart scale on two CPU cores, and the sample fixes the same
    components; every user's memberships then come from one E-step
    (:func:`membership_block`).

    Parameters
    ----------
    X : backend array, shape (n_fit, n_components)
        Users in PCA space.
    labels : backend int array, shape (n_fit,)
        KMeans segment of each user, 0..k-1.
    centroids : backend array, shape (k, n_components)
        KMeans centroids; component j starts at centroid j.
    backend : Backend
    covariance_type : {"full", "diag"}
    space : {"centroids", "pca"}
        Fit in the directions the centroids differ along (see the module's
        notes for why that is the default), or in every principal component.
    seed : int
        Passed to the mixture (EM itself draws nothing: it starts from the segments).

    Returns
    -------
    MixtureFit

    Raises
    ------
    GpusegError
        When a component's covariance is not positive definite (too few users
        in a segment for its covariance): the message names the options.
    """
    xp = backend.xp
    check_matrix(X, "the Gaussian mixture")
    k = int(centroids.shape[0])
    if space not in ("centroids", "pca"):
        raise GpusegError(f"{option('gmm_space')} must be centroids or pca (got {space!r})")
    basis = (segment_basis(centroids, xp=xp) if space == "centroids"
             else xp.eye(int(X.shape[1]), dtype=X.dtype))
    # Orthonormal rows: the projection keeps distances within the fitted directions.
    Z_fit = X @ basis.T
    weights, means, precisions = _initial_mixture(Z_fit, labels, centroids @ basis.T, k,
                                                  covariance_type, xp=xp)
    try:
        model = backend.GaussianMixture(k, covariance_type=covariance_type, reg_covar=REG_COVAR,
                                        weights_init=weights, means_init=means,
                                        precisions_init=precisions, random_state=seed).fit(Z_fit)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise GpusegError(
            f"the Gaussian mixture could not be fitted ({exc}); a segment has too few users "
            f"for a full covariance: use {setting('gmm_covariance', 'diag')}, raise "
            f"{option('gmm_sample')} or lower {option('k')}") from None
    # The fitted parameters go to the host once, for the saved model; every user's E-step runs
    # on those same float64 values, so gpuseg assign reproduces every membership of the run.
    mixture = MixtureParams(
        covariance_type=covariance_type, basis=backend.to_numpy(basis, np.float64),
        weights=backend.to_numpy(backend.asarray(model.weights_), np.float64),
        means=backend.to_numpy(backend.asarray(model.means_), np.float64),
        precisions_cholesky=backend.to_numpy(backend.asarray(model.precisions_cholesky_),
                                             np.float64))
    return MixtureFit(mixture=mixture, space=space, n_iter=int(model.n_iter_),
                      converged=bool(model.converged_), n_fit=int(Z_fit.shape[0]))


def membership_block(backend: Backend, X: Any, labels: Any, mixture: MixtureParams) -> Any:
    """The E-step for a block of users: (n, 4) own membership, the next segment, its
    membership and each user's log-likelihood."""
    xp = backend.xp
    if X.shape[0] == 0:
        return xp.empty((0, 4), dtype=xp.float64)
    log_likelihood, log_resp = e_step(X, mixture, backend)
    own, second, second_p = membership_columns(log_resp, labels.astype(xp.int64), xp=xp)
    return xp.stack([own, second.astype(xp.float64), second_p, log_likelihood], axis=1)


def soft_fit(columns: np.ndarray, labels: np.ndarray, fit: MixtureFit) -> SoftFit:
    """Every user's memberships (host columns of :func:`membership_block`) and their summary."""
    own, second, second_p, log_likelihood = columns.T
    mixture = fit.mixture
    # The most probable component is another segment's exactly when the next segment's
    # posterior beats the user's own.
    summary = membership_summary(own, labels, second_p > own, float(log_likelihood.sum()),
                                 k=int(mixture.weights.shape[0]), d=int(mixture.basis.shape[0]),
                                 covariance_type=mixture.covariance_type, xp=np)
    return SoftFit(membership=own, second_segment=second.astype(np.int32),
                   second_membership=second_p, mixture=mixture, space=fit.space,
                   n_iter=fit.n_iter, converged=fit.converged, n_fit=fit.n_fit, **summary)


def soft_membership(X: Any, labels: Any, centroids: Any, backend: Backend, *,
                    covariance_type: str = "full", space: str = "centroids",
                    seed: int) -> SoftFit:
    """Fit the mixture on every user in memory and give each its memberships (host columns).

    See :func:`fit_mixture`; the soft-membership stage does the same over any
    row source, fitted on its seeded sample.
    """
    fit = fit_mixture(X, labels, centroids, backend, covariance_type=covariance_type,
                      space=space, seed=seed)
    columns = backend.to_numpy(membership_block(backend, X, labels, fit.mixture), np.float64)
    return soft_fit(columns, backend.to_numpy(labels, np.int64), fit)
