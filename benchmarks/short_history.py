"""How well a segment holds for a short history: shoppers' histories cut to their first few orders.

    python -m benchmarks.short_history --data DIR --seed 0 --orders 2 3 4 --sample 3000

The folder (``gpuseg synth`` output) is segmented in one process on the CPU
(default configuration, no UMAP). A seeded sample of the segmented shoppers
then has its history cut to its first N orders with products (by
``order_number``), for each N of ``--orders``; the cut histories go through
``gpuseg assign``'s path (:func:`gpuseg.assign.assign_tables`, ``min_orders=1``,
so they are assigned provisionally), and each shopper's segment is compared
with their full-history segment. Per N: the share that keeps its segment
overall, by full-history segment, and by the full-history certainty (the
run's membership), and what a calibration ``sigmoid(slope * logit(s) +
intercept)`` fitted to it would give (the shape :class:`gpuseg.numerics.
certainty.Calibration` stores). Results go to
``benchmarks/results/short-history-<label>-<cpu>-<date>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.suite import slug
from gpuseg.config import PipelineConfig
from gpuseg.data import load_instacart
from gpuseg.host import cpu_name

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def measure(folder: Path, seed: int, *, orders: list[int], sample: int) -> dict[str, Any]:
    from cpu_fallback.backend import CpuBackend
    from gpuseg.assign import assign_tables
    from gpuseg.cluster.certainty import fit_platt
    from gpuseg.features import compute_features
    from gpuseg.model import project_features
    from gpuseg.numerics.certainty import own_logit, sigmoid, squared_distances
    from gpuseg.pipeline import segment
    from gpuseg.short_history import first_orders, users_history

    backend = CpuBackend()
    data = load_instacart(folder, backend=backend)
    result = segment(data, PipelineConfig(backend="cpu", seed=seed), backend=backend, embed=False)
    model, full = result.model, result.segments.set_index("user_id")
    rng = np.random.default_rng(10_000 + seed)
    users = np.sort(rng.choice(full.index.to_numpy(), min(sample, len(full)), replace=False))
    out: dict[str, Any] = {"data": folder.name, "seed": seed, "k": result.k, "sample": len(users),
                           "names": list(model.persona_names), "by_orders": {}}
    for n in orders:
        cut = first_orders(users_history(data, users), n)
        assignment = assign_tables(model, cut, backend, min_orders=1)
        got = assignment.users.set_index("user_id")
        before = full.loc[got.index]
        same = (got["segment"].to_numpy() == before["segment"].to_numpy()).astype(np.float64)
        table = compute_features(cut, backend, min_orders=1).table.loc[got.index]
        X = np.asarray(project_features(model, table, backend), dtype=np.float64)
        labels = got["segment"].to_numpy().astype(np.int64)
        logit, _, _ = own_logit(squared_distances(X, model.centroids, xp=np), labels,
                                model.certainty.temperature, xp=np)
        slope, intercept = fit_platt(logit, np.zeros(len(labels), dtype=np.int64), same,
                                     np.ones_like(same), 1)
        calibrated = sigmoid(slope * logit + intercept[0], xp=np)
        sure = before["membership"].to_numpy() >= 0.9
        out["by_orders"][str(n)] = {
            "users": int(len(got)), "kept_segment": float(same.mean()),
            "kept_by_segment": {str(j): float(same[before["segment"].to_numpy() == j].mean())
                                for j in range(result.k)},
            "kept_when_full_history_sure": float(same[sure].mean()) if sure.any() else None,
            "calibration": {"slope": slope, "intercept": float(intercept[0]),
                            "mean_certainty": float(calibrated.mean())},
        }
        print(f"  {folder.name} s{seed} first {n} orders: {len(got):,} shoppers, "
              f"{same.mean():.1%} keep their full-history segment; calibrated certainty "
              f"{calibrated.mean():.3f} (slope {slope:.2f}, intercept {intercept[0]:+.2f})",
              flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--orders", nargs="+", type=int, default=[2, 3, 4])
    parser.add_argument("--sample", type=int, default=3_000)
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = [measure(folder, args.seed, orders=args.orders, sample=args.sample)
            for folder in args.data]
    out = args.out or RESULTS_DIR / (f"short-history-{args.label}-{slug(cpu_name())}-"
                                     f"{dt.date.today().isoformat()}.json")
    out.write_text(json.dumps(runs, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
