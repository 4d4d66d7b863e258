"""load_instacart: every file format, the cleaning rules, and the parquet cache."""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import pyarrow.csv
import pytest
from _layout import FORMATS, folder_digest, sample_tables, write_layout, write_table

from gpuseg.data import CacheWarning, DataCleaningWarning, InstacartData, load_instacart
from gpuseg.data.schema import (
    AISLES_DTYPES,
    DEPARTMENTS_DTYPES,
    ORDER_PRODUCTS_DTYPES,
    ORDERS_DTYPES,
    PRODUCTS_DTYPES,
)
from gpuseg.errors import ConfigError

FRAMES = {"orders": ORDERS_DTYPES, "order_products": ORDER_PRODUCTS_DTYPES,
          "products": PRODUCTS_DTYPES, "aisles": AISLES_DTYPES, "departments": DEPARTMENTS_DTYPES}


@pytest.fixture(autouse=True)
def _private_default_cache(tmp_path, monkeypatch):
    """No test writes to the real ~/.cache, even one that forgets cache_dir."""
    monkeypatch.setenv("GPUSEG_CACHE_DIR", str(tmp_path / "default-cache"))


def expected_frames(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What the loader must return, built naively with pandas from the raw tables."""
    orders = tables["orders"]
    expected_orders = orders[list(ORDERS_DTYPES)].astype(dict(ORDERS_DTYPES))
    if "eval_set" in orders:
        expected_orders["eval_set"] = orders["eval_set"].astype("category")
    parts = [tables[name] for name in ("order_products__prior", "order_products__train")
             if name in tables]
    order_products = pd.concat(parts, ignore_index=True)[list(ORDER_PRODUCTS_DTYPES)]
    return {
        "orders": expected_orders,
        "order_products": order_products.astype(dict(ORDER_PRODUCTS_DTYPES)),
        "products": tables["products"][list(PRODUCTS_DTYPES)].astype(dict(PRODUCTS_DTYPES)),
        "aisles": tables["aisles"].astype(dict(AISLES_DTYPES)),
        "departments": tables["departments"].astype(dict(DEPARTMENTS_DTYPES)),
    }


def assert_loaded(data: InstacartData, expected: dict[str, pd.DataFrame], backend) -> None:
    for name, dtypes in FRAMES.items():
        frame = backend.to_host(getattr(data, name))
        for column, dtype in dtypes.items():
            if dtype != "str":
                assert str(frame[column].dtype) == dtype, (name, column)
        # cuDF hands text back as object columns; the values must still match.
        pd.testing.assert_frame_equal(frame, expected[name], check_dtype=backend.name == "cpu",
                                      check_categorical=backend.name == "cpu")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_loads_to_the_same_compact_tables(tmp_path, backend, fmt):
    source = write_layout(tmp_path / "instacart", fmt=fmt)
    data = load_instacart(source, backend=backend, cache_dir=tmp_path / "cache")
    assert_loaded(data, expected_frames(sample_tables()), backend)
    assert data.source == str(source.resolve())
    assert data.cleaning == {"order_products_unknown_order": 0,
                             "order_products_unknown_product": 0,
                             "order_products_duplicate": 0,
                             "orders_without_products": 1}


def test_schema_dtypes_on_cpu(tmp_path):
    data = load_instacart(write_layout(tmp_path / "in"), cache=False)
    assert dict(data.orders.dtypes.astype(str)) == {**ORDERS_DTYPES, "eval_set": "category"}
    assert dict(data.order_products.dtypes.astype(str)) == dict(ORDER_PRODUCTS_DTYPES)
    assert dict(data.products.dtypes.astype(str)) == dict(PRODUCTS_DTYPES)
    assert data.products["product_name"].tolist()[3:] == ["Pizza, Frozen", 'Organic "Fuji" Apple']
    assert np.isnan(data.orders["days_since_prior_order"].iloc[0])
    assert data.n_users == 3


def test_train_file_is_optional(tmp_path):
    tables = sample_tables()
    del tables["order_products__train"]
    data = load_instacart(write_layout(tmp_path / "in", tables), cache=False)
    pd.testing.assert_frame_equal(data.order_products, expected_frames(tables)["order_products"])
    # Orders 12 and 31 (train) and 22 (test) now have no product rows; they stay in orders.
    assert len(data.orders) == 8
    assert data.cleaning["orders_without_products"] == 3


def test_eval_set_is_optional_and_extra_columns_are_ignored(tmp_path):
    tables = sample_tables()
    tables["orders"] = tables["orders"].drop(columns="eval_set").assign(store="north")
    tables["products"] = tables["products"].assign(price=[0.5, 2.0, 1.2, 4.0, 0.8])
    data = load_instacart(write_layout(tmp_path / "in", tables), cache=False)
    assert list(data.orders.columns) == list(ORDERS_DTYPES)
    assert list(data.products.columns) == list(PRODUCTS_DTYPES)
    pd.testing.assert_frame_equal(data.orders, expected_frames(tables)["orders"])


def test_integral_floats_from_a_pandas_export_are_integers(tmp_path):
    tables = sample_tables()
    # pandas writes an integer column holding a NaN as floats: "1.0", "2.0", ...
    tables["products"]["aisle_id"] = tables["products"]["aisle_id"].astype(float)
    tables["order_products__train"] = tables["order_products__train"].astype(float)
    data = load_instacart(write_layout(tmp_path / "in", tables), cache=False)
    expected = expected_frames(sample_tables())
    pd.testing.assert_frame_equal(data.products, expected["products"])
    pd.testing.assert_frame_equal(data.order_products, expected["order_products"])


def test_ids_at_the_int32_limit_are_kept_exactly(tmp_path):
    tables = sample_tables()
    big = np.iinfo(np.int32).max
    tables["orders"].loc[7, "order_id"] = big
    tables["order_products__train"].loc[2, "order_id"] = big
    data = load_instacart(write_layout(tmp_path / "in", tables), cache=False)
    assert data.orders["order_id"].iloc[7] == big
    assert data.order_products["order_id"].iloc[-1] == big
    assert data.cleaning["orders_without_products"] == 1


def test_unjoinable_and_repeated_product_rows_are_dropped_counted_and_announced(tmp_path):
    tables = sample_tables()
    prior = tables["order_products__prior"]
    tables["order_products__prior"] = pd.concat([
        prior,
        pd.DataFrame({"order_id": [99, 98, 10, 11, 10],
                      "product_id": [1, 2, 77, 2, 1],
                      "add_to_cart_order": [1, 1, 3, 4, 5],
                      "reordered": [0, 0, 0, 1, 1]}),
    ], ignore_index=True)
    # The same (order, product) pair again in the train file counts as a repeat too.
    tables["order_products__train"] = pd.concat(
        [tables["order_products__train"], tables["order_products__train"].iloc[[0]]],
        ignore_index=True)
    source = write_layout(tmp_path / "in", tables)

    with pytest.warns(DataCleaningWarning) as caught:
        data = load_instacart(source, cache=False)

    assert data.cleaning == {"order_products_unknown_order": 2,
                             "order_products_unknown_product": 1,
                             "order_products_duplicate": 3,
                             "orders_without_products": 1}
    messages = [str(warning.message) for warning in caught]
    assert any("dropped 2 order_products rows whose order_id is not in orders.csv" in m
               and "order_products__prior.csv row 10" in m for m in messages)
    assert any("dropped 1 order_products rows whose product_id is not in products.csv" in m
               and "row 12" in m for m in messages)
    assert any("dropped 3 order_products rows that repeat" in m
               and "order_products__prior.csv row 13" in m for m in messages)
    expected = expected_frames(sample_tables())["order_products"]
    pd.testing.assert_frame_equal(data.order_products, expected)


def test_repeats_match_a_naive_pandas_reference():
    from gpuseg.data.checks import clean_order_products

    rng = np.random.default_rng(7)
    for n_rows in (1, 50, 2000):
        orders = rng.integers(1, 40, n_rows).astype(np.int32)
        products = rng.integers(1, 15, n_rows).astype(np.int32)
        frame = pd.DataFrame({"order_id": orders, "product_id": products})
        known_orders = np.arange(1, 35, dtype=np.int32)
        known_products = np.arange(1, 13, dtype=np.int32)
        kept, cleaning, _ = clean_order_products(
            {"order_id": orders.copy(), "product_id": products.copy()},
            order_ids=known_orders, product_ids=known_products, parts=[("f", n_rows)],
            orders_file="o", products_file="p")
        joinable = frame[frame["order_id"].isin(known_orders)
                         & frame["product_id"].isin(known_products)]
        reference = joinable[~joinable.duplicated()].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, reference)
        assert cleaning["order_products_duplicate"] == len(joinable) - len(reference)
        assert cleaning["orders_without_products"] == len(
            set(known_orders) - set(reference["order_id"]))


def test_sparse_ids_take_the_hashing_path_with_the_same_result(tmp_path):
    tables = sample_tables()
    offset = 2_000_000_000  # far beyond a bitmap's reach for eight orders
    tables["orders"]["order_id"] += offset
    for name in ("order_products__prior", "order_products__train"):
        tables[name]["order_id"] += offset
    tables["order_products__prior"].loc[0, "order_id"] = 5
    with pytest.warns(DataCleaningWarning, match="1 order_products rows whose order_id"):
        data = load_instacart(write_layout(tmp_path / "in", tables), cache=False)
    assert data.cleaning["order_products_unknown_order"] == 1
    assert len(data.order_products) == 11


# -- the parquet cache -------------------------------------------------------------------------

def _no_csv_reads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the CSV reader ran although the cache was valid")

    monkeypatch.setattr(pyarrow.csv, "open_csv", refuse)


def test_second_load_reads_the_cache_not_the_csv(tmp_path, backend, monkeypatch):
    source = write_layout(tmp_path / "in")
    first = load_instacart(source, backend=backend, cache_dir=tmp_path / "cache")
    _no_csv_reads(monkeypatch)
    second = load_instacart(source, backend=backend, cache_dir=tmp_path / "cache")
    for name in FRAMES:
        pd.testing.assert_frame_equal(backend.to_host(getattr(second, name)),
                                      backend.to_host(getattr(first, name)))
    assert second.cleaning == first.cleaning
    assert second.fingerprint == first.fingerprint


def test_cached_load_repeats_the_cleaning_warnings(tmp_path, monkeypatch):
    tables = sample_tables()
    tables["order_products__prior"].loc[0, "product_id"] = 404
    source = write_layout(tmp_path / "in", tables)
    with pytest.warns(DataCleaningWarning):
        first = load_instacart(source, cache_dir=tmp_path / "cache")
    _no_csv_reads(monkeypatch)
    with pytest.warns(DataCleaningWarning, match="1 order_products rows whose product_id"):
        second = load_instacart(source, cache_dir=tmp_path / "cache")
    assert second.cleaning == first.cleaning
    assert second.cleaning["order_products_unknown_product"] == 1


def test_a_changed_source_file_invalidates_the_cache(tmp_path):
    source = write_layout(tmp_path / "in")
    first = load_instacart(source, cache_dir=tmp_path / "cache")
    tables = sample_tables()
    tables["orders"].loc[0, "order_hour_of_day"] = 5
    path = write_table(source, "orders", tables["orders"])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = load_instacart(source, cache_dir=tmp_path / "cache")
    assert second.orders["order_hour_of_day"].iloc[0] == 5
    assert second.fingerprint != first.fingerprint


def _corrupt_parquet(entry):
    (entry / "order_products.parquet").write_bytes(b"PAR1 not really parquet")


def _remove_parquet(entry):
    (entry / "products.parquet").unlink()


def _bad_manifest(entry):
    (entry / "manifest.json").write_text("{not json")


def _no_manifest(entry):
    (entry / "manifest.json").unlink()


def _wrong_rows(entry):
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["rows"]["orders"] += 1
    (entry / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", [_corrupt_parquet, _remove_parquet, _bad_manifest,
                                    _no_manifest, _wrong_rows])
def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, damage):
    source = write_layout(tmp_path / "in")
    first = load_instacart(source, cache_dir=tmp_path / "cache")
    (entry,) = [path for path in (tmp_path / "cache").iterdir() if not path.name.startswith(".")]
    damage(entry)
    with pytest.warns(CacheWarning, match="rebuilding"):
        second = load_instacart(source, cache_dir=tmp_path / "cache")
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(second, name), getattr(first, name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_instacart(source, cache_dir=tmp_path / "cache")  # the rebuilt entry is trusted again


def test_cache_location_defaults_to_the_environment_and_leaves_no_staging(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUSEG_CACHE_DIR", str(tmp_path / "env-cache"))
    load_instacart(write_layout(tmp_path / "in"))
    entries = list((tmp_path / "env-cache").iterdir())
    assert len(entries) == 1
    assert sorted(path.name for path in entries[0].iterdir()) == [
        "aisles.parquet", "departments.parquet", "manifest.json", "order_products.parquet",
        "orders.parquet", "products.parquet"]


def test_inputs_are_never_modified(tmp_path):
    source = write_layout(tmp_path / "in", fmt="csv.zip")
    before = folder_digest(source)
    load_instacart(source, cache_dir=tmp_path / "cache")
    load_instacart(source, cache_dir=tmp_path / "cache")
    assert folder_digest(source) == before


def test_a_cache_inside_the_source_folder_is_refused(tmp_path):
    source = write_layout(tmp_path / "in")
    with pytest.raises(ConfigError, match="inside the source folder"):
        load_instacart(source, cache_dir=source / "cache")
    assert not (source / "cache").exists()


def test_without_cache_nothing_is_written(tmp_path):
    load_instacart(write_layout(tmp_path / "in"), cache=False)
    assert not (tmp_path / "default-cache").exists()


def test_an_unwritable_cache_warns_and_loads_anyway(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(CacheWarning, match="continuing without it"):
        data = load_instacart(write_layout(tmp_path / "in"), cache_dir=blocker)
    assert len(data.order_products) == 12


def test_fingerprint_is_stable_and_follows_the_files(tmp_path):
    source = write_layout(tmp_path / "in")
    first = load_instacart(source, cache=False)
    again = load_instacart(source, cache=False)
    assert first.fingerprint == again.fingerprint and len(first.fingerprint) == 16
    path = source / "aisles.csv"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load_instacart(source, cache=False).fingerprint != first.fingerprint
