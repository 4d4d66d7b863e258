"""K sweep, KMeans, Ward over micro-clusters and DBSCAN, on each backend."""
from __future__ import annotations

import dataclasses
import json
import warnings

import _stages
import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, is_valid_linkage, linkage
from sklearn.cluster import DBSCAN, KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score

from gpuseg import cluster
from gpuseg.cluster.kchoice import KChoice
from gpuseg.config import PipelineConfig
from gpuseg.errors import GpusegError
from gpuseg.numerics.sampling import seeded_sample
from gpuseg.stages.density import Density
from gpuseg.stages.hierarchical import Hierarchical
from gpuseg.stages.sweep import Sweep


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated, equidistant blobs in 5 dimensions (an unambiguous elbow at 4)."""
    X, y = make_blobs(n_samples=1200, centers=10.0 * np.eye(4, 5), cluster_std=0.8, random_state=7)
    return X, y


def _on(backend, array):
    return backend.from_host(np.ascontiguousarray(array))


# -- K sweep and choice ---------------------------------------------------------------------
def test_sweep_and_auto_choice_recover_four_blobs(backend, blobs):
    X, _ = blobs
    config = PipelineConfig(backend=backend.name, seed=0, k="auto", k_sweep_range=(2, 8),
                            k_business_range=(3, 8), sweep_n_init=3, sweep_sample=600,
                            sweep_score_sample=600)
    swept = _stages.run(Sweep(), _stages.state(X, backend, config=config))
    sweep, choice = swept.sweep, swept.choice
    assert choice.k == 4
    assert sweep.elbow_k == 4
    assert choice.source == "auto" and "K=4" in choice.reason
    assert sweep.ks == tuple(range(2, 9)) and sweep.sample_size == 600 and sweep.fit_size == 600
    assert sweep.n_users == 1200
    rows = backend.to_numpy(seeded_sample(len(X), 600, seed=0, backend=backend))
    swept = X[rows]  # the whole sweep runs on the seeded sample
    assert sweep.wcss_k1 == pytest.approx(((swept - swept.mean(axis=0)) ** 2).sum(), rel=1e-9)
    assert choice.wcss_reduction == pytest.approx(1 - sweep.inertia[2] / sweep.wcss_k1)
    assert choice.wcss_reduction > 0.9
    best = int(np.argmax(sweep.silhouette))
    assert sweep.ks[best] == 4 and sweep.calinski_harabasz[best] == max(sweep.calinski_harabasz)
    json.dumps(sweep.to_dict())
    json.dumps(choice.to_dict())


def test_near_tied_silhouettes_go_to_the_k_nearest_the_elbow():
    sweep = cluster.KSweep(ks=(2, 3, 4, 5, 6), inertia=(50.0, 30.0, 20.0, 18.0, 17.0),
                           silhouette=(0.40, 0.305, 0.31, 0.302, 0.20),
                           calinski_harabasz=(1.0,) * 5, davies_bouldin=(1.0,) * 5,
                           elbow_k=5, wcss_k1=100.0, sample_size=500, n_users=1000,
                           fit_size=1000)
    choice = cluster.choose_k(sweep, business_range=(3, 6))
    # K=2 has the best silhouette overall but lies outside the business range.
    assert choice.k == 5
    assert "K=3, K=4, K=5" in choice.reason and "elbow" in choice.reason
    assert choice.wcss_reduction == pytest.approx(0.82)


def test_an_explicit_k_is_taken_as_given_and_checked_against_the_users():
    sweep = cluster.KSweep(ks=(2, 3), inertia=(5.0, 4.0), silhouette=(0.5, 0.4),
                           calinski_harabasz=(1.0, 1.0), davies_bouldin=(1.0, 1.0), elbow_k=2,
                           wcss_k1=10.0, sample_size=10, n_users=10, fit_size=10)
    chosen = cluster.choose_k(sweep, k=3)
    assert (chosen.k, chosen.source, chosen.wcss_reduction) == (3, "user", pytest.approx(0.6))
    assert cluster.choose_k(sweep, k=7).wcss_reduction is None
    with pytest.raises(GpusegError, match="k=10 is not below the number of users"):
        cluster.choose_k(sweep, k=10)
    with pytest.raises(GpusegError, match="k must be 'auto' or an integer >= 2"):
        cluster.choose_k(sweep, k=1)
    with pytest.raises(GpusegError, match="shares no K with the sweep"):
        cluster.choose_k(sweep, business_range=(5, 8))


def test_internal_indices_match_scikit_learn(backend, blobs):
    X, y = blobs
    rng = np.random.default_rng(3)
    for labels in (y, rng.integers(0, 5, size=y.size), np.where(y == 3, 7, y)):
        ch = cluster.calinski_harabasz(_on(backend, X), _on(backend, labels), backend)
        db = cluster.davies_bouldin(_on(backend, X), _on(backend, labels), backend)
        assert ch == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)
        assert db == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)


def test_internal_indices_refuse_a_single_segment(backend, blobs):
    X, _ = blobs
    one = _on(backend, np.zeros(len(X), dtype=np.int64))
    with pytest.raises(GpusegError, match="needs 2 to"):
        cluster.calinski_harabasz(_on(backend, X), one, backend)
    with pytest.raises(GpusegError, match="needs 2 to"):
        cluster.davies_bouldin(_on(backend, X), one, backend)


def test_identical_users_give_a_defined_sweep_not_a_crash(backend):
    X = np.ones((60, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that it found fewer distinct clusters
        sweep = cluster.k_sweep(_on(backend, X), backend, k_range=(2, 5), seed=0, n_init=1)
    assert sweep.wcss_k1 == 0.0 and all(np.isnan(sweep.silhouette))
    choice = cluster.choose_k(sweep, business_range=(3, 5))
    assert 3 <= choice.k <= 5 and "undefined" in choice.reason
    assert choice.wcss_reduction == 0.0
    assert json.loads(json.dumps(sweep.to_dict()))["silhouette"] == [None] * 4


def test_too_few_users_for_the_sweep_is_a_clear_error(backend):
    one_user = _on(backend, np.zeros((1, 3)))
    for k_range in ((2, 10), (2, 0)):  # the second as a caller capping K at users - 1 makes it
        with pytest.raises(GpusegError, match=r"needs more users than its smallest K \(2\); got 1"):
            cluster.k_sweep(one_user, backend, k_range=k_range, seed=0, n_init=1)
    with pytest.raises(GpusegError, match="k_sweep_range must be"):
        cluster.k_sweep(_on(backend, np.zeros((9, 3))), backend, k_range=(5, 3), seed=0, n_init=1)


def test_sweep_drops_k_not_below_the_user_count(backend):
    X = np.random.default_rng(0).normal(size=(6, 2))
    sweep = cluster.k_sweep(_on(backend, X), backend, k_range=(2, 10), seed=0, n_init=1)
    assert sweep.ks == (2, 3, 4, 5)


# -- KMeans ---------------------------------------------------------------------------------
def test_segments_are_numbered_by_size_largest_first(backend):
    X, y = make_blobs(n_samples=[150, 500, 300], centers=[[0, 0], [10, 0], [0, 10]],
                      cluster_std=0.5, random_state=1)
    fit = cluster.fit_kmeans(_on(backend, X), backend, k=3, n_init=3, seed=0)
    labels = backend.to_numpy(fit.labels)
    assert labels.dtype == np.int32
    assert fit.sizes == (500, 300, 150)
    assert tuple(np.bincount(labels)) == fit.sizes
    assert adjusted_rand_score(y, labels) == 1.0
    # Centroids follow the numbering: segment 0 sits on the 500-user blob at (10, 0).
    np.testing.assert_allclose(backend.to_numpy(fit.centroids)[0], X[y == 1].mean(axis=0), atol=1e-6)
    assert fit.inertia == pytest.approx(((X - backend.to_numpy(fit.centroids)[labels]) ** 2).sum())
    assert fit.to_dict() == {"k": 3, "inertia": fit.inertia, "sizes": [500, 300, 150]}


def test_equal_sizes_keep_the_estimators_order(cpu_backend, blobs):
    X, _ = blobs
    fit = cluster.fit_kmeans(X, cpu_backend, k=4, n_init=2, seed=5)
    reference = KMeans(4, n_init=2, random_state=5).fit(X)
    assert fit.sizes == (300, 300, 300, 300)
    np.testing.assert_array_equal(fit.labels, reference.labels_)


def test_kmeans_labels_are_bit_identical_for_the_same_seed(cpu_backend):
    X = np.random.default_rng(0).normal(size=(800, 4))
    first = cluster.fit_kmeans(X, cpu_backend, k=5, n_init=3, seed=11)
    second = cluster.fit_kmeans(X, cpu_backend, k=5, n_init=3, seed=11)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.centroids, second.centroids)


def test_more_segments_than_users_is_a_clear_error(backend):
    X = _on(backend, np.zeros((1, 3)))
    with pytest.raises(GpusegError, match="cannot form 2 segments from 1 users; choose k=1"):
        cluster.fit_kmeans(X, backend, k=2, n_init=1, seed=0)
    one_user = _stages.state(np.zeros((1, 3)), backend, labels=np.zeros(1, dtype=np.int32))
    one_user.outputs.add(Sweep, dataclasses.replace(one_user.outputs[Sweep], choice=KChoice(
        k=2, reason="given", wcss_reduction=None, source="user")))
    with pytest.raises(GpusegError, match="cannot form 2 segments from 1 users"):
        _stages.run(Hierarchical(), one_user)


# -- hierarchical -------------------------------------------------------------------------------
def test_weighted_ward_equals_scipy_ward_on_unit_weights():
    points = np.random.default_rng(2).normal(size=(70, 3))
    ours = cluster.ward_linkage(points, np.ones(70))
    reference = linkage(points, method="ward")
    np.testing.assert_array_equal(ours[:, [0, 1, 3]], reference[:, [0, 1, 3]])
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-10)
    assert is_valid_linkage(ours)


def test_weighted_ward_equals_ward_on_replicated_points():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(25, 2))
    weights = rng.integers(1, 5, size=25)
    replicated = np.repeat(points, weights, axis=0)
    reference = linkage(replicated, method="ward")
    # Duplicates merge first at height 0; every later merge is a merge of whole groups.
    np.testing.assert_allclose(cluster.ward_linkage(points, weights)[:, 2],
                               reference[reference[:, 2] > 0, 2], rtol=1e-9)
    for k in (2, 3, 5):
        ours = cluster.cut_linkage(cluster.ward_linkage(points, weights), k)
        theirs = fcluster(reference, k, criterion="maxclust")
        assert adjusted_rand_score(np.repeat(ours, weights), theirs) == 1.0


def test_cut_linkage_gives_k_groups_like_fcluster():
    points = np.random.default_rng(6).normal(size=(40, 3))
    tree = cluster.ward_linkage(points, np.ones(40))
    for k in (1, 4, 40):
        groups = cluster.cut_linkage(tree, k)
        assert set(groups) == set(range(k))
        assert adjusted_rand_score(groups, fcluster(tree, k, criterion="maxclust")) == 1.0
    with pytest.raises(GpusegError, match="cannot cut 40 leaves into 41 groups"):
        cluster.cut_linkage(tree, 41)


def _hierarchical(backend, X, *, k, n_micro):
    """The hierarchical stage over ``X`` beside a KMeans fit of ``k`` segments."""
    kmeans = cluster.fit_kmeans(_on(backend, X), backend, k=k, n_init=3, seed=0)
    config = PipelineConfig(backend=backend.name, seed=0, hierarchical_micro_clusters=n_micro)
    return _stages.run(Hierarchical(), _stages.state(
        X, backend, labels=backend.to_numpy(kmeans.labels), config=config))


def test_hierarchical_over_micro_clusters_agrees_with_kmeans_on_blobs(backend, blobs):
    X, y = blobs
    fit = _hierarchical(backend, X, k=4, n_micro=120)
    labels = backend.to_numpy(fit.labels)
    assert fit.ari_vs_kmeans > 0.95
    assert adjusted_rand_score(y, labels) > 0.95
    assert labels.dtype == np.int32 and labels.shape == (1200,)
    assert fit.linkage.shape == (len(fit.micro_sizes) - 1, 4) and len(fit.micro_sizes) <= 120
    assert is_valid_linkage(fit.linkage)
    assert sum(fit.micro_sizes) == 1200 == sum(fit.sizes)
    assert list(fit.sizes) == sorted(fit.sizes, reverse=True)
    micro = backend.to_numpy(fit.micro_labels)
    assert micro.min() == 0 and micro.max() == len(fit.micro_sizes) - 1
    assert tuple(np.bincount(micro)) == fit.micro_sizes
    np.testing.assert_allclose(fit.micro_centres,
                               [X[micro == leaf].mean(axis=0) for leaf in range(micro.max() + 1)])
    assert "host" in fit.host_step and "cuML" not in fit.host_step
    json.dumps(fit.to_dict())


def test_hierarchical_with_fewer_users_than_micro_clusters(backend):
    X = np.random.default_rng(8).normal(size=(30, 2))
    fit = _hierarchical(backend, X, k=3, n_micro=1000)
    assert sum(fit.sizes) == 30 and len(fit.sizes) == 3
    assert len(fit.micro_sizes) <= 30


# -- DBSCAN ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs_with_outliers():
    X, y = make_blobs(n_samples=900, centers=[[0, 0, 0], [8, 0, 0], [0, 8, 0]], cluster_std=0.6,
                      random_state=3)
    far = np.random.default_rng(9).uniform(-1, 1, size=(10, 3)) * 5 + np.array([40.0, 40.0, 40.0])
    far[:, 0] += np.arange(10) * 15  # spread out, so they form no dense group of their own
    return np.vstack([X, far]), np.concatenate([y, -np.ones(10, dtype=int)])


def test_dbscan_finds_the_blobs_and_flags_planted_outliers(backend, blobs_with_outliers):
    X, y = blobs_with_outliers
    fit = cluster.dbscan(_on(backend, X), backend, min_samples=10)
    labels = backend.to_numpy(fit.labels)
    assert fit.n_clusters == 3
    assert (labels[-10:] == -1).all()
    inliers = y >= 0
    assert adjusted_rand_score(y[inliers], labels[inliers]) > 0.95
    assert fit.outlier_share < 0.05
    assert fit.n_fit == 910 and fit.core_assignment is None
    assert "knee" in fit.eps_source
    # eps sits between the spread inside a blob and the gap between blobs.
    assert 0.2 < fit.eps < 4.0
    assert labels.dtype == np.int32 and fit.n_core > 0 and len(fit.k_distance_curve) > 100
    json.dumps(fit.to_dict())


def test_dbscan_on_a_sample_assigns_everyone_like_the_full_fit(backend, blobs_with_outliers):
    X, y = blobs_with_outliers
    full = cluster.dbscan(_on(backend, X), backend, min_samples=10)
    config = PipelineConfig(backend=backend.name, seed=0, dbscan_min_samples=10,
                            dbscan_sample=450)
    sampled = _stages.run(Density(), _stages.state(X, backend, config=config))
    labels = backend.to_numpy(sampled.labels)
    assert sampled.n_fit == 450 and labels.shape == (910,)
    assert "nearest core point within eps" in sampled.core_assignment
    assert adjusted_rand_score(backend.to_numpy(full.labels), labels) > 0.95
    assert (labels[-10:] == -1).all()


def test_dbscan_with_a_given_eps(backend, blobs_with_outliers):
    X, _ = blobs_with_outliers
    fit = cluster.dbscan(_on(backend, X), backend, eps=1.0, min_samples=10)
    assert fit.eps == 1.0 and fit.eps_source == "given" and fit.k_distance_curve == ()
    assert fit.n_clusters == 3
    reference = DBSCAN(eps=1.0, min_samples=10).fit(X)
    np.testing.assert_array_equal(backend.to_numpy(fit.core), reference.core_sample_indices_)


def test_dbscan_needs_enough_users_and_a_positive_eps(backend):
    X = _on(backend, np.zeros((5, 2)))
    with pytest.raises(GpusegError, match="needs at least 20 users"):
        cluster.dbscan(X, backend, min_samples=20)
    with pytest.raises(GpusegError, match="dbscan_eps must be positive"):
        cluster.dbscan(X, backend, eps=0.0, min_samples=2)


def test_dbscan_on_identical_users_is_one_cluster(backend):
    fit = cluster.dbscan(_on(backend, np.ones((40, 2))), backend, min_samples=5)
    assert fit.n_clusters == 1 and fit.outlier_share == 0.0 and fit.eps > 0
