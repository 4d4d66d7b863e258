"""The body of ``POST /v1/assign``, read and checked: shoppers' histories as compact columns.

The body is JSON in the Kaggle columns::

    {"orders": [{"order_id", "user_id", "order_number", "order_dow",
                 "order_hour_of_day", "days_since_prior_order"}, ...],
     "order_products": [{"order_id", "product_id", "add_to_cart_order", "reordered"}, ...]}

Each table goes through the loader's checks (:func:`gpuseg.data.read.read_arrow_table`:
a missing column with a hint for a misnamed one, types, ranges, missing
values; :func:`gpuseg.data.checks.first_repeat` for repeats), so a request is
held to what a file is. Where a file's loader drops rows that cannot be joined
and counts them, a request is refused instead: an order without products, a
product row of an order not in ``orders``, a product the model's catalog does
not know, or a repeated (order, product) pair would otherwise change a
shopper's segment silently. Every refusal is a :class:`RequestError` naming the
JSON field and its index (``orders[3].order_dow``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa

from ..data.checks import BadValueError, compact_column, first_repeat
from ..data.read import read_arrow_table
from ..data.schema import ORDER_PRODUCTS_DTYPES, ORDERS_DTYPES
from ..errors import DataValidationError, GpusegError
from ..model_catalog import ModelCatalog

#: The two lists of a body, with their columns and dtypes (the Kaggle files' checks).
TABLES = {"orders": ("orders", ORDERS_DTYPES),
          "order_products": ("order_products__prior", ORDER_PRODUCTS_DTYPES)}
_NULLABLE = frozenset({"days_since_prior_order"})


class RequestError(GpusegError):
    """A request the service refuses; ``status`` is its HTTP status.

    Attributes
    ----------
    status : int
        400 (not JSON), 413 (too large) or 422 (JSON that breaks the layout).
    field : str or None
        The JSON field at fault: ``orders``, ``orders[3]`` or ``orders[3].order_dow``.
    row : int or None
        The index of the row at fault in its list.
    """

    def __init__(self, message: str, *, status: int = 422, field: str | None = None,
                 row: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.row = row

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "field": self.field, "row": self.row}}


def value_error(table: str, row: int, column: str | None, problem: str) -> RequestError:
    """The refusal of one value (or one row, without ``column``), named by its JSON field."""
    field = f"{table}[{row}]" + (f".{column}" if column else "")
    return RequestError(f"{field}: {problem}", field=field, row=row)


@dataclass(frozen=True, eq=False)
class Shoppers:
    """One request's shoppers, checked: compact columns in request order.

    Attributes
    ----------
    orders, order_products : dict of str to numpy.ndarray
        The columns of :mod:`gpuseg.data.schema` with its dtypes.
    order_rows : numpy.ndarray
        For each product row, the index of its order in ``orders``.
    product_positions : numpy.ndarray
        For each product row, its product's row in ``catalog``.
    catalog : ModelCatalog
        The catalog the products were found in.
    user_ids : numpy.ndarray
        The distinct user ids, ascending (int64).
    """

    orders: dict[str, np.ndarray]
    order_products: dict[str, np.ndarray]
    order_rows: np.ndarray
    product_positions: np.ndarray
    catalog: ModelCatalog
    user_ids: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    def in_catalog(self, catalog: ModelCatalog) -> Shoppers:
        """These shoppers with their products found in ``catalog`` (a reloaded model's).

        Raises
        ------
        RequestError
            When ``catalog`` lacks one of their products.
        """
        if catalog is self.catalog:
            return self
        return replace(self, product_positions=_positions(self.order_products, catalog),
                       catalog=catalog)


def read_shoppers(body: bytes, catalog: ModelCatalog) -> Shoppers:
    """Parse and check a request body.

    Raises
    ------
    RequestError
        400 for a body that is not JSON, 422 for JSON that breaks the layout,
        naming the field and row.
    """
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise RequestError(f"the body is not valid JSON: {exc}", status=400) from None
    if not isinstance(document, dict):
        raise RequestError("the body must be a JSON object with the lists 'orders' and "
                           f"'order_products' (got {_json_type(document)})")
    orders = _table(document, "orders")
    order_products = _table(document, "order_products")
    _check_orders(orders)
    order_rows = _order_rows(orders, order_products)
    product_positions = _positions(order_products, catalog)
    _check_pairs(order_products)
    return Shoppers(orders=orders, order_products=order_products, order_rows=order_rows,
                    product_positions=product_positions, catalog=catalog,
                    user_ids=np.unique(orders["user_id"]).astype(np.int64))


def _positions(order_products: dict[str, np.ndarray], catalog: ModelCatalog) -> np.ndarray:
    """Each product row's row in ``catalog``; a product it does not hold is refused."""
    positions = catalog.positions(order_products["product_id"].astype(np.int64))
    unknown = positions < 0
    if unknown.any():
        row = int(np.argmax(unknown))
        raise value_error("order_products", row, "product_id",
                          f"{order_products['product_id'][row]} is not a product of the model's "
                          "catalog")
    return positions


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _table(document: dict[str, Any], table: str) -> dict[str, np.ndarray]:
    """One list of the body as checked compact columns."""
    dtypes = TABLES[table][1]
    rows = document.get(table)
    if not isinstance(rows, list):
        problem = "is missing" if rows is None else f"must be a list of objects (got {_json_type(rows)})"
        raise RequestError(f"{table} {problem}", field=table)
    if not rows:
        raise RequestError(f"{table} is empty: send at least one row", field=table)
    for row, record in enumerate(rows):
        if not isinstance(record, dict):
            raise value_error(table, row, None, f"must be an object (got {_json_type(record)})")
    columns = {}
    for column in dtypes:
        values = [record.get(column) for record in rows]
        if all(value is None for value in values) and not any(column in record for record in rows):
            _refuse_missing_columns(rows, table)
        columns[column] = _arrow_column(values, table, column)
    # The loader's check of each column; rows count from 0 here, as JSON indexes them. As in a
    # file, the first bad row is reported whichever column holds it.
    checked, bad = {}, []
    for column, dtype in dtypes.items():
        try:
            checked[column] = compact_column(columns[column], column=column, dtype=dtype,
                                             file=table, first_row=0)
        except BadValueError as exc:
            bad.append(exc)
    if bad:
        first = min(bad, key=lambda exc: exc.row)
        raise value_error(table, first.row, first.column, first.problem)
    return checked


def _refuse_missing_columns(rows: list[dict[str, Any]], table: str) -> NoReturn:
    """Raise the loader's message for columns no row has (with its hint at a misspelt name)."""
    names = sorted({key for record in rows for key in record})
    try:
        read_arrow_table(pa.table({name: pa.nulls(len(rows)) for name in names}),
                         TABLES[table][0], table)
    except DataValidationError as exc:
        raise RequestError(str(exc).replace("(it has:", "(its rows have:"), field=table) from None
    raise RequestError(f"{table}: a required column is missing", field=table)


def _arrow_column(values: list[Any], table: str, column: str) -> pa.Array:
    """One column's JSON values as an Arrow array of numbers (nulls where absent).

    Only JSON numbers (and null) are numbers here: a string, a boolean, a list
    or an object is refused at its row, where a CSV's text would be parsed.
    """
    kinds = set(map(type, values))
    if not kinds <= {int, float, type(None)}:
        row = next(i for i, value in enumerate(values) if type(value) not in (int, float, type(None)))
        expected = "a number or null" if column in _NULLABLE else "an integer"
        raise value_error(table, row, column,
                          f"expected {expected}, got {_json_type(values[row])} {values[row]!r}")
    try:
        return pa.array(values, type=pa.float64() if float in kinds else pa.int64())
    except (pa.ArrowInvalid, OverflowError):
        # An integer beyond int64: it is outside every column's range.
        row = next(i for i, value in enumerate(values)
                   if isinstance(value, int) and not -2**63 <= value < 2**63)
        raise value_error(table, row, column, f"{values[row]} is out of range") from None


def _check_orders(orders: dict[str, np.ndarray]) -> None:
    """Order ids unique; each user's order numbers unique (they rank the history)."""
    found = first_repeat(orders["order_id"])
    if found is not None:
        row, first = found
        raise value_error("orders", row, "order_id",
                          f"order {orders['order_id'][row]} is already orders[{first}]")
    # Both columns are range-checked non-negative int32 / int16, so the packed key is exact.
    key = (orders["user_id"].astype(np.int64) << 16) | orders["order_number"].astype(np.int64)
    found = first_repeat(key)
    if found is not None:
        row, first = found
        raise value_error("orders", row, "order_number",
                          f"user {orders['user_id'][row]} already has order number "
                          f"{orders['order_number'][row]} (orders[{first}]); number each user's "
                          "orders 1, 2, 3, ... without repeats")


def _order_rows(orders: dict[str, np.ndarray], order_products: dict[str, np.ndarray]) -> np.ndarray:
    """Each product row's order (index in ``orders``); every reference and every order checked."""
    order_ids = orders["order_id"].astype(np.int64)
    by_id = np.argsort(order_ids, kind="stable")
    sorted_ids = order_ids[by_id]
    wanted = order_products["order_id"].astype(np.int64)
    at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    known = sorted_ids[at] == wanted
    if not known.all():
        row = int(np.argmin(known))
        raise value_error("order_products", row, "order_id",
                          f"{wanted[row]} is not an order_id in orders")
    has_products = np.zeros(len(order_ids), dtype=bool)
    has_products[by_id[at]] = True
    if not has_products.all():
        row = int(np.argmin(has_products))
        raise value_error("orders", row, "order_id",
                          f"order {order_ids[row]} has no row in order_products (every order "
                          "sent must list its products)")
    return by_id[at]


def _check_pairs(order_products: dict[str, np.ndarray]) -> None:
    """A product at most once per order (the loader would drop the repeat)."""
    key = (order_products["order_id"].astype(np.int64) << 32) | order_products["product_id"]
    found = first_repeat(key)
    if found is not None:
        row, first = found
        raise value_error("order_products", row, None,
                          f"product {order_products['product_id'][row]} of order "
                          f"{order_products['order_id'][row]} is already order_products[{first}]")


def request_body(orders: Any, order_products: Any, user_ids: Any = None) -> dict[str, list]:
    """The body of ``POST /v1/assign`` for shoppers of Kaggle-layout tables (pandas frames).

    Parameters
    ----------
    orders, order_products : pandas.DataFrame
        With the columns of :data:`TABLES` (extra columns are left out).
    user_ids : array-like, optional
        The shoppers to send (every one when None).

    Returns
    -------
    dict
        ``{"orders": [...], "order_products": [...]}``, ready for ``json.dumps``;
        orders without product rows (Kaggle's ``test`` orders) are left out, as
        the service refuses them.
    """
    if user_ids is not None:
        orders = orders[orders["user_id"].isin(user_ids)]
    rows = order_products[order_products["order_id"].isin(orders["order_id"])]
    orders = orders[orders["order_id"].isin(rows["order_id"])]
    body = {}
    for name, frame in (("orders", orders), ("order_products", rows)):
        columns = list(TABLES[name][1])
        # Through object so that NaN becomes None (JSON null) and numpy integers Python ints.
        records = frame[columns].astype(object).where(frame[columns].notna(), None)
        body[name] = records.to_dict("records")
    return body
