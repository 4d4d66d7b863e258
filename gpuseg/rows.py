"""Where a run's per-user rows live, and the two ways a stage touches every one of them.

A run holds a few per-user arrays (the features, their scaled and projected
forms, labels, memberships, map coordinates): *columns*, one row per user in
the same order everywhere. A :class:`RowSource` keeps them where the run
computes (one process: backend arrays; across Dask workers: dask arrays whose
blocks stay on the workers, :class:`gpuseg.distributed.rows.DaskRows`) and
offers the only operations the stages need:

- :meth:`~RowSource.map`: a block function applied to every user's rows (a new
  column), e.g. standardising, projecting, assigning to the nearest centre;
- :meth:`~RowSource.sum`: a block function's host arrays summed over the
  blocks, e.g. column moments, the Gram matrix, per-segment sums;
- :meth:`~RowSource.take`: the rows of a seeded sample gathered into one backend
  array, for the stages fitted on a sample;
- :meth:`~RowSource.host`: a whole column on the host (labels for the result).

A block function is a plain top-level function ``fn(backend, *blocks,
**params)``: the blocks of the columns it is given (the same users' rows of
each), the backend to compute with, and small host parameters (a fitted model,
centres). The in-memory source calls it once on the whole arrays, so the
single-process code is the block code.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import GpusegError

if TYPE_CHECKING:
    from .backend import Array, Backend
    from .data.tables import InstacartData

#: A per-user array of a row source: a backend array in one process, a dask array on Dask.
Column = Any
#: ``fn(backend, *blocks, **params)``: a block's result (map) or its host partial sums (sum).
BlockFunction = Callable[..., Any]


class RowSource(Protocol):
    """The users of a run and their per-user columns, wherever they are held.

    Attributes
    ----------
    backend : Backend
        What the client (and every worker) computes with.
    n_users : int
        Rows of every column.
    """

    backend: Backend
    n_users: int

    def map(self, fn: BlockFunction, *columns: Column, width: int | None = None,
            dtype: Any = np.float64, offsets: bool = False, **params: Any) -> Column:
        """``fn`` over every block of ``columns``: a new column of ``width`` values per user
        (``None``: one value per user). With ``offsets``, ``fn`` also gets ``first_row``, the
        position of the block's first user among every user."""

    def sum(self, fn: BlockFunction, *columns: Column, **params: Any) -> np.ndarray:
        """The host arrays ``fn`` returns for each block of ``columns``, summed."""

    def take(self, column: Column, rows: np.ndarray | None) -> Array:
        """Rows ``rows`` (sorted positions; ``None``: all) of ``column`` as one backend array."""

    def host(self, column: Column, dtype: Any = None) -> np.ndarray:
        """Every user's values of ``column`` on the host."""

    def persist(self, column: Column) -> Column:
        """``column`` computed and held where the rows live (for columns read many times)."""

    def ordering_heatmap(self, labels: Column, k: int) -> np.ndarray:
        """Orders per segment x weekday x hour (k, 7, 24) of every user's order history."""

    def histories(self, user_ids: np.ndarray) -> InstacartData | None:
        """The orders and order products of ``user_ids``, with the catalog, in this process;
        ``None`` for rows without an order history (a feature table alone)."""


class InMemoryRows:
    """Every user's rows in this process, as backend arrays: each block is the whole column.

    Parameters
    ----------
    backend : Backend
    n_users : int
    history : callable, optional
        ``history(labels, k)``: the ordering heatmap of the loaded orders
        (:func:`gpuseg.activity.ordering_heatmap` over the data set's tables);
        ``None`` for rows without an order history (a feature table alone).
    histories : callable, optional
        ``histories(user_ids)``: those users' part of the loaded data set.
    """

    def __init__(self, backend: Backend, n_users: int,
                 history: Callable[[Any, int], Any] | None = None,
                 histories: Callable[[np.ndarray], InstacartData] | None = None) -> None:
        self.backend = backend
        self.n_users = n_users
        self._history = history
        self._histories = histories

    def map(self, fn: BlockFunction, *columns: Column, width: int | None = None,
            dtype: Any = np.float64, offsets: bool = False, **params: Any) -> Column:
        if offsets:
            params["first_row"] = 0
        return fn(self.backend, *columns, **params)

    def sum(self, fn: BlockFunction, *columns: Column, **params: Any) -> np.ndarray:
        return np.asarray(fn(self.backend, *columns, **params))

    def take(self, column: Column, rows: np.ndarray | None) -> Array:
        return column if rows is None else column[self.backend.asarray(rows)]

    def host(self, column: Column, dtype: Any = None) -> np.ndarray:
        return self.backend.to_numpy(column, dtype)

    def persist(self, column: Column) -> Column:
        return column

    def ordering_heatmap(self, labels: Column, k: int) -> np.ndarray:
        if self._history is None:
            raise GpusegError("these rows carry no order history to count orders from")
        return self.backend.to_numpy(self._history(labels, k), np.int64)

    def histories(self, user_ids: np.ndarray) -> InstacartData | None:
        return None if self._histories is None else self._histories(user_ids)
