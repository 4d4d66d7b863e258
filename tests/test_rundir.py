"""The run directory: what it holds, in which schema, and that it appears whole or not at all."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from _claims_reference import check_run
from _fake_result import FAST_CONFIG, demo_run, fake_result
from _layout import hidden_entries

import gpuseg.report
from gpuseg.cluster import BETWEEN_PERSONAS
from gpuseg.config import PipelineConfig
from gpuseg.errors import GpusegError
from gpuseg.model import load_model
from gpuseg.outputs import MARK_FILE
from gpuseg.pipeline import stage_names
from gpuseg.run_layout import SEGMENT_COLUMNS
from gpuseg.rundir import write_run

FIGURES = {"activity.png", "dendrogram.png", "importance.png", "k_sweep.png", "membership.png",
           "radar.png", "reliability.png", "silhouette.png", "sizes.png", "top_aisles.png", "umap.png"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.fixture(scope="module")
def fake():
    return fake_result()


def test_a_run_directory_holds_exactly_its_documented_files(run):
    assert run.exit_code == 0
    assert sorted(p.name for p in run.run_dir.iterdir()) == sorted([
        "customers", "figures", "metrics.json", "model", "profiles.csv", "report.html",
        "segments.parquet", MARK_FILE])
    assert {p.name for p in (run.run_dir / "figures").iterdir()} == FIGURES
    assert sorted(p.name for p in (run.run_dir / "model").iterdir()) == ["arrays.npz", "model.json"]


def test_segments_parquet_has_one_row_per_user_in_the_documented_schema(run):
    segments = pd.read_parquet(run.run_dir / "segments.parquet")
    # The default density method, DBSCAN, ran: its column is there and HDBSCAN's is not.
    assert tuple(segments.columns) == tuple(c for c in SEGMENT_COLUMNS if c != "hdbscan")
    dtypes = {c: str(t) for c, t in segments.dtypes.items()}
    assert dtypes == {"user_id": "int64", "segment": "int32", "persona": "str",
                      "membership": "float64", "second_segment": "int32",
                      "second_membership": "float64", "silhouette": "float64",
                      "umap_x": "float64", "umap_y": "float64", "hierarchical": "int32",
                      "dbscan": "int32"}
    assert segments["membership"].between(0, 1).all()
    assert (segments["second_membership"] <= 1 - segments["membership"] + 1e-12).all()
    assert (segments["second_segment"] != segments["segment"]).all()
    assert segments["user_id"].is_unique and segments["user_id"].is_monotonic_increasing
    model = load_model(run.run_dir / "model")
    assert set(segments["segment"]) == set(range(model.k))
    np.testing.assert_array_equal(segments["persona"],
                                  np.asarray(model.persona_names)[segments["segment"]])
    assert segments["dbscan"].min() >= -1
    # The test configuration embeds a sample of users: the others have no map position. Of the
    # embedded users, some shaped the layout and the rest were placed with transform.
    embedded = segments["umap_x"].notna()
    assert embedded.sum() == FAST_CONFIG["umap_sample"]
    assert (embedded == segments["umap_y"].notna()).all()
    umap = json.loads((run.run_dir / "metrics.json").read_text())["umap"]
    assert umap["sample_size"] == FAST_CONFIG["umap_sample"]
    assert umap["fit_sample_size"] == FAST_CONFIG["umap_fit_sample"]


def test_profiles_csv_has_one_row_per_segment_with_persona_and_actions(run):
    profiles = pd.read_csv(run.run_dir / "profiles.csv")
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    model = load_model(run.run_dir / "model")
    assert len(profiles) == model.k
    assert list(profiles["segment"]) == list(range(model.k))
    assert list(profiles["persona"]) == list(model.persona_names)
    assert profiles["size"].sum() == metrics["users"]["segmented"]
    assert profiles["share"].sum() == pytest.approx(1.0)
    for column in ("basket_size_mean", "reorder_ratio", "preferred_hour", "weekend_share",
                   "top_aisles", "top_aisle_lifts", "top_departments"):
        assert profiles[column].notna().all(), column
    assert any(c.startswith("dept_share_") for c in profiles.columns)
    # Lists are written for people: "a; b; c", not a Python repr.
    assert not profiles["top_aisles"].str.contains(r"[\[\]']").any()
    assert (profiles["top_aisles"].str.count("; ") >= 1).all()
    for segment, actions in zip(profiles["segment"], profiles["actions"]):
        persona = next(p for p in metrics["personas"] if p["segment"] == segment)
        # Each action with the fact that triggers it, as metrics.json states them.
        assert actions == "; ".join(f"{a['text']} ({a['fact']['text']})"
                                    for a in persona["actions"])
    # Every sentence of the evidence and every action's fact holds against profiles.csv.
    assert check_run(profiles, metrics["personas"]) >= 3 * model.k
    # The volume each segment stands for: its shares of all orders and of all items.
    for column in ("order_share", "item_share"):
        assert profiles[column].sum() == pytest.approx(1.0), column


def test_each_segment_has_a_customer_list_linked_from_its_card(run, tmp_path):
    segments = pd.read_parquet(run.run_dir / "segments.parquet")
    model = load_model(run.run_dir / "model")
    # The folder moved elsewhere: the report's links are relative, so they still resolve.
    moved = tmp_path / "moved"
    shutil.copytree(run.run_dir, moved)
    page = (moved / "report.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+\.csv)"', page)
    assert links == [f"customers/segment-{j}.csv" for j in range(model.k)]
    for j, link in enumerate(links):
        customers = pd.read_csv(moved / link)
        assert list(customers.columns) == ["user_id", "segment", "persona", "membership",
                                           "between_personas", "second_segment",
                                           "second_persona", "second_membership"]
        members = segments[segments["segment"] == j]
        assert sorted(customers["user_id"]) == sorted(members["user_id"])
        assert (customers["persona"] == model.persona_names[j]).all()
        # Surest first; the second segment is another segment, with its persona.
        assert customers["membership"].is_monotonic_decreasing
        assert (customers["second_segment"] != j).all()
        assert (customers["second_persona"]
                == [model.persona_names[s] for s in customers["second_segment"]]).all()
        assert (customers["between_personas"] == (customers["membership"] < BETWEEN_PERSONAS)).all()
    assert "second segment" in page and "between personas" in page


def test_metrics_json_records_numbers_timings_and_provenance(run):
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    for key in ("k_sweep", "k_choice", "kmeans", "certainty", "silhouette", "stability", "hierarchical",
                "dbscan", "importance", "rules", "verdict", "umap", "personas", "users",
                "preprocess"):
        assert metrics[key], key
    assert set(metrics["timings"]) == {"load", *stage_names()}
    assert all(seconds >= 0 for seconds in metrics["timings"].values())
    assert metrics["backend"] == "cpu" and metrics["device"].startswith("CPU")
    assert {"numpy", "pandas", "scikit-learn", "umap-learn", "python"} <= set(metrics["versions"])
    assert metrics["config"] == PipelineConfig(backend="cpu", seed=0, **FAST_CONFIG).to_dict()
    assert metrics["input"]["fingerprint"] and str(run.data_dir) in metrics["input"]["source"]
    assert metrics["gpuseg_version"]
    # The reliability table and each segment's reproducibility (issue 25).
    reliability = metrics["certainty"]["reliability"]
    assert {"bins", "gap", "max_bin_gap", "rising", "calibrated"} <= set(reliability)
    assert [b["high"] for b in reliability["bins"]] == [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]
    assert {s["verdict"] for s in metrics["certainty"]["segments"]} <= {"dissolves", "weak",
                                                                         "stable"}


def test_model_records_where_it_was_fitted(run):
    meta = json.loads((run.run_dir / "model" / "model.json").read_text())
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert meta["fitted_on"] == {"backend": "cpu", "device": metrics["device"]}
    assert meta["min_orders"] == metrics["config"]["min_orders"]


# -- atomicity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [RuntimeError("figure failed"), KeyboardInterrupt()])
def test_a_run_that_fails_while_writing_leaves_nothing_behind(fake, tmp_path, monkeypatch, failure):
    def broken_report(result, folder, **_):
        (folder / "report.html").write_text("half")
        raise failure

    monkeypatch.setattr(gpuseg.report, "write_report", broken_report)
    with pytest.raises(type(failure)):
        write_run(fake, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_run_directory_is_refused_and_left_alone(fake, tmp_path, monkeypatch):
    target = write_run(fake, tmp_path / "run")
    (target / "profiles.csv").write_text("earlier run")
    with pytest.raises(GpusegError, match="already exists; pass force=True"):
        write_run(fake, target)
    assert (target / "profiles.csv").read_text() == "earlier run"
    assert hidden_entries(tmp_path) == []


def test_force_replaces_an_existing_run_only_once_the_new_one_is_complete(fake, tmp_path, monkeypatch):
    target = write_run(fake, tmp_path / "run")
    (target / "profiles.csv").write_text("earlier run")

    def late_failure(result, folder, **_):
        raise RuntimeError("late failure")

    monkeypatch.setattr(gpuseg.report, "write_report", late_failure)
    with pytest.raises(RuntimeError):
        write_run(fake, target, force=True)
    assert (target / "profiles.csv").read_text() == "earlier run"
    monkeypatch.undo()

    write_run(fake, target, force=True)
    assert (target / "profiles.csv").read_text() != "earlier run"
    assert (target / "report.html").is_file() and (target / "segments.parquet").is_file()
    assert hidden_entries(tmp_path) == []
