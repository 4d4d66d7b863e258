"""How far a run's memberships and names hold up when the shoppers are resampled.

    python -m benchmarks.certainty --data DIR [DIR ...] --seeds 0 [1 ...] --label after
    python -m benchmarks.certainty --data d/real20k_s0 --seeds 0 --names 3

For each data folder (``gpuseg synth`` output with ``personas_truth.csv``) and
run seed, the folder is segmented in one process on the CPU (``segment``,
default configuration, no UMAP), and then:

- *calibration on held-out refits*: KMeans with the run's K and ``n_init`` is
  refitted on ``--holdout`` (5) seeded 80% subsamples of the segmented users,
  in the run's PCA space (through the saved model, as ``gpuseg assign``
  projects), with seeds no stage of the run uses; each refit's clusters are
  matched to the run's segments (Hungarian on the contingency table). A
  user's *agreement* is the share of the refits holding them that keep them in
  the matched cluster. The reliability table bins the users by membership
  ([0, .5], (.5, .6], ..., (.95, 1]) and compares each bin's mean membership
  with its mean agreement; the run is *calibrated* when the overall gap is at
  most 0.05, every bin holding at least 5% of the users is within 0.1, and
  agreement does not fall by more than 0.02 from one such bin to the next;
- *segment reproducibility*: per segment, the mean best-match Jaccard over the
  held-out refits;
- *name stability* (``--names R``): the whole run repeated on R seeded 80%
  subsamples of the shoppers (same configuration and seed); each of its
  segments is matched to the full run's on the shoppers both hold, and every
  matched pair with Jaccard at least 0.8 counts as the same name or not;
- *ARI to the planted personas*.

Only public functions of the package are used, so the same script measures
any version of it. Results go to
``benchmarks/results/certainty-<label>-<cpu>-<date>.json``; a summary is printed.
Measurements take minutes per folder on two cores: run them one at a time,
under ``nice``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from benchmarks.suite import slug
from gpuseg.config import PipelineConfig
from gpuseg.data import load_instacart
from gpuseg.host import cpu_name

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: Upper edges of the membership bins (the first bin is [0, 0.5]).
BIN_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
SUBSAMPLE = 0.8
#: Seeds of the held-out refits: far from any seed a run derives from its own.
HOLDOUT_SEED_BASE = 900_000
#: Seeds of the subsamples whose runs are compared by name.
NAMES_SEED_BASE = 700_000
#: The issue's targets.
MAX_GAP, MAX_BIN_GAP, BIG_BIN, FALL_TOLERANCE, SAME_SEGMENT_JACCARD = 0.05, 0.1, 0.05, 0.02, 0.8


def contingency(a: np.ndarray, b: np.ndarray, k_a: int, k_b: int) -> np.ndarray:
    return np.bincount(a.astype(np.int64) * k_b + b.astype(np.int64),
                       minlength=k_a * k_b).reshape(k_a, k_b)


def matched(table: np.ndarray) -> np.ndarray:
    """The column matched to each row (Hungarian, most users kept together); -1 where none."""
    rows, cols = linear_sum_assignment(-table)
    match = np.full(table.shape[0], -1, dtype=np.int64)
    match[rows] = cols
    return match


def jaccard(table: np.ndarray) -> np.ndarray:
    union = table.sum(axis=1, keepdims=True) + table.sum(axis=0, keepdims=True) - table
    return np.where(union > 0, table / np.maximum(union, 1), 0.0)


def reliability(membership: np.ndarray, agreement: np.ndarray) -> dict[str, Any]:
    """The reliability table and the issue's three checks."""
    ok = np.isfinite(agreement)
    m, a = membership[ok], agreement[ok]
    upper = np.asarray(BIN_EDGES[1:])
    which = np.clip(np.searchsorted(upper, m, side="left"), 0, len(upper) - 1)
    bins = []
    for i in range(len(upper)):
        sel = which == i
        bins.append({"low": BIN_EDGES[i], "high": BIN_EDGES[i + 1], "share": float(sel.mean()),
                     "mean_membership": float(m[sel].mean()) if sel.any() else None,
                     "mean_agreement": float(a[sel].mean()) if sel.any() else None})
    big = [b for b in bins if b["share"] >= BIG_BIN]
    gaps = [abs(b["mean_membership"] - b["mean_agreement"]) for b in big]
    rising = all(y["mean_agreement"] >= x["mean_agreement"] - FALL_TOLERANCE
                 for x, y in zip(big, big[1:]))
    gap = float(m.mean() - a.mean())
    return {"bins": bins, "mean_membership": float(m.mean()), "mean_agreement": float(a.mean()),
            "gap": gap, "max_bin_gap": max(gaps) if gaps else None, "rising": rising,
            "calibrated": bool(abs(gap) <= MAX_GAP and all(g <= MAX_BIN_GAP for g in gaps)
                               and rising)}


def pca_space(result: Any, data: Any, backend: Any) -> np.ndarray:
    """The segmented users in the run's PCA space, through the saved model."""
    from gpuseg.features import compute_features
    from gpuseg.model import project_features

    table = compute_features(data, backend, min_orders=result.model.min_orders).table
    table = table.loc[result.segments["user_id"].to_numpy()]
    return np.asarray(project_features(result.model, table, backend), dtype=np.float64)


def held_out(result: Any, X: np.ndarray, backend: Any, *, refits: int, seed: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per user, the agreement over the held-out refits; per segment, the mean best-match Jaccard."""
    from gpuseg.cluster import fit_kmeans

    labels = result.segments["segment"].to_numpy()
    k, n = result.k, len(labels)
    kept, seen = np.zeros(n), np.zeros(n)
    best = np.zeros((refits, k))
    for r in range(refits):
        refit_seed = HOLDOUT_SEED_BASE + 100 * seed + r
        rows = np.sort(np.random.default_rng(refit_seed).choice(n, int(round(SUBSAMPLE * n)),
                                                                replace=False))
        fit = fit_kmeans(X[rows].astype(np.float32), backend, k=k, n_init=result.config.n_init,
                         seed=refit_seed)
        refit_labels = np.asarray(fit.labels)
        table = contingency(labels[rows], refit_labels, k, k)
        kept[rows] += matched(table)[labels[rows]] == refit_labels
        seen[rows] += 1
        best[r] = jaccard(table).max(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(seen > 0, kept / seen, np.nan), best.mean(axis=0)


def per_segment(labels: np.ndarray, membership: np.ndarray, agreement: np.ndarray,
                k: int) -> list[dict[str, float]]:
    return [{"segment": j, "mean_membership": float(membership[labels == j].mean()),
             "mean_agreement": float(np.nanmean(agreement[labels == j]))} for j in range(k)]


def subset(data: Any, user_ids: np.ndarray) -> Any:
    orders = data.orders[data.orders["user_id"].isin(user_ids)]
    products = data.order_products[data.order_products["order_id"].isin(orders["order_id"])]
    return dataclasses.replace(data, orders=orders, order_products=products)


def name_pairs(result: Any, data: Any, config: PipelineConfig, *, runs: int,
               seed: int) -> list[dict[str, Any]]:
    """Matched (full run, subsample run) segment pairs: their Jaccard and names."""
    from gpuseg.pipeline import segment

    users = np.unique(data.orders["user_id"].to_numpy())
    full = result.segments.set_index("user_id")
    pairs = []
    for r in range(runs):
        rng = np.random.default_rng(NAMES_SEED_BASE + 100 * seed + r)
        keep = np.sort(rng.choice(users, int(round(SUBSAMPLE * len(users))), replace=False))
        other = segment(subset(data, keep), config, embed=False)
        common = other.segments[["user_id", "segment"]].merge(
            full[["segment"]], left_on="user_id", right_index=True, suffixes=("_sub", ""))
        a = common["segment"].to_numpy()
        b = common["segment_sub"].to_numpy()
        table = contingency(a, b, result.k, other.k)
        match, jac = matched(table), jaccard(table)
        names_sub = list(other.model.persona_names)
        for j, name in enumerate(result.model.persona_names):
            m = int(match[j])
            pairs.append({"subsample": r, "segment": j, "jaccard": float(jac[j, m]) if m >= 0 else 0.0,
                          "name": name, "subsample_name": names_sub[m] if m >= 0 else None})
    return pairs


def measure(folder: Path, seed: int, *, holdout: int, names: int) -> dict[str, Any]:
    from gpuseg.pipeline import segment
    from gpuseg.registry import get_backend

    backend = get_backend("cpu")
    data = load_instacart(folder, backend=backend)
    config = PipelineConfig(backend="cpu", seed=seed)
    start = time.perf_counter()
    result = segment(data, config, backend=backend, embed=False)
    seconds = time.perf_counter() - start
    segments = result.segments
    X = pca_space(result, data, backend)
    agreement, reproducibility = held_out(result, X, backend, refits=holdout, seed=seed)
    membership = segments["membership"].to_numpy(dtype=np.float64)
    truth_path = folder / "personas_truth.csv"
    ari = None
    if truth_path.exists():
        truth = pd.read_csv(truth_path).set_index("user_id")["persona"]
        ari = float(adjusted_rand_score(truth.reindex(segments["user_id"]).to_numpy(),
                                        segments["segment"].to_numpy()))
    out: dict[str, Any] = {
        "data": folder.name, "seed": seed, "users": len(segments), "k": result.k,
        "run_seconds": seconds, "load_average_1min": os.getloadavg()[0],
        "sizes": np.bincount(segments["segment"], minlength=result.k).tolist(),
        "names": list(result.model.persona_names), "ari_truth": ari,
        "reproducibility_heldout": reproducibility.tolist(),
        "reliability_heldout": reliability(membership, agreement),
        "per_segment": per_segment(segments["segment"].to_numpy(), membership, agreement,
                                   result.k),
        "metrics": {key: value for key, value in result.metrics.to_dict().items()
                    if key in ("certainty", "soft", "k_choice")},
    }
    if names:
        out["name_pairs"] = name_pairs(result, data, config, runs=names, seed=seed)
    return out


def summary_line(run: dict[str, Any]) -> str:
    rel = run["reliability_heldout"]
    line = (f"{run['data']:>14} s{run['seed']}: sizes {run['sizes']} ARI {run['ari_truth'] or 0:.3f} "
            f"memb {rel['mean_membership']:.3f} agree {rel['mean_agreement']:.3f} "
            f"gap {rel['gap']:+.3f} max bin gap {rel['max_bin_gap'] or 0:.3f} "
            f"rising {rel['rising']} calibrated {rel['calibrated']} "
            f"worst J {min(run['reproducibility_heldout']):.3f}")
    pairs = [p for p in run.get("name_pairs", []) if p["jaccard"] >= SAME_SEGMENT_JACCARD]
    if "name_pairs" in run:
        same = sum(p["name"] == p["subsample_name"] for p in pairs)
        line += f" names same {same}/{len(pairs)} (of {len(run['name_pairs'])} pairs)"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="run seed of each folder (one for all, or one per folder)")
    parser.add_argument("--holdout", type=int, default=5)
    parser.add_argument("--names", type=int, default=0,
                        help="subsample runs compared by name (0: none)")
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    seeds = args.seeds * len(args.data) if len(args.seeds) == 1 else args.seeds
    out = args.out or RESULTS_DIR / (f"certainty-{args.label}-{slug(cpu_name())[:40]}-"
                                     f"{dt.date.today().isoformat()}.json")
    runs = json.loads(out.read_text()) if out.exists() else []
    for folder, seed in zip(args.data, seeds):
        run = measure(folder, seed, holdout=args.holdout, names=args.names)
        runs = [r for r in runs if (r["data"], r["seed"]) != (run["data"], run["seed"])] + [run]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(runs, indent=1) + "\n")
        print(summary_line(run), flush=True)
    pairs = [p for r in runs for p in r.get("name_pairs", [])
             if p["jaccard"] >= SAME_SEGMENT_JACCARD]
    if pairs:
        same = sum(p["name"] == p["subsample_name"] for p in pairs)
        print(f"names: {same}/{len(pairs)} matched pairs with Jaccard >= "
              f"{SAME_SEGMENT_JACCARD} carry the same name ({same / len(pairs):.1%})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
