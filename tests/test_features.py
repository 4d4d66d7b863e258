"""The per-user feature stage against its spec: DuckDB reference, hand-computed users, contract."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _random_instacart import instacart_from_records, on_backend, random_instacart
from _reference_features import reference_features

from gpuseg.data.tables import InstacartData
from gpuseg.errors import ConfigError, GpusegError
from gpuseg.features import FEATURE_COLUMNS_FIXED, UserFeatures, compute_features, feature_columns
from gpuseg.numerics.arrays import dense_positions

TOLERANCE = 1e-9
NAN = float("nan")


def features_on_host(data, backend, **kwargs) -> tuple[UserFeatures, pd.DataFrame]:
    result = compute_features(on_backend(data, backend), backend, **kwargs)
    return result, backend.to_host(result.table)


def max_abs_difference(left: pd.DataFrame, right: pd.DataFrame) -> pd.Series:
    return (left - right).abs().max()


@pytest.mark.parametrize(("seed", "min_orders"), [(0, 5), (1, 1), (2, 3)])
def test_every_feature_matches_the_reference(backend, seed, min_orders):
    data = random_instacart(n_users=300, seed=seed)
    expected = reference_features(data, min_orders=min_orders)
    result, table = features_on_host(data, backend, min_orders=min_orders)

    assert list(table.columns) == list(expected.table.columns)
    pd.testing.assert_index_equal(table.index, expected.table.index)
    difference = max_abs_difference(table, expected.table)
    assert (difference <= TOLERANCE).all(), difference[difference > TOLERANCE]
    assert result.n_users_with_history == expected.n_users_with_history
    assert result.n_users_excluded == expected.n_users_excluded
    assert result.n_product_rows_dropped == expected.n_product_rows_dropped > 0
    assert result.n_order_rows_dropped == 0


def test_matches_the_reference_on_the_synthetic_generator(backend):
    synth = pytest.importorskip("gpuseg.data.synth").generate_instacart(200, seed=1)
    data = InstacartData(
        orders=synth.orders,
        order_products=pd.concat([synth.order_products__prior, synth.order_products__train],
                                 ignore_index=True),
        products=synth.products, aisles=synth.aisles, departments=synth.departments)
    expected = reference_features(data, min_orders=5).table
    _, table = features_on_host(data, backend, min_orders=5)
    pd.testing.assert_index_equal(table.index, expected.index)
    difference = max_abs_difference(table, expected)
    assert (difference <= TOLERANCE).all(), difference[difference > TOLERANCE]


def test_no_duplicate_rows_and_no_product_bought_twice_in_a_row(backend):
    # Every scan that finds repeats comes back empty here (cupy.bincount fails on empty input).
    data = instacart_from_records(
        orders=[(1, 7, 1, 0, 9, NAN), (2, 7, 2, 1, 9, 3.0), (3, 7, 3, 2, 9, 4.0)],
        order_products=[(1, 1, 0), (2, 2, 0), (3, 1, 1)],
        products=HAND_PRODUCTS, aisle_ids=[3, 4], department_ids=[10, 20])
    _, table = features_on_host(data, backend, min_orders=1)
    difference = max_abs_difference(table, reference_features(data, min_orders=1).table)
    assert (difference <= TOLERANCE).all(), difference[difference > TOLERANCE]
    assert table.loc[7, "basket_consistency"] == 0
    assert table.loc[7, "product_repeat_rate"] == pytest.approx(3 / 2)


def test_no_product_rows_at_all(backend):
    data = instacart_from_records(orders=[(1, 7, 1, 0, 9, NAN)], order_products=[],
                                  products=HAND_PRODUCTS, aisle_ids=[3], department_ids=[10])
    with pytest.raises(GpusegError, match="lower min_orders"):
        compute_features(on_backend(data, backend), backend, min_orders=1)


def test_table_layout(backend):
    data = random_instacart(n_users=120, seed=3)
    result, table = features_on_host(data, backend, min_orders=2)

    aisle_ids = sorted(data.aisles["aisle_id"].tolist())
    assert list(table.columns) == feature_columns(aisle_ids) == result.columns
    assert table.index.name == "user_id"
    assert table.index.dtype == np.int64
    assert table.index.is_monotonic_increasing and table.index.is_unique
    assert set(table.dtypes) == {np.dtype("float64")}
    assert np.isfinite(table.to_numpy()).all()
    assert result.aisle_ids == tuple(aisle_ids)
    assert result.n_users == len(table)


def test_feature_columns_order():
    assert feature_columns([12, 3]) == [
        "n_orders", "aisle_3", "aisle_12", "dept_entropy", "organic_ratio", "basket_size_mean",
        "days_between_mean", "order_interval_cv", "basket_consistency", "hour_sin", "hour_cos",
        "weekend_ratio", "reorder_ratio", "product_repeat_rate", "loyalty_hhi"]
    assert set(FEATURE_COLUMNS_FIXED) == set(feature_columns([]))


def test_min_orders_keeps_only_users_with_enough_history(backend):
    data = random_instacart(n_users=200, seed=4)
    everyone, all_table = features_on_host(data, backend, min_orders=1)
    regulars, table = features_on_host(data, backend, min_orders=6)

    assert everyone.n_users_excluded == 0
    assert len(all_table) == everyone.n_users_with_history == regulars.n_users_with_history
    assert (table["n_orders"] >= 6).all()
    assert len(table) == (all_table["n_orders"] >= 6).sum()
    assert regulars.n_users_excluded == (all_table["n_orders"] < 6).sum()
    pd.testing.assert_frame_equal(table, all_table.loc[table.index], check_exact=False,
                                  atol=TOLERANCE, rtol=0)


def test_no_user_left_names_the_option(backend):
    data = random_instacart(n_users=40, seed=5)
    with pytest.raises(GpusegError, match="lower min_orders"):
        compute_features(on_backend(data, backend), backend, min_orders=1_000)


def test_min_orders_below_one_is_a_config_error(cpu_backend):
    with pytest.raises(ConfigError, match="min_orders must be an integer >= 1"):
        compute_features(random_instacart(n_users=10), cpu_backend, min_orders=0)


def test_each_user_depends_only_on_their_own_rows(cpu_backend):
    data = random_instacart(n_users=150, seed=6)
    _, whole = features_on_host(data, cpu_backend, min_orders=2)
    first_half = data.orders["user_id"] < data.orders["user_id"].median()
    parts = []
    for users in (first_half, ~first_half):
        orders = data.orders[users]
        part = InstacartData(orders=orders,
                          order_products=data.order_products[
                              data.order_products["order_id"].isin(orders["order_id"])],
                          products=data.products, aisles=data.aisles, departments=data.departments)
        parts.append(features_on_host(part, cpu_backend, min_orders=2)[1])
    pd.testing.assert_frame_equal(pd.concat(parts).sort_index(), whole, check_exact=False,
                                  atol=TOLERANCE, rtol=0)


# Hand-computed users. Products: 1 "Organic Banana" (aisle 3, department 10), 2 "Milk" (aisle 4,
# department 20), 3 "Bread" and 4 "Tea" (aisle 3, department 10), 5 "Coffee" (aisle 4,
# department 10).
HAND_PRODUCTS = [(1, "Organic Banana", 3, 10), (2, "Milk", 4, 20), (3, "Bread", 3, 10),
                 (4, "Tea", 3, 10), (5, "Coffee", 4, 10)]
HAND_ORDERS = [
    # user 1: one department only, every product new
    (101, 1, 1, 2, 8, NAN), (102, 1, 2, 2, 8, 7.0), (103, 1, 3, 2, 8, 7.0),
    # user 2: the same basket three times
    (201, 2, 1, 0, 10, NAN), (202, 2, 2, 1, 10, 10.0), (203, 2, 3, 3, 10, 30.0),
    # user 3: orders at 23:00 and 01:00
    (301, 3, 1, 0, 23, NAN), (302, 3, 2, 3, 1, 12.0),
    # user 4: no days value at all
    (401, 4, 1, 4, 12, NAN), (402, 4, 2, 4, 12, NAN),
    # user 5: a duplicate row, an order without product rows between two with products
    (501, 5, 1, 5, 9, NAN), (502, 5, 2, 5, 9, 10.0), (503, 5, 3, 5, 9, 20.0),
]
HAND_ORDER_PRODUCTS = [
    (101, 1, 0), (101, 3, 0), (102, 4, 0), (103, 5, 0), (103, 99, 0),
    (201, 1, 0), (201, 2, 0), (202, 1, 1), (202, 2, 1), (203, 1, 1), (203, 2, 1),
    (301, 1, 0), (302, 1, 1), (302, 2, 0),
    (401, 3, 0), (402, 4, 0),
    (501, 1, 0), (501, 1, 0), (501, 2, 0), (503, 2, 1), (503, 3, 0),
]


@pytest.fixture(scope="module")
def hand_data():
    return instacart_from_records(HAND_ORDERS, HAND_ORDER_PRODUCTS, HAND_PRODUCTS,
                                  aisle_ids=[3, 4, 9], department_ids=[10, 20])


@pytest.fixture
def hand_table(hand_data, backend) -> pd.DataFrame:
    return features_on_host(hand_data, backend, min_orders=2)[1]


def test_hand_data_matches_the_reference(hand_data, hand_table):
    difference = max_abs_difference(hand_table, reference_features(hand_data, min_orders=2).table)
    assert (difference <= TOLERANCE).all(), difference[difference > TOLERANCE]


def test_one_department_and_only_new_products(hand_table):
    user = hand_table.loc[1]
    assert user["n_orders"] == 3
    assert user["dept_entropy"] == 0
    assert user["reorder_ratio"] == 0
    assert user["product_repeat_rate"] == 1
    assert user["basket_consistency"] == 0
    assert user["loyalty_hhi"] == pytest.approx(4 * (1 / 4) ** 2)
    assert user["basket_size_mean"] == pytest.approx(4 / 3)  # the unknown product 99 is dropped
    assert user["aisle_3"] == pytest.approx(3 / 4) and user["aisle_4"] == pytest.approx(1 / 4)
    assert user["aisle_9"] == 0
    assert user["days_between_mean"] == 7 and user["order_interval_cv"] == 0


def test_identical_baskets(hand_table):
    user = hand_table.loc[2]
    assert user["basket_consistency"] == pytest.approx(1.0, abs=TOLERANCE)
    assert user["dept_entropy"] == pytest.approx(1.0, abs=TOLERANCE)  # half and half of two
    assert user["organic_ratio"] == pytest.approx(0.5)
    assert user["reorder_ratio"] == 1
    assert user["product_repeat_rate"] == 3
    assert user["loyalty_hhi"] == pytest.approx(0.5)
    assert user["weekend_ratio"] == pytest.approx(2 / 3)
    assert user["days_between_mean"] == 20
    assert user["order_interval_cv"] == pytest.approx(10 / 20)


def test_hours_wrap_around_midnight(hand_table):
    user = hand_table.loc[3]
    assert user["hour_sin"] == pytest.approx(0.0, abs=TOLERANCE)
    assert user["hour_cos"] == pytest.approx(math.cos(math.pi / 12), abs=TOLERANCE)
    assert user["weekend_ratio"] == 0.5
    assert user["basket_consistency"] == pytest.approx(1 / 2)
    assert user["reorder_ratio"] == pytest.approx(1 / 2)


def test_no_days_values(hand_table):
    user = hand_table.loc[4]
    assert user["days_between_mean"] == 0
    assert user["order_interval_cv"] == 0


def test_duplicate_rows_and_orders_without_products(hand_table):
    user = hand_table.loc[5]
    assert user["n_orders"] == 2  # order 502 has no product rows
    assert user["basket_size_mean"] == pytest.approx(5 / 2)  # product 1 twice counts twice
    assert user["basket_consistency"] == pytest.approx(1 / 3)  # {1, 2} then {2, 3}
    assert user["product_repeat_rate"] == pytest.approx(5 / 3)
    assert user["loyalty_hhi"] == pytest.approx((2 ** 2 + 2 ** 2 + 1) / 5 ** 2)
    assert user["reorder_ratio"] == pytest.approx(1 / 2)
    assert user["days_between_mean"] == 20  # 502's 10 days belong to an order outside H(u)
    assert user["organic_ratio"] == pytest.approx(2 / 5)


def test_counts_of_what_was_left_out(hand_data, backend):
    result = compute_features(on_backend(hand_data, backend), backend, min_orders=3)
    assert result.n_users_with_history == 5
    assert result.n_users_excluded == 3
    assert result.n_product_rows_dropped == 1
    assert result.to_dict()["n_users"] == 2


def test_rows_of_unknown_orders_are_dropped_and_counted(hand_data, cpu_backend):
    extra = pd.DataFrame({"order_id": [9_999, 9_999], "product_id": [1, 2],
                          "add_to_cart_order": [1, 2], "reordered": [0, 1]}
                         ).astype(hand_data.order_products.dtypes.to_dict())
    with_unknown = InstacartData(
        orders=hand_data.orders, order_products=pd.concat([hand_data.order_products, extra]),
        products=hand_data.products, aisles=hand_data.aisles, departments=hand_data.departments)
    result = compute_features(with_unknown, cpu_backend, min_orders=2)
    assert result.n_order_rows_dropped == 2
    pd.testing.assert_frame_equal(result.table, compute_features(hand_data, cpu_backend,
                                                                 min_orders=2).table)


@pytest.mark.parametrize("ids", [np.array([40, 10, 30, 20]), np.array([7, 10**9, 3, 2**31 - 1])],
                         ids=["lookup-table", "binary-search"])
def test_dense_positions(backend, ids):
    xp = backend.xp
    queries = np.concatenate([ids[::-1], [0, 11, -5, 2**31 - 2]])
    positions = backend.to_host(dense_positions(xp.asarray(ids), xp.asarray(queries), xp=xp))
    np.testing.assert_array_equal(positions, [3, 2, 1, 0, -1, -1, -1, -1])


@pytest.mark.gpu
def test_gpu_matches_cpu(cpu_backend, gpu_backend):
    data = random_instacart(n_users=300, seed=7)
    _, on_cpu = features_on_host(data, cpu_backend, min_orders=3)
    _, on_gpu = features_on_host(data, gpu_backend, min_orders=3)
    pd.testing.assert_index_equal(on_gpu.index, on_cpu.index)
    assert list(on_gpu.columns) == list(on_cpu.columns)
    assert (max_abs_difference(on_gpu, on_cpu) <= 1e-6).all()
