"""Small Instacart-shaped data sets for tests: random ones with every awkward case, hand-made ones.

The random set has a few hundred users and, on purpose: users below any
sensible ``min_orders``, orders without product rows (and one whose only rows
are unknown products), product rows of unknown products, the same product
twice in one basket, NaN days for first orders and a few others, sparse and
shuffled ids, product names with "organic" in several cases and one missing
name, an aisle no product uses, and a product whose aisle and department are
missing from aisles.csv and departments.csv.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from gpuseg.backend import Backend
from gpuseg.data.schema import (
    AISLES_DTYPES,
    DEPARTMENTS_DTYPES,
    ORDER_PRODUCTS_DTYPES,
    ORDERS_DTYPES,
    PRODUCTS_DTYPES,
)
from gpuseg.data.tables import InstacartData

UNKNOWN_PRODUCT_ID = 999_999
_NAME_WORDS = ("Banana", "Milk", "Organic Spinach", "organic eggs", "ORGANIC TOFU", "Bread",
               "Yogurt", "Inorganic Salt", "Apple", "Coffee", "Tea", "Rice")


def _frame(columns: dict[str, Sequence], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(columns[name]).astype(dtype)
                         for name, dtype in dtypes.items()})


def instacart_from_records(
    orders: Iterable[tuple[int, int, int, int, int, float]],
    order_products: Iterable[tuple[int, int, int]],
    products: Iterable[tuple[int, str, int, int]],
    aisle_ids: Iterable[int],
    department_ids: Iterable[int],
) -> InstacartData:
    """An :class:`InstacartData` (pandas) from plain tuples.

    Parameters
    ----------
    orders
        ``(order_id, user_id, order_number, order_dow, order_hour_of_day,
        days_since_prior_order)``; use ``float("nan")`` for no value.
    order_products
        ``(order_id, product_id, reordered)``; ``add_to_cart_order`` is the
        row's position within its order.
    products
        ``(product_id, product_name, aisle_id, department_id)``.
    aisle_ids, department_ids
        The rows of aisles.csv and departments.csv.
    """
    orders = list(orders)
    order_products = list(order_products)
    products = list(products)
    aisle_ids, department_ids = list(aisle_ids), list(department_ids)
    cart_position: dict[int, int] = {}
    add_to_cart = []
    for order_id, _, _ in order_products:
        cart_position[order_id] = cart_position.get(order_id, 0) + 1
        add_to_cart.append(cart_position[order_id])
    orders_columns = (dict(zip(ORDERS_DTYPES, zip(*orders))) if orders
                      else {c: [] for c in ORDERS_DTYPES})
    op_columns = dict(zip(("order_id", "product_id", "reordered"), zip(*order_products))) \
        if order_products else {"order_id": [], "product_id": [], "reordered": []}
    op_columns["add_to_cart_order"] = add_to_cart
    return InstacartData(
        orders=_frame(orders_columns, ORDERS_DTYPES),
        order_products=_frame(op_columns, ORDER_PRODUCTS_DTYPES),
        products=_frame(dict(zip(PRODUCTS_DTYPES, zip(*products))), PRODUCTS_DTYPES),
        aisles=_frame({"aisle_id": aisle_ids, "aisle": [f"aisle {a}" for a in aisle_ids]},
                      AISLES_DTYPES),
        departments=_frame({"department_id": department_ids,
                            "department": [f"department {d}" for d in department_ids]},
                           DEPARTMENTS_DTYPES),
        source="records",
    )


def random_instacart(n_users: int = 300, seed: int = 0) -> InstacartData:
    """A random pandas :class:`InstacartData` with the awkward cases listed in the module doc."""
    rng = np.random.default_rng(seed)
    aisle_ids = np.sort(rng.choice(np.arange(1, 60), size=9, replace=False))
    department_ids = np.sort(rng.choice(np.arange(1, 30), size=5, replace=False))
    n_products = 80
    product_ids = np.sort(rng.choice(np.arange(1, 5_000), size=n_products, replace=False))
    names = pd.Series([f"{rng.choice(_NAME_WORDS)} {i}" for i in range(n_products)], dtype="str")
    names[3] = None
    # aisle_ids[-1] is used by no product, so its column is all zeros.
    product_aisle = rng.choice(aisle_ids[:-1], size=n_products)
    product_department = rng.choice(department_ids, size=n_products)
    product_aisle[5], product_department[5] = 777, 77  # in neither aisles.csv nor departments.csv

    user_ids = np.sort(rng.choice(np.arange(1, 1_000_000), size=n_users, replace=False))
    orders_per_user = rng.integers(1, 14, size=n_users)
    n_orders = int(orders_per_user.sum())
    order_user = np.repeat(user_ids, orders_per_user)
    order_number = np.concatenate([np.arange(1, k + 1) for k in orders_per_user])
    order_ids = rng.choice(np.arange(1, 4 * n_orders), size=n_orders, replace=False)
    days = rng.integers(0, 31, size=n_orders).astype("float32")
    days[order_number == 1] = np.nan
    days[rng.random(n_orders) < 0.05] = np.nan
    orders = pd.DataFrame({
        "order_id": order_ids, "user_id": order_user, "order_number": order_number,
        "order_dow": rng.integers(0, 7, size=n_orders),
        "order_hour_of_day": rng.integers(0, 24, size=n_orders),
        "days_since_prior_order": days,
    }).astype(dict(ORDERS_DTYPES)).sample(frac=1.0, random_state=seed).reset_index(drop=True)

    # Each user mostly buys from a small favourite set, so products repeat across baskets.
    favourites = {u: rng.choice(product_ids, size=8, replace=False) for u in user_ids}
    rows_order, rows_product = [], []
    for order_id, user_id in zip(order_ids, order_user):
        if rng.random() < 0.1:
            continue  # an order without product rows
        size = int(rng.integers(1, 9))
        from_favourites = rng.random(size) < 0.7
        basket = np.where(from_favourites, rng.choice(favourites[user_id], size=size),
                          rng.choice(product_ids, size=size))
        if rng.random() < 0.1:
            basket = np.append(basket, basket[0])  # the same product twice in one basket
        if rng.random() < 0.03:
            basket = np.append(basket, UNKNOWN_PRODUCT_ID)
        rows_order.extend([order_id] * len(basket))
        rows_product.extend(basket.tolist())
    only_unknown_order = order_ids[-1]  # its one row names an unknown product, so it leaves H(u)
    keep = np.asarray(rows_order) != only_unknown_order
    rows_order = [*np.asarray(rows_order)[keep], only_unknown_order]
    rows_product = [*np.asarray(rows_product)[keep], UNKNOWN_PRODUCT_ID + 1]
    n_rows = len(rows_order)
    order_products = pd.DataFrame({
        "order_id": rows_order, "product_id": rows_product,
        "add_to_cart_order": np.ones(n_rows), "reordered": rng.integers(0, 2, size=n_rows),
    }).sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    order_products["add_to_cart_order"] = order_products.groupby("order_id").cumcount() + 1
    return InstacartData(
        orders=orders,
        order_products=order_products.astype(dict(ORDER_PRODUCTS_DTYPES)),
        products=pd.DataFrame({"product_id": product_ids, "product_name": names,
                               "aisle_id": product_aisle, "department_id": product_department}
                              ).astype(dict(PRODUCTS_DTYPES)),
        aisles=pd.DataFrame({"aisle_id": aisle_ids, "aisle": [f"aisle {a}" for a in aisle_ids]}
                            ).astype(dict(AISLES_DTYPES)),
        departments=pd.DataFrame({"department_id": department_ids,
                                  "department": [f"department {d}" for d in department_ids]}
                                 ).astype(dict(DEPARTMENTS_DTYPES)),
        source=f"random:{seed}",
    )


def on_backend(data: InstacartData, backend: Backend) -> InstacartData:
    """The same tables moved into ``backend``'s dataframe library."""
    return replace(data, **{name: backend.from_host(getattr(data, name)) for name in
                            ("orders", "order_products", "products", "aisles", "departments")})
