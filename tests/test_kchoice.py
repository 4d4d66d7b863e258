"""Choosing K: a sharp and stable WCSS elbow, or an honest "no K is clearly better"."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from gpuseg import cluster
from gpuseg.cluster.kchoice import ELBOW_CLEAR, RULE, STABLE_ARI
from gpuseg.config import PipelineConfig
from gpuseg.data import load_instacart
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.features import compute_features
from gpuseg.preprocess import preprocess


def _sweep(inertia, *, stability_k=None, aris=(), silhouette=None):
    ks = tuple(range(2, 2 + len(inertia)))
    return cluster.KSweep(ks=ks, inertia=tuple(inertia),
                          silhouette=tuple(silhouette or [0.2] * len(ks)),
                          calinski_harabasz=(1.0,) * len(ks), davies_bouldin=(1.0,) * len(ks),
                          elbow_k=3, wcss_k1=100.0, sample_size=500, n_users=1000,
                          fit_size=1000, stability_k=stability_k, stability_aris=tuple(aris))


#: WCSS falling steadily to K=5, then barely: five groups (K = 2..10).
PLANTED = (88.0, 76.0, 64.0, 52.0, 51.0, 50.0, 49.0, 48.0, 47.0)


def test_elbow_sharpness_is_the_kth_gain_over_the_mean_of_the_next_two():
    sweep = _sweep(PLANTED)
    # By hand, on the curve W(1..10) = 100, 88, 76, 64, 52, 51, ...: gains 12, 12, 12, 12, 1, 1.
    expected = {2: 12 / 12, 3: 12 / 12, 4: 12 / 6.5, 5: 12 / 1, 6: 1 / 1, 9: 1 / 1}
    sharpness = dict(zip(sweep.ks, sweep.elbow_sharpness))
    for k, value in expected.items():
        assert sharpness[k] == pytest.approx(value), k
    assert math.isnan(sharpness[10])  # no K=11 to compare with
    assert cluster.kchoice.sharpest_k(sweep, (3, 8)) == 5


def test_a_fit_worse_than_the_k_before_is_read_as_a_split_of_that_k():
    # K=4 landed in a local optimum above K=3: the running minimum carries K=3's WCSS on.
    sweep = _sweep((80.0, 60.0, 65.0, 50.0, 49.0, 48.0))
    sharpness = dict(zip(sweep.ks, sweep.elbow_sharpness))
    assert math.isnan(sharpness[4])  # it removed nothing
    assert sharpness[3] == pytest.approx(20 / 5)  # next gains: 0 (K=4) and 10 (K=5)


def test_a_sharp_and_stable_elbow_is_chosen_and_says_why():
    choice = cluster.choose_k(_sweep(PLANTED, stability_k=5, aris=(1.0, 0.98, 1.0)),
                              business_range=(3, 8))
    assert choice.k == 5 and choice.clear is True and choice.source == "auto"
    assert "K=5 is clearly better than its neighbours" in choice.reason
    assert "12.0 times" in choice.reason and "mean ARI 0.99" in choice.reason
    summary = json.loads(json.dumps(choice.to_dict()))
    assert summary["rule"] == RULE and summary["clear"] is True
    assert summary["evidence"]["sharpest_k"] == 5
    assert summary["evidence"]["sharpness_threshold"] == ELBOW_CLEAR
    assert summary["evidence"]["stability_threshold"] == STABLE_ARI


def test_a_sharp_elbow_that_does_not_come_back_on_resamples_is_not_clear():
    choice = cluster.choose_k(_sweep(PLANTED, stability_k=5, aris=(1.0, 0.4, 0.5)),
                              business_range=(3, 8))
    assert choice.clear is False
    assert "No K in 3-8 is clearly better than its neighbours" in choice.reason
    assert "does not come back on bootstrap resamples (mean ARI 0.63" in choice.reason


def test_a_sharp_elbow_whose_stability_was_not_measured_is_not_clear():
    choice = cluster.choose_k(_sweep(PLANTED), business_range=(3, 8))
    assert choice.clear is False and "stability was not measured" in choice.reason


def test_without_a_sharp_elbow_the_silhouette_decides_and_the_reason_says_so():
    smooth = tuple(100.0 - 10 * k ** 0.8 for k in range(2, 11))
    silhouette = [0.10, 0.12, 0.30, 0.11, 0.10, 0.09, 0.08, 0.07, 0.06]
    choice = cluster.choose_k(_sweep(smooth, stability_k=4, aris=(1.0,) * 3,
                                     silhouette=silhouette), business_range=(3, 8))
    assert choice.clear is False and choice.k == 4
    assert "No K in 3-8 is clearly better than its neighbours" in choice.reason
    assert f"({ELBOW_CLEAR:g} counts as sharp)" in choice.reason
    assert "best silhouette (0.300)" in choice.reason


def test_a_fixed_k_keeps_the_evidence_but_no_verdict():
    choice = cluster.choose_k(_sweep(PLANTED), k=3, business_range=(3, 8))
    assert choice.k == 3 and choice.source == "user" and choice.clear is None
    assert choice.to_dict()["evidence"]["sharpest_k"] == 5
    assert choice.reason.startswith("K=3 was set with k=3.")


def test_the_default_k_says_it_is_the_default_and_what_the_data_would_pick():
    silhouette = [0.2, 0.25, 0.31, 0.28, 0.2, 0.2, 0.2, 0.2, 0.2]
    choice = cluster.choose_k(_sweep(PLANTED, silhouette=silhouette), k=5,
                              business_range=(3, 8), default=True)
    assert choice.k == 5 and choice.source == "default"
    assert choice.reason.startswith("K=5 is the default (no k was given; k='auto' lets the data "
                                    "choose).")
    assert "the best silhouette is at K=4 (0.310)" in choice.reason
    assert "the sharpest WCSS elbow at K=5" in choice.reason
    assert "fixed" not in choice.reason


def test_the_sweep_measures_the_stability_of_the_sharpest_k_on_blobs(cpu_backend):
    X, _ = make_blobs(n_samples=1200, centers=10.0 * np.eye(4, 5), cluster_std=0.8,
                      random_state=7)
    sweep = cluster.k_sweep(X, cpu_backend, k_range=(2, 8), seed=0, n_init=3,
                            stability_range=(3, 7))
    assert sweep.stability_k == 4 and len(sweep.stability_aris) == 3
    assert min(sweep.stability_aris) > 0.99
    assert set(sweep.starts) <= {"k-means++", "ward"} and len(sweep.starts) == len(sweep.ks)
    choice = cluster.choose_k(sweep, business_range=(3, 7))
    assert choice.k == 4 and choice.clear
    json.dumps(sweep.to_dict())


def _sweep_of_synthetic_shoppers(tmp_path, backend, *, separation, seed, users=2_000):
    """The pipeline's CPU sweep (its default inits; 2,000 users are inside its sample) on freshly
    generated shoppers."""
    folder = write_instacart(generate_instacart(users, seed=seed, separation=separation),
                             tmp_path / f"{separation}-{seed}", fmt="parquet")
    table = compute_features(load_instacart(folder, backend=backend), backend, min_orders=5).table
    config = PipelineConfig(backend="cpu", k="auto")
    sweep = cluster.k_sweep(preprocess(table, backend).X_pca, backend, k_range=config.k_sweep_range,
                            seed=config.seed, n_init=config.sweep_n_init,
                            score_sample=config.sample_size("sweep_score_sample", backend),
                            stability_range=config.k_business_range)
    return cluster.choose_k(sweep, k="auto", business_range=config.k_business_range)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auto_k_recovers_the_five_planted_personas(tmp_path, cpu_backend, seed):
    choice = _sweep_of_synthetic_shoppers(tmp_path, cpu_backend, separation="strong", seed=seed)
    assert choice.k == 5 and choice.clear, choice.reason


@pytest.mark.slow
def test_auto_k_says_when_no_k_is_clearly_better_on_realistic_shoppers(tmp_path, cpu_backend):
    choice = _sweep_of_synthetic_shoppers(tmp_path, cpu_backend, separation="realistic", seed=1)
    assert choice.clear is False
    assert "No K in 3-8 is clearly better than its neighbours" in choice.reason
