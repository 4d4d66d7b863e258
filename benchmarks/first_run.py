"""First-run benchmark: ``python -m benchmarks --first-run`` (a user's first ``gpuseg run``).

A first run on a machine has nothing cached: the CSVs are read without a
parquet cache and umap-learn's kernels are compiled (in the background, see
:mod:`cpu_fallback.numba_cache`). Each cold repeat is ``gpuseg run`` in a
fresh process with its own empty ``GPUSEG_CACHE_DIR``; each warm repeat runs
again on a cache folder that one earlier run filled. Both are timed from the
command's start to its exit, as a user sees them, on 600 synthetic shoppers
(593 of them ordered at least five times). ``--demo`` also times ``gpuseg
demo`` with an empty cache folder, the README's first command after the
install.

Writes ``benchmarks/results/first-run-<device>-<date>.json`` and a Markdown
table beside it. Target (issue 28): a cold run <= 15 s on the 2-core CPU.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.suite import RESULTS_DIR, ROOT, slug, write_table_results

USERS = 600
TARGET_COLD_S = 15.0


def _gpuseg(*args: str, cache: Path) -> float:
    """Seconds of one ``gpuseg`` command in a fresh process with ``cache`` as its cache folder."""
    env = {**os.environ, "GPUSEG_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gpuseg.cli", *args, "-q"], env=env, cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _summary(seconds: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds),
            "n": len(seconds), "each": seconds}


def measure(repeats: int, demo: bool) -> dict[str, Any]:
    """Cold and warm runs (and the demo) in a scratch folder; seconds of each."""
    record: dict[str, Any] = {"users": USERS, "load_before": [round(v, 2) for v in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="gpuseg-first-run-") as scratch:
        root = Path(scratch)
        data = root / "data"
        _gpuseg("synth", "--users", str(USERS), "--seed", "0", "--out", str(data),
                cache=root / "synth-cache")
        cold, warm = [], []
        for i in range(repeats):
            cache = root / f"cache-{i}"
            cold.append(_gpuseg("run", "--data", str(data), "--out", str(root / f"cold-{i}"),
                                cache=cache))
            warm.append(_gpuseg("run", "--data", str(data), "--out", str(root / f"warm-{i}"),
                                cache=cache))
        record["cold"], record["warm"] = _summary(cold), _summary(warm)
        if demo:
            record["demo_cold"] = _summary([_gpuseg("demo", "--out", str(root / "demo"),
                                                    cache=root / "demo-cache")])
    record["load_after"] = [round(v, 2) for v in os.getloadavg()]
    return record


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    r = results["first_run"]
    lines = [f"**First run, {r['users']} synthetic shoppers, on {results['cpu']} "
             f"({results['cpu_count']} cores)** ({results['date']})", "",
             "| run | median (s) | min | max | repeats |", "| --- | ---: | ---: | ---: | ---: |"]
    for key, label in (("cold", "cold: empty cache folder"), ("warm", "warm: cache filled"),
                       ("demo_cold", "`gpuseg demo`, empty cache folder")):
        if key in r:
            s = r[key]
            lines.append(f"| {label} | {s['median']:.1f} | {s['min']:.1f} | {s['max']:.1f} | "
                         f"{s['n']} |")
    lines += ["", f"Target: cold <= {TARGET_COLD_S:g} s. Each command timed from start to exit in "
                  f"a fresh process; load average before / after: {r['load_before'][0]} / "
                  f"{r['load_after'][0]}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks --first-run``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks --first-run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--demo", action="store_true", help="also time `gpuseg demo`, cold")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    from gpuseg.host import cpu_name

    results = {"benchmark": "first_run", "date": dt.date.today().isoformat(), "cpu": cpu_name(),
               "cpu_count": os.cpu_count(), "first_run": measure(args.repeats, args.demo)}
    write_table_results(results, markdown(results), args.results,
                        f"first-run-{slug(results['cpu'])}-{results['date']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
