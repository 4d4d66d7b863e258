"""When each segment orders: order counts by segment x weekday x hour."""
from __future__ import annotations

from typing import Any

from .backend import Backend
from .numerics.arrays import dense_positions


def segment_of_users(user_ids: Any, labels: Any, query_user_ids: Any, backend: Backend) -> Any:
    """Segment of each queried user (-1 where the user was not segmented)."""
    xp = backend.xp
    position = dense_positions(user_ids, query_user_ids, xp=xp)
    return xp.where(position >= 0, labels[xp.maximum(position, 0)], -1)


def ordering_heatmap(orders: Any, order_products: Any, user_ids: Any, labels: Any, k: int,
                     backend: Backend) -> Any:
    """Orders in each segment's purchase history by weekday (0-6) and hour (0-23): (k, 7, 24).

    Only orders with product rows count, as in the features' history H(u).
    """
    return history_heatmap(history_orders(orders, order_products), user_ids, labels, k, backend)


def history_orders(orders: Any, order_products: Any) -> Any:
    """The orders that have product rows: every user's history H(u)."""
    return orders[orders["order_id"].isin(order_products["order_id"])]


def history_heatmap(history: Any, user_ids: Any, labels: Any, k: int, backend: Backend) -> Any:
    """:func:`ordering_heatmap` of orders already cut to the history (:func:`history_orders`)."""
    xp = backend.xp
    segment = segment_of_users(user_ids, labels,
                               backend.asarray(history["user_id"], dtype="int64"), backend)
    keep = segment >= 0
    dow = backend.asarray(history["order_dow"], dtype="int64")[keep]
    hour = backend.asarray(history["order_hour_of_day"], dtype="int64")[keep]
    cell = (segment[keep].astype(xp.int64) * 7 + dow) * 24 + hour
    return xp.bincount(cell, minlength=k * 7 * 24).reshape(k, 7, 24)
