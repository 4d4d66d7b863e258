"""What a Dask worker runs on one partition or one block: the single-process code, mapped.

Each function here is a plain function of one partition (or one block of a
dask array) and small host arguments; :mod:`gpuseg.distributed.run` hands them
to ``client.map``, ``map_blocks`` or ``dask.delayed``. The feature stage is
:func:`gpuseg.features.compute_features` itself, so a partition's table is the
single-process table of its users. Functions take the backend's *name* and
build the backend once per worker process, since a backend holds modules that
do not travel between processes.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dask.sizeof import sizeof

from ..activity import history_heatmap, history_orders
from ..backend import Backend
from ..cluster.density import nearest_point_labels, reachability_labels
from ..data.partitions.source import PartitionedSource, read_partition
from ..data.tables import InstacartData
from ..features import compute_features, feature_columns
from ..numerics import arrays
from ..numerics.arrays import segment_sums
from ..numerics.mixture import MixtureParams, e_step, membership_columns
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
    """One partition's feature table and the orders its activity counts, kept on a worker."""

    table: Any
    history: Any
    summary: PartitionSummary


@sizeof.register(PartitionFeatures)
def _sizeof_partition(part: PartitionFeatures) -> int:
    # Dask spills and balances by these bytes; a dataclass would count as a few dozen.
    return int(sizeof(part.table) + sizeof(part.history) + part.summary.user_ids.nbytes)


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


def _empty_table(columns: list[str], backend: Backend) -> Any:
    xp = backend.xp
    index = backend.df.Index(xp.empty(0, dtype=xp.int64), name="user_id")
    return backend.df.DataFrame({c: xp.empty(0, dtype=xp.float64) for c in columns}, index=index)


def summary_of(part: PartitionFeatures) -> PartitionSummary:
    return part.summary


def table_of(part: PartitionFeatures) -> Any:
    return part.table


def matrix_of(part: PartitionFeatures, backend_name: str) -> Any:
    """The feature table as a float64 matrix (rows in table order)."""
    return worker_backend(backend_name).asarray(part.table, dtype="float64")


def user_ids_of(part: PartitionFeatures, backend_name: str) -> np.ndarray:
    """The table's user ids on the host (they become the run's ``user_id`` column)."""
    backend = worker_backend(backend_name)
    return backend.to_numpy(backend.asarray(part.table.index), np.int64)


# -- blocks of the feature matrix and its projections -----------------------------------------
def standardise_block(block: Any, mean: np.ndarray, scale: np.ndarray, constant: np.ndarray,
                      backend_name: str) -> Any:
    """``(x - mean) / scale`` with the constant features set to 0, as one process scales."""
    xp = worker_backend(backend_name).xp
    scaled = (block - xp.asarray(mean)) / xp.asarray(scale)
    scaled[:, xp.asarray(np.flatnonzero(constant))] = 0.0
    return scaled


def project_block(block: Any, mean: np.ndarray, components: np.ndarray,
                  backend_name: str) -> Any:
    """Principal-component scores of a block: ``(x - mean) @ components.T``."""
    xp = worker_backend(backend_name).xp
    return (block - xp.asarray(mean)) @ xp.asarray(components).T


def nearest_centre(block: Any, centres: np.ndarray, backend_name: str) -> Any:
    """KMeans prediction of a block: the index of the nearest centre (int32), computed as
    ``gpuseg assign`` computes it (:func:`gpuseg.numerics.arrays.nearest_centre`)."""
    xp = worker_backend(backend_name).xp
    return arrays.nearest_centre(block, xp.asarray(centres), xp=xp)[0].astype(xp.int32)


def label_counts(block: Any, k: int, backend_name: str) -> np.ndarray:
    """Users per label 0..k-1 in a block, on the host."""
    backend = worker_backend(backend_name)
    counts = backend.xp.bincount(block, minlength=k)
    return backend.to_numpy(counts, np.int64)


def relabel_block(block: Any, mapping: np.ndarray, backend_name: str) -> Any:
    """Labels renumbered through ``mapping`` (old label -> new label), as int32."""
    xp = worker_backend(backend_name).xp
    return xp.asarray(mapping)[block].astype(xp.int32)


def assigned_squared_distance(block: Any, labels: Any, centres: np.ndarray,
                              backend_name: str) -> Any:
    """Each row's squared distance to the centre it was assigned (its share of the inertia);
    ``labels`` is the block's column of :func:`nearest_centre`."""
    xp = worker_backend(backend_name).xp
    return ((block - xp.asarray(centres)[labels.reshape(-1)]) ** 2).sum(axis=1)


def nearest_point_label(block: Any, points: np.ndarray, point_labels: np.ndarray, eps: float,
                        backend_name: str) -> Any:
    """:func:`gpuseg.cluster.density.nearest_point_labels` for a block of users."""
    backend = worker_backend(backend_name)
    xp = backend.xp
    return nearest_point_labels(block, xp.asarray(points), xp.asarray(point_labels), eps, backend)


def block_memberships(block: Any, labels: Any, mixture: MixtureParams,
                      backend_name: str) -> Any:
    """The E-step of a fitted mixture for a block of users: (n, 4) own membership, the next
    segment, its membership and each user's log-likelihood (the one-process computation)."""
    backend = worker_backend(backend_name)
    xp = backend.xp
    if block.shape[0] == 0:
        return xp.empty((0, 4), dtype=xp.float64)
    log_likelihood, log_resp = e_step(block, mixture, backend)
    own, second, second_p = membership_columns(log_resp, xp.asarray(labels).reshape(-1), xp=xp)
    return xp.stack([own, second.astype(xp.float64), second_p, log_likelihood], axis=1)


def hdbscan_join(block: Any, fitted: np.ndarray, core: np.ndarray, fit_labels: np.ndarray,
                 scale: np.ndarray, min_samples: int, backend_name: str) -> Any:
    """HDBSCAN's sample-then-assign rule (:func:`gpuseg.cluster.density.reachability_labels`)
    for a block of users."""
    backend = worker_backend(backend_name)
    xp = backend.xp
    if block.shape[0] == 0:
        return xp.empty(0, dtype=xp.int64)
    neighbours = backend.NearestNeighbors(n_neighbors=min_samples).fit(xp.asarray(fitted))
    return reachability_labels(block, neighbours, xp.asarray(core), xp.asarray(fit_labels),
                               xp.asarray(scale), min_samples, backend)


def umap_place(block: Any, reducer: Any) -> Any:
    """A fitted UMAP's coordinates for a block of new users (umap-learn, on the CPU)."""
    if block.shape[0] == 0:
        return np.empty((0, 2))
    return np.asarray(reducer.transform(block), dtype=np.float64)


# -- per-segment sums --------------------------------------------------------------------------
def segment_moments(block: Any, labels: Any, k: int, backend_name: str) -> np.ndarray:
    """Per-segment feature sums and user counts of a block, shape (k, p + 1) on the host."""
    backend = worker_backend(backend_name)
    xp = backend.xp
    sums, counts = segment_sums(block, labels.astype(xp.int64), k, xp=xp)
    return backend.to_numpy(xp.concatenate([sums, counts[:, None]], axis=1), np.float64)


def partition_activity(part: PartitionFeatures, labels: Any, k: int,
                       backend_name: str) -> np.ndarray:
    """Orders per segment x weekday x hour of one partition, with its users' labels."""
    backend = worker_backend(backend_name)
    user_ids = backend.asarray(part.table.index, dtype="int64")
    counts = history_heatmap(part.history, user_ids, labels, k, backend)
    return backend.to_numpy(counts, np.int64)
