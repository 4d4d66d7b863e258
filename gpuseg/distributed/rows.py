"""The Dask row source: every user's rows in partition blocks on the workers.

A column is a dask array whose blocks are the partitions' users (partitions
where nobody reaches ``min_orders`` hold no block). :meth:`DaskRows.map` and
:meth:`DaskRows.sum` run a block function on each block where it lives; the
function's parameters (a fitted model, centres) are one task of the graph that
every block's task reads, rather than a copy in each. Only what is K-, feature- or
sample-sized comes to the client, or one value per user when the run's result
needs it (labels, coordinates).
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.tables import InstacartData
from ..features import no_users_selected
from ..rows import BlockFunction, Column
from . import tasks

if TYPE_CHECKING:
    from ..backend import Array, Backend
    from ..data.partitions.source import PartitionedSource


#: Block parameters from this size are scattered rather than sent in the graph (Dask warns
#: about graphs from 10 MB).
SCATTER_FROM_BYTES = 4 << 20


class DaskRows:
    """Columns held as dask arrays of partition blocks (see the module docstring).

    Parameters
    ----------
    client : distributed.Client
    backend : Backend
        The client's backend; each worker builds the backend of the same name.
    chunks : tuple of int
        Users per block, in row order.
    parts : list of Future
        Each block's :class:`~gpuseg.distributed.tasks.PartitionOrders` (its
        order history counts the segments' ordering times).
    """

    def __init__(self, client: Any, backend: Backend, chunks: tuple[int, ...],
                 parts: Sequence[Any], source: PartitionedSource | None = None,
                 catalog: Any = None) -> None:
        self.client = client
        self.source = source
        self.catalog = catalog
        self.backend = backend
        self.chunks = chunks
        self.parts = list(parts)
        self.n_users = int(sum(chunks))
        self.first_rows = tuple(int(s) for s in np.cumsum((0,) + chunks[:-1]))
        # Scattered parameters, held as long as the rows (a column may be recomputed later).
        self._scattered: list[Any] = []

    # -- the row-source operations -----------------------------------------------------------
    def map(self, fn: BlockFunction, *columns: Column, width: int | None = None,
            dtype: Any = np.float64, offsets: bool = False, **params: Any) -> Column:
        import dask.array as da

        # Blocks of whole rows, every column two-dimensional so that map_blocks lines them up
        # by row; a name of its own for every map (two maps must never share a task name).
        matrices = [column if column.ndim == 2 else column[:, None] for column in columns]
        matrices = [m if len(m.chunks[1]) == 1 else m.rechunk({1: -1}) for m in matrices]
        mapped = da.map_blocks(
            tasks.run_block, *matrices, self._shared(params), fn=fn,
            backend_name=self.backend.name, flat=tuple(c.ndim == 1 for c in columns),
            offsets=offsets, dtype=dtype, chunks=(self.chunks, (width or 1,)),
            meta=self._meta(2, dtype), name=f"{fn.__name__}-{uuid.uuid4().hex}")
        return mapped if width is not None else mapped[:, 0]

    def sum(self, fn: BlockFunction, *columns: Column, **params: Any) -> np.ndarray:
        import dask

        shared = self._shared(params)
        blocks = [self._blocks(column) for column in columns]
        name = f"{fn.__name__}-{uuid.uuid4().hex}"
        pieces = [dask.delayed(tasks.sum_block)(fn, self.backend.name, shared,
                                                *(b[i] for b in blocks), dask_key_name=(name, i))
                  for i in range(len(self.chunks))]
        total = dask.delayed(tasks.add_up)(pieces, dask_key_name=f"{name}-sum")
        return np.asarray(total.compute(), dtype=np.float64)

    def take(self, column: Column, rows: np.ndarray | None) -> Array:
        picked = column if rows is None else column[rows]
        return self.backend.asarray(picked.compute())

    def host(self, column: Column, dtype: Any = None) -> np.ndarray:
        return self.backend.to_numpy(column.compute(), dtype)

    def persist(self, column: Column) -> Column:
        from distributed import wait

        persisted = self.client.persist(column)
        wait(persisted)
        return persisted

    def ordering_heatmap(self, labels: Column, k: int) -> np.ndarray:
        import dask

        label_blocks = self._blocks(labels)
        name = f"activity-{uuid.uuid4().hex}"
        pieces = [dask.delayed(tasks.partition_activity)(part, block, k, self.backend.name,
                                                         dask_key_name=(name, i))
                  for i, (part, block) in enumerate(zip(self.parts, label_blocks))]
        total = dask.delayed(tasks.add_up)(pieces, dask_key_name=f"{name}-sum")
        return np.asarray(total.compute(), dtype=np.int64)

    def histories(self, user_ids: np.ndarray) -> InstacartData | None:
        import pandas as pd

        if self.source is None or self.catalog is None:
            return None
        pieces = self.client.gather(self.client.map(
            tasks.partition_histories, range(self.source.n_partitions), source=self.source,
            catalog=self.catalog, user_ids=np.asarray(user_ids, dtype=np.int64)))
        frames = {"orders": pd.concat([p[0] for p in pieces], ignore_index=True),
                  "order_products": pd.concat([p[1] for p in pieces], ignore_index=True),
                  **self.client.gather(self.catalog)}
        return InstacartData(**{name: self.backend.from_host(frame)
                                for name, frame in frames.items()},
                             source=str(self.source.folder))

    # -- helpers -----------------------------------------------------------------------------
    def _blocks(self, column: Column) -> list[Any]:
        """The delayed blocks of a column, one per partition block, whole rows each."""
        if column.ndim == 2 and len(column.chunks[1]) > 1:
            column = column.rechunk({1: -1})
        # Unoptimised: the persisted blocks keep their keys rather than being fused under new ones.
        return list(column.to_delayed(optimize_graph=False).ravel())

    def _shared(self, params: dict[str, Any]) -> Any:
        """Block parameters read by every block's task, sent to the cluster once.

        Small ones (means, centres, a mixture) are one task of the graph: a task
        is recomputed on another worker when its worker dies, and so is every
        block that needs it (a lazy column, such as the standardised features,
        reads its parameters long after its map). Large ones (a fitted map, a
        density fit), which would make the graph itself large, are scattered to
        every worker: the scheduler's Active Memory Manager then keeps a single
        replica, which a dying worker takes with it; the stage that used it is
        run again (:meth:`gpuseg.distributed.session.DaskSession.run`).
        """
        import dask

        if not params:
            return {}
        # Measured as pickled: Dask's sizeof takes a fitted object for a few dozen bytes.
        shared = tasks.SharedParams.of(params)
        if shared.nbytes < SCATTER_FROM_BYTES:
            return dask.delayed(shared, pure=True)
        future = self.client.scatter([shared], broadcast=True, hash=False)[0]
        self._scattered.append(future)
        return future

    def _meta(self, ndim: int, dtype: Any) -> Any:
        return self.backend.xp.empty((0,) * ndim, dtype=dtype)


def partition_rows(client: Any, backend: Backend, source: PartitionedSource, catalog: Any, *,
                   min_orders: int, feature_names: Sequence[str]
                   ) -> tuple[DaskRows, Column, np.ndarray, list[tasks.PartitionSummary]]:
    """Map :func:`~gpuseg.distributed.tasks.partition_features` over the partitions.

    Returns the row source, every user's features (a persisted column), their
    user ids (host) and each partition's summary.

    Raises
    ------
    GpusegError
        No user of any partition has ``min_orders`` orders with products.
    DataValidationError
        A bad partition file, or a user in two partitions.
    """
    import dask.array as da
    from distributed import wait

    from ..data.partitions.source import check_users_disjoint

    name = backend.name
    parts = client.map(tasks.partition_features, range(source.n_partitions), source=source,
                       catalog=catalog, backend_name=name, min_orders=min_orders)
    summaries = client.gather(client.map(tasks.summary_of, parts))
    check_users_disjoint([s.user_ids for s in summaries], source)
    blocks = [i for i, s in enumerate(summaries) if s.n_users]
    if not blocks:
        raise no_users_selected(min_orders, sum(s.n_with_history for s in summaries))
    used = [parts[i] for i in blocks]
    matrices = client.map(tasks.matrix_of, used, backend_name=name)
    n_features = len(feature_names)
    meta = backend.xp.empty((0, 0), dtype=backend.xp.float64)
    X = da.concatenate([da.from_delayed(m, shape=(summaries[i].n_users, n_features),
                                        dtype=np.float64, meta=meta)
                        for m, i in zip(matrices, blocks)])
    X = client.persist(X)
    wait(X)
    # The run keeps each block's orders apart from its table: X holds the table's matrix, and
    # once these futures are the only others left the tables themselves are released.
    kept = client.map(tasks.orders_of, used, backend_name=name)
    user_ids = np.concatenate(client.gather(client.map(tasks.user_ids_of, kept,
                                                       backend_name=name)))
    rows = DaskRows(client, backend, tuple(summaries[i].n_users for i in blocks), kept,
                    source=source, catalog=catalog)
    return rows, X, user_ids, summaries
