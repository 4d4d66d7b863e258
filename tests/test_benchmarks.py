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
    for stage in ("load_csv", "load_parquet", "features", "scale", "pca", "k_sweep", "kmeans", "certainty",
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

    section = readme.section(readme.latest_reports(tmp_path / "results"), tmp_path / "results")
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


def test_serve_results_become_the_readme_serving_table(tmp_path):
    """benchmarks.serve writes these keys (its run is too long for the suite: see the README)."""
    from benchmarks.serve import markdown

    def single(p99: float, rps: float) -> dict:
        return {"requests": 2000, "clients": 16, "errors": 0, "seconds": 6.2,
                "requests_per_second": rps, "p50_ms": 41.0, "p95_ms": 70.5, "p99_ms": p99,
                "load_before": 1.2, "load_after": 1.9,
                "server_batches": {"batches": 250, "requests": 2000,
                                   "mean_requests_per_batch": 8.0}}

    repetitions = [single(140.25, 250.0), single(90.0, 322.6), single(95.0, 300.0)]
    results = {"date": "2026-12-02", "cpu": "Test CPU", "cpu_count": 2,
               "rss_mib_start": {"VmRSS": 160.0, "VmHWM": 170.0},
               "rss_mib_end": {"VmRSS": 230.0, "VmHWM": 240.0}, "exit_code": 0,
               "single_repetitions": repetitions, "single": repetitions[2],
               "batch": {"requests": 3, "shoppers_per_request": 1000, "errors": 0,
                         "seconds": [0.4, 0.35, 0.38], "max_seconds": 0.4},
               "met": {"no_errors": True, "single_p99_ms": True, "single_rps": True,
                       "batch_seconds": True}}
    (tmp_path / "serve-test-cpu-2026-12-02.json").write_text(json.dumps(results))
    section = readme.serving_section(tmp_path)
    assert section.startswith(readme.SERVING_START) and section.endswith(readme.SERVING_END)
    assert ("| 2,000 x 1 shopper (1 of 3) | 16 | 0 | 250 | 41.0 | 70.5 | 140.2 | 1.2 / 1.9 |"
            in section)
    assert "| 2,000 x 1 shopper (2 of 3) | 16 | 0 | 323 |" in section
    assert "0.40 s / 0.35 s / 0.38 s" in section and "single_p99_ms met" in section
    assert "median p99" in section and "Soak" not in section
    assert "serve-test-cpu-2026-12-02.json" in section
    assert markdown(results).rstrip("\n") in section


def test_first_run_results_join_the_readme_performance_section(tmp_path):
    from benchmarks import first_run

    timings = {"median": 14.2, "min": 13.1, "max": 16.0, "n": 5, "each": [14.2] * 5}
    results = {"benchmark": "first_run", "date": "2026-12-03", "cpu": "Test CPU", "cpu_count": 2,
               "first_run": {"users": 600, "cold": timings, "warm": {**timings, "median": 8.5},
                             "load_before": [0.1], "load_after": [1.2]}}
    (tmp_path / "first-run-test-cpu-2026-12-03.json").write_text(json.dumps(results))
    section = readme.section([], tmp_path)
    assert section.startswith(readme.START) and section.endswith(readme.END)
    assert "| cold: empty cache folder | 14.2 | 13.1 | 16.0 | 5 |" in section
    assert "| warm: cache filled | 8.5 |" in section
    assert f"cold <= {first_run.TARGET_COLD_S:g} s" in section
    assert "gpuseg demo" not in section  # not measured, not shown


def _distributed_record(users: int, total: float, worker_peak: float) -> dict:
    seconds = {"features": 1.0, "kmeans": 1.0, "dbscan": 1.0, "umap": 1.0, "write": 1.0,
               "total": total}
    return {"users": users, "partitions": 9, "load_before": [1.0], "load_after": [1.5],
            "generate": {"seconds": 2.0},
            "run": {"seconds": seconds, "client_peak_rss_gib": 1.0},
            "cluster_peak_rss_gib": {"scheduler (pid 1)": 0.4, "worker (pid 2)": worker_peak},
            "max_process_peak_rss_gib": max(1.0, worker_peak)}


def test_a_merged_distributed_size_joins_the_days_results_and_gets_its_verdict(
        tmp_path, monkeypatch):
    """``--merge`` measures one size and keeps the day's other sizes; 30x gets the 8 GiB check."""
    from benchmarks import distributed

    monkeypatch.setattr(distributed, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr("gpuseg.host.cpu_name", lambda: "Test CPU")
    today = distributed.dt.date.today().isoformat()
    stem = tmp_path / f"distributed-test-cpu-{today}"
    earlier = [_distributed_record(206_209, 100.0, 0.8), _distributed_record(2_062_090, 650.0, 3.0)]
    stem.with_suffix(".json").write_text(json.dumps({"sizes": earlier}))
    measured = []

    def measure(n_users, data_dir, keep_data, reuse_data):
        measured.append(n_users)
        record = _distributed_record(n_users, 2000.0, 8.5)
        return {**record, "generate": {"reused": True}} if reuse_data else record

    monkeypatch.setattr(distributed, "measure", measure)
    assert distributed.main(["--merge", "--sizes", str(distributed.OUT_OF_CORE)]) == 0
    assert measured == [distributed.OUT_OF_CORE]
    results = json.loads(stem.with_suffix(".json").read_text())
    assert [r["users"] for r in results["sizes"]] == [206_209, 2_062_090, 6_186_270]
    assert results["ratio_10x_1x"] == pytest.approx(6.5)
    assert results["peak_10x_within_target"] is True
    assert results["peak_30x_within_target"] is False  # 8.5 GiB
    table = stem.with_suffix(".md").read_text()
    assert "| 6,186,270 | 9 | 2 | 2000 |" in table and "| 206,209 | 9 | 2 | 100 |" in table
    assert "Every process's peak at 30x > 8 GiB." in table
    # How each stage grows from the smallest size to the largest, against the users' growth.
    assert "for 30 times the users" in table
    assert "| total | 100.0 | 650.0 | 2000.0 | 20.0x |" in table
    assert "| umap | 1.0 | 1.0 | 1.0 | 1.0x |" in table

    # Without --merge the day's file holds only what this call measured.
    assert distributed.main(["--sizes", "206209", "--reuse-data"]) == 0
    results = json.loads(stem.with_suffix(".json").read_text())
    assert [r["users"] for r in results["sizes"]] == [206_209]
    assert "| 206,209 | 9 | reused | 2000 |" in stem.with_suffix(".md").read_text()
    assert "ratio_10x_1x" not in results and "peak_30x_within_target" not in results
