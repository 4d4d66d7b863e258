"""Time the synthetic Instacart generator and measure its peak memory.

    python -m benchmarks.bench_synth                          # full scale: 206,209 users
    python -m benchmarks.bench_synth --users 20000 --repeats 3
    python -m benchmarks.bench_synth --separations realistic --write csv

Every measurement is a fresh subprocess that imports the generator, then times
one :func:`gpuseg.data.synth.generate_instacart` call (``--write`` adds one
:func:`~gpuseg.data.synth.write_instacart` into a scratch folder, timed on its
own). Peak memory is the process's peak resident set during generation
(VmHWM, reset just before it starts), interpreter and imports included;
``stage_peak_gib`` subtracts what was resident before. Results go to
``benchmarks/results/synth-<cpu>-<date>.json``, one entry per separation level
(a later run on the same day replaces the entries it measured).
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.memory import reset_peak_rss, status_kib
from gpuseg.host import cpu_name

FULL_SCALE_USERS = 206_209
SEPARATIONS = ("realistic", "strong")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def measure_once(n_users: int, separation: str, seed: int, write: str | None) -> dict[str, Any]:
    """One generation (and optionally one write) with its peak memory; runs in the worker."""
    from gpuseg.data.synth import generate_instacart, write_instacart

    gc.collect()
    baseline_kib = status_kib("VmRSS")
    reset_peak_rss()
    start = time.perf_counter()
    synth = generate_instacart(n_users, seed=seed, separation=separation)
    seconds = time.perf_counter() - start
    peak_kib = status_kib("VmHWM")
    result = {
        "seconds": seconds,
        "load_average_1min": os.getloadavg()[0],
        "peak_gib": peak_kib / 2**20,
        "stage_peak_gib": (peak_kib - baseline_kib) / 2**20,
        "rows": {name: len(frame) for name, frame in synth.tables().items()},
    }
    if write is not None:
        with tempfile.TemporaryDirectory(prefix="bench_synth_") as scratch:
            start = time.perf_counter()
            folder = write_instacart(synth, Path(scratch) / "instacart", fmt=write)
            result["write_seconds"] = time.perf_counter() - start
            result["written_gib"] = sum(p.stat().st_size for p in folder.iterdir()) / 2**30
    return result


def _in_subprocess(n_users: int, separation: str, seed: int, write: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_synth", "--worker", "--users", str(n_users),
               "--separations", separation, "--seed", str(seed)]
    if write is not None:
        command += ["--write", write]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    summary = {
        "seconds_median": statistics.median(seconds),
        "seconds_min": min(seconds),
        "seconds_max": max(seconds),
        "peak_gib_max": max(r["peak_gib"] for r in runs),
        "stage_peak_gib_max": max(r["stage_peak_gib"] for r in runs),
        "rows": runs[0]["rows"],
    }
    if "write_seconds" in runs[0]:
        summary["write_seconds_median"] = statistics.median(r["write_seconds"] for r in runs)
        summary["written_gib"] = runs[0]["written_gib"]
    summary["runs"] = runs
    return summary


def benchmark(n_users: int, repeats: int, separations: list[str], seed: int,
              write: str | None) -> dict[str, Any]:
    results = {}
    for separation in separations:
        runs = []
        for repeat in range(repeats):
            runs.append(_in_subprocess(n_users, separation, seed, write))
            print(f"{separation} #{repeat + 1}: {runs[-1]['seconds']:.2f} s, "
                  f"peak {runs[-1]['peak_gib']:.2f} GiB", file=sys.stderr)
        results[separation] = _summary(runs)
    return {
        "benchmark": "synth",
        "date": dt.date.today().isoformat(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {name: metadata.version(name) for name in ("numpy", "pandas", "pyarrow", "scipy")},
        "users": n_users,
        "seed": seed,
        "repeats": repeats,
        "write_format": write,
        "separations": results,
    }


def _save(report: dict[str, Any]) -> Path:
    """Write the report, keeping other separation levels measured earlier the same day."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    cpu = re.sub(r"[^a-z0-9]+", "-", report["cpu"].lower()).strip("-")
    path = RESULTS_DIR / f"synth-{cpu}-{report['date']}.json"
    if path.exists():
        earlier = json.loads(path.read_text())
        if (earlier.get("users"), earlier.get("seed")) == (report["users"], report["seed"]):
            report = {**report, "separations": {**earlier["separations"], **report["separations"]}}
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=FULL_SCALE_USERS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--separations", nargs="+", choices=SEPARATIONS, default=list(SEPARATIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", choices=("csv", "parquet"),
                        help="also time writing the folder in this format")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure_once(args.users, args.separations[0], args.seed, args.write)))
        return 0

    report = benchmark(args.users, args.repeats, args.separations, args.seed, args.write)
    path = _save(report)
    for separation, summary in report["separations"].items():
        write = ""
        if "write_seconds_median" in summary:
            write = f", write {summary['write_seconds_median']:.1f} s"
        print(f"{separation:10s} median {summary['seconds_median']:6.2f} s "
              f"(min {summary['seconds_min']:.2f}, max {summary['seconds_max']:.2f})  "
              f"peak {summary['peak_gib_max']:.2f} GiB "
              f"(generation {summary['stage_peak_gib_max']:.2f}){write}  rows {summary['rows']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
