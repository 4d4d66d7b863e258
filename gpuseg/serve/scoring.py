"""A batch of requests through the one assignment path, and each request's answer.

The requests of a batch become one :class:`~gpuseg.data.tables.InstacartData`
and go through :func:`gpuseg.assign.assign_tables`, the function behind
``gpuseg assign``: the same features, projection, nearest centroid and
memberships. Two requests may name the same user id (one shopper's webhook
sent twice, or two shops), so user and order ids are renumbered densely
across the batch and the answers carry the ids each request sent. Each user's
features depend only on that user's rows, and the renumbering keeps every
sort in the same order, so a shopper gets the same answer alone or in a batch.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..assign import assign_tables
from ..backend import Backend
from ..data.schema import ORDER_PRODUCTS_DTYPES, ORDERS_DTYPES
from ..data.tables import InstacartData
from .holder import ServedModel
from .shoppers import RequestError, Shoppers

#: The fields of each assigned user in an answer, as in ``gpuseg assign``'s table.
USER_FIELDS = ("user_id", "segment", "persona", "membership", "second_segment",
               "second_membership")


def assign_batch(served: ServedModel, requests: Sequence[Shoppers],
                 backend: Backend) -> list[dict[str, Any] | RequestError]:
    """Each request's answer: ``{"model", "users", "excluded"}``, in ``requests`` order.

    Parameters
    ----------
    served : ServedModel
        The model this batch runs on, start to end.
    requests : sequence of Shoppers
        Checked requests (:func:`gpuseg.serve.shoppers.read_shoppers`).
    backend : Backend
        Where the features and the assignment are computed.

    Returns
    -------
    list
        One answer per request; a :class:`RequestError` instead for a request
        checked against a model reloaded since, whose catalog lacks one of its
        products.
    """
    found: list[Shoppers | RequestError] = []
    for shoppers in requests:
        try:
            found.append(shoppers.in_catalog(served.catalog))
        except RequestError as exc:
            found.append(exc)
    batch = [shoppers for shoppers in found if isinstance(shoppers, Shoppers)]
    answers = _answers(served, batch, backend) if batch else []
    answer = iter(answers)
    return [item if isinstance(item, RequestError) else next(answer) for item in found]


def _answers(served: ServedModel, batch: Sequence[Shoppers],
             backend: Backend) -> list[dict[str, Any]]:
    data, owner, user_ids = batch_tables(batch, served)
    assignment = assign_tables(served.model, data, backend)
    answers: list[dict[str, Any]] = [{"model": served.model_id, "users": [], "excluded": []}
                                     for _ in batch]
    users = assignment.users
    dense = users["user_id"].to_numpy()
    columns = [user_ids[dense].tolist()] + [
        users[name].tolist() if name in users else [None] * len(users)
        for name in USER_FIELDS[1:]]
    for request, row in zip(owner[dense].tolist(), zip(*columns)):
        answers[request]["users"].append(dict(zip(USER_FIELDS, row)))
    excluded = assignment.excluded
    dense = excluded["user_id"].to_numpy()
    for request, user_id, reason in zip(owner[dense].tolist(), user_ids[dense].tolist(),
                                        excluded["reason"].tolist()):
        answers[request]["excluded"].append({"user_id": user_id, "reason": reason})
    return answers


def batch_tables(batch: Sequence[Shoppers],
                 served: ServedModel) -> tuple[InstacartData, np.ndarray, np.ndarray]:
    """The requests of a batch as one data set with dense user and order ids.

    Returns
    -------
    data : InstacartData
        Orders and product rows of every request (user ``u`` of the batch is
        ``user_id`` ``u``), and the catalog's rows of the products they name.
    owner : numpy.ndarray
        The request (index in ``batch``) of each batch user.
    user_ids : numpy.ndarray
        The user id its request gave each batch user.
    """
    user_offsets = np.cumsum([0] + [shoppers.n_users for shoppers in batch])
    order_offsets = np.cumsum([0] + [len(shoppers.orders["order_id"]) for shoppers in batch])
    orders: dict[str, list[np.ndarray]] = {column: [] for column in ORDERS_DTYPES}
    rows: dict[str, list[np.ndarray]] = {column: [] for column in ORDER_PRODUCTS_DTYPES}
    for shoppers, user_offset, order_offset in zip(batch, user_offsets, order_offsets):
        n_orders = len(shoppers.orders["order_id"])
        for column in ORDERS_DTYPES:
            orders[column].append(shoppers.orders[column])
        orders["user_id"][-1] = (np.searchsorted(shoppers.user_ids, shoppers.orders["user_id"])
                                 + user_offset)
        orders["order_id"][-1] = np.arange(order_offset, order_offset + n_orders)
        for column in ORDER_PRODUCTS_DTYPES:
            rows[column].append(shoppers.order_products[column])
        rows["order_id"][-1] = shoppers.order_rows + order_offset
    tables = served.catalog.tables(np.concatenate([s.product_positions for s in batch]))
    data = InstacartData(
        orders=_frame(orders, ORDERS_DTYPES), order_products=_frame(rows, ORDER_PRODUCTS_DTYPES),
        **tables, source="request")
    owner = np.repeat(np.arange(len(batch)), np.diff(user_offsets))
    user_ids = np.concatenate([shoppers.user_ids for shoppers in batch])
    return data, owner, user_ids


def _frame(columns: dict[str, list[np.ndarray]], dtypes: Any) -> pd.DataFrame:
    return pd.DataFrame({name: np.concatenate(parts).astype(dtypes[name], copy=False)
                         for name, parts in columns.items()}, copy=False)
