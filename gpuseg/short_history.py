"""How well a segment holds for a new shopper: histories cut to their first few orders.

A run cannot see tomorrow's new shoppers, but it can see how its own shoppers
looked when they were new. For a seeded sample of segmented shoppers, each
history is cut to its first ``n`` orders with products (by ``order_number``),
the cut histories get their features from the run's own feature code, and the
run's scaler, cap, PCA and centres assign them as ``gpuseg assign --min-orders``
would. The share that lands in the full-history segment is how far a
provisional segment can be trusted. Only shoppers with more than ``n`` orders
count for ``n``: a history that short is not cut.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Array, Backend
from .data.tables import InstacartData
from .features import compute_features

#: History lengths measured: the provisional range below the default ``min_orders`` of 5.
CUTS = (2, 3, 4)


def users_history(data: InstacartData, user_ids: np.ndarray) -> InstacartData:
    """``data`` holding only the orders and order products of ``user_ids``."""
    ids = data.orders["user_id"].isin(user_ids)
    orders = data.orders[ids]
    products = data.order_products[data.order_products["order_id"].isin(orders["order_id"])]
    return dataclasses.replace(data, orders=orders.reset_index(drop=True),
                               order_products=products.reset_index(drop=True))


def first_orders(data: InstacartData, n_orders: int) -> InstacartData:
    """Each user's first ``n_orders`` orders that have products, for users with more of them."""
    orders = data.orders[data.orders["order_id"].isin(data.order_products["order_id"])]
    orders = orders.sort_values(["user_id", "order_number"])
    counts = orders.groupby("user_id")["order_id"].transform("count")
    position = orders.groupby("user_id").cumcount()
    kept = orders[(counts > n_orders) & (position < n_orders)]
    products = data.order_products[data.order_products["order_id"].isin(kept["order_id"])]
    return dataclasses.replace(data, orders=kept.reset_index(drop=True),
                               order_products=products.reset_index(drop=True))


@dataclass(frozen=True)
class ShortHistory:
    """Agreement of short-history segments with full-history ones.

    Attributes
    ----------
    cuts : tuple of int
        History lengths measured (orders with products).
    users : tuple of int
        Sampled shoppers measured at each length (those with a longer history).
    agreement : tuple of float
        Share of them whose cut history is assigned their full-history segment
        (NaN where no shopper was measured).
    n_sample : int
        Shoppers sampled.
    """

    cuts: tuple[int, ...]
    users: tuple[int, ...]
    agreement: tuple[float, ...]
    n_sample: int

    def to_dict(self) -> dict[str, Any]:
        return {"sample": self.n_sample,
                "by_orders": [{"orders": c, "users": u,
                               "kept_segment": None if np.isnan(a) else a}
                              for c, u, a in zip(self.cuts, self.users, self.agreement)]}


def short_history_agreement(history: InstacartData, user_ids: np.ndarray, labels: np.ndarray,
                            feature_names: Sequence[str], backend: Backend,
                            assign: Callable[[Array], Array],
                            cuts: Sequence[int] = CUTS) -> ShortHistory:
    """Cut ``history`` (the sampled users') to each length of ``cuts`` and compare segments.

    Parameters
    ----------
    history : InstacartData
        The sampled users' orders and order products, with the catalog.
    user_ids, labels : numpy.ndarray
        The sampled users and their full-history segments.
    feature_names : sequence of str
        The run's feature columns, in order.
    assign : callable
        Features (float64 backend array, ``feature_names`` order) to segments.
    """
    full = dict(zip(user_ids.tolist(), labels.tolist()))
    users, agreement = [], []
    for n in cuts:
        cut = first_orders(history, n)
        if int(cut.orders.shape[0]) == 0:
            users.append(0)
            agreement.append(float("nan"))
            continue
        table = compute_features(cut, backend, min_orders=1).table[list(feature_names)]
        segments = backend.to_numpy(assign(backend.asarray(table, dtype="float64")), np.int64)
        ids = backend.to_numpy(backend.asarray(table.index), np.int64)
        expected = np.array([full[i] for i in ids.tolist()], dtype=np.int64)
        users.append(int(ids.shape[0]))
        agreement.append(float((segments == expected).mean()))
    return ShortHistory(cuts=tuple(cuts), users=tuple(users), agreement=tuple(agreement),
                        n_sample=int(user_ids.shape[0]))
