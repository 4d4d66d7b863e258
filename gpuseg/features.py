"""Per-user features, written once over numpy/pandas and cupy/cudf.

A user's history H(u) is their orders that have at least one product row,
ordered by ``order_number``; I(u) is the product rows of those orders. The
columns and their exact definitions are listed in :func:`compute_features`.

How it is computed (dense indices, one sort):

1. Orders sorted by (user_id, order_number) give every user a dense index and
   every order of H(u) its rank in H(u).
2. Each product row gets one int64 key ``user | product | rank``, built by
   gathers from small lookup tables; a single sort of these keys groups the
   rows by user, then product, then order.
3. Neighbouring keys give the rest: runs of equal (user, product) are the
   distinct products (counts, HHI, aisle/department/organic shares per run),
   the same product in the next rank is an intersection of consecutive baskets
   (Jaccard), equal keys are duplicate rows within an order.
4. Order-level values (days, hours, weekdays, reorders) are bincounts over the
   orders of H(u).

Every user's features depend only on that user's rows, so a user-partitioned
run is this same function mapped over partitions.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .backend import Backend
from .config import option
from .data.tables import InstacartData
from .errors import ConfigError, GpusegError, ResourceLimitError
from .numerics.arrays import bincount, dense_positions

__all__ = ["AISLE_COLUMN_PREFIX", "FEATURE_COLUMNS_FIXED", "WEEKEND_DAYS", "UserFeatures",
           "aisle_column", "aisle_id", "compute_features", "feature_columns", "organic_flags"]

AISLE_COLUMN_PREFIX = "aisle_"
_LEADING_COLUMNS = ("n_orders",)
_TRAILING_COLUMNS = (
    "dept_entropy",
    "organic_ratio",
    "basket_size_mean",
    "days_between_mean",
    "order_interval_cv",
    "basket_consistency",
    "hour_sin",
    "hour_cos",
    "weekend_ratio",
    "reorder_ratio",
    "product_repeat_rate",
    "loyalty_hhi",
)
#: Columns whose names do not depend on the catalog, in table order; the
#: ``aisle_<id>`` block sits between ``n_orders`` and ``dept_entropy``.
FEATURE_COLUMNS_FIXED = _LEADING_COLUMNS + _TRAILING_COLUMNS

#: Weekday codes counted as weekend (Instacart's 0 and 1, commonly read as Saturday and Sunday).
WEEKEND_DAYS = (0, 1)

# Packed sort keys are int64 and must stay non-negative to sort in field order.
_KEY_BITS = 63
# Stands for a missing days_since_prior_order: cuDF holds missing values as nulls, which it
# refuses to hand over as an array, while pandas holds NaN; filling both with this makes them one.
_NO_DAYS = -1.0


def aisle_column(aisle_id: int) -> str:
    """Name of the share-of-items column of one aisle."""
    return f"{AISLE_COLUMN_PREFIX}{int(aisle_id)}"


def aisle_id(column: str) -> int:
    """Aisle id of an ``aisle_<id>`` share column (the inverse of :func:`aisle_column`)."""
    return int(column[len(AISLE_COLUMN_PREFIX):])


def no_users_selected(min_orders: int, n_with_history: int) -> GpusegError:
    """The error for data in which no user reaches ``min_orders`` orders with products."""
    return GpusegError(
        f"no user has at least {min_orders} orders with products "
        f"({n_with_history} users have any); lower {option('min_orders')} or check the input")


def feature_columns(aisle_ids: Iterable[int]) -> list[str]:
    """Column names of the feature table, in table order.

    Parameters
    ----------
    aisle_ids : iterable of int
        Every aisle id of aisles.csv; sorted here, so any order is accepted.

    Returns
    -------
    list of str
        ``n_orders``, ``aisle_<id>`` by ascending id, then the trailing fixed
        columns (``dept_entropy`` ... ``loyalty_hhi``).
    """
    aisles = [aisle_column(a) for a in sorted(int(a) for a in aisle_ids)]
    return [*_LEADING_COLUMNS, *aisles, *_TRAILING_COLUMNS]


@dataclass(frozen=True, eq=False)
class UserFeatures:
    """The feature table and what was left out of it.

    Attributes
    ----------
    table : DataFrame
        Backend dataframe (pandas or cudf) indexed by ``user_id`` (int64,
        ascending), float64 columns in the order of :func:`feature_columns`.
    aisle_ids : tuple of int
        The aisles of aisles.csv, ascending (one ``aisle_<id>`` column each).
    min_orders : int
        Users with fewer orders in H(u) were excluded.
    n_users_with_history : int
        Users with at least one order that has product rows.
    n_users_excluded : int
        Users with a history of fewer than ``min_orders`` orders.
    n_product_rows_dropped : int
        Product rows whose product is not in products.
    n_order_rows_dropped : int
        Product rows whose order is not in orders (the loader normally drops
        them already; counted here so that none is lost silently).
    """

    table: Any
    aisle_ids: tuple[int, ...]
    min_orders: int
    n_users_with_history: int
    n_users_excluded: int
    n_product_rows_dropped: int
    n_order_rows_dropped: int

    @property
    def n_users(self) -> int:
        """Users in the table."""
        return int(self.table.shape[0])

    @property
    def columns(self) -> list[str]:
        """Column names, in table order."""
        return feature_columns(self.aisle_ids)

    def to_dict(self) -> dict[str, Any]:
        """Counts for metrics.json (host types only)."""
        return {
            "n_users": self.n_users,
            "n_features": len(self.columns),
            "min_orders": self.min_orders,
            "n_users_with_history": self.n_users_with_history,
            "n_users_excluded": self.n_users_excluded,
            "n_product_rows_dropped": self.n_product_rows_dropped,
            "n_order_rows_dropped": self.n_order_rows_dropped,
        }


def compute_features(data: InstacartData, backend: Backend, *, min_orders: int = 5) -> UserFeatures:
    """One row of behavioural features per user with at least ``min_orders`` orders.

    Parameters
    ----------
    data : InstacartData
        Tables in ``backend.df``; product rows of unknown products are dropped
        and counted.
    backend : Backend
        Where to compute; the table is returned in its dataframe library.
    min_orders : int, default 5
        Users with fewer orders in H(u) are excluded (``--min-orders``).

    Returns
    -------
    UserFeatures
        The table and the counts of excluded users and dropped rows.

    Raises
    ------
    ConfigError
        If ``min_orders`` is below 1.
    GpusegError
        If no user has at least ``min_orders`` orders with products.

    Notes
    -----
    With H(u) the user's orders having product rows (by ``order_number``) and
    I(u) their product rows (a product twice in one order counts twice):

    - ``n_orders``: \\|H(u)\\|
    - ``aisle_<id>``: share of I(u) in that aisle, for every aisle of aisles.csv
    - ``dept_entropy``: Shannon entropy (natural log) of the department shares,
      divided by ln(number of departments in departments.csv)
    - ``organic_ratio``: share of I(u) whose product name contains "organic"
      (any case)
    - ``basket_size_mean``: \\|I(u)\\| / n_orders
    - ``days_between_mean``: mean non-null ``days_since_prior_order`` over H(u)
      (0 if none)
    - ``order_interval_cv``: population std / mean of the same values (0 if
      none or mean 0)
    - ``basket_consistency``: mean Jaccard similarity of the product sets of
      consecutive orders of H(u) (0 with fewer than 2 orders)
    - ``hour_sin``, ``hour_cos``: means over H(u) of sin and cos of
      2*pi*hour/24
    - ``weekend_ratio``: share of H(u) with ``order_dow`` in {0, 1}
    - ``reorder_ratio``: mean ``reordered`` over I(u) without the first order
      of H(u) (0 if none)
    - ``product_repeat_rate``: \\|I(u)\\| / distinct products in I(u)
    - ``loyalty_hhi``: sum over products of (count in I(u) / \\|I(u)\\|)^2

    A product whose aisle (department) is not in aisles.csv (departments.csv)
    counts in \\|I(u)\\| but in no aisle column (no department share).
    """
    if int(min_orders) < 1:
        raise ConfigError(f"{option('min_orders')} must be an integer >= 1 (got {min_orders!r})")
    xp = backend.xp
    catalog = _catalog(data, backend)
    orders = _sorted_orders(data.orders, backend)
    rows = _product_rows(data.order_products, orders, catalog, backend)
    history = _history(orders, rows, xp)
    sorted_rows = _sorted_rows(rows, int(orders.order_ids.shape[0]), history, catalog.n_products,
                               xp)
    n_unknown_order, n_unknown_product = rows.n_unknown_order, rows.n_unknown_product
    del rows  # the sorted keys carry every row; free the dense columns before the scans

    sums = _order_sums(history, xp)
    product_sums, starts_run = _product_sums(sorted_rows, catalog, history.n_users, xp)
    sums.update(product_sums)
    sums["jaccard_sum"] = _jaccard_sum(sorted_rows, starts_run, history, xp)
    del sorted_rows, starts_run

    selected = xp.flatnonzero(sums["n_orders"] >= min_orders)
    n_selected = int(selected.shape[0])
    n_with_history = int(xp.count_nonzero(sums["n_orders"] > 0))
    if n_selected == 0:
        raise no_users_selected(min_orders, n_with_history)
    # One 2-D block: pandas builds a frame of one array in a fraction of the time it takes for 147
    # separate columns, which is most of the cost for the few users of a gpuseg serve batch. The
    # block is column-major, as pandas lays out a frame built from columns (so every reduction
    # over it adds in the same order), and taken as it is (pandas 3 would copy it by default).
    columns_by_row = xp.stack(_feature_values(sums, selected, catalog, xp))
    index = backend.df.Index(orders.user_ids[selected], name="user_id")
    table = backend.df.DataFrame(columns_by_row.T, columns=feature_columns(catalog.aisle_ids),
                                 index=index, copy=False)
    return UserFeatures(
        table=table,
        aisle_ids=catalog.aisle_ids,
        min_orders=int(min_orders),
        n_users_with_history=n_with_history,
        n_users_excluded=n_with_history - n_selected,
        n_product_rows_dropped=n_unknown_product,
        n_order_rows_dropped=n_unknown_order,
    )


def _bits(max_value: int) -> int:
    """Bits that hold every value in 0..max_value."""
    return max(int(max_value), 0).bit_length()


@dataclass(frozen=True)
class _Catalog:
    """Products as dense arrays indexed by product position in products."""

    product_ids: Any
    aisle_ids: tuple[int, ...]
    n_departments: int
    aisle_slot: Any  # aisle index, or n_aisles for an aisle missing from aisles.csv
    department_slot: Any  # department index, or n_departments likewise
    organic: Any  # 1.0 where the name contains "organic", else 0.0

    @property
    def n_products(self) -> int:
        return int(self.product_ids.shape[0])


def organic_flags(product_names: Any) -> Any:
    """Whether each product name contains "organic", any case (a boolean pandas or cuDF Series).

    The rule behind ``organic_ratio``; a saved model keeps its result per product
    (:mod:`gpuseg.model_catalog`) instead of the names.
    """
    # Lower-casing, then a literal match, behaves the same in pandas and cuDF (cuDF documents no
    # case-insensitive contains).
    return product_names.fillna("").str.lower().str.contains("organic", regex=False)


def _catalog(data: InstacartData, backend: Backend) -> _Catalog:
    xp = backend.xp
    products = data.products
    aisle_ids = xp.sort(backend.asarray(data.aisles["aisle_id"], dtype=xp.int64))
    department_ids = backend.asarray(data.departments["department_id"], dtype=xp.int64)
    n_aisles, n_departments = int(aisle_ids.shape[0]), int(department_ids.shape[0])
    aisle_slot = dense_positions(aisle_ids, backend.asarray(products["aisle_id"]), xp=xp)
    department_slot = dense_positions(department_ids,
                                      backend.asarray(products["department_id"]), xp=xp)
    return _Catalog(
        product_ids=backend.asarray(products["product_id"], dtype=xp.int64),
        aisle_ids=tuple(int(a) for a in backend.to_host(aisle_ids).tolist()),
        n_departments=n_departments,
        aisle_slot=xp.where(aisle_slot < 0, n_aisles, aisle_slot).astype(xp.int64),
        department_slot=xp.where(department_slot < 0, n_departments,
                                 department_slot).astype(xp.int64),
        organic=backend.asarray(organic_flags(products["product_name"]), dtype=xp.float64),
    )


@dataclass(frozen=True)
class _Orders:
    """Every order, sorted by (user_id, order_number), with dense user indices."""

    order_ids: Any
    user: Any
    user_ids: Any  # user_id of each dense user index, ascending
    days: Any  # _NO_DAYS where days_since_prior_order is missing
    hour: Any
    dow: Any


def _sorted_orders(orders: Any, backend: Backend) -> _Orders:
    xp = backend.xp
    user_id = backend.asarray(orders["user_id"], dtype=xp.int64)
    order_number = backend.asarray(orders["order_number"], dtype=xp.int64)
    if user_id.shape[0] == 0:
        raise GpusegError("orders is empty: no user can have features")
    number_low, user_low = int(order_number.min()), int(user_id.min())
    number_bits = _bits(int(order_number.max()) - number_low)
    if _bits(int(user_id.max()) - user_low) + number_bits > _KEY_BITS:
        raise ResourceLimitError(
            "user_id and order_number span too many values to sort by together")
    # (user_id, order_number) identifies an order in Instacart, so the sort needs no tie-break.
    by_user = xp.argsort(((user_id - user_low) << number_bits) | (order_number - number_low))
    user_id = user_id[by_user]
    starts_user = xp.empty(user_id.shape, dtype=bool)
    starts_user[0] = True
    xp.not_equal(user_id[1:], user_id[:-1], out=starts_user[1:])
    days_or_marker = orders["days_since_prior_order"].fillna(_NO_DAYS)
    return _Orders(
        order_ids=backend.asarray(orders["order_id"], dtype=xp.int64)[by_user],
        user=xp.cumsum(starts_user) - 1,
        user_ids=user_id[starts_user],
        days=backend.asarray(days_or_marker, dtype=xp.float64)[by_user],
        hour=backend.asarray(orders["order_hour_of_day"], dtype=xp.float64)[by_user],
        dow=backend.asarray(orders["order_dow"], dtype=xp.int64)[by_user],
    )


@dataclass(frozen=True)
class _ProductRows:
    """Product rows of known orders and products as dense positions."""

    order: Any  # position in the sorted orders
    product: Any  # position in products
    reordered: Any
    n_unknown_order: int
    n_unknown_product: int


def _product_rows(order_products: Any, orders: _Orders, catalog: _Catalog,
                  backend: Backend) -> _ProductRows:
    xp = backend.xp
    order = dense_positions(orders.order_ids, backend.asarray(order_products["order_id"]), xp=xp)
    product = dense_positions(catalog.product_ids,
                              backend.asarray(order_products["product_id"]), xp=xp)
    reordered = backend.asarray(order_products["reordered"])
    unknown_order, unknown_product = order < 0, product < 0
    n_unknown_order = int(xp.count_nonzero(unknown_order))
    n_unknown_product = int(xp.count_nonzero(unknown_product))
    if n_unknown_order or n_unknown_product:
        known = ~(unknown_order | unknown_product)
        order, product, reordered = order[known], product[known], reordered[known]
    return _ProductRows(order, product, reordered, n_unknown_order, n_unknown_product)


@dataclass(frozen=True)
class _History:
    """The orders of H(u) of every user: the sorted orders that have product rows.

    They keep the sorted order, so each user's history is contiguous and ranked
    by order_number; ``kept`` is their position among all sorted orders.
    """

    n_users: int
    kept: Any
    user: Any
    rank: Any
    first_of_user: Any  # index of the user's first order of H(u)
    items: Any  # product rows per order, float64
    reorders: Any  # sum of `reordered` per order, float64
    days: Any
    hour: Any
    dow: Any

    @property
    def rank_bits(self) -> int:
        return _bits(int(self.rank.max())) if self.rank.shape[0] else 0


def _history(orders: _Orders, rows: _ProductRows, xp: Any) -> _History:
    n_orders = int(orders.order_ids.shape[0])
    n_users = int(orders.user_ids.shape[0])
    items = bincount(rows.order, n_orders, xp=xp)
    reorders = bincount(rows.order, n_orders, weights=rows.reordered.astype(xp.float64), xp=xp)
    kept = xp.flatnonzero(items > 0)
    user = orders.user[kept]
    first_of_user = xp.searchsorted(user, xp.arange(n_users, dtype=user.dtype))
    return _History(
        n_users=n_users,
        kept=kept,
        user=user,
        rank=xp.arange(kept.shape[0], dtype=xp.int64) - first_of_user[user],
        first_of_user=first_of_user,
        items=items[kept].astype(xp.float64),
        reorders=reorders[kept],
        days=orders.days[kept],
        hour=orders.hour[kept],
        dow=orders.dow[kept],
    )


@dataclass(frozen=True)
class _SortedRows:
    """Every product row as one int64 ``user | product | rank``, sorted ascending."""

    keys: Any
    rank_bits: int
    product_bits: int

    def user(self, keys: Any) -> Any:
        return keys >> (self.product_bits + self.rank_bits)

    def rank(self, keys: Any) -> Any:
        return keys & ((1 << self.rank_bits) - 1)

    def user_product(self, keys: Any) -> Any:
        return keys >> self.rank_bits


def _sorted_rows(rows: _ProductRows, n_orders: int, history: _History, n_products: int,
                 xp: Any) -> _SortedRows:
    rank_bits, product_bits = history.rank_bits, _bits(n_products - 1)
    if _bits(history.n_users - 1) + product_bits + rank_bits > _KEY_BITS:
        raise ResourceLimitError(
            "users x products x orders per user do not fit one 63-bit sort key; "
            "split the users into partitions and compute each separately")
    key_of_order = xp.zeros(n_orders, dtype=xp.int64)
    key_of_order[history.kept] = (history.user << (product_bits + rank_bits)) | history.rank
    keys = rows.product.astype(xp.int64)
    keys <<= rank_bits
    keys |= key_of_order[rows.order]
    keys.sort()
    return _SortedRows(keys, rank_bits, product_bits)


def _order_sums(history: _History, xp: Any) -> dict[str, Any]:
    """Per-user sums over the orders of H(u) (arrays of length n_users)."""
    user = history.user

    def per_user(weights: Any = None) -> Any:
        return bincount(user, history.n_users, weights, xp=xp)

    after_first = history.rank > 0
    has_days = history.days >= 0
    days = xp.where(has_days, history.days, 0.0)
    n_days = per_user(has_days.astype(xp.float64))
    days_mean = per_user(days) / xp.maximum(n_days, 1.0)
    # Deviations from the user's own mean: the two-pass variance keeps float64 accuracy.
    deviation = xp.where(has_days, days - days_mean[user], 0.0)
    angle = history.hour * (2.0 * math.pi / 24.0)
    weekend = xp.isin(history.dow, xp.asarray(WEEKEND_DAYS, dtype=history.dow.dtype))
    return {
        "n_orders": per_user(),
        "n_items": per_user(history.items),
        "items_after_first": per_user(xp.where(after_first, history.items, 0.0)),
        "reorders_after_first": per_user(xp.where(after_first, history.reorders, 0.0)),
        "n_days": n_days,
        "days_mean": days_mean,
        "days_std": xp.sqrt(per_user(deviation * deviation) / xp.maximum(n_days, 1.0)),
        "hour_sin_sum": per_user(xp.sin(angle)),
        "hour_cos_sum": per_user(xp.cos(angle)),
        "weekend_orders": per_user(weekend.astype(xp.float64)),
    }


def _product_sums(rows: _SortedRows, catalog: _Catalog, n_users: int,
                  xp: Any) -> tuple[dict[str, Any], Any]:
    """Per-user sums over the runs of one (user, product) in the sorted rows.

    Also returns where such runs start (a boolean per row) for the Jaccard scan.
    """
    n_rows = int(rows.keys.shape[0])
    user_product = rows.user_product(rows.keys)
    starts_run = xp.empty(n_rows, dtype=bool)
    starts_run[:1] = True
    xp.not_equal(user_product[1:], user_product[:-1], out=starts_run[1:])
    run_start = xp.flatnonzero(starts_run)
    user_product = user_product[run_start]
    run_length = xp.diff(xp.concatenate((run_start, xp.asarray([n_rows], dtype=run_start.dtype))))
    run_length = run_length.astype(xp.float64)
    del run_start
    user = user_product >> rows.product_bits
    product = user_product & ((1 << rows.product_bits) - 1)
    del user_product

    def per_user(weights: Any = None) -> Any:
        return bincount(user, n_users, weights, xp=xp)

    def per_slot_and_user(slot: Any, n_slots: int) -> Any:
        # Slot-major, so that each aisle's column of the table is one contiguous row here.
        return bincount(slot * n_users + user, n_slots * n_users,
                        weights=run_length, xp=xp).reshape(n_slots, n_users)

    sums = {
        "n_distinct_products": per_user(),
        "sum_squared_product_counts": per_user(run_length * run_length),
        "organic_items": per_user(run_length * catalog.organic[product]),
        "aisle_items": per_slot_and_user(catalog.aisle_slot[product], len(catalog.aisle_ids) + 1),
        "department_items": per_slot_and_user(catalog.department_slot[product],
                                              catalog.n_departments + 1),
    }
    return sums, starts_run


def _jaccard_sum(rows: _SortedRows, starts_run: Any, history: _History, xp: Any) -> Any:
    """Per user, the summed Jaccard similarity of the product sets of consecutive orders of H(u)."""
    keys = rows.keys
    n_kept = int(history.user.shape[0])

    def history_index(keys_of_rows: Any) -> Any:
        return history.first_of_user[rows.user(keys_of_rows)] + rows.rank(keys_of_rows)

    step = keys[1:] - keys[:-1]
    # The same user and product one rank later: the product is in two consecutive baskets.
    in_next_basket = keys[:-1][(step == 1) & ~starts_run[1:]]
    shared = bincount(history_index(in_next_basket), n_kept, xp=xp).astype(xp.float64)
    repeated_in_basket = keys[:-1][step == 0]
    duplicates = bincount(history_index(repeated_in_basket), n_kept, xp=xp)
    del step, in_next_basket, repeated_in_basket
    basket = history.items - duplicates
    union = basket[:-1] + basket[1:] - shared[:-1]
    same_user = history.user[1:] == history.user[:-1]
    jaccard = xp.where(same_user, shared[:-1] / union, 0.0)
    return bincount(history.user[:-1], history.n_users, weights=jaccard, xp=xp)


def _feature_values(sums: dict[str, Any], selected: Any, catalog: _Catalog, xp: Any) -> list[Any]:
    """The columns of the selected users, as contiguous float64 arrays in table order."""
    def take(name: str) -> Any:
        return sums[name][selected].astype(xp.float64)

    n_orders, n_items = take("n_orders"), take("n_items")
    aisle_share = sums["aisle_items"][:len(catalog.aisle_ids), selected] / n_items
    department_share = sums["department_items"][:catalog.n_departments, selected] / n_items
    if catalog.n_departments > 1:
        # log(1) = 0 stands in for the 0 * log(0) = 0 terms without a warning.
        plogp = department_share * xp.log(xp.where(department_share > 0, department_share, 1.0))
        dept_entropy = -plogp.sum(axis=0) / math.log(catalog.n_departments)
    else:
        dept_entropy = xp.zeros_like(n_items)
    days_mean = take("days_mean")
    has_mean = (take("n_days") > 0) & (days_mean > 0)
    order_interval_cv = xp.where(has_mean,
                                 take("days_std") / xp.where(has_mean, days_mean, 1.0), 0.0)
    items_after_first = take("items_after_first")
    reorder_ratio = xp.where(items_after_first > 0,
                             take("reorders_after_first") / xp.maximum(items_after_first, 1.0), 0.0)
    return [
        n_orders,
        *aisle_share,
        dept_entropy,
        take("organic_items") / n_items,
        n_items / n_orders,
        days_mean,
        order_interval_cv,
        take("jaccard_sum") / xp.maximum(n_orders - 1.0, 1.0),
        take("hour_sin_sum") / n_orders,
        take("hour_cos_sum") / n_orders,
        take("weekend_orders") / n_orders,
        reorder_ratio,
        n_items / take("n_distinct_products"),
        take("sum_squared_product_counts") / (n_items * n_items),
    ]
