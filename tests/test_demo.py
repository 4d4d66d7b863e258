"""``gpuseg demo``: synthetic data in, a complete run directory and report out."""
from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from _fake_result import DEMO_USERS, demo_run

from gpuseg.cli import demo_config
from gpuseg.config import PipelineConfig
from gpuseg.data.schema import FILE_STEMS
from gpuseg.registry import get_backend


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


def test_demo_runs_everything_and_says_where_the_report_is(run):
    assert run.exit_code == 0
    lines = run.stdout.strip().splitlines()
    assert lines[-1] == f"report: {run.run_dir / 'report.html'}"
    assert f"synthetic data: {run.data_dir}" in lines
    assert (run.run_dir / "report.html").is_file()


def test_demo_writes_its_synthetic_data_beside_the_run_in_the_kaggle_layout(run):
    assert run.data_dir == run.run_dir.with_name(run.run_dir.name + "-data")
    files = {p.name for p in run.data_dir.iterdir()}
    assert {f"{stem}.parquet" for stem in FILE_STEMS.values()} <= files
    orders = pd.read_parquet(run.data_dir / "orders.parquet", columns=["user_id"])
    assert orders["user_id"].nunique() == DEMO_USERS


def test_demo_summary_lists_every_segment_with_its_size(run):
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    for persona, size in zip([p["name"] for p in metrics["personas"]], metrics["kmeans"]["sizes"]):
        assert any(line.strip().startswith(persona) and line.strip().endswith(f"{size:,}")
                   for line in run.stdout.splitlines()), persona


def test_demo_pipeline_keeps_every_stage_and_the_default_k():
    config = demo_config(get_backend("cpu"), 0)
    defaults = PipelineConfig()
    assert config.backend == "cpu" and config.k == defaults.k
    # Every stage as in a default run; only the map's layout is fitted on fewer users on the CPU.
    assert dataclasses.replace(config, umap_fit_sample="auto", seed=defaults.seed,
                               backend=defaults.backend) == defaults
    # Every shopper is on the map; umap-learn switches to NN-descent (and its long numba
    # compilation) at 4,096 points, so the layout is fitted below that.
    assert config.umap_sample is None
    assert config.umap_fit_sample < 4_096
