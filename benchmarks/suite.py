"""Stage-by-stage benchmark of the whole run on every available backend, with agreement and peers.

    python -m benchmarks                                  # 20K, 50K and 206,209 users, 3 repeats
    python -m benchmarks --sizes 5000 --repeats 1         # quick

For each size the synthetic generator writes a ``realistic`` data set (CSV,
Kaggle layout) once into ``benchmarks/.data/``. Each measurement is a fresh
subprocess (``--worker``) that, on one backend: loads the CSVs with an empty
parquet cache (``load_csv``), loads again from the cache (``load_parquet``),
runs :func:`gpuseg.pipeline.segment` (its per-stage timings) and writes the run
directory with the report (``report``); it records peak host memory (VmHWM)
and peak GPU memory (RMM statistics). A warm-up run at the smallest size comes
first on each backend (numba and CUDA compile once per process, so every
worker pays its own compilation: the numbers are cold-process numbers, like a
user's ``gpuseg run``). Where two backends ran, their outputs on the same input
are compared (features, PCA, KMeans, DBSCAN, hierarchical, UMAP, silhouette).
DuckDB and the pandas notebook way compute the features from the same tables
as CPU peers (:mod:`benchmarks.bench_features`).

Writes ``benchmarks/results/<device>-<date>.json``, a Markdown table beside it
and a PNG chart; ``python -m benchmarks.readme`` puts the latest into README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.memory import status_kib
from gpuseg.pipeline import stage_names

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / ".data"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
FULL_SCALE_USERS = 206_209
DEFAULT_SIZES = (20_000, 50_000, FULL_SCALE_USERS)
#: Whole-run stages, in order; ``run_total`` adds them up from the parquet cache to the report.
RUN_STAGES = ("load_parquet", *stage_names(), "report")
STAGES = ("load_csv",) + RUN_STAGES
PEERS = ("duckdb", "pandas_notebook")


# -- data ---------------------------------------------------------------------------------------
def dataset(n_users: int, seed: int = 0, data_dir: Path = DATA_DIR) -> Path:
    """The benchmark's CSV folder for ``n_users`` (generated once, reused)."""
    from gpuseg.data.synth import generate_instacart, write_instacart

    folder = data_dir / f"synth-{n_users}-seed{seed}-realistic"
    if not (folder / "orders.csv").exists():
        write_instacart(generate_instacart(n_users, seed=seed, separation="realistic"), folder,
                        fmt="csv", overwrite=True)
    return folder


# -- one measurement (runs in its own process) --------------------------------------------------
def measure_run(folder: Path, backend_name: str, out: Path,
                umap_fit_sample: int | None | str = "auto") -> dict[str, Any]:
    """Load (CSV, then cache), segment and write the run directory; timings per stage.

    ``umap_fit_sample`` as ``PipelineConfig.umap_fit_sample``: the same number on
    both backends makes their maps' trustworthiness comparable (the GPU fits
    every user by default, the CPU 20,000).
    """
    from gpuseg.config import PipelineConfig
    from gpuseg.data import load_instacart
    from gpuseg.features import compute_features
    from gpuseg.pipeline import segment
    from gpuseg.registry import get_backend
    from gpuseg.rundir import write_run

    backend = get_backend(backend_name)
    config = PipelineConfig(backend=backend_name, umap_fit_sample=umap_fit_sample)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gpuseg-bench-cache-") as cache_dir:
        start = time.perf_counter()
        load_instacart(folder, backend=backend, cache_dir=cache_dir)
        backend.synchronize()
        seconds["load_csv"] = time.perf_counter() - start
        start = time.perf_counter()
        data = load_instacart(folder, backend=backend, cache_dir=cache_dir)
        backend.synchronize()
        seconds["load_parquet"] = time.perf_counter() - start

    result = segment(data, config, backend=backend)
    seconds.update(result.timings)
    start = time.perf_counter()
    write_run(result, out / "run", force=True)
    seconds["report"] = time.perf_counter() - start
    seconds["run_total"] = sum(seconds[s] for s in RUN_STAGES if s in seconds)

    # Artifacts for the cross-backend comparison (host copies; outside the timed stages).
    features = backend.to_host(compute_features(data, backend, min_orders=config.min_orders).table)
    features.to_parquet(out / "features.parquet")
    metrics = result.metrics.to_dict()
    return {
        "backend": backend.name, "device": backend.device, "versions": backend.versions(),
        "seconds": seconds,
        "peak_host_gib": status_kib("VmHWM") / 2**20,
        "peak_gpu_gib": None if backend.peak_device_memory() is None
        else backend.peak_device_memory() / 2**30,
        "users_segmented": metrics["users"]["segmented"],
        "k": result.k,
        "explained_variance_ratio": metrics["preprocess"]["explained_variance_ratio"],
        "silhouette": metrics["silhouette"]["overall"],
        "trustworthiness": metrics["umap"]["trustworthiness"],
        # Users whose coordinates shaped the map (the others were placed with transform).
        "umap_fitted_users": metrics["umap"]["fit_sample_size"] or metrics["umap"]["sample_size"]
        or metrics["users"]["segmented"],
        "dbscan_outlier_share": metrics["dbscan"]["outlier_share"],
    }


def _worker(folder: Path, backend_name: str, out: Path,
            umap_fit_sample: int | None | str = "auto") -> dict[str, Any]:
    return run_step(["benchmarks.suite", "--worker", backend_name, "--data", str(folder),
                     "--out", str(out), "--umap-fit-sample", _sample_text(umap_fit_sample)],
                    failure=f"benchmark worker failed ({backend_name}, {folder.name})")


def run_step(module_args: list[str], *, failure: str) -> dict[str, Any]:
    """Run ``python -m <module_args>`` in a fresh process; its last stdout line is its JSON result."""
    done = subprocess.run([sys.executable, "-m", *module_args], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{failure}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sample_text(value: int | None | str) -> str:
    return "all" if value is None else str(value)


def _sample_value(text: str) -> int | None | str:
    return None if text == "all" else "auto" if text == "auto" else int(text)


# -- agreement between two backends -------------------------------------------------------------
def agreement(a: Path, b: Path, run_a: dict[str, Any], run_b: dict[str, Any]) -> dict[str, Any]:
    """Compare two backends' outputs on the same input (directories written by ``measure_run``)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    feats_a, feats_b = pd.read_parquet(a / "features.parquet"), pd.read_parquet(b / "features.parquet")
    seg_a = pd.read_parquet(a / "run" / "segments.parquet").set_index("user_id")
    seg_b = pd.read_parquet(b / "run" / "segments.parquet").set_index("user_id").loc[seg_a.index]
    evr_a = np.asarray(run_a["explained_variance_ratio"])
    evr_b = np.asarray(run_b["explained_variance_ratio"])
    n = min(len(evr_a), len(evr_b))

    def embedding_ari(seg: pd.DataFrame, k: int) -> float | None:
        coords = seg[["umap_x", "umap_y"]].dropna()
        if coords.empty:
            return None
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(coords.to_numpy())
        return float(adjusted_rand_score(seg.loc[coords.index, "segment"], labels))

    outliers_a = float((seg_a["dbscan"] == -1).mean())
    outliers_b = float((seg_b["dbscan"] == -1).mean())
    return {
        "features_max_abs_diff": float((feats_a - feats_b.loc[feats_a.index, feats_a.columns])
                                       .abs().max().max()),
        "pca_explained_variance_max_diff": float(np.abs(evr_a[:n] - evr_b[:n]).max()),
        "kmeans_ari": float(adjusted_rand_score(seg_a["segment"], seg_b["segment"])),
        "kmeans_ami": float(adjusted_mutual_info_score(seg_a["segment"], seg_b["segment"])),
        "dbscan_ari": float(adjusted_rand_score(seg_a["dbscan"], seg_b["dbscan"])),
        "dbscan_outlier_share_diff": abs(outliers_a - outliers_b),
        "hierarchical_ari": float(adjusted_rand_score(seg_a["hierarchical"], seg_b["hierarchical"])),
        "trustworthiness": {run_a["backend"]: run_a["trustworthiness"],
                            run_b["backend"]: run_b["trustworthiness"]},
        "trustworthiness_diff": abs(run_a["trustworthiness"] - run_b["trustworthiness"]),
        "kmeans_on_embedding_ari": {run_a["backend"]: embedding_ari(seg_a, run_a["k"]),
                                    run_b["backend"]: embedding_ari(seg_b, run_b["k"])},
        "silhouette_diff": abs(run_a["silhouette"] - run_b["silhouette"]),
    }


# -- peers --------------------------------------------------------------------------------------
def peers(folder: Path, repeats: int) -> dict[str, Any]:
    """DuckDB and pandas-notebook features from the same tables (CPU peers)."""
    from benchmarks.bench_features import measure_in_subprocess, save_tables
    from gpuseg.data import load_instacart

    with tempfile.TemporaryDirectory(prefix="gpuseg-bench-peers-") as scratch:
        tables = Path(scratch)
        save_tables(load_instacart(folder, cache=False), tables)
        out = {}
        for method in PEERS:
            runs = [measure_in_subprocess(method, tables, None) for _ in range(repeats)]
            out[method] = _summary([r["seconds"] for r in runs]) | {
                "peak_gib_max": max(r["peak_gib"] for r in runs)}
        return out


# -- orchestration ------------------------------------------------------------------------------
def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def available_backends() -> list[str]:
    from gpuseg.registry import gpu_unavailable_reason

    return ["cpu"] if gpu_unavailable_reason() is not None else ["cpu", "gpu"]


def benchmark(sizes: list[int], repeats: int, backends: list[str], *, with_peers: bool = True,
              warmup: bool = True, data_dir: Path = DATA_DIR, log=print,
              umap_fit_sample: int | None | str = "auto", deadline: float | None = None,
              checkpoint=None) -> dict[str, Any]:
    """Measure every size on every backend; see the module docstring.

    ``deadline`` (a ``time.monotonic()`` value) skips, with a note in the report,
    every backend run that starts after it; ``checkpoint(report)`` is called
    after each backend's runs and each size, so that a run killed for time
    still leaves what it measured.
    """
    report: dict[str, Any] = {"date": dt.date.today().isoformat(), "repeats": repeats,
                              "backends": backends, "sizes": {}, "devices": {},
                              "umap_fit_sample": umap_fit_sample, "skipped": []}
    with tempfile.TemporaryDirectory(prefix="gpuseg-bench-") as scratch:
        scratch_dir = Path(scratch)
        if warmup:
            for name in backends:
                _worker(dataset(min(sizes), data_dir=data_dir), name, scratch_dir / f"warmup-{name}",
                        umap_fit_sample)
        for n_users in sizes:
            folder = dataset(n_users, data_dir=data_dir)
            entry: dict[str, Any] = {"backends": {}}
            report["sizes"][str(n_users)] = entry
            outputs: dict[str, tuple[Path, dict[str, Any]]] = {}
            for name in backends:
                if deadline is not None and time.monotonic() > deadline:
                    report["skipped"].append(f"{n_users} users on {name}: out of time")
                    log(f"{n_users:>7} users {name}: skipped, out of time")
                    continue
                runs = []
                for repeat in range(repeats):
                    out = scratch_dir / f"{n_users}-{name}-{repeat}"
                    runs.append(_worker(folder, name, out, umap_fit_sample))
                    log(f"{n_users:>7} users {name}: run_total {runs[-1]['seconds']['run_total']:.1f} s, "
                        f"peak host {runs[-1]['peak_host_gib']:.2f} GiB")
                    if repeat == 0:
                        outputs[name] = (out, runs[-1])
                report["devices"][name] = runs[0]["device"]
                entry["backends"][name] = {
                    "device": runs[0]["device"], "versions": runs[0]["versions"],
                    "users_segmented": runs[0]["users_segmented"], "k": runs[0]["k"],
                    "seconds": {stage: _summary([r["seconds"][stage] for r in runs])
                                for stage in STAGES + ("run_total",) if stage in runs[0]["seconds"]},
                    "peak_host_gib": max(r["peak_host_gib"] for r in runs),
                    "peak_gpu_gib": None if runs[0]["peak_gpu_gib"] is None
                    else max(r["peak_gpu_gib"] for r in runs),
                    "silhouette": runs[0]["silhouette"],
                    "trustworthiness": runs[0]["trustworthiness"],
                    "umap_fitted_users": runs[0]["umap_fitted_users"],
                }
                if checkpoint is not None:
                    checkpoint(report)
            if len(outputs) == 2:
                (a, run_a), (b, run_b) = outputs["cpu"], outputs["gpu"]
                entry["agreement"] = agreement(a, b, run_a, run_b)
                cpu_s = entry["backends"]["cpu"]["seconds"]["run_total"]["median"]
                gpu_s = entry["backends"]["gpu"]["seconds"]["run_total"]["median"]
                entry["speedup_gpu_over_cpu"] = cpu_s / gpu_s
            if with_peers and "cpu" in entry["backends"]:
                entry["peers"] = peers(folder, repeats)
                ours = entry["backends"]["cpu"]["seconds"]["features"]["median"]
                entry["features_ratio_ours_over_peer"] = {
                    m: ours / entry["peers"][m]["median"] for m in PEERS}
            if checkpoint is not None:
                checkpoint(report)
    return report


def slug(text: str) -> str:
    """Lower-case letters and digits joined by ``-``, for file names."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_slug(report: dict[str, Any]) -> str:
    device = report["devices"].get("gpu") or report["devices"].get("cpu") or "no-device-measured"
    return slug(device)[:60]


def write_table_results(results: dict[str, Any], table: str, folder: Path, stem: str) -> None:
    """``<stem>.json`` and its Markdown ``table`` as ``<stem>.md`` in ``folder``; the table printed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (folder / f"{stem}.md").write_text(table)
    print(table)


def write_results(report: dict[str, Any], folder: Path = RESULTS_DIR) -> Path:
    """JSON + Markdown + PNG chart, named after the device and date."""
    from benchmarks.render import markdown_table, plot_stages

    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{device_slug(report)}-{report['date']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown_table(report))
    plot_stages(report, stem.with_suffix(".png"))
    return stem.with_suffix(".json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", choices=("cpu", "gpu"), default=None,
                        help="default: every available backend")
    parser.add_argument("--no-peers", action="store_true", help="skip DuckDB and pandas peers")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the warm-up run at the smallest size (every run is cold anyway)")
    parser.add_argument("--umap-fit-sample", type=_sample_value, default="auto",
                        help="users the UMAP layout is fitted on, on every backend: N, 'all' or "
                             "'auto' (each backend's default; default: auto)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="start no backend run after this many seconds; results are written "
                             "after every backend's runs either way")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--worker", choices=("cpu", "gpu"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.out.mkdir(parents=True, exist_ok=True)
        print(json.dumps(measure_run(args.data, args.worker, args.out, args.umap_fit_sample)))
        return 0
    deadline = None if args.time_budget is None else time.monotonic() + args.time_budget
    report = benchmark(sorted(args.sizes), args.repeats, args.backends or available_backends(),
                       with_peers=not args.no_peers, warmup=not args.no_warmup,
                       log=lambda line: print(line, file=sys.stderr),
                       umap_fit_sample=args.umap_fit_sample, deadline=deadline,
                       checkpoint=lambda partial: write_results(partial, args.results))
    path = write_results(report, args.results)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
