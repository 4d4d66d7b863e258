"""The CPU backend's KMeans: iterates in float32, answers in float64."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from cpu_fallback.kmeans import Float32KMeans


@pytest.fixture(scope="module")
def users():
    X, _ = make_blobs(6_000, n_features=20, centers=5, cluster_std=3.0, random_state=0)
    return X


def test_finds_the_float64_partition(users):
    ours = Float32KMeans(5, n_init=3, random_state=0).fit(users)
    theirs = KMeans(5, n_init=3, random_state=0).fit(users)
    assert adjusted_rand_score(ours.labels_, theirs.labels_) == 1.0
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-6)


def test_answers_in_float64_and_its_wcss_is_the_float64_sum(users):
    model = Float32KMeans(4, n_init=1, random_state=1).fit(users)
    assert model.cluster_centers_.dtype == np.float64
    expected = ((users - model.cluster_centers_[model.labels_]) ** 2).sum()
    assert model.inertia_ == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(model.predict(users), model.labels_)
    assert model.predict(users[:10]).shape == (10,)


def test_weights_and_given_starts_are_honoured(users):
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(users))
    starts = users[:3]
    model = Float32KMeans(3, n_init=1, init=starts, random_state=0).fit(users, sample_weight=weights)
    expected = (((users - model.cluster_centers_[model.labels_]) ** 2).sum(axis=1) * weights).sum()
    assert model.inertia_ == pytest.approx(expected, rel=1e-12)
    reference = KMeans(3, n_init=1, init=starts, random_state=0).fit(users, sample_weight=weights)
    assert adjusted_rand_score(model.labels_, reference.labels_) == 1.0
