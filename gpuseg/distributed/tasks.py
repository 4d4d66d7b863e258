"""What a Dask worker runs on one partition or one block: the single-process code, mapped.

Each function here is a plain function of one partition (or one block of a
dask array) and small host arguments; :mod:`gpuseg.distributed.rows` hands them
to ``client.map`` or ``dask.delayed``. The stages' own block functions run
through :func:`run_block`. The feature stage is
:func:`gpuseg.features.compute_features` itself, so a partition's table is the
single-process table of its users. Functions take the backend's *name* and
build the backend once per worker process, since a backend holds modules that
do not travel between processes.
"""
from __future__ import annotations

import functools
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dask.sizeof import sizeof

from ..activity import history_heatmap, history_orders
from ..backend import Backend
from ..data.partitions.source import PartitionedSource, read_partition
from ..data.tables import InstacartData
from ..features import compute_features, feature_columns
from ..registry import get_backend

#: Columns of the orders kept per partition for the hour-by-weekday activity.
HISTORY_COLUMNS = ("order_id", "user_id", "order_dow", "order_hour_of_day")


@functools.cache
def worker_backend(name: str) -> Backend:
    """The backend ``name``, built once per worker process."""
    return get_backend(name)


@dataclass(frozen=True)
class PartitionSummary:
    """The host-sized facts about one partition that the run gathers.

    Attributes
    ----------
    n_users : int
        Users in its feature table (at least ``min_orders`` orders).
    user_ids : numpy.ndarray
        Distinct user ids of its orders (to check that no user spans partitions).
    n_with_history, n_excluded : int
        Users with product rows; those with fewer than ``min_orders`` orders.
    cleaning : Mapping[str, int]
        Rows dropped while loading the partition, by reason.
    messages : tuple of str
        Their warning texts (naming the partition's files and rows).
    """

    n_users: int
    user_ids: np.ndarray
    n_with_history: int
    n_excluded: int
    cleaning: Mapping[str, int]
    messages: tuple[str, ...]


@dataclass(frozen=True)
class PartitionFeatures:
    """One partition's feature table and the orders its activity counts, as computed on a
    worker; the run keeps its matrix (a column block) and its :class:`PartitionOrders`."""

    table: Any
    history: Any
    summary: PartitionSummary


@sizeof.register(PartitionFeatures)
def _sizeof_partition(part: PartitionFeatures) -> int:
    # Dask spills and balances by these bytes; a dataclass would count as a few dozen.
    return int(sizeof(part.table) + sizeof(part.history) + part.summary.user_ids.nbytes)


@dataclass(frozen=True)
class PartitionOrders:
    """What a run keeps of a partition besides its features' block: the orders its activity
    counts and the users of its block, in row order (backend arrays and frames)."""

    history: Any
    user_ids: Any


@sizeof.register(PartitionOrders)
def _sizeof_orders(part: PartitionOrders) -> int:
    return int(sizeof(part.history) + sizeof(part.user_ids))


def partition_features(index: int, source: PartitionedSource, catalog: Mapping[str, pd.DataFrame],
                       backend_name: str, min_orders: int) -> PartitionFeatures:
    """Load, validate and compute the features of partition ``index``.

    Features are computed for every user with a history and then filtered by
    ``min_orders``: a user's features depend on their rows only, so the kept
    rows equal the single-process ones, and a partition where nobody reaches
    ``min_orders`` is an empty table rather than an error.
    """
    backend = worker_backend(backend_name)
    part = read_partition(source, index, catalog["products"])
    frames = {name: backend.from_host(frame) for name, frame in
              (("orders", part.orders), ("order_products", part.order_products),
               *catalog.items())}
    data = InstacartData(**frames, cleaning=part.cleaning, source=str(source.folder))
    user_ids = np.unique(part.orders["user_id"].to_numpy())
    columns = feature_columns(int(a) for a in catalog["aisles"]["aisle_id"])
    if len(part.order_products) == 0:
        table = _empty_table(columns, backend)
        n_with_history = n_excluded = 0
    else:
        features = compute_features(data, backend, min_orders=1)
        table = features.table[features.table["n_orders"] >= min_orders]
        n_with_history = features.n_users_with_history
        n_excluded = n_with_history - int(table.shape[0])
    history = history_orders(data.orders, data.order_products)[list(HISTORY_COLUMNS)]
    summary = PartitionSummary(
        n_users=int(table.shape[0]), user_ids=user_ids, n_with_history=n_with_history,
        n_excluded=n_excluded, cleaning=dict(part.cleaning), messages=part.messages)
    return PartitionFeatures(table=table, history=history, summary=summary)


def partition_histories(index: int, source: PartitionedSource,
                        catalog: Mapping[str, pd.DataFrame],
                        user_ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The orders and order products of ``user_ids`` in partition ``index`` (host frames),
    read and cleaned as the features stage reads them."""
    part = read_partition(source, index, catalog["products"])
    orders = part.orders[part.orders["user_id"].isin(user_ids)]
    products = part.order_products[part.order_products["order_id"].isin(orders["order_id"])]
    return orders, products


def _empty_table(columns: list[str], backend: Backend) -> Any:
    xp = backend.xp
    index = backend.df.Index(xp.empty(0, dtype=xp.int64), name="user_id")
    return backend.df.DataFrame({c: xp.empty(0, dtype=xp.float64) for c in columns}, index=index)


@dataclass(frozen=True)
class SharedParams:
    """The block parameters of one map or sum, with their size on the wire.

    Dask's ``sizeof`` counts a fitted object (a UMAP reducer, a density fit) as
    the few dozen bytes of the object itself, or fails on it; the scatter
    decision and the workers' memory accounting need the real size.
    """

    params: Mapping[str, Any]
    nbytes: int

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> SharedParams:
        return cls(params=params, nbytes=payload_bytes(params))


@sizeof.register(SharedParams)
def _sizeof_shared(shared: SharedParams) -> int:
    return shared.nbytes


def payload_bytes(value: Any) -> int:
    """Bytes ``value`` takes when pickled (protocol 5), its array buffers counted, not copied."""
    import cloudpickle

    out_of_band = 0

    def count(buffer: pickle.PickleBuffer) -> None:
        nonlocal out_of_band
        out_of_band += buffer.raw().nbytes

    return len(cloudpickle.dumps(value, protocol=5, buffer_callback=count)) + out_of_band


def summary_of(part: PartitionFeatures) -> PartitionSummary:
    return part.summary


def orders_of(part: PartitionFeatures, backend_name: str) -> PartitionOrders:
    """The partition without its feature table, whose matrix the features column holds: kept
    beside it, the table would be counted twice by Dask's memory accounting (and spilled and
    read back as two copies)."""
    backend = worker_backend(backend_name)
    return PartitionOrders(history=part.history,
                           user_ids=backend.asarray(part.table.index, dtype="int64"))


def matrix_of(part: PartitionFeatures, backend_name: str) -> Any:
    """The feature table as a float64 matrix (rows in table order)."""
    return worker_backend(backend_name).asarray(part.table, dtype="float64")


def user_ids_of(part: PartitionOrders, backend_name: str) -> np.ndarray:
    """The block's user ids on the host (they become the run's ``user_id`` column)."""
    return worker_backend(backend_name).to_numpy(part.user_ids, np.int64)


# -- any block function of the stages, on a worker -------------------------------------------
def run_block(*blocks_and_params: Any, fn: Any, backend_name: str, flat: tuple[bool, ...],
              offsets: bool = False, block_info: Any = None) -> Any:
    """``fn(backend, *blocks, **params)`` on a worker, for ``DaskRows.map``: the blocks arrive
    two-dimensional (``flat`` marks the one-value-per-user columns, given back their shape),
    the parameters last; ``first_row`` joins them when ``offsets`` asks."""
    *blocks, shared = blocks_and_params
    params = shared.params if isinstance(shared, SharedParams) else shared
    columns = [b.reshape(-1) if one else b for b, one in zip(blocks, flat)]
    extra = {"first_row": int(block_info[0]["array-location"][0][0])} if offsets else {}
    result = fn(worker_backend(backend_name), *columns, **params, **extra)
    return result.reshape(-1, 1) if result.ndim == 1 else result


def sum_block(fn: Any, backend_name: str, shared: SharedParams | Mapping[str, Any],
              *blocks: Any) -> Any:
    """``fn(backend, *blocks, **params)`` on a worker: one block's host partial sums."""
    params = shared.params if isinstance(shared, SharedParams) else shared
    return fn(worker_backend(backend_name), *blocks, **params)


def add_up(pieces: list[Any]) -> Any:
    """The sum of per-block host arrays (a tree of them is summed by Dask)."""
    return sum(pieces[1:], pieces[0]) if pieces else 0


def partition_activity(part: PartitionOrders, labels: Any, k: int,
                       backend_name: str) -> np.ndarray:
    """Orders per segment x weekday x hour of one partition, with its users' labels."""
    backend = worker_backend(backend_name)
    counts = history_heatmap(part.history, part.user_ids, labels, k, backend)
    return backend.to_numpy(counts, np.int64)
