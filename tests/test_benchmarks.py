"""A small size of the benchmark runs in the suite so that it cannot rot."""
from __future__ import annotations

import json

import pytest

from benchmarks import readme
from benchmarks.suite import benchmark, write_results


@pytest.mark.slow
def test_small_benchmark_measures_every_stage_and_the_peers(tmp_path):
    report = benchmark([2500], repeats=1, backends=["cpu"], warmup=False,
                       data_dir=tmp_path / "data", log=lambda line: None)
    entry = report["sizes"]["2500"]
    run = entry["backends"]["cpu"]
    for stage in ("load_csv", "load_parquet", "features", "scale", "pca", "k_sweep", "kmeans", "soft",
                  "silhouette", "stability", "hierarchical", "dbscan", "umap", "report"):
        assert run["seconds"][stage]["median"] > 0, stage
    stages = sum(run["seconds"][s]["median"] for s in run["seconds"] if s not in ("load_csv", "run_total"))
    assert run["seconds"]["run_total"]["median"] == pytest.approx(stages)
    assert 0 < run["peak_host_gib"] < 24
    assert run["device"].startswith("CPU: ")
    assert set(entry["peers"]) == {"duckdb", "pandas_notebook"}
    assert entry["features_ratio_ours_over_peer"]["duckdb"] > 0

    path = write_results(report, tmp_path / "results")
    saved = json.loads(path.read_text())
    assert saved["sizes"]["2500"]["backends"]["cpu"]["k"] == 5
    assert path.with_suffix(".png").stat().st_size > 0
    table = path.with_suffix(".md").read_text()
    assert "| run_total |" in table and "2,500 users, cpu" in table

    section = readme.section(readme.latest_reports(tmp_path / "results"))
    assert section.startswith(readme.START) and section.endswith(readme.END)
    assert "| 2,500 | cpu |" in section and saved["devices"]["cpu"] in section


def test_a_spent_time_budget_skips_runs_and_still_writes_what_there_is(tmp_path):
    import time

    written = []
    report = benchmark([300], repeats=1, backends=["gpu", "cpu"], warmup=False, with_peers=False,
                       data_dir=tmp_path / "data", log=lambda line: None,
                       deadline=time.monotonic() - 1, checkpoint=written.append)
    assert report["skipped"] == ["300 users on gpu: out of time", "300 users on cpu: out of time"]
    assert report["sizes"]["300"]["backends"] == {} and written
    path = write_results(report, tmp_path / "results")
    assert "Not measured (out of time): 300 users on gpu" in path.with_suffix(".md").read_text()
