"""Time the per-user feature stage against DuckDB SQL and the usual pandas notebook code.

    python -m benchmarks.bench_features                 # full scale: 206,209 users
    python -m benchmarks.bench_features --users 20000 --repeats 3

The tables come from :func:`gpuseg.data.synth.generate_instacart` with
``separation="realistic"`` (Instacart's published marginals: at full scale about
3.4 M orders, 33.8 M product rows, 49,688 products, 134 aisles). They are built
once and written to a scratch folder; every measurement then runs in a fresh
subprocess that loads the same tables and times one method on them:

- ``gpuseg``: :func:`gpuseg.features.compute_features` on the CPU backend;
- ``duckdb``: the same features in DuckDB SQL (2 threads) from the same
  in-memory pandas tables, ending in the same pandas table;
- ``pandas_notebook``: merge + groupby + pivot, the way notebooks compute the
  aisle shares and a few basic aggregates (a subset of the features).

Peak memory is the process's peak resident set during the method (VmHWM,
reset just before it starts), with the resident tables counted; ``stage_peak_gib``
subtracts what was resident before the method started. Results go to
``benchmarks/results/features-<cpu>-<date>.json``.
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
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.memory import reset_peak_rss, status_kib
from gpuseg.data.synth import generate_instacart
from gpuseg.data.tables import InstacartData
from gpuseg.host import cpu_name

FULL_SCALE_USERS = 206_209
MIN_ORDERS = 5
DUCKDB_THREADS = 2
TABLES = ("orders", "order_products", "products", "aisles", "departments")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# -- data ---------------------------------------------------------------------------------------
def build_tables(n_users: int, seed: int = 0) -> InstacartData:
    """The synthetic generator's tables at Instacart's published marginals (prior + train rows)."""
    synth = generate_instacart(n_users, seed=seed, separation="realistic")
    order_products = pd.concat([synth.order_products__prior, synth.order_products__train],
                               ignore_index=True)
    return InstacartData(orders=synth.orders, order_products=order_products,
                         products=synth.products, aisles=synth.aisles,
                         departments=synth.departments, source=f"synth:{n_users}:{seed}")


def save_tables(data: InstacartData, folder: Path) -> None:
    for name in TABLES:
        getattr(data, name).to_parquet(folder / f"{name}.parquet", index=False)


def load_tables(folder: Path) -> InstacartData:
    return InstacartData(**{name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES})


# -- the methods --------------------------------------------------------------------------------
def run_gpuseg(data: InstacartData) -> pd.DataFrame:
    from cpu_fallback.backend import CpuBackend
    from gpuseg.features import compute_features

    return compute_features(data, CpuBackend(), min_orders=MIN_ORDERS).table


# The spec in DuckDB SQL, written for speed: per-order sums first, H(u) positions from them, one
# (user, product, position) aggregate that the item features, the shares and Jaccard all read.
_DUCKDB_SQL = """
CREATE TEMP TABLE product AS
SELECT product_id, aisle_id, department_id,
       coalesce(contains(lower(product_name), 'organic'), false) AS organic
FROM products;

CREATE TEMP TABLE order_size AS
SELECT op.order_id, count(*) AS n_items, sum(op.reordered) AS n_reordered
FROM order_products op SEMI JOIN product p ON p.product_id = op.product_id
GROUP BY op.order_id;

CREATE TEMP TABLE history AS
SELECT o.user_id, o.order_id, o.order_dow, o.order_hour_of_day,
       o.days_since_prior_order::DOUBLE AS days, s.n_items, s.n_reordered,
       row_number() OVER (PARTITION BY o.user_id ORDER BY o.order_number) AS position,
       count(*) OVER (PARTITION BY o.user_id) AS n_orders
FROM orders o JOIN order_size s USING (order_id);

CREATE TEMP TABLE order_features AS
SELECT user_id,
       count(*)::DOUBLE AS n_orders,
       sum(n_items)::DOUBLE AS n_items,
       sum(n_items)::DOUBLE / count(*) AS basket_size_mean,
       coalesce(avg(days), 0) AS days_between_mean,
       coalesce(stddev_pop(days) / nullif(avg(days), 0), 0) AS order_interval_cv,
       avg(sin(2 * pi() * order_hour_of_day / 24)) AS hour_sin,
       avg(cos(2 * pi() * order_hour_of_day / 24)) AS hour_cos,
       avg(CASE WHEN order_dow IN (0, 1) THEN 1.0 ELSE 0.0 END) AS weekend_ratio,
       coalesce(sum(n_reordered) FILTER (WHERE position > 1)
                / sum(n_items) FILTER (WHERE position > 1), 0) AS reorder_ratio
FROM history WHERE n_orders >= {min_orders}
GROUP BY user_id;

CREATE TEMP TABLE basket AS
SELECT h.user_id, op.product_id, h.position, count(*) AS n
FROM order_products op
JOIN history h USING (order_id)
SEMI JOIN product p ON p.product_id = op.product_id
WHERE h.n_orders >= {min_orders}
GROUP BY ALL;

CREATE TEMP TABLE user_product AS
SELECT b.user_id, b.n, p.aisle_id, p.department_id, p.organic
FROM (SELECT user_id, product_id, sum(n)::DOUBLE AS n FROM basket GROUP BY ALL) b
JOIN product p USING (product_id);

CREATE TEMP TABLE item_features AS
SELECT user_id, sum(n * organic::DOUBLE) / sum(n) AS organic_ratio,
       sum(n) / count(*) AS product_repeat_rate, sum(n * n) / (sum(n) * sum(n)) AS loyalty_hhi
FROM user_product GROUP BY user_id;

CREATE TEMP TABLE dept_features AS
SELECT user_id, -sum(share * ln(share)) / ln({n_departments}) AS dept_entropy
FROM (SELECT u.user_id, sum(u.n) / any_value(f.n_items) AS share
      FROM user_product u JOIN order_features f USING (user_id)
      WHERE u.department_id IN (SELECT department_id FROM departments)
      GROUP BY u.user_id, u.department_id)
GROUP BY user_id;

CREATE TEMP TABLE aisle_shares AS
SELECT u.user_id, u.aisle_id, sum(u.n) / any_value(f.n_items) AS share
FROM user_product u JOIN order_features f USING (user_id)
GROUP BY u.user_id, u.aisle_id;

CREATE TEMP TABLE basket_features AS
WITH previous AS (
    SELECT user_id, position,
           lag(position) OVER (PARTITION BY user_id, product_id ORDER BY position)
               AS previous_position
    FROM basket),
per_order AS (
    SELECT user_id, position, count(*) AS size,
           count(*) FILTER (WHERE previous_position = position - 1) AS shared_with_previous
    FROM previous GROUP BY user_id, position),
consecutive AS (
    SELECT user_id,
           shared_with_previous::DOUBLE
           / (size + lag(size) OVER (PARTITION BY user_id ORDER BY position) - shared_with_previous)
           AS jaccard
    FROM per_order)
SELECT user_id, avg(jaccard) AS basket_consistency FROM consecutive GROUP BY user_id;
"""

_DUCKDB_FINAL = """
SELECT o.user_id, o.n_orders, coalesce(d.dept_entropy, 0) AS dept_entropy, i.organic_ratio,
       o.basket_size_mean, o.days_between_mean, o.order_interval_cv,
       coalesce(b.basket_consistency, 0) AS basket_consistency, o.hour_sin, o.hour_cos,
       o.weekend_ratio, o.reorder_ratio, i.product_repeat_rate, i.loyalty_hhi
FROM order_features o
JOIN item_features i USING (user_id)
LEFT JOIN dept_features d USING (user_id)
LEFT JOIN basket_features b USING (user_id)
ORDER BY o.user_id
"""


def run_duckdb(data: InstacartData) -> pd.DataFrame:
    import duckdb

    from gpuseg.features import aisle_column, feature_columns

    con = duckdb.connect(config={"threads": DUCKDB_THREADS})
    for name in TABLES:
        con.register(name, getattr(data, name))
    con.execute(_DUCKDB_SQL.format(min_orders=MIN_ORDERS, n_departments=len(data.departments)))
    table = con.sql(_DUCKDB_FINAL).df().set_index("user_id")
    aisle_ids = sorted(data.aisles["aisle_id"].tolist())
    # Long to wide in pandas: DuckDB's PIVOT over 134 aisles measured about 3x slower here.
    wide = con.sql("SELECT * FROM aisle_shares").df().pivot(
        index="user_id", columns="aisle_id", values="share").reindex(columns=aisle_ids)
    wide.columns = [aisle_column(a) for a in wide.columns]
    table = table.join(wide.fillna(0.0))
    table.index = table.index.astype("int64")
    return table[feature_columns(aisle_ids)].astype("float64")


def run_pandas_notebook(data: InstacartData) -> pd.DataFrame:
    """Aisle shares and a few basic aggregates, as merge + groupby + pivot."""
    merged = (data.order_products[["order_id", "product_id", "reordered"]]
              .merge(data.orders[["order_id", "user_id"]], on="order_id")
              .merge(data.products[["product_id", "aisle_id"]], on="product_id"))
    aisle_counts = merged.pivot_table(index="user_id", columns="aisle_id", values="product_id",
                                      aggfunc="count", fill_value=0)
    aisle_shares = aisle_counts.div(aisle_counts.sum(axis=1), axis=0).add_prefix("aisle_")
    baskets = merged.groupby("order_id").size().rename("basket_size")
    history = data.orders.join(baskets, on="order_id", how="inner")
    per_user = history.groupby("user_id").agg(
        n_orders=("order_id", "size"), basket_size_mean=("basket_size", "mean"),
        days_between_mean=("days_since_prior_order", "mean"),
        hour_mean=("order_hour_of_day", "mean"))
    per_user["reorder_ratio"] = merged.groupby("user_id")["reordered"].mean()
    return per_user.join(aisle_shares)[lambda t: t["n_orders"] >= MIN_ORDERS]


METHODS: dict[str, Callable[[InstacartData], pd.DataFrame]] = {
    "gpuseg": run_gpuseg,
    "duckdb": run_duckdb,
    "pandas_notebook": run_pandas_notebook,
}


# -- measuring ----------------------------------------------------------------------------------
def measure_once(method: str, folder: Path, out: Path | None) -> dict[str, Any]:
    """Load the tables, then time one method with its peak memory (runs in the worker)."""
    data = load_tables(folder)
    gc.collect()
    baseline_kib = status_kib("VmRSS")
    reset_peak_rss()
    start = time.perf_counter()
    table = METHODS[method](data)
    seconds = time.perf_counter() - start
    peak_kib = status_kib("VmHWM")
    if out is not None:
        table.to_parquet(out)
    return {"seconds": seconds, "load_average_1min": os.getloadavg()[0],
            "peak_gib": peak_kib / 2**20,
            "stage_peak_gib": (peak_kib - baseline_kib) / 2**20, "tables_gib": baseline_kib / 2**20,
            "rows": len(table), "columns": table.shape[1]}


def measure_in_subprocess(method: str, folder: Path, out: Path | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_features", "--worker", method,
               "--data", str(folder)]
    if out is not None:
        command += ["--out", str(out)]
    done = subprocess.run(command, check=True, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    return {"seconds_median": statistics.median(seconds), "seconds_min": min(seconds),
            "seconds_max": max(seconds), "peak_gib_max": max(r["peak_gib"] for r in runs),
            "stage_peak_gib_max": max(r["stage_peak_gib"] for r in runs),
            "tables_gib": runs[0]["tables_gib"], "rows": runs[0]["rows"],
            "columns": runs[0]["columns"], "runs": runs}


def benchmark(n_users: int, repeats: int, methods: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_features_") as scratch:
        folder = Path(scratch)
        start = time.perf_counter()
        data = build_tables(n_users)
        shape = {name: len(getattr(data, name)) for name in TABLES}
        save_tables(data, folder)
        del data
        print(f"built {shape} in {time.perf_counter() - start:.1f} s", file=sys.stderr)

        runs: dict[str, list[dict[str, Any]]] = {method: [] for method in methods}
        # Round-robin over the methods, so that load from other processes on a shared
        # machine falls on every method alike rather than on whichever ran at the time.
        for repeat in range(repeats):
            for method in methods:
                out = folder / f"{method}.parquet" if repeat == 0 else None
                runs[method].append(measure_in_subprocess(method, folder, out))
                print(f"{method} #{repeat + 1}: {runs[method][-1]['seconds']:.2f} s, "
                      f"peak {runs[method][-1]['peak_gib']:.2f} GiB", file=sys.stderr)
        results: dict[str, Any] = {method: _summary(runs[method]) for method in methods}

        agreement = None
        if {"gpuseg", "duckdb"} <= set(methods):
            ours = pd.read_parquet(folder / "gpuseg.parquet")
            theirs = pd.read_parquet(folder / "duckdb.parquet")
            same_users = ours.index.equals(theirs.index)
            agreement = {"same_users_and_columns": bool(same_users and list(ours) == list(theirs)),
                         "max_abs_difference": float((ours - theirs).abs().max().max())}

    ours_median = results["gpuseg"]["seconds_median"] if "gpuseg" in results else None
    return {
        "benchmark": "features",
        "date": dt.date.today().isoformat(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {name: metadata.version(name) for name in ("numpy", "pandas", "pyarrow", "duckdb")},
        "users": n_users,
        "table_rows": shape,
        "min_orders": MIN_ORDERS,
        "duckdb_threads": DUCKDB_THREADS,
        "repeats": repeats,
        "methods": results,
        "ratio_gpuseg_over": {} if ours_median is None else {
            m: ours_median / results[m]["seconds_median"] for m in results if m != "gpuseg"},
        "gpuseg_vs_duckdb_output": agreement,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=FULL_SCALE_USERS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure_once(args.worker, args.data, args.out)))
        return 0

    report = benchmark(args.users, args.repeats, args.methods)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    cpu = re.sub(r"[^a-z0-9]+", "-", report["cpu"].lower()).strip("-")
    path = RESULTS_DIR / f"features-{cpu}-{report['date']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    for method, summary in report["methods"].items():
        print(f"{method:16s} median {summary['seconds_median']:7.2f} s "
              f"(min {summary['seconds_min']:.2f}, max {summary['seconds_max']:.2f})  "
              f"peak {summary['peak_gib_max']:.2f} GiB (stage {summary['stage_peak_gib_max']:.2f})")
    print(f"ratios gpuseg/peer: {report['ratio_gpuseg_over']}")
    print(f"gpuseg vs duckdb output: {report['gpuseg_vs_duckdb_output']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
