"""The saved model carries the catalog its features need, and where it came from (format 3)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from _fake_result import demo_run, fake_result

from gpuseg.data import load_instacart
from gpuseg.data.tables import InstacartData
from gpuseg.features import compute_features
from gpuseg.model import ARRAYS_FILE, META_FILE, load_model, model_id, read_model_meta, save_model
from gpuseg.model_catalog import ModelCatalog


@pytest.fixture(scope="module")
def data(tmp_path_factory, cpu_backend):
    return load_instacart(demo_run(tmp_path_factory).data_dir, backend=cpu_backend)


@pytest.fixture(scope="module")
def catalog(data):
    return ModelCatalog.from_tables(data.products, data.aisles, data.departments)


def with_catalog_tables(data: InstacartData, tables: dict[str, pd.DataFrame],
                        users: np.ndarray | None = None) -> InstacartData:
    orders = data.orders if users is None else data.orders[data.orders["user_id"].isin(users)]
    order_products = data.order_products[data.order_products["order_id"].isin(orders["order_id"])]
    return InstacartData(orders=orders.reset_index(drop=True),
                         order_products=order_products.reset_index(drop=True), **tables)


def test_the_catalog_keeps_each_products_aisle_department_and_organic_flag_but_no_name(data, catalog):
    products = data.products
    np.testing.assert_array_equal(catalog.product_ids, products["product_id"])
    np.testing.assert_array_equal(catalog.product_aisles, products["aisle_id"])
    np.testing.assert_array_equal(catalog.product_departments, products["department_id"])
    organic = products["product_name"].str.lower().str.contains("organic").to_numpy(bool)
    assert 0 < organic.sum() < len(organic)
    np.testing.assert_array_equal(catalog.product_organic, organic)
    assert catalog.aisle_names == tuple(data.aisles["aisle"])
    assert catalog.department_names == tuple(data.departments["department"])
    rebuilt = catalog.tables()["products"]
    assert set(rebuilt["product_name"]) == {"", "organic"}


def test_features_from_the_kept_catalog_equal_the_features_from_the_real_one(data, catalog,
                                                                           cpu_backend):
    expected = compute_features(data, cpu_backend).table
    rebuilt = compute_features(with_catalog_tables(data, catalog.tables()), cpu_backend).table
    pd.testing.assert_frame_equal(rebuilt, expected, check_exact=True)


def test_features_from_only_the_products_a_few_users_bought_equal_their_rows_of_the_whole_run(
        data, catalog, cpu_backend):
    expected = compute_features(data, cpu_backend).table
    users = expected.index.to_numpy()[::97]
    few = with_catalog_tables(data, catalog.tables(), users)
    bought = catalog.positions(few.order_products["product_id"].to_numpy(np.int64))
    assert len(np.unique(bought)) < catalog.n_products / 10
    rebuilt = compute_features(with_catalog_tables(data, catalog.tables(bought), users),
                               cpu_backend).table
    pd.testing.assert_frame_equal(rebuilt, expected.loc[users], check_exact=True)


def test_positions_find_each_product_and_mark_unknown_ones(catalog):
    ids = np.array([catalog.product_ids[5], 10**9, catalog.product_ids[0], -3], dtype=np.int64)
    np.testing.assert_array_equal(catalog.positions(ids), [5, -1, 0, -1])


def test_a_run_saves_its_catalog_and_provenance(tmp_path_factory, catalog):
    run = demo_run(tmp_path_factory)
    meta = read_model_meta(run.run_dir / "model")
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert meta["format_version"] == 4
    assert meta["source_fingerprint"] == metrics["input"]["fingerprint"]
    assert len(meta["model_id"]) == 16 and meta["created"].endswith("+00:00")
    loaded = load_model(run.run_dir / "model").catalog
    for name in ("product_ids", "product_aisles", "product_departments", "product_organic",
                 "aisle_ids", "department_ids"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(catalog, name))
    assert loaded.aisle_names == catalog.aisle_names


def test_the_model_id_depends_on_the_fit_not_on_when_it_was_saved(tmp_path, catalog):
    model = replace(fake_result().model, catalog=catalog)
    first = read_model_meta(save_model(model, tmp_path / "a"))["model_id"]
    again = read_model_meta(save_model(model, tmp_path / "b"))["model_id"]
    moved = replace(model, centroids=model.centroids + 1e-9)
    renamed = replace(model, persona_names=("x", "y", "z"))
    assert first == again
    assert len({first, model_id(moved), model_id(renamed)}) == 3
    assert model_id(load_model(tmp_path / "a")) == first


def test_a_format_2_model_still_loads_without_a_catalog(tmp_path):
    """What gpuseg wrote before the catalog was kept: assign reads it, serve refuses it."""
    fake = fake_result()
    folder = save_model(fake.model, tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    for key in ("catalog", "model_id", "created", "source_fingerprint"):
        del meta[key]
    (folder / META_FILE).write_text(json.dumps({**meta, "format_version": 2}))
    loaded = load_model(folder)
    assert loaded.catalog is None
    np.testing.assert_array_equal(loaded.centroids, fake.model.centroids)
    with np.load(folder / ARRAYS_FILE) as arrays:
        assert not [name for name in arrays.files if name.startswith("catalog_")]
