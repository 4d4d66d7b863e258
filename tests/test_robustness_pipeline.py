"""Degenerate data through the whole pipeline and the CLI: a clear error early, or a sound result.

Too few users for K, for DBSCAN or for the UMAP map, a single user, users
that are all alike or copies of two, a feature that never varies, a variance
target one component reaches, and product rows the loader has to drop: each
ends either in one line on stderr with exit code 2, before the stage that
cannot work, or in a complete run whose metrics say what happened.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from _layout import folder_digest, write_layout

from gpuseg.cli import EXIT_OK, EXIT_USER_ERROR, main
from gpuseg.config import PipelineConfig
from gpuseg.data import load_instacart
from gpuseg.data.checks import DataCleaningWarning
from gpuseg.data.synth import generate_instacart
from gpuseg.errors import GpusegError
from gpuseg.pipeline import segment
from gpuseg.resources import check_segments

#: The pipeline with few refits: these tests are about what the data does to it, not its cost.
LIGHT = dict(backend="cpu", n_init=1, sweep_n_init=1, stability_seeds=2, bootstrap_rounds=1,
             hierarchical_micro_clusters=10, k_sweep_range=(2, 4), k_business_range=(2, 4))


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return generate_instacart(80, seed=3, separation="strong").tables()


def first_users(tables: dict[str, pd.DataFrame], n: int) -> dict[str, pd.DataFrame]:
    """The export restricted to its first ``n`` users (by id)."""
    users = np.sort(tables["orders"]["user_id"].unique())[:n]
    orders = tables["orders"][tables["orders"]["user_id"].isin(users)]
    return {**tables, "orders": orders,
            **{name: tables[name][tables[name]["order_id"].isin(orders["order_id"])]
               for name in ("order_products__prior", "order_products__train")}}


def copies_of(tables: dict[str, pd.DataFrame], original: int, n: int) -> dict[str, pd.DataFrame]:
    """``n`` users, each an exact copy of user ``original``: the same orders and baskets."""
    mine = tables["orders"][tables["orders"]["user_id"] == original]
    orders, rows = [], {name: [] for name in ("order_products__prior", "order_products__train")}
    for copy in range(n):
        offset = (copy + 1) * 10_000_000
        orders.append(mine.assign(user_id=copy + 1, order_id=mine["order_id"] + offset))
        for name in rows:
            theirs = tables[name][tables[name]["order_id"].isin(mine["order_id"])]
            rows[name].append(theirs.assign(order_id=theirs["order_id"] + offset))
    return {**tables, "orders": pd.concat(orders, ignore_index=True),
            **{name: pd.concat(frames, ignore_index=True) for name, frames in rows.items()}}


def run_cli(args: list[str], capsys, caplog) -> tuple[int, str, list[str]]:
    """Exit code, the last stderr line, and the stages logged, of ``gpuseg run ...``."""
    with caplog.at_level(logging.INFO, logger="gpuseg"):
        code = main(["run", "--backend", "cpu", "-v", *args])
    err = capsys.readouterr().err.strip().splitlines()
    stages = [r.getMessage().split(":")[0].removeprefix("stage ") for r in caplog.records
              if r.getMessage().startswith("stage ")]
    return code, err[-1] if err else "", stages


# -- refused early -----------------------------------------------------------------------------

CASES = [
    # (users kept, extra CLI options, what the one line says)
    (4, ["--k", "5", "--min-orders", "1"], "4 users remain to segment, but --k 5 needs at least "
                                           "6 users; lower --k or --min-orders"),
    (30, ["--k", "3", "--min-orders", "15"],
     "12 users remain to segment (18 more had fewer than --min-orders 15 orders), but DBSCAN "
     "needs at least --dbscan-min-samples (20) users to fit on; lower --dbscan-min-samples or "
     "--min-orders, or supply more users"),
    (3, ["--k", "2", "--k-range", "2", "2", "--dbscan-min-samples", "2", "--min-orders", "1"],
     "3 users remain to segment, but the UMAP map needs at least 4 users; lower --min-orders"),
]


@pytest.mark.parametrize(("n_users", "options", "expected"), CASES)
def test_too_few_users_are_refused_before_the_first_fit(tables, tmp_path, capsys, caplog, n_users,
                                                        options, expected):
    source = write_layout(tmp_path / "in", first_users(tables, n_users), fmt="parquet")
    code, err, stages = run_cli(["--data", str(source), "--out", str(tmp_path / "run"), *options],
                                capsys, caplog)
    assert code == EXIT_USER_ERROR
    assert err.startswith("gpuseg: error: ") and expected in err, err
    assert stages == ["load", "features", "scale", "pca"]
    assert not (tmp_path / "run").exists()


def test_a_single_user_is_a_clear_error(tables, cpu_backend, tmp_path):
    data = load_instacart(write_layout(tmp_path / "in", first_users(tables, 1), fmt="parquet"),
                          backend=cpu_backend, cache=False)
    with pytest.raises(GpusegError, match=r"1 user\(s\) left after filtering; segmentation needs "
                                          r"at least 2 \(lower min_orders"):
        segment(data, PipelineConfig(**LIGHT), backend=cpu_backend, embed=False)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters",
                            "ignore:invalid value encountered in divide:RuntimeWarning")
def test_users_who_are_all_alike_have_nothing_to_segment(tables, tmp_path, capsys, caplog):
    original = int(tables["orders"]["user_id"].iloc[0])
    source = write_layout(tmp_path / "in", copies_of(tables, original, 40), fmt="parquet")
    code, err, stages = run_cli(["--data", str(source), "--out", str(tmp_path / "run"),
                                 "--dbscan-min-samples", "5", "--min-orders", "1"], capsys, caplog)
    assert code == EXIT_USER_ERROR
    assert err == ("gpuseg: error: all 40 users have the same features after scaling, so there "
                   "is nothing to segment; check the input for copied or placeholder users")
    assert stages[-1] == "k_sweep"  # KMeans itself is where the lack of spread shows
    assert not (tmp_path / "run").exists()


def test_segments_kmeans_left_empty_are_refused_with_the_k_that_fits():
    check_segments((30, 12), 42)
    with pytest.raises(GpusegError, match="KMeans could fill only 2 of 3 segments: the 42 users "
                                          "have only 2 distinct feature profiles; choose k=2"):
        check_segments((30, 12, 0), 42)


# -- completed, and said so ------------------------------------------------------------------

def test_a_constant_feature_one_component_and_dropped_rows_still_make_a_complete_run(
        tables, tmp_path, capsys, caplog):
    orders = tables["orders"].assign(order_dow=3)  # nobody orders at weekends: a constant feature
    prior = tables["order_products__prior"]
    unknown = pd.DataFrame({"order_id": [prior["order_id"].iloc[0], 987_654_321],
                            "product_id": [999_999, prior["product_id"].iloc[0]],
                            "add_to_cart_order": [90, 1], "reordered": [0, 0]})
    prior = pd.concat([prior, unknown, prior.iloc[[5, 6]]], ignore_index=True)
    source = write_layout(tmp_path / "in", {**tables, "orders": orders,
                                            "order_products__prior": prior}, fmt="csv")
    before = folder_digest(source)
    out = tmp_path / "run"
    with pytest.warns(DataCleaningWarning) as announced:
        code, err, _ = run_cli(["--data", str(source), "--out", str(out), "--k", "3",
                                "--pca-variance", "0.05", "--dbscan-min-samples", "5"],
                               capsys, caplog)
    # One announcement each: unknown order, unknown product, repeated pair.
    assert len([w for w in announced if w.category is DataCleaningWarning]) == 3
    assert code == EXIT_OK, err

    metrics = json.loads((out / "metrics.json").read_text())
    with_rows = pd.concat([tables["order_products__prior"], tables["order_products__train"]])
    assert metrics["input"]["cleaning"] == {
        "order_products_unknown_order": 1, "order_products_unknown_product": 1,
        "order_products_duplicate": 2,
        "orders_without_products": int((~orders["order_id"].isin(with_rows["order_id"])).sum())}
    assert "weekend_ratio" in metrics["preprocess"]["zero_variance_features"]
    assert metrics["preprocess"]["n_components"] == 1
    segments = pd.read_parquet(out / "segments.parquet")
    assert len(segments) == metrics["users"]["segmented"]
    assert sorted(segments["segment"].unique()) == [0, 1, 2]
    assert np.isfinite(segments[["umap_x", "umap_y"]].to_numpy()).all()
    assert folder_digest(source) == before  # the input folder is never written to


# -- exit codes ------------------------------------------------------------------------------

def test_vv_adds_the_traceback_to_a_user_error(tmp_path, capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="gpuseg"):
        code = main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "-vv"])
    assert code == EXIT_USER_ERROR
    assert capsys.readouterr().err.startswith("gpuseg: error: ")
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert issubclass(logged.exc_info[0], GpusegError)
    caplog.clear()
    main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "-v"])
    assert not [r for r in caplog.records if r.exc_info]  # -v alone keeps it to one line


def test_a_bug_is_not_dressed_up_as_a_user_error(tmp_path, monkeypatch):
    import gpuseg.compare

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(gpuseg.compare, "compare_runs", broken)
    # main lets it through, so the interpreter prints the traceback and exits with status 1.
    with pytest.raises(ZeroDivisionError):
        main(["compare", str(tmp_path / "a"), str(tmp_path / "b")])
