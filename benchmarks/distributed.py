"""Scale-out benchmark: ``python -m benchmarks --distributed`` (1x, 3x and 10x Instacart on Dask).

For each size the synthetic generator writes a ``realistic`` data set straight
into parquet partitions (``gpuseg synth --partitions``, out of core; timed, its
peak memory recorded), then a Dask cluster is started the way the README's
two-command run starts one (``dask scheduler`` and ``dask worker`` with 2
worker processes of one thread and an 8 GB memory limit each) and a fresh
client process runs :func:`gpuseg.pipeline.segment` across it and writes the
run directory. Recorded per size: the generation's time and peak memory, every
stage's time, the run's total, and the peak resident memory (VmHWM) of every
process: the client, the scheduler, the ``dask worker`` process, its nannies
and its workers. The targets of issue 15: at 10x every process stays at or
below 8 GB, and time(10x) / time(1x) <= 12.

Writes ``benchmarks/results/distributed-<device>-<date>.json`` and a Markdown
table beside it. Data sets are written under ``benchmarks/.data/`` and removed
after each size unless ``--keep-data``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.memory import status_kib
from benchmarks.suite import DATA_DIR, RESULTS_DIR, ROOT, run_step, slug, write_table_results

#: 1x, 3x and 10x Instacart's 206,209 shoppers.
SIZES = (206_209, 618_627, 2_062_090)
#: 30x: about a billion order-product rows, the out-of-core size (issue 28).
OUT_OF_CORE = 6_186_270
USERS_PER_PARTITION = 25_000
WORKERS = 2
WORKER_MEMORY = "8GB"
TARGET_PEAK_GIB = 8 * 10**9 / 2**30
#: Every process of the 30x run stays at or below 8 GiB.
TARGET_PEAK_30X_GIB = 8.0
TARGET_RATIO = 12.0


def partitions_for(n_users: int) -> int:
    """Partitions of a size: about :data:`USERS_PER_PARTITION` users each."""
    return max(WORKERS, -(-n_users // USERS_PER_PARTITION))


# -- steps, each in its own process ------------------------------------------------------------
def generate(n_users: int, folder: Path, seed: int = 0) -> dict[str, Any]:
    """Write the partitioned data set (in this process); seconds and peak memory."""
    from gpuseg.data.synth import write_partitioned

    start = time.perf_counter()
    write_partitioned(n_users, folder, partitions=partitions_for(n_users), seed=seed,
                      separation="realistic", overwrite=True)
    return {"seconds": time.perf_counter() - start,
            "peak_rss_gib": status_kib("VmHWM") / 2**20,
            "bytes_written": _folder_bytes(folder)}


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run(folder: Path, scheduler_file: Path, out: Path) -> dict[str, Any]:
    """Segment across the cluster in ``scheduler_file`` and write the run directory."""
    from gpuseg.config import PipelineConfig
    from gpuseg.pipeline import segment
    from gpuseg.rundir import write_run

    address = json.loads(scheduler_file.read_text())["address"]
    start = time.perf_counter()
    result = segment(folder, PipelineConfig(backend="cpu", scheduler=address))
    seconds = dict(result.timings)
    written = time.perf_counter()
    write_run(result, out, force=True)
    seconds["write"] = time.perf_counter() - written
    seconds["total"] = time.perf_counter() - start
    metrics = result.metrics.to_dict()
    facts = metrics["distributed"]
    return {"seconds": seconds, "client_peak_rss_gib": status_kib("VmHWM") / 2**20,
            "reported_peak_rss_bytes": facts["peak_rss_bytes"],
            "workers": facts["workers"], "partitions": facts["partitions"],
            "memory_limit": facts["memory_limit"],
            "users_segmented": metrics["users"]["segmented"], "k": result.k,
            "n_components": metrics["preprocess"]["n_components"],
            "silhouette": metrics["silhouette"]["overall"],
            "trustworthiness": metrics["umap"]["trustworthiness"],
            "versions": metrics["versions"], "device": result.device}


# -- the cluster -------------------------------------------------------------------------------
class Cluster:
    """``dask scheduler`` and ``dask worker`` as separate processes; peaks read from /proc."""

    def __init__(self, scheduler_file: Path, log_dir: Path) -> None:
        self.scheduler_file = scheduler_file
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Cluster:
        bin_dir = Path(sys.executable).parent
        scheduler = [str(bin_dir / "dask"), "scheduler", "--scheduler-file",
                     str(self.scheduler_file), "--port", "0", "--dashboard-address", ":0"]
        worker = [str(bin_dir / "dask"), "worker", "--scheduler-file", str(self.scheduler_file),
                  "--nworkers", str(WORKERS), "--nthreads", "1", "--memory-limit", WORKER_MEMORY,
                  "--dashboard-address", ":0"]
        self.processes.append(self._start(scheduler, "scheduler"))
        _wait_for(lambda: self.scheduler_file.exists(), "the scheduler file")
        self.processes.append(self._start(worker, "worker"))
        from distributed import Client

        with Client(scheduler_file=str(self.scheduler_file), timeout=60) as client:
            client.wait_for_workers(WORKERS, timeout=120)
        return self

    def _start(self, command: list[str], name: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w", encoding="utf-8")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})

    def peaks(self) -> dict[str, float]:
        """VmHWM (GiB) of every process of the cluster, by role and pid."""
        import psutil

        found = {}
        for top, role in zip(self.processes, ("scheduler", "dask worker (nannies)")):
            tree = [psutil.Process(top.pid)] + psutil.Process(top.pid).children(recursive=True)
            for proc in tree:
                try:
                    name = role if proc.pid == top.pid else _role(proc)
                    found[f"{name} (pid {proc.pid})"] = status_kib("VmHWM", proc.pid) / 2**20
                except (psutil.Error, OSError, RuntimeError):  # gone, or no memory of its own
                    continue
        return found

    def __exit__(self, *exc_info: object) -> None:
        for proc in reversed(self.processes):
            proc.send_signal(signal.SIGINT)
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _role(proc: Any) -> str:
    # The dask worker process runs the nannies; each nanny spawns its worker through
    # multiprocessing, which also starts a resource tracker.
    return "resource tracker" if "resource_tracker" in " ".join(proc.cmdline()) else "worker"


def _wait_for(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _subprocess(step: str, *args: str) -> dict[str, Any]:
    return run_step(["benchmarks.distributed", "--step", step, *args], failure=f"{step} failed")


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def measure(n_users: int, data_dir: Path, keep_data: bool,
            reuse_data: bool = False) -> dict[str, Any]:
    """Generate (or, with ``reuse_data``, take a complete earlier generation), start a cluster,
    run, stop; everything for one size."""
    from gpuseg.data.partitions.manifest import MANIFEST_FILE

    folder = data_dir / f"parts-{n_users}-seed0-realistic"
    record: dict[str, Any] = {"users": n_users, "partitions": partitions_for(n_users),
                              "load_before": _load()}
    if reuse_data and (folder / MANIFEST_FILE).is_file():  # the manifest is written last
        record["generate"] = {"reused": True, "bytes_written": _folder_bytes(folder)}
    else:
        record["generate"] = _subprocess("generate", str(n_users), str(folder))
    with tempfile.TemporaryDirectory(prefix="gpuseg-dask-bench-") as scratch:
        scheduler_file = Path(scratch) / "scheduler.json"
        with Cluster(scheduler_file, Path(scratch)) as cluster:
            record["run"] = _subprocess("run", str(folder), str(scheduler_file),
                                        str(Path(scratch) / "run"))
            record["cluster_peak_rss_gib"] = cluster.peaks()
    record["load_after"] = _load()
    peaks = [record["run"]["client_peak_rss_gib"], *record["cluster_peak_rss_gib"].values()]
    record["max_process_peak_rss_gib"] = max(peaks)
    if not keep_data:
        shutil.rmtree(folder, ignore_errors=True)
    return record


def markdown(results: dict[str, Any]) -> str:
    """The results as the README's table."""
    rows = results["sizes"]
    lines = [f"**Dask, {results['workers']} workers x 1 thread, {results['worker_memory']} each, "
             f"on {results['cpu']} ({results['cpu_count']} cores)** ({results['date']})", "",
             "| users | partitions | generate (s) | run (s) | features | kmeans | dbscan | umap "
             "| write | peak GiB: client / scheduler / worker | load before / after |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        s = r["run"]["seconds"]
        peaks = r["cluster_peak_rss_gib"]
        scheduler = max(v for k, v in peaks.items() if k.startswith("scheduler"))
        worker = max(v for k, v in peaks.items() if k.startswith("worker"))
        lines.append(
            f"| {r['users']:,} | {r['partitions']} | {_generated(r['generate'])} | "
            f"{s['total']:.0f} | {s['features']:.0f} | {s['kmeans']:.0f} | {s['dbscan']:.0f} | "
            f"{s.get('umap', 0):.0f} | {s['write']:.0f} | "
            f"{r['run']['client_peak_rss_gib']:.2f} / {scheduler:.2f} / {worker:.2f} | "
            f"{r['load_before'][0]} / {r['load_after'][0]} |")
    lines += ["", "Times in seconds; peaks are each process's VmHWM; load is the machine's "
                  "1-minute load average (it is shared, and 2 means both cores busy)."]
    lines += stage_growth(rows)
    if results.get("ratio_10x_1x") is not None:
        lines += ["", f"time(10x) / time(1x) = {results['ratio_10x_1x']:.2f} "
                      f"(target <= {TARGET_RATIO:g}); every process's peak at 10x "
                      f"{'<=' if results['peak_10x_within_target'] else '>'} 8 GB."]
    if results.get("peak_30x_within_target") is not None:
        lines += ["", f"Every process's peak at 30x "
                      f"{'<=' if results['peak_30x_within_target'] else '>'} 8 GiB."]
    return "\n".join(lines) + "\n"


def stage_growth(rows: list[dict[str, Any]]) -> list[str]:
    """Every stage's seconds at each size, and how many times the smallest size's each took
    against how many times the users: a stage growing faster than the users shows here."""
    if len(rows) < 2:
        return []
    first, last = rows[0], rows[-1]
    stages = [name for name in last["run"]["seconds"] if name != "total"]
    users = last["users"] / first["users"]
    lines = ["", f"Every stage, seconds; growth is the largest size's time over the smallest's, "
                 f"for {users:.0f} times the users:", "",
             "| stage | " + " | ".join(f"{r['users']:,}" for r in rows) + " | growth |",
             "| --- | " + " | ".join("---:" for _ in rows) + " | ---: |"]
    for name in [*stages, "total"]:
        times = [r["run"]["seconds"].get(name) for r in rows]
        shown = " | ".join("" if t is None else f"{t:.1f}" for t in times)
        first_time, last_time = times[0], times[-1]
        growth = (f"{last_time / first_time:.1f}x" if first_time is not None
                  and last_time is not None and first_time >= 0.05 else "")
        lines.append(f"| {name} | {shown} | {growth} |")
    return lines


def _generated(generate: dict[str, Any]) -> str:
    return "reused" if generate.get("reused") else f"{generate['seconds']:.0f}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks --distributed``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks --distributed")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--reuse-data", action="store_true",
                        help="run on a complete data set kept by an earlier --keep-data call "
                             "instead of generating it (its generation is then not timed)")
    parser.add_argument("--merge", action="store_true",
                        help="add the sizes to today's results file, replacing the same sizes "
                             "(a long size measured on its own)")
    parser.add_argument("--step", choices=("generate", "run"), help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step == "generate":
        print(json.dumps(generate(int(args.args[0]), Path(args.args[1]))))
        return 0
    if args.step == "run":
        print(json.dumps(run(*(Path(a) for a in args.args))))
        return 0

    from gpuseg.host import cpu_name

    args.data_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "benchmark": "distributed", "date": dt.date.today().isoformat(), "cpu": cpu_name(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "workers": WORKERS, "threads_per_worker": 1, "worker_memory": WORKER_MEMORY,
        "users_per_partition": USERS_PER_PARTITION, "repeats": 1, "sizes": []}
    stem = f"distributed-{slug(results['cpu'])}-{results['date']}"
    earlier = RESULTS_DIR / f"{stem}.json"
    if args.merge and earlier.exists():
        results["sizes"] = [r for r in json.loads(earlier.read_text())["sizes"]
                            if r["users"] not in args.sizes]
    for n_users in args.sizes:
        record = measure(n_users, args.data_dir, args.keep_data, args.reuse_data)
        results["sizes"].append(record)
        print(json.dumps({k: record[k] for k in ("users", "max_process_peak_rss_gib")}),
              f"run {record['run']['seconds']['total']:.0f} s", flush=True)
    results["sizes"].sort(key=lambda r: r["users"])
    summarise(results)
    write_table_results(results, markdown(results), RESULTS_DIR, stem)
    return 0


def summarise(results: dict[str, Any]) -> None:
    """The targets' verdicts, from the sizes measured: 10x against 1x, and each process at 30x."""
    by_size = {r["users"]: r for r in results["sizes"]}
    if SIZES[0] in by_size and SIZES[-1] in by_size:
        ten = by_size[SIZES[-1]]
        results["ratio_10x_1x"] = (ten["run"]["seconds"]["total"]
                                   / by_size[SIZES[0]]["run"]["seconds"]["total"])
        results["peak_10x_within_target"] = ten["max_process_peak_rss_gib"] <= TARGET_PEAK_GIB
    if OUT_OF_CORE in by_size:
        results["peak_30x_within_target"] = (by_size[OUT_OF_CORE]["max_process_peak_rss_gib"]
                                             <= TARGET_PEAK_30X_GIB)


if __name__ == "__main__":
    sys.exit(main())
