"""Property tests: whatever a user's files hold, loading ends in tables or in one clear line.

Hypothesis draws small Kaggle-layout exports (any accepted format, BOMs, CRLF
line ends, product names with commas, quotes, newlines and any Unicode) and
then breaks them: ragged rows, another delimiter, empty or header-only files,
missing or renamed columns, bad cells (text, nulls, fractions, huge or
negative ids, out-of-range hours, days and weekdays), repeated ids, product
rows of unknown orders or products, users whose every row is dropped. Each
case must either raise :class:`DataValidationError` naming the file (and,
for a bad cell, the column and the first bad row) or load, with every dropped
row counted in ``cleaning`` exactly as a naive pandas reference counts it;
the feature stage must then succeed or raise :class:`GpusegError`. Any other
exception is a bug.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _layout import write_layout
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_load import expected_frames

from gpuseg.data import load_instacart
from gpuseg.data.checks import NULLABLE, DataCleaningWarning
from gpuseg.data.schema import FILE_STEMS, OPTIONAL_FILES, TABLE_DTYPES, VALUE_RANGES
from gpuseg.errors import DataValidationError, GpusegError
from gpuseg.features import compute_features
from gpuseg.registry import get_backend

CSV_FORMATS = ("csv", "csv.gz", "csv.zip")
STEMS = tuple(FILE_STEMS)
EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
INT32_MAX = 2**31 - 1

# Any Unicode a product name may hold, commas, quotes and newlines included. A bare carriage
# return is left out: pandas' writer does not quote it, so its file would be broken, not ours.
NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\r\x00"), min_size=1, max_size=12)


@st.composite
def exports(draw) -> dict[str, pd.DataFrame]:
    """A valid Instacart export: a few users with numbered orders, each with distinct products."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_users, n_products = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    aisle_ids = np.sort(rng.choice(np.arange(1, 200), size=draw(st.integers(1, 4)), replace=False))
    department_ids = np.sort(rng.choice(np.arange(1, 100), size=draw(st.integers(1, 3)),
                                        replace=False))
    # Ids anywhere in int32, up to its limit: the loader must keep them exactly.
    high = draw(st.sampled_from([1_000, INT32_MAX]))
    product_ids = rng.choice(high, size=n_products, replace=False) + 1
    user_ids = rng.choice(high, size=n_users, replace=False) + 1
    per_user = rng.integers(1, 7, size=n_users)
    n_orders = int(per_user.sum())
    order_number = np.concatenate([np.arange(1, k + 1) for k in per_user])
    days = rng.integers(0, 31, size=n_orders).astype(float)
    days[order_number == 1] = np.nan
    orders = pd.DataFrame({
        "order_id": rng.choice(high, size=n_orders, replace=False) + 1,
        "user_id": np.repeat(user_ids, per_user),
        "eval_set": rng.choice(["prior", "train", "test"], size=n_orders),
        "order_number": order_number,
        "order_dow": rng.integers(0, 7, size=n_orders),
        "order_hour_of_day": rng.integers(0, 24, size=n_orders),
        "days_since_prior_order": days,
    }).sample(frac=1.0, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
    rows = []
    for order_id in orders["order_id"]:
        basket = rng.choice(product_ids, size=int(rng.integers(1, n_products + 1)), replace=False)
        rows += [(order_id, product, cart + 1, int(rng.integers(0, 2)))
                 for cart, product in enumerate(basket)]
    order_products = pd.DataFrame(rows, columns=list(TABLE_DTYPES["order_products__prior"]))
    in_train = rng.random(len(order_products)) < 0.2
    in_train[0] = False  # order_products__prior is required, so it holds a row
    return {
        "orders": orders,
        "order_products__prior": order_products[~in_train].reset_index(drop=True),
        "order_products__train": order_products[in_train].reset_index(drop=True),
        "products": pd.DataFrame({"product_id": product_ids,
                                  "product_name": draw(st.lists(NAMES, min_size=n_products,
                                                                max_size=n_products)),
                                  "aisle_id": rng.choice(aisle_ids, size=n_products),
                                  "department_id": rng.choice(department_ids, size=n_products)}),
        "aisles": pd.DataFrame({"aisle_id": aisle_ids,
                                "aisle": [f"aisle, no. {a}" for a in aisle_ids]}),
        "departments": pd.DataFrame({"department_id": department_ids,
                                     "department": [f'"dept" {d}' for d in department_ids]}),
    }


def write_export(folder: Path, tables: dict[str, pd.DataFrame], fmt: str, *, bom: bool = False,
                 line_end: str = "\n") -> Path:
    """``tables`` as a Kaggle-layout folder; CSV text optionally with a UTF-8 BOM and CRLF ends."""
    if fmt == "parquet":
        return write_layout(folder, tables, fmt="parquet")
    folder.mkdir(parents=True)
    for stem, frame in tables.items():
        write_text_file(folder, stem, fmt, frame.to_csv(index=False, lineterminator=line_end),
                        bom=bom)
    return folder


def write_text_file(folder: Path, stem: str, fmt: str, text: str, *, bom: bool = False) -> None:
    """CSV text as ``<stem>.<fmt>``: plain, gzip or a zip archive holding one CSV."""
    data = (codecs.BOM_UTF8 if bom else b"") + text.encode()
    path = folder / f"{stem}.{fmt}"
    if fmt == "csv":
        path.write_bytes(data)
    elif fmt == "csv.gz":
        path.write_bytes(gzip.compress(data))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{stem}.csv", data)


def load_or_message(source: Path):
    """The loaded data, or the DataValidationError's one-line message; anything else fails."""
    try:
        return load_instacart(source, cache=False)
    except DataValidationError as exc:
        message = str(exc)
        assert "\n" not in message and isinstance(exc, GpusegError)
        return message


# -- valid exports ---------------------------------------------------------------------------

@given(tables=exports(), fmt=st.sampled_from((*CSV_FORMATS, "parquet")), bom=st.booleans(),
       line_end=st.sampled_from(["\n", "\r\n"]))
@EXAMPLES
def test_any_valid_export_loads_exactly_in_every_format(tables, fmt, bom, line_end):
    with tempfile.TemporaryDirectory() as tmp:
        data = load_instacart(write_export(Path(tmp) / "in", tables, fmt, bom=bom,
                                           line_end=line_end), cache=False)
    for name, frame in expected_frames(tables).items():
        pd.testing.assert_frame_equal(getattr(data, name), frame, check_categorical=False)
    assert data.cleaning["order_products_unknown_order"] == 0
    assert data.cleaning["order_products_duplicate"] == 0
    features = compute_features(data, get_backend("cpu"), min_orders=1)
    assert features.n_users == tables["orders"]["user_id"].nunique()


# -- broken files ----------------------------------------------------------------------------

BREAKS = ("ragged", "semicolons", "empty", "header only", "dropped column", "renamed column")


@given(tables=exports(), fmt=st.sampled_from(CSV_FORMATS), stem=st.sampled_from(STEMS),
       kind=st.sampled_from(BREAKS), data=st.data())
@EXAMPLES
def test_a_broken_file_is_named_with_what_is_wrong_and_where(tables, fmt, stem, kind, data):
    frame = tables[stem]
    assume(len(frame) > 0)
    columns = list(frame.columns)
    header = ",".join(columns)
    if kind == "ragged":
        row = data.draw(st.integers(1, len(frame)), label="row")
        fields = data.draw(st.sampled_from([len(columns) - 1, len(columns) + 1]), label="fields")
        records = frame.astype(object).where(frame.notna(), "").values.tolist()
        records[row - 1] = (records[row - 1] + ["7"])[:fields]
        text = _csv_text([columns, *records])
        expected = (f"{stem}.{fmt}: malformed CSV, row {row}: expected {len(columns)} fields, "
                    f"found {fields}")
    elif kind == "semicolons":
        text = frame.to_csv(index=False, sep=";")
        expected = f"{stem}.{fmt}: missing column(s) "
    elif kind == "empty":
        text, expected = "", f"{stem}.{fmt}: the file is empty"
    elif kind == "header only":
        text, expected = header + "\n", f"{stem}.{fmt}: the file has a header but no data rows"
    else:
        column = data.draw(st.sampled_from(list(TABLE_DTYPES[stem])), label="column")
        if kind == "dropped column":
            text = frame.drop(columns=column).to_csv(index=False)
            expected = f"{stem}.{fmt}: missing column(s) '{column}'"
        else:
            text = frame.rename(columns={column: column.upper()}).to_csv(index=False)
            expected = f"rename '{column.upper()}' to '{column}'"
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_export(Path(tmp) / "in", {k: v for k, v in tables.items() if k != stem},
                              fmt)
        write_text_file(folder, stem, fmt, text)
        message = load_or_message(folder)
    if kind == "header only" and stem in OPTIONAL_FILES:
        # An optional file with no rows adds none, as if it were absent.
        assert not isinstance(message, str), message
        assert len(message.order_products) == len(tables["order_products__prior"])
        return
    assert isinstance(message, str), "a broken file loaded"
    assert expected in message, message
    if kind == "semicolons" and len(columns) > 1:
        assert "semicolon-separated" in message


def _csv_text(records: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(records)
    return buffer.getvalue()


# -- bad cells -------------------------------------------------------------------------------

def bad_values(column: str, dtype: str) -> st.SearchStrategy:
    """Values ``column`` must refuse: text, fractions, nulls, negatives, too large, out of range."""
    integer = dtype.startswith("int")
    values = [st.sampled_from(["abc", "12a", "--1", "1,5"])]
    if integer:
        values.append(st.sampled_from([1.5, "2.25"]))
        top = VALUE_RANGES.get(column, (0, np.iinfo(dtype).max))[1]
        values.append(st.integers(top + 1, top + 10**12))
        values.append(st.just("99999999999999999999999"))
    else:
        values.append(st.floats(31.5, 1e6))
    if column not in NULLABLE:
        values.append(st.just(None))
    low = VALUE_RANGES.get(column, (0, None))[0]
    values.append(st.integers(low - 1000, low - 1))
    return st.one_of(values)


NUMERIC = [(stem, column, dtype) for stem in STEMS for column, dtype in TABLE_DTYPES[stem].items()
           if dtype != "str"]


@given(tables=exports(), fmt=st.sampled_from(["csv", "parquet"]), target=st.sampled_from(NUMERIC),
       data=st.data())
@EXAMPLES
def test_bad_cells_name_the_file_column_and_first_bad_row(tables, fmt, target, data):
    stem, _, _ = target
    frame = tables[stem].astype(object)
    assume(len(frame) > 0)
    numeric = [(column, dtype) for column, dtype in TABLE_DTYPES[stem].items() if dtype != "str"]
    cells = data.draw(st.lists(st.tuples(st.sampled_from(numeric),
                                         st.integers(0, len(frame) - 1)),
                               min_size=1, max_size=3, unique=True), label="cells")
    for (column, dtype), row in cells:
        frame.loc[row, column] = data.draw(bad_values(column, dtype), label=f"{column}@{row}")
    if fmt == "parquet":
        # A parquet column has one type: a column holding any text is written as text.
        for column, _ in numeric:
            if frame[column].map(lambda v: isinstance(v, str)).any():
                frame[column] = frame[column].map(lambda v: None if pd.isna(v) else str(v))
            else:
                frame[column] = pd.to_numeric(frame[column])
    tables = {**tables, stem: frame}
    with tempfile.TemporaryDirectory() as tmp:
        message = load_or_message(write_export(Path(tmp) / "in", tables, fmt))
    assert isinstance(message, str), "a bad cell loaded"
    order = [column for column, _ in numeric]
    row, column = min((row, order.index(column)) for (column, _), row in cells)
    assert f"{stem}.{fmt}, column '{order[column]}', row {row + 1}: " in message, message


# -- repeated ids ----------------------------------------------------------------------------

ID_COLUMNS = [("orders", "order_id"), ("products", "product_id"), ("aisles", "aisle_id"),
              ("departments", "department_id"), ("orders", "order_number")]


@given(tables=exports(), target=st.sampled_from(ID_COLUMNS), data=st.data())
@EXAMPLES
def test_a_repeated_id_names_both_rows(tables, target, data):
    stem, column = target
    frame = tables[stem].copy()
    assume(len(frame) >= 2)
    if column == "order_number":
        # The same user numbering two orders alike: copy one order's number to another of hers.
        repeats = frame[frame.duplicated("user_id", keep=False)]
        assume(len(repeats) >= 2)
        user = repeats["user_id"].iloc[0]
        first, later = frame.index[frame["user_id"] == user][:2]
    else:
        first, later = sorted(data.draw(st.lists(st.integers(0, len(frame) - 1), min_size=2,
                                                 max_size=2, unique=True), label="rows"))
    frame.loc[later, column] = frame.loc[first, column]
    with tempfile.TemporaryDirectory() as tmp:
        message = load_or_message(write_export(Path(tmp) / "in", {**tables, stem: frame}, "csv"))
    assert isinstance(message, str), "a repeated id loaded"
    assert f"{stem}.csv, column '{column}', row {later + 1}: " in message, message
    assert f"row {first + 1})" in message, message


# -- rows that cannot be joined --------------------------------------------------------------

@given(tables=exports(), n_unknown_orders=st.integers(0, 3), n_unknown_products=st.integers(0, 3),
       n_repeats=st.integers(0, 3), orphan_user=st.booleans(), data=st.data())
@EXAMPLES
def test_unjoinable_and_repeated_rows_are_dropped_and_counted_like_pandas(
        tables, n_unknown_orders, n_unknown_products, n_repeats, orphan_user, data):
    orders, products = tables["orders"], tables["products"]
    prior = tables["order_products__prior"]
    unknown_order = max(orders["order_id"].max(), INT32_MAX - 10) + 1
    unknown_product = int(products["product_id"].max()) % (INT32_MAX - 1) + 1
    assume(unknown_product not in set(products["product_id"]))
    extra = [(unknown_order + i, int(products["product_id"].iloc[0]), 1, 0)
             for i in range(n_unknown_orders)]
    extra += [(int(orders["order_id"].iloc[i % len(orders)]), unknown_product, 1, 1)
              for i in range(n_unknown_products)]
    both = pd.concat([prior, tables["order_products__train"]], ignore_index=True)
    if n_repeats and len(both):
        extra += [tuple(row) for row in both.sample(n_repeats, replace=True,
                                                    random_state=0).itertuples(index=False)]
    if orphan_user:
        # Every product row of one user names an unknown product: she drops out of the features.
        user = data.draw(st.sampled_from(sorted(orders["user_id"].unique())), label="user")
        hers = orders.loc[orders["user_id"] == user, "order_id"]
        for name in ("order_products__prior", "order_products__train"):
            frame = tables[name].copy()
            frame.loc[frame["order_id"].isin(hers), "product_id"] = unknown_product
            tables = {**tables, name: frame}
    tables["order_products__prior"] = pd.concat(
        [tables["order_products__prior"], pd.DataFrame(extra, columns=prior.columns)],
        ignore_index=True)

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataCleaningWarning)
        loaded = load_or_message(write_export(Path(tmp) / "in", tables, "csv"))
    assert not isinstance(loaded, str), loaded
    announced = [str(w.message) for w in caught if issubclass(w.category, DataCleaningWarning)]

    rows = pd.concat([tables["order_products__prior"], tables["order_products__train"]],
                     ignore_index=True)
    known_order = rows["order_id"].isin(orders["order_id"])
    known_product = rows["product_id"].isin(products["product_id"])
    joinable = rows[known_order & known_product]
    kept = joinable[~joinable.duplicated(["order_id", "product_id"])]
    assert loaded.cleaning == {
        "order_products_unknown_order": int((~known_order).sum()),
        "order_products_unknown_product": int((known_order & ~known_product).sum()),
        "order_products_duplicate": len(joinable) - len(kept),
        "orders_without_products": int((~orders["order_id"].isin(kept["order_id"])).sum()),
    }
    dropped = [key for key in ("order_products_unknown_order", "order_products_unknown_product",
                               "order_products_duplicate") if loaded.cleaning[key]]
    assert len(announced) == len(dropped), announced  # every drop is announced, once
    pd.testing.assert_frame_equal(loaded.order_products.reset_index(drop=True),
                                  kept.reset_index(drop=True), check_dtype=False)
    users_with_rows = orders.loc[orders["order_id"].isin(kept["order_id"]), "user_id"].nunique()
    if users_with_rows:
        features = compute_features(loaded, get_backend("cpu"), min_orders=1)
        assert features.n_users_with_history == users_with_rows
        assert features.n_users == users_with_rows
    else:
        with pytest.raises(GpusegError, match="no user has at least 1 orders"):
            compute_features(loaded, get_backend("cpu"), min_orders=1)
