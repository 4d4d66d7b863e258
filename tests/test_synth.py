"""The synthetic Instacart generator: layout, published marginals, history, personas, writing.

Marginals are checked on ``realistic`` data at 20,000 users against the
published Instacart numbers (instacart-stats.json) with tolerances that hold
for any seed at that size. ``strong`` deviates on purpose in basket size and
cadence (its module docstring says how); its own checks are the personas'
behaviour and their recoverability by clustering.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from gpuseg.data import synth, taxonomy
from gpuseg.data.schema import FILE_STEMS, TABLE_DTYPES
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.errors import ConfigError, OutputError
from gpuseg.outputs import MARK_FILE
from gpuseg.vocabulary import (
    BULK_PANTRY_STOCKERS,
    BUSY_CONVENIENCE_SEEKERS,
    EXPLORATORY_FOODIES,
    FAMILY_SHOPPERS,
    HEALTH_CONSCIOUS_REGULARS,
    PERSONA_NAMES,
)

REAL_CATALOG = Path("/work/shared/data/instacart-catalog/products.csv")
PERSONA_SHARES = {
    HEALTH_CONSCIOUS_REGULARS: 0.18,
    BULK_PANTRY_STOCKERS: 0.24,
    BUSY_CONVENIENCE_SEEKERS: 0.15,
    FAMILY_SHOPPERS: 0.28,
    EXPLORATORY_FOODIES: 0.15,
}


def _shares(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return counts / counts.sum()


def _total_variation(observed, expected) -> float:
    return 0.5 * float(np.abs(_shares(observed) - _shares(expected)).sum())


def _product_rows(data: synth.SyntheticInstacart) -> pd.DataFrame:
    """Prior and train rows with the order's user and number, in purchase-time order."""
    rows = pd.concat([data.order_products__prior, data.order_products__train], ignore_index=True)
    rows = rows.merge(data.orders[["order_id", "user_id", "order_number"]], on="order_id")
    return rows.sort_values(["user_id", "order_number"], kind="stable")


@pytest.fixture(scope="module")
def realistic() -> synth.SyntheticInstacart:
    return generate_instacart(20_000, seed=11, separation="realistic")


@pytest.fixture(scope="module")
def strong() -> synth.SyntheticInstacart:
    return generate_instacart(6_000, seed=11, separation="strong")


@pytest.fixture(scope="module")
def small() -> synth.SyntheticInstacart:
    return generate_instacart(300, seed=5, separation="strong")


# -- layout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FILE_STEMS))
def test_every_table_has_exactly_the_schema_columns_and_dtypes(realistic, name):
    frame = getattr(realistic, name)
    expected = dict(TABLE_DTYPES[name])
    if name == "orders":
        expected["eval_set"] = "category"
    assert sorted(frame.columns) == sorted(expected)
    assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == expected


def test_orders_follow_the_kaggle_column_order_and_sorting(realistic):
    orders = realistic.orders
    assert list(orders.columns) == ["order_id", "user_id", "eval_set", "order_number", "order_dow",
                                    "order_hour_of_day", "days_since_prior_order"]
    assert list(orders["eval_set"].cat.categories) == ["prior", "train", "test"]
    assert orders["order_id"].is_unique
    assert sorted(orders["order_id"]) == list(range(1, len(orders) + 1))
    keys = orders["user_id"].astype(np.int64) * 1000 + orders["order_number"]
    assert keys.is_monotonic_increasing
    for table in (realistic.order_products__prior, realistic.order_products__train):
        assert table["order_id"].is_monotonic_increasing


def test_product_rows_are_unique_per_order_with_cart_positions_1_to_n(realistic):
    rows = pd.concat([realistic.order_products__prior, realistic.order_products__train])
    assert not rows.duplicated(["order_id", "product_id"]).any()
    per_order = rows.groupby("order_id")["add_to_cart_order"].agg(["min", "max", "size"])
    assert (per_order["min"] == 1).all()
    assert (per_order["max"] == per_order["size"]).all()
    assert rows["product_id"].isin(realistic.products["product_id"]).all()


def test_catalog_has_the_real_taxonomy_and_invented_products(realistic):
    aisles, departments, products = realistic.aisles, realistic.departments, realistic.products
    assert len(aisles) == 134 and list(aisles["aisle_id"]) == list(range(1, 135))
    assert len(departments) == 21 and list(departments["department_id"]) == list(range(1, 22))
    assert aisles["aisle"].tolist() == [name for name, _ in taxonomy.AISLES]
    assert {"fresh fruits", "yogurt", "missing"} <= set(aisles["aisle"])
    assert {"produce", "dairy eggs", "snacks", "missing"} <= set(departments["department"])
    assert len(products) == 49_688
    assert list(products["product_id"]) == list(range(1, 49_689))
    assert products["product_name"].is_unique
    assert set(products["aisle_id"]) == set(range(1, 135))
    mapping = dict(zip(aisles["aisle_id"], taxonomy.department_of_aisle() + 1))
    assert (products["department_id"] == products["aisle_id"].map(mapping)).all()
    organic = products["product_name"].str.contains("Organic").mean()
    assert organic == pytest.approx(0.10, abs=0.01)
    assert not products["product_name"].str.contains('[,"\n]').any()


def test_taxonomy_puts_known_aisles_in_their_departments():
    by_name = {name: taxonomy.DEPARTMENTS[index]
               for (name, _), index in zip(taxonomy.AISLES, taxonomy.department_of_aisle())}
    assert by_name["fresh fruits"] == "produce"
    assert by_name["yogurt"] == "dairy eggs"
    assert by_name["chips pretzels"] == "snacks"
    assert by_name["diapers wipes"] == "babies"
    assert by_name["missing"] == "missing"
    assert len(set(by_name.values())) == 21


@pytest.mark.skipif(not REAL_CATALOG.exists(), reason=f"{REAL_CATALOG} not present")
def test_taxonomy_equals_the_real_catalogs_aisles_departments_and_mapping():
    folder = REAL_CATALOG.parent
    aisles = pd.read_csv(folder / "aisles.csv")
    departments = pd.read_csv(folder / "departments.csv")
    pairs = pd.read_csv(REAL_CATALOG, usecols=["aisle_id", "department_id"]).drop_duplicates()
    assert pairs["aisle_id"].is_unique  # every aisle sits in one department
    assert aisles.sort_values("aisle_id")["aisle"].tolist() == [n for n, _ in taxonomy.AISLES]
    assert departments.sort_values("department_id")["department"].tolist() == list(
        taxonomy.DEPARTMENTS)
    real = pairs.set_index("aisle_id")["department_id"].sort_index()
    np.testing.assert_array_equal(real.to_numpy(), taxonomy.department_of_aisle() + 1)


@pytest.mark.skipif(not REAL_CATALOG.exists(), reason=f"{REAL_CATALOG} not present")
def test_no_product_name_of_the_real_catalog_is_generated(realistic, strong):
    real = set(pd.read_csv(REAL_CATALOG)["product_name"].str.lower())
    for data in (realistic, strong):
        generated = set(data.products["product_name"].str.lower())
        assert not generated & real


# -- published marginals (realistic, 20,000 users) --------------------------------------------


def test_orders_per_user_span_4_to_100_with_a_long_tail_and_a_spike_at_100(realistic):
    per_user = realistic.orders.groupby("user_id").size()
    assert per_user.min() == 4 and per_user.max() == 100
    # Instacart: 3,421,083 orders of 206,209 users; 59,741 with 4-6 orders, 98,658 with 7-21.
    assert per_user.mean() == pytest.approx(16.59, abs=0.6)
    assert per_user.between(4, 6).mean() == pytest.approx(59_741 / 206_209, abs=0.02)
    assert per_user.between(7, 21).mean() == pytest.approx(98_658 / 206_209, abs=0.02)
    at_cap, just_below = (per_user == 100).mean(), (per_user == 99).mean()
    assert at_cap == pytest.approx(1_374 / 206_209, abs=0.0025)
    assert at_cap > 5 * just_below


def test_items_per_order_follow_the_published_histogram(realistic):
    sizes = realistic.order_products__prior.groupby("order_id").size()
    assert sizes.mean() == pytest.approx(10.09, abs=0.3)
    assert sizes.value_counts().idxmax() in (4, 5, 6)
    assert sizes.max() <= synth.MAX_BASKET
    observed = np.bincount(sizes[sizes <= 35], minlength=36)[1:]
    assert _total_variation(observed, synth.BASKET_HISTOGRAM_1_35) < 0.03


def test_about_59_percent_of_product_rows_are_reorders(realistic):
    assert realistic.order_products__prior["reordered"].mean() == pytest.approx(0.59, abs=0.03)
    assert realistic.order_products__train["reordered"].mean() == pytest.approx(0.60, abs=0.08)


def test_hours_peak_mid_day_with_almost_no_orders_at_3_and_4(realistic):
    hours = np.bincount(realistic.orders["order_hour_of_day"], minlength=24)
    assert _total_variation(hours, synth.HOUR_COUNTS) < 0.01
    shares = _shares(hours)
    assert 10 <= shares.argmax() <= 16
    assert shares[10:17].min() > 0.07
    assert shares[3:5].max() < 0.005


def test_weekdays_0_and_1_are_the_busiest(realistic):
    dow = np.bincount(realistic.orders["order_dow"], minlength=7)
    assert set(np.argsort(dow)[-2:]) == {0, 1}
    assert _total_variation(dow, synth.DOW_COUNTS) < 0.01


def test_days_since_prior_is_nan_exactly_on_first_orders_and_peaks_at_7_and_30(realistic):
    orders = realistic.orders
    days = orders["days_since_prior_order"]
    assert (days.isna() == (orders["order_number"] == 1)).all()
    values = days.dropna()
    assert values.between(0, 30).all() and (values == values.round()).all()
    counts = np.bincount(values.astype(int), minlength=31)
    assert counts.argmax() == 30
    assert counts[7] > counts[6] and counts[7] > counts[8] and counts[7] == counts[:30].max()
    assert counts[14] > counts[13] and counts[14] > counts[15]
    assert counts[21] > counts[20] and counts[21] > counts[22]
    assert _total_variation(counts, synth.DAYS_SINCE_PRIOR_COUNTS) < 0.01


@pytest.mark.parametrize("fixture", ["realistic", "strong"])
def test_department_shares_of_product_rows(request, fixture):
    data = request.getfixturevalue(fixture)
    department_of_product = data.products.set_index("product_id")["department_id"]
    department = data.order_products__prior["product_id"].map(department_of_product)
    shares = department.value_counts(normalize=True)
    ids = {name: i + 1 for i, name in enumerate(data.departments["department"])}
    assert shares[ids["produce"]] == pytest.approx(0.292, abs=0.012)
    assert shares[ids["dairy eggs"]] == pytest.approx(0.167, abs=0.01)
    assert shares[ids["snacks"]] == pytest.approx(0.089, abs=0.008)


def test_about_three_in_four_orders_hold_an_organic_product(realistic):
    organic = realistic.products.set_index("product_id")["product_name"].str.contains("Organic")
    rows = realistic.order_products__prior
    any_organic = rows["product_id"].map(organic).groupby(rows["order_id"]).any()
    # Instacart: 2,460,729 of 3,346,083 prior and train orders.
    assert any_organic.mean() == pytest.approx(0.735, abs=0.04)


# -- eval split and history --------------------------------------------------------------------


def test_each_users_last_order_is_train_or_test_and_test_orders_have_no_products(realistic):
    orders = realistic.orders
    last = orders.groupby("user_id")["order_number"].transform("max") == orders["order_number"]
    assert (orders.loc[~last, "eval_set"] == "prior").all()
    assert orders.loc[last, "eval_set"].isin(["train", "test"]).all()
    train_users = (orders.loc[last, "eval_set"] == "train").mean()
    assert train_users == pytest.approx(131_209 / 206_209, abs=1e-4)
    set_of = orders.set_index("order_id")["eval_set"]
    assert (realistic.order_products__prior["order_id"].map(set_of) == "prior").all()
    assert (realistic.order_products__train["order_id"].map(set_of) == "train").all()
    with_products = np.unique(np.concatenate([realistic.order_products__prior["order_id"],
                                              realistic.order_products__train["order_id"]]))
    test_orders = orders.loc[orders["eval_set"] == "test", "order_id"]
    assert len(test_orders) > 0 and not np.isin(test_orders, with_products).any()
    prior_and_train = np.sort(orders.loc[orders["eval_set"] != "test", "order_id"])
    np.testing.assert_array_equal(prior_and_train, with_products)


@pytest.mark.parametrize("fixture", ["realistic", "strong"])
def test_reordered_is_1_exactly_when_the_user_bought_the_product_in_an_earlier_order(
        request, fixture):
    rows = _product_rows(request.getfixturevalue(fixture))
    bought_before = rows.duplicated(["user_id", "product_id"], keep="first")
    assert (rows["reordered"] == bought_before.astype(np.int8)).all()
    assert (rows.loc[rows["order_number"] == 1, "reordered"] == 0).all()


# -- personas and the truth file ---------------------------------------------------------------


def test_truth_covers_every_user_once_in_the_planted_shares(realistic):
    truth = realistic.truth
    assert list(truth.columns) == ["user_id", "persona"]
    assert str(truth["user_id"].dtype) == "int32"
    assert truth["user_id"].is_unique
    assert set(truth["user_id"]) == set(realistic.orders["user_id"])
    counts = truth["persona"].value_counts()
    assert set(counts.index) == set(PERSONA_NAMES)
    for persona, share in PERSONA_SHARES.items():
        assert abs(counts[persona] - share * len(truth)) <= 1


def _per_persona(data: synth.SyntheticInstacart) -> pd.DataFrame:
    """Naive per-persona means of per-user behaviour (prior orders only)."""
    orders = data.orders[data.orders["eval_set"] == "prior"]
    rows = data.order_products__prior.merge(orders[["order_id", "user_id"]], on="order_id")
    organic = data.products.set_index("product_id")["product_name"].str.contains("Organic")
    rows["organic"] = rows["product_id"].map(organic)
    per_user = pd.DataFrame({
        "basket": rows.groupby("user_id").size() / orders.groupby("user_id").size(),
        "days": orders.groupby("user_id")["days_since_prior_order"].mean(),
        "morning": orders["order_hour_of_day"].between(8, 11).groupby(orders["user_id"]).mean(),
        "late": orders["order_hour_of_day"].isin([20, 21, 22, 23, 0, 1])
                .groupby(orders["user_id"]).mean(),
        "weekend": orders["order_dow"].isin([0, 1]).groupby(orders["user_id"]).mean(),
        "reorder": rows.groupby("user_id")["reordered"].mean(),
        "organic": rows.groupby("user_id")["organic"].mean(),
    })
    persona = data.truth.set_index("user_id")["persona"]
    return per_user.groupby(persona.loc[per_user.index].to_numpy()).mean()


def test_strong_personas_behave_as_planted(strong):
    p = _per_persona(strong)
    health, bulk, busy, family, foodies = (p.loc[name] for name in (
        HEALTH_CONSCIOUS_REGULARS, BULK_PANTRY_STOCKERS, BUSY_CONVENIENCE_SEEKERS,
        FAMILY_SHOPPERS, EXPLORATORY_FOODIES))
    assert bulk["basket"] >= 30
    assert 20 <= family["basket"] <= 25
    assert busy["basket"] < 9 and 9 <= health["basket"] <= 15 and 9 <= foodies["basket"] <= 15
    assert health["days"] == pytest.approx(7, abs=1)
    assert family["days"] == pytest.approx(14, abs=1.5)
    assert bulk["days"] >= 25
    assert health["morning"] > 0.5 and health["morning"] == p["morning"].max()
    assert busy["late"] > 0.3 and busy["late"] == p["late"].max()
    assert foodies["weekend"] > 0.6 and foodies["weekend"] == p["weekend"].max()
    assert health["organic"] == p["organic"].max()
    assert health["reorder"] > bulk["reorder"] > busy["reorder"] > foodies["reorder"]


def test_realistic_reorder_ratios_per_persona(realistic):
    rows = realistic.order_products__prior.merge(realistic.orders[["order_id", "user_id"]])
    persona = realistic.truth.set_index("user_id")["persona"]
    ratio = rows.groupby(rows["user_id"].map(persona))["reordered"].mean()
    assert ratio[HEALTH_CONSCIOUS_REGULARS] == pytest.approx(0.72, abs=0.04)
    assert ratio[BUSY_CONVENIENCE_SEEKERS] == pytest.approx(0.45, abs=0.04)
    assert ratio[EXPLORATORY_FOODIES] == pytest.approx(0.38, abs=0.04)


def _naive_clustering_ari(data: synth.SyntheticInstacart) -> float:
    """Aisle shares + behaviour -> users with >= 5 orders -> scaler -> PCA 95% -> KMeans(5)."""
    rows = _product_rows(data)
    aisle = data.products.set_index("product_id")["aisle_id"]
    counts = rows.groupby(["user_id", rows["product_id"].map(aisle)]).size().unstack(fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    orders = data.orders[data.orders["order_id"].isin(rows["order_id"])]
    by_user = orders.groupby("user_id")
    hour = 2 * np.pi * orders["order_hour_of_day"] / 24
    behaviour = pd.DataFrame({
        "basket": rows.groupby("user_id").size() / by_user.size(),
        "days": by_user["days_since_prior_order"].mean(),
        "hour_sin": np.sin(hour).groupby(orders["user_id"]).mean(),
        "hour_cos": np.cos(hour).groupby(orders["user_id"]).mean(),
        "weekend": orders["order_dow"].isin([0, 1]).groupby(orders["user_id"]).mean(),
        "reorder": rows.groupby("user_id")["reordered"].mean(),
        "n_orders": by_user.size(),
    })
    features = shares.join(behaviour)
    features = features[features["n_orders"] >= 5]
    # A few thousand rows: BLAS/OpenMP threads cost more than they save on a shared machine.
    with threadpool_limits(1):
        scaled = StandardScaler().fit_transform(features.to_numpy())
        reduced = PCA(n_components=0.95, random_state=0).fit_transform(scaled)
        labels = KMeans(5, n_init=3, random_state=0).fit_predict(reduced)
    truth = data.truth.set_index("user_id").loc[features.index, "persona"]
    return adjusted_rand_score(truth, labels)


def test_strong_personas_are_recovered_by_standard_clustering_and_realistic_ones_overlap():
    assert _naive_clustering_ari(generate_instacart(2_000, seed=2, separation="strong")) >= 0.9
    assert _naive_clustering_ari(generate_instacart(2_000, seed=2, separation="realistic")) < 0.6


# -- determinism and validation ----------------------------------------------------------------


def test_same_seed_gives_equal_tables_and_another_seed_different_ones(small):
    again = generate_instacart(300, seed=5, separation="strong")
    for name in list(FILE_STEMS) + ["truth"]:
        pd.testing.assert_frame_equal(getattr(small, name), getattr(again, name))
    other = generate_instacart(300, seed=6, separation="strong")
    assert not small.orders.equals(other.orders)
    assert not small.order_products__prior.equals(other.order_products__prior)
    assert not small.products["product_name"].equals(other.products["product_name"])
    assert not small.truth.equals(other.truth)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_users": 0}, "n_users must be an integer in [1,"),
    ({"n_users": -5}, "n_users must be an integer in [1,"),
    ({"n_users": 2.5}, "n_users must be an integer"),
    ({"n_users": True}, "n_users must be an integer"),
    ({"n_users": synth.MAX_USERS + 1}, "n_users must be an integer in [1,"),
    ({"n_users": 10, "seed": -1}, "seed must be an integer in [0, 2**32)"),
    ({"n_users": 10, "seed": 2**32}, "seed must be an integer in [0, 2**32)"),
    ({"n_users": 10, "separation": "medium"}, "separation must be one of strong, realistic"),
])
def test_invalid_arguments_are_config_errors_naming_the_field_and_range(kwargs, message):
    with pytest.raises(ConfigError) as error:
        generate_instacart(**kwargs)
    assert message in str(error.value)


# -- writing -----------------------------------------------------------------------------------


def _read_back(folder: Path, fmt: str) -> dict[str, pd.DataFrame]:
    tables = {}
    for name, stem in FILE_STEMS.items():
        path = folder / f"{stem}.{fmt}"
        if fmt == "parquet":
            tables[name] = pd.read_parquet(path)
        else:
            dtypes = dict(TABLE_DTYPES[name])
            if name == "orders":
                dtypes["eval_set"] = pd.CategoricalDtype(["prior", "train", "test"])
            tables[name] = pd.read_csv(path, dtype=dtypes)
    return tables


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_round_trips_the_kaggle_layout_and_a_separate_truth_file(small, tmp_path, fmt):
    folder = write_instacart(small, tmp_path / "synthetic", fmt=fmt)
    expected = sorted([f"{stem}.{fmt}" for stem in FILE_STEMS.values()]
                      + ["personas_truth.csv", MARK_FILE])
    assert sorted(p.name for p in folder.iterdir()) == expected
    for name, frame in _read_back(folder, fmt).items():
        assert "persona" not in frame.columns
        pd.testing.assert_frame_equal(frame, getattr(small, name))
    truth = pd.read_csv(folder / "personas_truth.csv", dtype={"user_id": "int32", "persona": "str"})
    pd.testing.assert_frame_equal(truth, small.truth)
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]


def test_csv_files_look_like_kaggles(small, tmp_path):
    folder = write_instacart(small, tmp_path / "synthetic")
    lines = (folder / "orders.csv").read_text().splitlines()
    assert lines[0] == ("order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,"
                        "days_since_prior_order")
    assert lines[1].startswith(f"{small.orders['order_id'].iloc[0]},1,prior,1,")
    assert lines[1].endswith(",")  # a first order has no days_since_prior_order


def test_same_seed_writes_the_same_bytes(small, tmp_path):
    first = write_instacart(small, tmp_path / "a")
    second = write_instacart(generate_instacart(300, seed=5, separation="strong"), tmp_path / "b")
    for path in sorted(first.iterdir()):
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name


def test_an_existing_folder_is_refused_unless_overwrite(small, tmp_path):
    target = write_instacart(small, tmp_path / "synthetic")
    (target / "orders.csv").write_text("an earlier data set")
    with pytest.raises(OutputError, match="already exists; pass overwrite=True to replace it"):
        write_instacart(small, target)
    assert (target / "orders.csv").read_text() == "an earlier data set"
    write_instacart(small, target, overwrite=True)
    assert (target / "orders.csv").read_text().startswith("order_id,")
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]


def test_overwrite_never_replaces_a_folder_gpuseg_did_not_write(small, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="is a folder gpuseg did not write, not a gpuseg data "
                                          "set folder; overwrite=True replaces only"):
        write_instacart(small, target, overwrite=True)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_a_failed_write_leaves_neither_the_target_nor_a_partial_folder(
        small, tmp_path, monkeypatch):
    calls = []

    def fail_on_second_table(frame, path, fmt):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full")
        path.write_text("partial")

    monkeypatch.setattr(synth.writer, "write_table", fail_on_second_table)
    with pytest.raises(OSError, match="disk full"):
        write_instacart(small, tmp_path / "synthetic")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_refused(small, tmp_path):
    with pytest.raises(ConfigError, match="fmt must be one of csv, parquet"):
        write_instacart(small, tmp_path / "synthetic", fmt="xlsx")
