"""A user's broken file gives one line naming the file, the column and the first bad row."""
from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
from _layout import sample_tables, write_layout, write_text

from gpuseg.data import load_instacart
from gpuseg.data import read as read_module
from gpuseg.errors import DataValidationError, GpusegError


def load_error(source) -> str:
    with pytest.raises(DataValidationError) as caught:
        load_instacart(source, cache=False)
    message = str(caught.value)
    assert "\n" not in message
    assert isinstance(caught.value, GpusegError)
    return message


def with_value(frame: pd.DataFrame, column: str, row: int, value, fmt: str) -> pd.DataFrame:
    """``frame`` with one cell replaced, typed so that both CSV and parquet can carry it."""
    frame = frame.copy()
    if isinstance(value, str):
        # Parquet columns have one type: text goes in with the whole column as text.
        frame[column] = frame[column].map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    elif frame[column].dtype.kind not in "biuf":
        value = None  # a missing text value
    elif isinstance(value, float) or pd.isna(value):
        frame[column] = frame[column].astype("float64")
    elif fmt == "parquet":
        frame[column] = frame[column].astype("int64")
    frame.loc[row, column] = value
    return frame


BAD_VALUES = [
    # (table, column, 0-based row, value, what the message says about it)
    ("orders", "order_id", 2, "abc", "'abc' is not an integer"),
    ("orders", "user_id", 1, np.nan, "missing value"),
    ("orders", "order_id", 4, -5, "-5 is negative"),
    ("orders", "user_id", 3, 2_147_483_648,
     "2147483648 is too large for int32 (at most 2147483647)"),
    ("orders", "order_id", 6, "99999999999999999999999",
     "99999999999999999999999 is too large for int32"),
    ("orders", "order_hour_of_day", 5, 24, "24 is outside 0-23"),
    ("orders", "order_dow", 0, 7, "7 is outside 0-6"),
    ("orders", "order_dow", 2, -1, "-1 is outside 0-6"),
    ("orders", "days_since_prior_order", 2, 31.0, "31 is outside 0-30"),
    ("orders", "days_since_prior_order", 1, -1.0, "-1 is outside 0-30"),
    ("orders", "days_since_prior_order", 1, "soon", "'soon' is not a number"),
    ("orders", "order_number", 7, 40_000, "40000 is too large for int16"),
    ("order_products__prior", "reordered", 3, 2, "2 is outside 0-1"),
    ("order_products__prior", "product_id", 8, np.nan, "missing value"),
    ("order_products__train", "product_id", 1, "1.5", "'1.5' is not an integer"),
    ("order_products__train", "add_to_cart_order", 2, -3, "-3 is negative"),
    ("products", "department_id", 4, 200, "200 is too large for int8 (at most 127)"),
    ("aisles", "aisle_id", 0, "fruit", "'fruit' is not an integer"),
    ("orders", "order_number", 3, 0, "0 is below 1 (ranks count from 1)"),
    ("order_products__prior", "add_to_cart_order", 5, 0, "0 is below 1 (ranks count from 1)"),
    ("orders", "eval_set", 4, "validation", "'validation' is not one of prior, train, test"),
    ("orders", "eval_set", 2, np.nan, "missing value"),
    ("aisles", "aisle", 1, "  ", "missing value"),
    ("departments", "department", 0, np.nan, "missing value"),
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("table", "column", "row", "value", "problem"), BAD_VALUES)
def test_a_bad_value_names_file_column_row_and_value(tmp_path, fmt, table, column, row, value,
                                                     problem):
    tables = sample_tables()
    tables[table] = with_value(tables[table], column, row, value, fmt)
    message = load_error(write_layout(tmp_path / "in", tables, fmt=fmt))
    assert f"{table}.{fmt}, column '{column}', row {row + 1}: {problem}" in message


def test_a_fractional_id_in_parquet_is_not_an_integer(tmp_path):
    tables = sample_tables()
    tables["products"]["aisle_id"] = tables["products"]["aisle_id"].astype(float)
    tables["products"].loc[2, "aisle_id"] = 2.5
    message = load_error(write_layout(tmp_path / "in", tables, fmt="parquet"))
    assert "products.parquet, column 'aisle_id', row 3: 2.5 is not an integer" in message


def test_a_column_of_the_wrong_kind_in_parquet(tmp_path):
    tables = sample_tables()
    tables["order_products__prior"]["reordered"] = tables["order_products__prior"]["reordered"] > 0
    message = load_error(write_layout(tmp_path / "in", tables, fmt="parquet"))
    assert ("order_products__prior.parquet, column 'reordered': has type bool, expected integers"
            in message)


@pytest.mark.parametrize("bad", ["range", "text"])
def test_row_numbers_count_across_read_blocks(tmp_path, monkeypatch, bad):
    # Tiny blocks make a 600-row file arrive in many batches, as a large file would.
    monkeypatch.setattr(read_module, "_CSV_BLOCK_BYTES", 512)
    n_orders = 600
    orders = pd.DataFrame({
        "order_id": np.arange(1, n_orders + 1), "user_id": np.arange(1, n_orders + 1),
        "eval_set": "test", "order_number": 1, "order_dow": 0, "order_hour_of_day": 0,
        "days_since_prior_order": np.nan})
    orders = orders.astype({"order_hour_of_day": object})
    orders.loc[436, "order_hour_of_day"] = 99 if bad == "range" else "noon"
    tables = sample_tables()
    tables["orders"] = orders
    message = load_error(write_layout(tmp_path / "in", tables))
    shown = "99 is outside 0-23" if bad == "range" else "'noon' is not an integer"
    assert f"orders.csv, column 'order_hour_of_day', row 437: {shown}" in message


def test_parquet_row_numbers_count_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(read_module, "_PARQUET_BATCH_ROWS", 4)
    tables = sample_tables()
    tables["order_products__prior"].loc[6, "reordered"] = 5
    message = load_error(write_layout(tmp_path / "in", tables, fmt="parquet"))
    assert "order_products__prior.parquet, column 'reordered', row 7: 5 is outside 0-1" in message


def test_a_missing_file_names_every_accepted_name(tmp_path):
    message = load_error(write_layout(tmp_path / "in", skip=["aisles"]))
    for name in ("aisles.csv", "aisles.csv.zip", "aisles.csv.gz", "aisles.parquet"):
        assert name in message


def test_a_missing_or_wrong_source_folder(tmp_path):
    assert "does not exist" in load_error(tmp_path / "nowhere")
    assert "must be a folder" in load_error(write_text(tmp_path, "orders.csv", "order_id\n1\n"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_missing_column_is_named(tmp_path, fmt):
    tables = sample_tables()
    tables["orders"] = tables["orders"].drop(columns=["order_dow"])
    message = load_error(write_layout(tmp_path / "in", tables, fmt=fmt))
    assert f"orders.{fmt}: missing column(s) 'order_dow'" in message


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_an_empty_file(tmp_path, fmt):
    source = write_layout(tmp_path / "in", skip=["departments"])
    (source / f"departments.{fmt}").write_bytes(b"")
    assert f"departments.{fmt}: the file is empty" in load_error(source)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_header_without_rows(tmp_path, fmt):
    tables = sample_tables()
    tables["aisles"] = tables["aisles"].iloc[:0]
    message = load_error(write_layout(tmp_path / "in", tables, fmt=fmt))
    assert f"aisles.{fmt}: the file has a header but no data rows" in message


def test_a_ragged_row_is_malformed_csv(tmp_path):
    source = write_layout(tmp_path / "in")
    write_text(source, "departments.csv", "department_id,department\n1,frozen\n2,produce,extra\n")
    message = load_error(source)
    assert "departments.csv: malformed CSV" in message
    assert "Expected 2 columns, got 3" in message


def test_unreadable_archives_and_parquet(tmp_path):
    source = write_layout(tmp_path / "in", skip=["aisles"])
    (source / "aisles.csv.zip").write_bytes(b"this is not a zip archive")
    assert "aisles.csv.zip: not a readable zip archive" in load_error(source)
    (source / "aisles.csv.zip").unlink()

    (source / "aisles.csv.gz").write_bytes(b"this is not gzip data at all")
    assert "aisles.csv.gz: cannot read" in load_error(source)
    (source / "aisles.csv.gz").unlink()

    (source / "aisles.parquet").write_bytes(b"PAR1 this is not parquet")
    assert "aisles.parquet: not a readable parquet file" in load_error(source)


def test_a_zip_must_hold_exactly_one_csv(tmp_path):
    source = write_layout(tmp_path / "in", skip=["aisles"])
    with zipfile.ZipFile(source / "aisles.csv.zip", "w") as archive:
        archive.writestr("aisles.csv", "aisle_id,aisle\n1,fruit\n")
        archive.writestr("aisles_copy.csv", "aisle_id,aisle\n1,fruit\n")
    assert "expected exactly one .csv file inside the archive, found 2" in load_error(source)


def test_macos_resource_forks_in_a_zip_are_ignored(tmp_path):
    tables = sample_tables()
    source = write_layout(tmp_path / "in", tables, skip=["aisles"])
    with zipfile.ZipFile(source / "aisles.csv.zip", "w") as archive:
        archive.writestr("aisles.csv", tables["aisles"].to_csv(index=False))
        archive.writestr("__MACOSX/._aisles.csv", b"\x00\x05\x16\x07")
    assert len(load_instacart(source, cache=False).aisles) == 4


def test_a_gzip_csv_with_a_bad_value_is_located_like_a_plain_one(tmp_path):
    tables = sample_tables()
    tables["orders"].loc[3, "order_dow"] = 9
    message = load_error(write_layout(tmp_path / "in", tables, fmt="csv.gz"))
    assert "orders.csv.gz, column 'order_dow', row 4: 9 is outside 0-6" in message


def test_duplicate_order_ids_name_both_rows(tmp_path):
    tables = sample_tables()
    tables["orders"].loc[4, "order_id"] = 11
    message = load_error(write_layout(tmp_path / "in", tables))
    assert "orders.csv, column 'order_id', row 5: duplicate id 11 (already in row 2)" in message


def test_duplicate_catalog_ids(tmp_path):
    tables = sample_tables()
    tables["departments"].loc[2, "department_id"] = 1
    message = load_error(write_layout(tmp_path / "in", tables))
    assert "departments.csv, column 'department_id', row 3: duplicate id 1 (already in row 1)" \
        in message


def test_a_product_in_an_unknown_aisle(tmp_path):
    tables = sample_tables()
    tables["products"].loc[1, "aisle_id"] = 9
    message = load_error(write_layout(tmp_path / "in", tables))
    assert "products.csv, column 'aisle_id', row 2: 9 is not an id in aisles.csv" in message
