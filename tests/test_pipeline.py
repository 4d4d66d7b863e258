"""The whole pipeline as one call: planted personas recovered and named, deterministic, honest metrics."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _rules_reference import check_rules
from sklearn.metrics import adjusted_rand_score

from gpuseg.config import PipelineConfig
from gpuseg.data import load_instacart
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.errors import GpusegError
from gpuseg.features import compute_features
from gpuseg.pipeline import segment
from gpuseg.vocabulary import PERSONA_NAMES

N_USERS = 4_000


@pytest.fixture(scope="module")
def strong(tmp_path_factory):
    folder = write_instacart(generate_instacart(N_USERS, seed=3, separation="strong"),
                             tmp_path_factory.mktemp("strong") / "data", fmt="parquet")
    truth = pd.read_csv(folder / "personas_truth.csv").set_index("user_id")["persona"]
    return folder, truth


@pytest.fixture(scope="module")
def result(strong, cpu_backend):
    folder, _ = strong
    return segment(load_instacart(folder, backend=cpu_backend), PipelineConfig(backend="cpu", seed=7),
                   backend=cpu_backend, embed=False)


def test_planted_personas_are_recovered_and_carry_their_names(result, strong):
    _, truth = strong
    planted = truth.loc[result.segments["user_id"]].to_numpy()
    assert adjusted_rand_score(planted, result.segments["segment"]) >= 0.9
    table = pd.crosstab(planted, result.segments["persona"].astype(str))
    for persona in PERSONA_NAMES:
        assert table.loc[persona].idxmax() == persona, table


def test_memberships_on_strong_personas_are_sure_and_consistent(result):
    segments, certainty = result.segments, result.metrics.to_dict()["certainty"]
    assert segments["membership"].mean() >= 0.9
    by_segment = segments.groupby("segment")["membership"].mean()
    for entry in certainty["segments"]:
        assert entry["mean_certainty"] == pytest.approx(by_segment[entry["segment"]])
        assert entry["mean_certainty"] >= 0.9
        assert entry["reproducibility"] >= 0.95 and entry["verdict"] == "stable"
    assert certainty["between_share"] == pytest.approx((segments["membership"] < 0.6).mean())
    reliability = certainty["reliability"]
    assert reliability["calibrated"] and abs(reliability["gap"]) <= 0.05
    assert sum(b["users"] for b in reliability["bins"]) == reliability["n_users"]
    assert len(certainty["intercepts"]) == result.k and certainty["temperature"] > 0
    assert result.model.certainty is not None and result.model.mixture is None


def test_every_named_segment_comes_back_and_its_refits_carry_the_same_persona(result):
    profiles = result.profiles
    assert (profiles["reproducibility"] >= 0.95).all()
    assert (profiles["comes_back"] == "stable").all()
    assert {p.name for p in result.personas} == set(PERSONA_NAMES)
    assert all(p.matched for p in result.personas)


def test_a_segment_that_dissolves_or_changes_persona_on_a_refit_loses_its_name(result):
    import dataclasses

    from gpuseg.stages.personas import named_if_they_come_back

    certainty = result.metrics.certainty
    names = {p.segment: p.name for p in result.personas}
    # Every refit matches the segments in order here (strong personas come back exactly).
    refit_names = [[names[int(c)] for c in np.argsort(certainty.refits.matches[r])]
                   for r in range(len(certainty.refits.seeds))]
    assert [p.name for p in named_if_they_come_back(result.profiles, certainty,
                                                    refit_names)] == [names[j] for j in range(5)]
    renamed = [list(row) for row in refit_names]
    renamed[1][certainty.refits.matches[1, 0]] = None
    personas = named_if_they_come_back(result.profiles, certainty, renamed)
    assert not personas[0].matched and personas[0].name not in PERSONA_NAMES
    assert personas[0].rule.kind == "rule_withheld"
    assert "not the persona of the matched segment in 1 of 3 subsample refits" in personas[0].rule.text
    assert all(p.matched for p in personas[1:])
    gone = dataclasses.replace(certainty.segments[2], jaccard=(0.02, 0.01, 0.03),
                               reproducibility=0.02)
    dissolved = dataclasses.replace(
        certainty, segments=certainty.segments[:2] + (gone,) + certainty.segments[3:])
    personas = named_if_they_come_back(result.profiles, dissolved, refit_names)
    assert not personas[2].matched and "does not come back" in personas[2].rule.text


def test_same_input_and_seed_give_bit_identical_labels(result, strong, cpu_backend):
    folder, _ = strong
    again = segment(load_instacart(folder, backend=cpu_backend), PipelineConfig(backend="cpu", seed=7),
                    backend=cpu_backend, embed=False)
    np.testing.assert_array_equal(again.segments["segment"], result.segments["segment"])
    np.testing.assert_array_equal(again.segments["dbscan"], result.segments["dbscan"])
    np.testing.assert_array_equal(again.segments["hierarchical"], result.segments["hierarchical"])
    np.testing.assert_array_equal(again.segments["membership"], result.segments["membership"])
    assert again.metrics.silhouette.overall == result.metrics.silhouette.overall


def test_segments_are_numbered_by_size_largest_first(result):
    sizes = result.segments["segment"].value_counts().sort_index().to_numpy()
    assert list(sizes) == sorted(sizes, reverse=True)
    assert result.metrics.to_dict()["kmeans"]["sizes"] == list(sizes)


def test_metrics_are_complete_json_and_consistent(result):
    m = json.loads(json.dumps(result.metrics.to_dict()))
    assert m["backend"] == "cpu" and m["device"].startswith("CPU: ")
    assert m["users"]["segmented"] == len(result.segments)
    assert 0.0 < m["kmeans"]["wcss_reduction"] < 1.0
    assert m["preprocess"]["retained_variance"] >= 0.95
    assert m["k_choice"]["k"] == result.k == 5
    assert m["silhouette"]["sample_size"] is None or m["silhouette"]["sample_size"] <= 20_000
    assert 0.0 <= m["dbscan"]["outlier_share"] <= 1.0
    assert len(m["personas"]) == result.k
    assert m["catalog"]["aisles"]["24"] == "fresh fruits"
    assert set(result.timings) >= {"features", "scale", "pca", "k_sweep", "kmeans", "certainty",
                                   "silhouette", "stability", "hierarchical", "dbscan",
                                   "importance", "personas", "rules"}
    assert result.activity.shape == (result.k, 7, 24)
    assert result.activity.sum() > 0


def test_hdbscan_runs_in_place_of_dbscan_when_chosen(strong, cpu_backend):
    folder, truth = strong
    config = PipelineConfig(backend="cpu", seed=7, density="hdbscan", hdbscan_sample=1_500,
                            k_sweep_range=(4, 6), k_business_range=(4, 6), n_init=2,
                            sweep_n_init=1, stability_seeds=2, bootstrap_rounds=1)
    run = segment(load_instacart(folder, backend=cpu_backend), config, backend=cpu_backend,
                  embed=False)
    assert "hdbscan" in run.segments and "dbscan" not in run.segments
    assert "hdbscan" in run.timings and "dbscan" not in run.timings
    m = run.metrics.to_dict()["hdbscan"]
    assert "dbscan" not in run.metrics.to_dict() and m["n_fit"] == 1_500
    assert m["outlier_share"] == pytest.approx((run.segments["hdbscan"] == -1).mean())
    assert m["n_clusters"] == run.segments["hdbscan"].max() + 1 >= 2
    clustered = run.segments[run.segments["hdbscan"] >= 0]
    planted = truth.loc[clustered["user_id"]].to_numpy()
    assert adjusted_rand_score(planted, clustered["hdbscan"]) >= 0.9


def test_persona_column_matches_the_model(result):
    by_segment = result.segments.groupby("segment")["persona"].first().astype(str)
    assert tuple(by_segment) == result.model.persona_names


def test_every_planted_persona_gets_a_rule_that_holds_on_every_shopper(result, strong, cpu_backend):
    folder, _ = strong
    features = compute_features(load_instacart(folder, backend=cpu_backend), cpu_backend).table
    features = features.loc[result.segments["user_id"]]
    rules = json.loads(json.dumps(result.metrics.to_dict()["rules"]))
    check_rules(rules, features, pd.Series(result.segments["segment"].to_numpy(),
                                           index=features.index))
    for entry, name in zip(rules, result.model.persona_names):
        assert entry["persona"] == name and entry["rules"], entry
        assert entry["precision"] >= 0.9 and entry["coverage"] >= 0.75, entry


def test_feature_families_explain_the_planted_personas(result):
    importance = json.loads(json.dumps(result.metrics.to_dict()["importance"]))
    assert importance["base_accuracy"] == 1.0 and importance["n_users"] == len(result.segments)
    families = {group["name"]: group for group in importance["groups"]}
    assert {"basket size", "cadence and regularity", "produce aisles"} <= set(families)
    # The planted personas differ in every family: one family alone places most shoppers.
    assert max(group["alone_accuracy"] for group in families.values()) >= 0.8
    assert importance["eta_squared"]


def test_k_larger_than_the_users_is_a_clear_error(cpu_backend, tmp_path):
    data = load_instacart(write_instacart(generate_instacart(12, seed=1), tmp_path / "tiny"),
                          backend=cpu_backend)
    with pytest.raises(GpusegError, match="k=50"):
        segment(data, PipelineConfig(backend="cpu", k=50, min_orders=1), backend=cpu_backend,
                embed=False)



@pytest.mark.gpu
def test_the_whole_pipeline_runs_on_the_gpu_and_writes_a_run_directory(gpu_backend, tmp_path):
    """Every stage, the host boundary and the run directory on the GPU, on 2,000 shoppers."""
    from gpuseg.rundir import write_run

    folder = write_instacart(generate_instacart(2_000, seed=5, separation="strong"),
                             tmp_path / "data", fmt="parquet")
    truth = pd.read_csv(folder / "personas_truth.csv").set_index("user_id")["persona"]
    result = segment(folder, PipelineConfig(backend="gpu", seed=7), backend=gpu_backend)
    assert result.backend == "gpu" and result.device.startswith("GPU: ")
    planted = truth.loc[result.segments["user_id"]].to_numpy()
    assert adjusted_rand_score(planted, result.segments["segment"]) >= 0.9
    table = pd.crosstab(planted, result.segments["persona"].astype(str))
    for persona in PERSONA_NAMES:
        assert table.loc[persona].idxmax() == persona, table
    m = json.loads(json.dumps(result.metrics.to_dict()))
    assert m["users"]["segmented"] == len(result.segments)
    assert m["silhouette"]["sample_size"] is None  # every user, in cuML's tiles
    assert m["umap"]["fit_sample_size"] is None and m["umap"]["trustworthiness"] > 0.8
    assert set(result.timings) >= {"load", "features", "scale", "pca", "k_sweep", "kmeans",
                                   "silhouette", "stability", "hierarchical", "dbscan",
                                   "importance", "personas", "rules", "umap"}
    assert result.activity.shape == (result.k, 7, 24) and result.activity.sum() > 0
    assert np.isfinite(result.segments[["silhouette", "umap_x", "umap_y"]].to_numpy()).all()
    assert gpu_backend.peak_device_memory() > 0
    run = write_run(result, tmp_path / "run")
    assert (run / "report.html").stat().st_size > 0
    assert pd.read_parquet(run / "segments.parquet")["segment"].tolist() == \
        result.segments["segment"].tolist()
