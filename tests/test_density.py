"""HDBSCAN beside DBSCAN: the blobs on each backend, the sampled fit's assignment rule, the run."""
from __future__ import annotations

import json

import _stages
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from gpuseg import cluster
from gpuseg.cluster.density import cluster_scale
from gpuseg.config import PipelineConfig
from gpuseg.errors import GpusegError
from gpuseg.numerics.sampling import seeded_sample
from gpuseg.stages.density import Density


@pytest.fixture(scope="module")
def blobs():
    """Three blobs of different spreads in 5 dimensions and ten far, scattered outliers."""
    X, y = make_blobs(n_samples=900, centers=8.0 * np.eye(3, 5), cluster_std=[0.5, 0.8, 1.1],
                      random_state=4)
    far = 60.0 + 15.0 * np.arange(10)[:, None] * np.ones((10, 5))
    return np.vstack([X, far]), np.concatenate([y, -np.ones(10, dtype=int)])


def _fit(backend, X, *, min_cluster_size, min_samples, sample=None):
    """HDBSCAN on every user of ``X``, or (``sample``) the density stage fitted on a sample."""
    if sample is None:
        fit = cluster.hdbscan(backend.from_host(np.ascontiguousarray(X)), backend,
                              min_cluster_size=min_cluster_size, min_samples=min_samples)
    else:
        config = PipelineConfig(backend=backend.name, seed=0, density="hdbscan",
                                hdbscan_min_cluster_size=min_cluster_size,
                                hdbscan_min_samples=min_samples, hdbscan_sample=sample)
        fit = _stages.run(Density(), _stages.state(X, backend, config=config))
    return fit, backend.to_numpy(fit.labels)


def test_hdbscan_finds_blobs_of_different_density_and_flags_planted_outliers(backend, blobs):
    X, y = blobs
    fit, labels = _fit(backend, X, min_cluster_size=30, min_samples=5)
    assert fit.n_clusters == 3
    assert (labels[-10:] == -1).all()
    inliers = y >= 0
    assert adjusted_rand_score(y[inliers], labels[inliers]) > 0.95
    assert fit.outlier_share == pytest.approx(np.mean(labels == -1)) and fit.outlier_share < 0.1
    assert labels.dtype == np.int32 and fit.n_fit == len(X) and fit.assignment is None
    sizes = np.bincount(labels[labels >= 0])
    assert list(sizes) == sorted(sizes, reverse=True)  # numbered by size, 0 the largest
    assert json.loads(json.dumps(fit.to_dict()))["min_samples"] == 5


@pytest.mark.gpu
def test_cuml_and_scikit_learn_hdbscan_agree_on_the_blobs(gpu_backend, cpu_backend, blobs):
    X, _ = blobs
    _, on_gpu = _fit(gpu_backend, X, min_cluster_size=30, min_samples=5)
    _, on_cpu = _fit(cpu_backend, X, min_cluster_size=30, min_samples=5)
    assert adjusted_rand_score(on_cpu, on_gpu) >= 0.9


@pytest.mark.gpu
def test_gpu_hdbscan_on_fortran_ordered_pca_columns_finds_the_same_clusters(gpu_backend, blobs):
    """cuML's PCA returns Fortran-ordered arrays, and a slice of their columns stays so."""
    import cupy

    X, y = blobs
    padded = np.hstack([X, np.zeros((len(X), 3))])
    columns = cupy.asfortranarray(cupy.asarray(padded))[:, :5]
    assert columns.flags.f_contiguous and not columns.flags.c_contiguous
    fit = cluster.hdbscan(columns, gpu_backend, min_cluster_size=30, min_samples=5)
    labels = gpu_backend.to_numpy(fit.labels)
    np.testing.assert_array_equal(labels, _fit(gpu_backend, X, min_cluster_size=30,
                                               min_samples=5)[1])
    inliers = y >= 0
    assert adjusted_rand_score(y[inliers], labels[inliers]) > 0.95


@pytest.mark.gpu
def test_gpu_hdbscan_takes_the_largest_min_samples_the_config_allows(gpu_backend):
    """1,024 counted here is 1,023 for cuML, the most its HDBSCAN takes."""
    X, _ = make_blobs(n_samples=1_100, centers=8.0 * np.eye(2, 4), random_state=2)
    fit = cluster.hdbscan(gpu_backend.from_host(X), gpu_backend, min_cluster_size=100,
                          min_samples=1_024)
    assert fit.n_fit == 1_100 and fit.min_samples == 1_024


def test_each_clusters_scale_is_the_largest_core_distance_among_its_users():
    rng = np.random.default_rng(3)
    labels = rng.integers(-1, 6, 500)
    labels[labels == 4] = 2  # a label no user has
    core = rng.random(500).astype(np.float32)
    scale = cluster_scale(labels, core, xp=np)
    expected = [core[labels == c].max() if (labels == c).any() else 0.0 for c in range(6)]
    np.testing.assert_array_equal(scale, np.asarray(expected, dtype=np.float32))
    assert scale.dtype == np.float32
    # No cluster at all: one slot, so that looking up a user's cluster (or 0) stays in range.
    np.testing.assert_array_equal(cluster_scale(-np.ones(5, dtype=np.int64), core[:5], xp=np),
                                  [0.0])


@pytest.mark.gpu
def test_the_gpu_cluster_scale_is_the_cpu_one(gpu_backend):
    rng = np.random.default_rng(4)
    labels, core = rng.integers(-1, 40, 20_000), rng.random(20_000)
    on_gpu = cluster_scale(gpu_backend.from_host(labels), gpu_backend.from_host(core),
                           xp=gpu_backend.xp)
    np.testing.assert_array_equal(gpu_backend.to_numpy(on_gpu), cluster_scale(labels, core, xp=np))


def test_a_sampled_fit_assigns_each_other_user_by_mutual_reachability(cpu_backend, blobs):
    """Naive reference: distances by scipy, core distances by sorting, the rule by hand."""
    X, _ = blobs
    full, full_labels = _fit(cpu_backend, X, min_cluster_size=30, min_samples=5)
    sampled, labels = _fit(cpu_backend, X, min_cluster_size=30, min_samples=5, sample=450)
    assert sampled.n_fit == 450 and labels.shape == (len(X),)
    assert "mutual reachability" in sampled.assignment
    rows = seeded_sample(len(X), 450, seed=0, backend=cpu_backend)
    rest = np.setdiff1d(np.arange(len(X)), rows)
    fitted, fit_labels = X[rows], labels[rows]
    core = np.sort(cdist(fitted, fitted), axis=1)[:, 4]  # the 5th neighbour, the user counted
    scale = {c: core[fit_labels == c].max() for c in range(sampled.n_clusters)}
    expected = []
    for x in X[rest]:
        to_fitted = np.linalg.norm(fitted - x, axis=1)
        q = int(to_fitted.argmin())
        own_core = np.sort(to_fitted)[3]  # the new user is its own first neighbour
        reach = max(own_core, core[q], to_fitted[q])
        expected.append(fit_labels[q] if fit_labels[q] >= 0 and reach <= scale[fit_labels[q]]
                        else -1)
    np.testing.assert_array_equal(labels[rest], expected)
    # The sample finds the same clusters and lets few of their users fall out as outliers.
    assert adjusted_rand_score(full_labels, labels) > 0.95
    assert sampled.outlier_share < full.outlier_share + 0.05
    assert (labels[-10:] == -1).all()


def test_noise_without_dense_groups_is_all_outliers(cpu_backend):
    X = np.random.default_rng(5).uniform(size=(200, 6))
    fit, labels = _fit(cpu_backend, X, min_cluster_size=150, min_samples=20)
    assert fit.n_clusters == 0 and fit.outlier_share == 1.0 and (labels == -1).all()


def test_hdbscan_parameters_and_too_few_users_are_clear_errors(cpu_backend):
    X = np.zeros((5, 2))
    with pytest.raises(GpusegError, match="hdbscan_min_cluster_size must be at least 2"):
        cluster.hdbscan(X, cpu_backend, min_cluster_size=1)
    with pytest.raises(GpusegError, match=r"hdbscan_min_samples must be in \[2, 1024\] \(got 1\)"):
        cluster.hdbscan(X, cpu_backend, min_samples=1)
    # cuML's HDBSCAN takes at most 1023 neighbours besides the user: the same bound on the CPU.
    with pytest.raises(GpusegError, match=r"hdbscan_min_samples must be in \[2, 1024\] \(got 1025\)"):
        cluster.hdbscan(X, cpu_backend, min_samples=1025)
    with pytest.raises(GpusegError, match="more than 5 users.*hdbscan_sample"):
        cluster.hdbscan(X, cpu_backend, min_samples=5)
