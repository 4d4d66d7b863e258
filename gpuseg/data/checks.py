"""Checks and cleaning rules for the Instacart tables.

A broken file stops the load with :class:`~gpuseg.errors.DataValidationError`
and a one-line message naming the file, the column and the first bad row
(1-based, counting data rows after the header). Product rows that cannot be
joined are not errors: they are dropped, counted, and reported as a
:class:`DataCleaningWarning`, never silently.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataValidationError
from .schema import CATEGORY_VALUES, NAME_COLUMNS, RANK_COLUMNS, VALUE_RANGES

#: Keys of ``InstacartData.cleaning``, always all present (0 when nothing happened).
CLEANING_KEYS = (
    "order_products_unknown_order",
    "order_products_unknown_product",
    "order_products_duplicate",
    "orders_without_products",
)

#: Columns that may be empty: a user's first order has no previous order.
NULLABLE = frozenset({"days_since_prior_order"})

#: Up to this many values, a sort finds out fastest that none repeats (:func:`first_repeat`).
_SMALL_TABLE_ROWS = 1 << 16

#: Integers as text; "7.0" counts, as exports through a float column (pandas with NaN) write it.
_INTEGER_TEXT = r"^\s*[+-]?[0-9]+(\.0*)?\s*$"
_NUMBER_TEXT = r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"


class DataCleaningWarning(UserWarning):
    """Rows were dropped while loading; their count is also in ``InstacartData.cleaning``."""


class BadValueError(DataValidationError):
    """A bad value in one row; ``row`` lets the loader report the first across columns.

    ``column``, ``row`` (1-based) and ``problem`` are kept apart as well, so that
    a caller can name the value its own way (``gpuseg serve`` names the JSON field).
    """

    def __init__(self, file: str, column: str, row: int, problem: str) -> None:
        super().__init__(f"{file}, column {column!r}, row {row}: {problem}")
        self.column = column
        self.row = row
        self.problem = problem
        self._parts = (file, column, row, problem)

    def __reduce__(self) -> tuple[type, tuple[str, str, int, str]]:
        # Raised on a Dask worker, it is pickled to the client: rebuilt from its parts.
        return type(self), self._parts


def compact_column(values: pa.Array, *, column: str, dtype: str, file: str,
                   first_row: int) -> np.ndarray | pa.Array:
    """Check one column of one batch and convert it to its compact dtype.

    Parameters
    ----------
    values : pyarrow.Array
        The column as read (integers, floats, text or dictionary-encoded text).
    column : str
        Column name, for messages and for :data:`~gpuseg.data.schema.VALUE_RANGES`.
    dtype : str
        Target dtype from :mod:`gpuseg.data.schema` (``int8`` ... ``float32``, ``str``).
    file : str
        File name for messages.
    first_row : int
        1-based data row number of ``values[0]`` in the file.

    Returns
    -------
    numpy.ndarray or pyarrow.Array
        A numpy array of ``dtype`` for numeric columns; a pyarrow string array for text.

    Raises
    ------
    DataValidationError
        On a missing value, a value of the wrong type or a value out of range.
    """
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if dtype == "str":
        try:
            text_values = pc.cast(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataValidationError(
                f"{file}, column {column!r}: has type {values.type}, expected text") from None
        _check_text(text_values, column=column, file=file, first_row=first_row)
        return text_values

    integer = dtype.startswith("int")
    text: Any = None
    malformed: Any = None
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        text = values
        malformed, values = _parse_text(text, integer=integer)
    elif pa.types.is_null(values.type):
        values = values.cast(pa.float64())
    elif not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise DataValidationError(f"{file}, column {column!r}: has type {values.type}, "
                                  f"expected {'integers' if integer else 'numbers'}")

    numbers = values.to_numpy(zero_copy_only=False)
    low, high = _allowed_range(column, dtype)
    # Each problem as (rows, description of one row), so the first bad row is reported
    # whatever its problem, not the first row of the first kind checked.
    problems = []
    if malformed is not None:
        problems.append((malformed, lambda i: f"{text[i].as_py()!r} is not "
                                              f"{'an integer' if integer else 'a number'}"))
    if numbers.dtype.kind == "f":
        missing = np.isnan(numbers)
        if malformed is not None:
            missing &= ~malformed
        if column not in NULLABLE:
            problems.append((missing, lambda i: "missing value"))
        if integer:
            fractional = numbers != np.trunc(numbers)
            fractional &= ~np.isnan(numbers)
            problems.append((fractional,
                             lambda i: f"{_shown(numbers[i], text, i)} is not an integer"))

    def outside_problem(i: int) -> str:
        shown = _shown(numbers[i], text, i)
        if column in VALUE_RANGES:
            return f"{shown} is outside {low}-{high}"
        if numbers[i] < 0:
            return f"{shown} is negative"
        if numbers[i] < low:
            return f"{shown} is below {low} (ranks count from 1)"
        return f"{shown} is too large for {dtype} (at most {high})"

    problems.append(((numbers < low) | (numbers > high), outside_problem))
    first = min(((int(np.argmax(rows)), describe) for rows, describe in problems if rows.any()),
                key=lambda found: found[0], default=None)
    if first is not None:
        i, describe = first
        raise BadValueError(file, column, first_row + i, describe(i))
    # Every value was range-checked above, so this cast cannot wrap around.
    return numbers.astype(dtype, copy=False)


def _check_text(values: pa.Array, *, column: str, file: str, first_row: int) -> None:
    """Refuse a missing name, and a category outside :data:`CATEGORY_VALUES`, at its first row."""
    allowed = CATEGORY_VALUES.get(column)
    if allowed is None and column not in NAME_COLUMNS:
        return
    if allowed is None:
        bad = pc.equal(pc.utf8_trim_whitespace(values), "")
    else:
        bad = pc.invert(pc.is_in(values, value_set=pa.array(allowed)))
    # A null compares as null, not as true: count it as bad explicitly.
    bad = pc.fill_null(bad, True)
    bad_rows = np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool)
    if not bad_rows.any():
        return
    i = int(np.argmax(bad_rows))
    value = values[i].as_py()
    problem = ("missing value" if value is None or not value.strip()
               else f"{value!r} is not one of {', '.join(allowed or ())}")
    raise BadValueError(file, column, first_row + i, problem)


def first_repeat(values: np.ndarray) -> tuple[int, int] | None:
    """``(row, earlier row)`` of the first value that already appeared, or None if all differ."""
    if len(values) <= _SMALL_TABLE_ROWS:
        # A few thousand values (a request to gpuseg serve) sort in microseconds, where building
        # a hash index costs a fraction of a millisecond; only a repeat needs the index.
        ordered = np.sort(values)
        if not (ordered[1:] == ordered[:-1]).any():
            return None
    index = pd.Index(values)
    if index.is_unique:
        return None
    repeat = int(np.argmax(index.duplicated()))
    return repeat, int(np.argmax(values == values[repeat]))


def check_unique(ids: np.ndarray, *, column: str, file: str) -> None:
    """Raise on the first row whose id already appeared in an earlier row."""
    found = first_repeat(ids)
    if found is None:
        return
    repeat, first = found
    raise DataValidationError(
        f"{file}, column {column!r}, row {repeat + 1}: duplicate id {ids[repeat]} "
        f"(already in row {first + 1})")


def check_order_numbers(user_ids: np.ndarray, order_numbers: np.ndarray, *, file: str) -> None:
    """Raise on the first order whose (user_id, order_number) an earlier row already has.

    A user's orders are ranked by ``order_number``; two orders with the same
    number would make the ranking (and so every consecutive-basket feature)
    depend on the sort, not on the data.
    """
    # Both columns are range-checked non-negative int32 / int16, so the packed key is exact.
    found = first_repeat((user_ids.astype(np.int64) << 16) | order_numbers.astype(np.int64))
    if found is None:
        return
    repeat, first = found
    raise DataValidationError(
        f"{file}, column 'order_number', row {repeat + 1}: user {user_ids[repeat]} already has "
        f"order number {order_numbers[repeat]} (row {first + 1}); number each user's orders "
        "1, 2, 3, ... without repeats")


def check_references(ids: np.ndarray, known: np.ndarray, *, column: str, file: str,
                     target: str) -> None:
    """Raise on the first catalog row whose ``column`` names an id missing from ``target``."""
    unknown = ~isin(ids, known)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise DataValidationError(
            f"{file}, column {column!r}, row {i + 1}: {ids[i]} is not an id in {target}")


def clean_order_products(columns: dict[str, np.ndarray], *, order_ids: np.ndarray,
                         product_ids: np.ndarray, parts: Sequence[tuple[str, int]],
                         orders_file: str, products_file: str,
                         ) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """Drop product rows that cannot be joined, and count what was dropped.

    Parameters
    ----------
    columns : dict of str to numpy.ndarray
        Compact columns of every ``order_products__*`` file, concatenated. The
        arrays are moved out of the dict (it is left empty), so that each
        unfiltered column is freed as soon as its filtered copy exists.
    order_ids, product_ids : numpy.ndarray
        The (unique) ids of ``orders`` and ``products``.
    parts : sequence of (str, int)
        File name and row count of each concatenated file, in order, so that
        messages can name the file and row of a dropped row.
    orders_file, products_file : str
        File names for messages.

    Returns
    -------
    rows : pandas.DataFrame
        The rows that reference a known order and a known product, first
        occurrence of each ``(order_id, product_id)`` pair only, in input order.
    cleaning : dict of str to int
        Counts under :data:`CLEANING_KEYS`.
    messages : list of str
        One sentence per non-zero drop count, for :class:`DataCleaningWarning`.
    """
    orders = columns["order_id"]
    products = columns["product_id"]
    unknown_order = ~isin(orders, order_ids)
    unknown_product = ~isin(products, product_ids)
    unknown_product &= ~unknown_order
    unknown = unknown_order | unknown_product
    any_unknown = bool(unknown.any())

    valid_rows = np.flatnonzero(~unknown) if any_unknown else None
    has_products = isin(order_ids, orders[valid_rows] if any_unknown else orders)
    duplicate = _repeated_pairs(orders, products, valid_rows)

    cleaning = {
        "order_products_unknown_order": int(unknown_order.sum()),
        "order_products_unknown_product": int(unknown_product.sum()),
        "order_products_duplicate": int(duplicate.sum()),
        "orders_without_products": int(len(order_ids) - has_products.sum()),
    }
    messages = []
    for mask, what in ((unknown_order, f"whose order_id is not in {orders_file}"),
                       (unknown_product, f"whose product_id is not in {products_file}"),
                       (duplicate, "that repeat an earlier (order_id, product_id) pair")):
        if mask.any():
            i = int(np.argmax(mask))
            file, row = _locate(i, parts)
            messages.append(
                f"dropped {int(mask.sum()):,} order_products rows {what} (first: order_id "
                f"{orders[i]}, product_id {products[i]} in {file} row {row})")
    del orders, products

    keep = None
    if any_unknown or cleaning["order_products_duplicate"]:
        keep = ~(unknown | duplicate)
    rows = {}
    for name in list(columns):
        column = columns.pop(name)
        rows[name] = column if keep is None else column[keep]
        del column
    # copy=False keeps each numpy column as its own block instead of consolidating copies.
    return pd.DataFrame(rows, copy=False), cleaning, messages


def isin(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Boolean mask of the ``values`` that occur in ``ids`` (both non-negative integers).

    Instacart's ids run densely from 1, where a bitmap lookup is several times
    faster than hashing (0.1 s against 1.4 s for 33.8M rows); it is used while
    the bitmap stays within 4 bytes per element, else pandas' hash-based isin.
    """
    if len(values) == 0 or len(ids) == 0:
        return np.zeros(len(values), dtype=bool)
    top = max(int(values.max()), int(ids.max()))
    if top < 4 * (len(values) + len(ids)) + (1 << 16):
        bitmap = np.zeros(top + 1, dtype=bool)
        bitmap[ids] = True
        return bitmap[values]
    return pd.Series(values, copy=False).isin(ids).to_numpy()


def _repeated_pairs(orders: np.ndarray, products: np.ndarray,
                    rows: np.ndarray | None) -> np.ndarray:
    """Mask of rows repeating an earlier (order, product) pair among ``rows`` (all when None).

    Sorting one packed int64 key in place is the cheapest exact test (np.unique and
    hashing are several times slower at 33.8M rows). Only when a repeat exists are
    the rows holding a repeated key found and ordered, so the common case costs
    one key array and one sort.
    """
    def packed_keys() -> np.ndarray:
        key = (orders if rows is None else orders[rows]).astype(np.int64) << 32
        key |= products if rows is None else products[rows]
        return key

    key = packed_keys()
    key.sort()
    repeated = key[1:] == key[:-1]
    mask = np.zeros(len(orders), dtype=bool)
    if not repeated.any():
        return mask
    repeated_keys = key[1:][repeated]
    del key, repeated
    key = packed_keys()
    candidates = np.flatnonzero(pd.Series(key, copy=False).isin(repeated_keys).to_numpy())
    candidate_keys = key[candidates]
    del key
    # A stable sort keeps each pair's rows in file order: all but the first are repeats.
    order = np.argsort(candidate_keys, kind="stable")
    ordered = candidate_keys[order]
    later = candidates[order[1:][ordered[1:] == ordered[:-1]]]
    mask[later if rows is None else rows[later]] = True
    return mask


def _locate(i: int, parts: Sequence[tuple[str, int]]) -> tuple[str, int]:
    """File name and 1-based row of row ``i`` of the concatenated files."""
    for file, n_rows in parts:
        if i < n_rows:
            return file, i + 1
        i -= n_rows
    raise IndexError(i)


def _allowed_range(column: str, dtype: str) -> tuple[int | float, int | float]:
    if column in VALUE_RANGES:
        return VALUE_RANGES[column]
    if dtype.startswith("int"):
        return int(column in RANK_COLUMNS), int(np.iinfo(dtype).max)
    return 0, float("inf")


def _parse_text(text: pa.Array, *, integer: bool) -> tuple[np.ndarray, pa.Array]:
    """Which entries are not numbers, and the numbers of the others (null where malformed)."""
    pattern = _INTEGER_TEXT if integer else _NUMBER_TEXT
    matches = pc.match_substring_regex(text, pattern)
    malformed = pc.invert(matches).fill_null(False)
    # float64 is exact for every value that can pass the int32 range check that follows.
    numbers = pc.cast(pc.utf8_trim_whitespace(pc.if_else(matches, text, None)), pa.float64())
    return malformed.to_numpy(zero_copy_only=False), numbers


def _shown(value: float | int, text: pa.Array | None, i: int) -> str:
    """A bad value as the file spelled it when it was text, else as a number."""
    if text is not None:
        return text[i].as_py().strip()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
