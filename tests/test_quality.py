"""Silhouette, stability, feature importance and the verdict, on each backend."""
from __future__ import annotations

import json
import math

import _stages
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_samples, silhouette_score

from gpuseg import cluster, quality
from gpuseg.config import PipelineConfig
from gpuseg.errors import GpusegError
from gpuseg.stages.silhouette import Silhouette


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=600, centers=10.0 * np.eye(4, 5), cluster_std=0.8, random_state=7)
    return X, y


def _on(backend, array):
    return backend.from_host(np.ascontiguousarray(array))


# -- silhouette ------------------------------------------------------------------------------
def test_silhouette_of_every_user_equals_scikit_learn(backend, blobs):
    X, y = blobs
    report = quality.silhouette_report(_on(backend, X), _on(backend, y), backend)
    reference = silhouette_samples(X, y)
    assert report.overall == pytest.approx(silhouette_score(X, y), rel=1e-9)
    np.testing.assert_allclose(backend.to_numpy(report.per_user), reference, rtol=1e-9)
    assert report.per_cluster == pytest.approx({k: reference[y == k].mean() for k in range(4)})
    assert report.sample_size is None and report.n_scored == 600
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["scope"] == "every user" and summary["sample_size"] is None
    assert set(summary["per_cluster"]) == {"0", "1", "2", "3"}


def test_sampled_silhouette_states_its_sample_and_leaves_the_rest_nan(backend, blobs):
    X, y = blobs
    config = PipelineConfig(backend=backend.name, seed=3, silhouette_sample=250)
    report = _stages.run(Silhouette(), _stages.state(X, backend, labels=y, config=config))
    per_user = backend.to_numpy(report.per_user)
    scored = ~np.isnan(per_user)
    assert report.sample_size == 250 == report.n_scored == scored.sum()
    assert report.overall == pytest.approx(silhouette_score(X[scored], y[scored]), rel=1e-9)
    assert report.to_dict()["scope"] == "a seeded sample of 250 users"
    again = _stages.run(Silhouette(), _stages.state(X, backend, labels=y, config=config))
    np.testing.assert_array_equal(np.isnan(backend.to_numpy(again.per_user)), ~scored)


def test_silhouette_of_a_single_segment_is_undefined_not_an_error(backend, blobs):
    X, _ = blobs
    one_segment = _on(backend, np.zeros(600, dtype=np.int32))
    report = quality.silhouette_report(_on(backend, X), one_segment, backend)
    assert math.isnan(report.overall) and report.to_dict()["overall"] is None
    assert np.isnan(backend.to_numpy(report.per_user)).all()


# -- stability -------------------------------------------------------------------------------
def test_blobs_are_stable_and_uniform_noise_is_not(backend, blobs):
    X, _ = blobs
    noise = np.random.default_rng(0).uniform(size=(600, 5))
    results = {}
    for name, data in (("blobs", X), ("noise", noise)):
        data_b = _on(backend, data)
        labels = cluster.fit_kmeans(data_b, backend, k=4, n_init=2, seed=0).labels
        results[name] = quality.stability(data_b, labels, backend, k=4, n_seeds=3, n_bootstrap=3,
                                           n_init=1, seed=0)
    stable, unstable = results["blobs"], results["noise"]
    assert stable.seed_ari_mean > 0.99 and stable.bootstrap_ari_mean > 0.99
    assert unstable.seed_ari_mean < 0.8 and unstable.bootstrap_ari_mean < 0.8
    assert len(stable.seed_aris) == 3 and len(stable.bootstrap_aris) == 3
    assert stable.seed_ari_min == min(stable.seed_aris)
    assert unstable.bootstrap_ari_min == min(unstable.bootstrap_aris)
    json.dumps(unstable.to_dict())


def test_stability_needs_two_seeds(backend, blobs):
    X, y = blobs
    with pytest.raises(GpusegError, match="stability_seeds must be at least 2"):
        quality.stability(_on(backend, X), _on(backend, y), backend, k=4, n_seeds=1, n_init=1,
                           seed=0)


# -- feature importance ----------------------------------------------------------------------
def test_an_informative_feature_outranks_noise(backend):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 200)
    informative = labels * 3.0 + rng.normal(size=600)
    X = np.column_stack([rng.normal(size=600), informative, rng.normal(size=600)])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    names = ["noise_a", "signal", "noise_b"]
    importance = quality.feature_importance(_on(backend, X), _on(backend, labels), backend,
                                             feature_names=names, top=2)
    assert importance.eta_squared["signal"] > 0.8
    assert max(importance.eta_squared["noise_a"], importance.eta_squared["noise_b"]) < 0.05
    # eta squared is between-segment over total variance, computed naively here
    means = np.array([X[labels == k, 1].mean() for k in range(3)])
    naive = (200 * (means - X[:, 1].mean()) ** 2).sum() / ((X[:, 1] - X[:, 1].mean()) ** 2).sum()
    assert importance.eta_squared["signal"] == pytest.approx(naive, rel=1e-9)
    assert importance.top_overall[0] == "signal" and len(importance.top_overall) == 2
    top_0, top_2 = importance.top_per_segment[0][0], importance.top_per_segment[2][0]
    assert top_0[0] == "signal" and top_0[1] < -1 and top_2[0] == "signal" and top_2[1] > 1
    json.dumps(importance.to_dict())


def test_feature_names_must_match_the_columns(backend):
    with pytest.raises(GpusegError, match="2 names for 3 columns"):
        quality.feature_importance(_on(backend, np.zeros((10, 3))),
                                    _on(backend, np.zeros(10, dtype=int)), backend,
                                    feature_names=["a", "b"])


# -- verdict ---------------------------------------------------------------------------------
def test_overlapping_segments_are_called_weak_even_when_stable():
    result = quality.verdict(0.12, 0.98, 0.95)
    assert (result.strength, result.separation, result.stability) == ("weak", "weak", "strong")
    assert "clusters overlap; treat segments as tendencies" in result.text


def test_separated_reproducible_segments_are_strong():
    result = quality.verdict(0.62, 0.99, 0.96)
    assert result.strength == "strong"
    assert "well separated" in result.text and "reproducible" in result.text


def test_the_weaker_grade_decides():
    assert quality.verdict(0.35, 0.95, 0.92).strength == "moderate"
    assert quality.verdict(0.62, 0.80, 0.95).strength == "moderate"
    unstable = quality.verdict(0.62, 0.95, 0.5)
    assert unstable.strength == "weak" and "not reproducible" in unstable.text


def test_missing_numbers_are_said_not_hidden():
    result = quality.verdict(float("nan"), float("nan"), float("nan"))
    assert result.strength == "weak"
    assert "undefined" in result.text and "not measured" in result.text
    assert json.loads(json.dumps(result.to_dict()))["strength"] == "weak"
