"""Soft membership: gpuseg's EM against scikit-learn's, and the memberships the pipeline derives.

The EM over ``xp`` (``gpuseg.numerics.mixture``) is what the GPU backend fits
its mixture with; its numpy run here, held to scikit-learn's GaussianMixture
from the same starting mixture, is the proof that the CuPy run computes the
same thing.
"""
from __future__ import annotations

import json

import _stages
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from gpuseg.cluster import BETWEEN_PERSONAS, soft_membership
from gpuseg.cluster.soft import segment_basis
from gpuseg.config import PipelineConfig
from gpuseg.errors import GpusegError
from gpuseg.numerics.mixture import GaussianMixtureEM, gaussian_parameters, n_parameters
from gpuseg.stages.kmeans import KMeans as KMeansStage
from gpuseg.stages.soft import Soft


@pytest.fixture(scope="module")
def overlapping():
    """Four correlated, overlapping groups in 6 dimensions: EM needs many steps from KMeans."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=2.5, size=(4, 6))
    groups = rng.integers(0, 4, 2_000)
    mixing = [rng.normal(size=(6, 6)) * scale for scale in (0.5, 1.0, 0.8, 0.4)]
    X = np.stack([centres[g] + rng.normal(size=6) @ mixing[g] for g in groups])
    labels = KMeans(4, n_init=4, random_state=0).fit_predict(X)
    return X, labels


def _start(X, labels, covariance_type):
    """The mixture of the KMeans segments: shares, means and inverse covariances."""
    nk, means, covariances = gaussian_parameters(X, np.eye(4)[labels], 1e-6, covariance_type,
                                                 xp=np)
    precisions = (np.linalg.inv(covariances) if covariance_type == "full" else 1 / covariances)
    if covariance_type == "full":
        precisions = (precisions + precisions.transpose(0, 2, 1)) / 2
    return {"weights_init": nk / nk.sum(), "means_init": means, "precisions_init": precisions}


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_matches_scikit_learn_from_the_same_start(overlapping, covariance_type):
    X, labels = overlapping
    start = _start(X, labels, covariance_type)
    # A tight tolerance, so that the comparison covers many EM steps, not the first few.
    tight = {"tol": 1e-7, "max_iter": 1_000}
    reference = GaussianMixture(4, covariance_type=covariance_type, **tight, **start).fit(X)
    ours = GaussianMixtureEM(4, covariance_type=covariance_type, **tight, **start).fit(X)
    assert reference.n_iter_ >= 10
    assert ours.n_iter_ == reference.n_iter_ and ours.converged_ == reference.converged_
    np.testing.assert_allclose(ours.weights_, reference.weights_, atol=1e-5)
    np.testing.assert_allclose(ours.means_, reference.means_, atol=1e-5)
    np.testing.assert_allclose(ours.covariances_, reference.covariances_, atol=1e-5)
    assert ours.lower_bound_ == pytest.approx(reference.lower_bound_, abs=1e-6)
    assert ours.score(X) == pytest.approx(reference.score(X), abs=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), reference.predict(X))
    assert ours.bic(X) == pytest.approx(reference.bic(X), rel=1e-9)
    assert n_parameters(4, 6, covariance_type) == reference._n_parameters()


def test_em_refuses_a_covariance_that_is_not_positive_definite():
    X = np.zeros((50, 3))
    X[:, 0] = np.arange(50)
    start = {"weights_init": np.ones(2) / 2, "means_init": np.zeros((2, 3)),
             "precisions_init": np.stack([np.eye(3)] * 2)}
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixtureEM(2, reg_covar=0.0, **start).fit(X)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixtureEM(2, **start).fit(X[:1])


def _blobs(separation: float, n: int = 1_500, seed: int = 1):
    rng = np.random.default_rng(seed)
    centres = separation * np.eye(3, 8)
    truth = rng.integers(0, 3, n)
    X = centres[truth] + rng.normal(size=(n, 8))
    km = KMeans(3, n_init=4, random_state=0).fit(X)
    return X, km.labels_, km.cluster_centers_


def _soft(backend, X, labels, centroids, **kwargs):
    return soft_membership(backend.from_host(X), backend.from_host(labels),
                           backend.from_host(centroids), backend, seed=0, **kwargs)


def test_memberships_are_each_users_posterior_of_its_own_segment(cpu_backend):
    X, labels, centroids = _blobs(3.0)
    fit = _soft(cpu_backend, X, labels, centroids)
    m = fit.mixture
    # Naive reference: densities of the fitted mixture by scipy, Bayes' rule by hand.
    from scipy.stats import multivariate_normal

    Z = X @ m.basis.T
    covariances = [np.linalg.inv(P @ P.T) for P in m.precisions_cholesky]
    joint = np.stack([w * multivariate_normal(mu, c).pdf(Z)
                      for w, mu, c in zip(m.weights, m.means, covariances)], axis=1)
    posterior = joint / joint.sum(axis=1, keepdims=True)
    rows = np.arange(len(X))
    np.testing.assert_allclose(fit.membership, posterior[rows, labels], atol=1e-9)
    others = posterior.copy()
    others[rows, labels] = -1
    np.testing.assert_array_equal(fit.second_segment, others.argmax(axis=1))
    np.testing.assert_allclose(fit.second_membership, others.max(axis=1), atol=1e-9)
    assert fit.second_segment.dtype == np.int32 and (fit.second_segment != labels).all()
    assert fit.log_likelihood == pytest.approx(np.log(joint.sum(axis=1)).mean(), abs=1e-9)
    assert fit.between_share == pytest.approx(np.mean(posterior[rows, labels] < BETWEEN_PERSONAS))
    assert fit.disagree_share == pytest.approx(np.mean(posterior.argmax(axis=1) != labels))
    for j in range(3):
        assert fit.mean_membership[j] == pytest.approx(posterior[labels == j, j].mean())
    summary = json.loads(json.dumps(fit.to_dict()))
    assert summary["space"] == "centroids" and summary["dimensions"] == 2
    assert summary["fit_sample"] is None and summary["converged"]


def test_separated_segments_are_sure_and_overlapping_ones_are_not(cpu_backend):
    apart = _soft(cpu_backend, *_blobs(12.0))
    close = _soft(cpu_backend, *_blobs(1.5))
    assert min(apart.mean_membership.values()) > 0.99 and apart.between_share < 0.01
    assert close.between_share > 0.2 and np.mean(close.membership) < 0.85


def test_the_centroid_directions_are_orthonormal_and_span_the_centroid_differences():
    centroids = np.random.default_rng(2).normal(size=(5, 12))
    basis = segment_basis(centroids, xp=np)
    assert basis.shape == (4, 12)
    np.testing.assert_allclose(basis @ basis.T, np.eye(4), atol=1e-12)
    differences = centroids[1:] - centroids[0]
    np.testing.assert_allclose(differences @ basis.T @ basis, differences, atol=1e-12)


def test_a_sampled_fit_still_gives_every_user_a_membership_and_the_pca_space_works(cpu_backend):
    X, labels, _ = _blobs(4.0)
    config = PipelineConfig(backend="cpu", seed=0, gmm_sample=500, gmm_covariance="diag",
                            gmm_space="pca")
    fit = _stages.run(Soft(), _stages.state(X, cpu_backend, labels=labels, config=config))
    assert fit.n_fit == 500 and fit.to_dict()["fit_sample"] == 500
    assert fit.mixture.basis.shape == (8, 8) and fit.mixture.precisions_cholesky.shape == (3, 8)
    assert fit.membership.shape == (len(X),) and np.isfinite(fit.membership).all()
    # Every user's membership is the E-step of the sample's mixture (the sample's users too).
    whole = _soft(cpu_backend, X, labels, _stages.state(X, cpu_backend, labels=labels)
                  .outputs[KMeansStage].centroids, covariance_type="diag", space="pca")
    assert np.abs(fit.membership - whole.membership).mean() < 0.02


def test_a_mixture_that_cannot_be_fitted_names_the_options():
    from cpu_fallback.backend import CpuBackend
    from gpuseg.numerics.mixture import ILL_DEFINED

    class Failing:
        def fit(self, X):
            raise ValueError(ILL_DEFINED)

    class IllDefined(CpuBackend):
        def GaussianMixture(self, n_components, **params):
            return Failing()

    X, labels, centroids = _blobs(4.0, n=300)
    with pytest.raises(GpusegError, match="gmm_covariance='diag'.*gmm_sample.*k"):
        soft_membership(X, labels, centroids, IllDefined(), seed=0)


@pytest.mark.gpu
def test_the_gpu_em_gives_the_cpu_memberships(gpu_backend, cpu_backend):
    X, labels, centroids = _blobs(2.0)
    on_gpu = _soft(gpu_backend, X, labels, centroids)
    on_cpu = _soft(cpu_backend, X, labels, centroids)
    np.testing.assert_allclose(gpu_backend.to_host(on_gpu.membership), on_cpu.membership,
                               atol=1e-5)
    # EM stops when the mean log-likelihood changes by less than tol (1e-3). GPU float64 sums
    # in another order could stop it an iteration apart (memberships then differ by ~0.02)
    # only if a change lay within rounding of tol; on these data the changes around the stop
    # are 3.1e-3 and 8.7e-4 (numpy run of the same EM), 1e10 times the rounding away.
    assert on_gpu.n_iter == on_cpu.n_iter
    assert on_gpu.log_likelihood == pytest.approx(on_cpu.log_likelihood, abs=1e-6)
