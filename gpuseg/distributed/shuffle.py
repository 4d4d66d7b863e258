"""``gpuseg partition``: any accepted input rewritten as partitions of whole users (a Dask shuffle).

Orders are bucketed by ``user_id % partitions``; product rows take their
order's bucket through a distributed join on ``order_id``; a Dask shuffle with
one output partition per bucket then puts each user's orders and product rows
into the same ``part-NNNNN.parquet`` of each folder. Workers hold a block of the
input at a time and Dask spills what does not fit, so memory is bounded by the
workers', not by the data. Values are checked with the loader's rules
(:func:`gpuseg.data.checks.compact_column`) block by block; an error names
the input file, the column and the row in the file.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cpu_fallback.dask_engine import CpuDaskEngine

from ..config import PipelineConfig, option, python_number
from ..data.checks import BadValueError, compact_column
from ..data.partitions.manifest import part_facts, write_manifest
from ..data.partitions.source import (
    CATALOG_TABLES,
    PARTITIONED_TABLES,
    PartitionedSource,
    find_partitioned,
    partition_file_name,
    read_catalog,
)
from ..data.partitions.write import partition_tables
from ..data.read import find_source_files
from ..data.schema import FILE_STEMS, ORDERS_OPTIONAL, TABLE_DTYPES
from ..errors import ConfigError, DataValidationError, GpusegError
from ..outputs import check_output, output_folder
from .client import dask_client

log = logging.getLogger(__name__)

#: Bytes of input text per Dask block when reading CSV.
CSV_BLOCK_BYTES = 64 << 20


class _BlockError(Exception):
    """A bad value in one block; the client turns its row in the block into the file's row.

    Built from plain values only, so that it survives the trip from a worker.
    """

    def __init__(self, file: str, table: str, block: int, row: int, message: str) -> None:
        super().__init__(file, table, block, row, message)
        self.file, self.table, self.block, self.row, self.message = (file, table, block, row,
                                                                     message)


def repartition(data: str | os.PathLike[str], out: str | os.PathLike[str], *, partitions: int,
                config: PipelineConfig, overwrite: bool = False) -> Path:
    """Write ``data`` in the partitioned layout with ``partitions`` partitions.

    Parameters
    ----------
    data : path
        A folder in the Kaggle layout (CSV, compressed CSV or parquet) or
        already partitioned.
    out : path
        Folder to create; built beside itself and renamed into place at the end.
    partitions : int
        Number of partitions (at least 1).
    config : PipelineConfig
        ``workers`` (a local cluster) or ``scheduler`` (a running one).
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    DataValidationError
        A missing file or a bad value (naming the file, column and row).
    ConfigError
        Bad arguments.
    OutputError
        ``out`` may not be written (:func:`gpuseg.outputs.check_output`): it
        exists and ``overwrite`` is false, or it is, holds or lies inside ``data``.
    """
    partitions = python_number(partitions)
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise ConfigError(f"--partitions must be an integer >= 1 (got {partitions!r})")
    folder = Path(data).expanduser().resolve()
    if not folder.is_dir():
        raise DataValidationError(f"{folder}: the source folder does not exist")
    # Refused before any reading; the folder is then built beside itself and renamed into place.
    sources = {option("data"): data}
    check_output(out, kind="dataset", force=overwrite, inputs=sources, force_name="overwrite")
    partitioned = find_partitioned(folder)
    if partitioned is not None:
        inputs = {table: [part[table] for part in partitioned.parts if table in part]
                  for table in ("orders", "order_products__prior", "order_products__train")}
        catalog_files = dict(partitioned.catalog)
    else:
        files = find_source_files(folder)
        inputs = {table: [files[table]] for table in ("orders", "order_products__prior",
                                                      "order_products__train")
                  if table in files}
        catalog_files = {table: files[table] for table in CATALOG_TABLES}
    catalog = read_catalog(PartitionedSource(folder=folder, catalog=catalog_files, parts=()))
    with output_folder(out, kind="dataset", force=overwrite, inputs=sources,
                       force_name="overwrite") as staging:
        for table in CATALOG_TABLES:
            pq.write_table(pa.Table.from_pandas(catalog[table], preserve_index=False),
                           staging / f"{FILE_STEMS[table]}.parquet")
        with dask_client(config, CpuDaskEngine()) as (client, _):
            try:
                written = _shuffle(client, inputs, staging, partitions, as_text=False)
            except _NeedsText:
                # pandas' number parser names neither the row nor the value it rejects (a
                # repeated header line, a word among numbers): read the columns as text, so that
                # the loader's checks name them, as the one-process loader does.
                for table in PARTITIONED_TABLES:
                    shutil.rmtree(staging / FILE_STEMS[table], ignore_errors=True)
                written = _shuffle(client, inputs, staging, partitions, as_text=True)
    log.info("wrote %d partitions (%d of the %d buckets of user_id %% %d hold users)",
             written, written, partitions, partitions)
    return Path(out)


def _shuffle(client: Any, inputs: dict[str, list[Path]], staging: Path, partitions: int, *,
             as_text: bool) -> int:
    """Bucket, shuffle and write the orders and product rows; the number of partitions written.

    Users are bucketed by ``user_id % partitions``; a bucket no user falls in is
    not written (an empty partition is no partition), so the buckets that hold
    users are numbered from 0 without gaps.
    """
    import dask.dataframe as dd

    with _reading(inputs["orders"], as_text):
        orders = _checked(inputs["orders"], "orders", as_text)
        # Held on the workers: read and checked once for the bucket count and every join below.
        orders = orders.assign(bucket=orders["user_id"] % partitions).persist()
        present = np.sort(np.asarray(orders["bucket"].unique().compute(), dtype=np.int64))
    if len(present) == 0:
        raise DataValidationError(f"{inputs['orders'][0]}: no orders to partition")
    dense = np.full(partitions, -1, dtype=np.int64)
    dense[present] = np.arange(len(present))
    orders = orders.assign(bucket=orders["bucket"].map_partitions(_renumbered, dense,
                                                                   meta=("bucket", "int64")))
    owners = orders[["order_id", "bucket"]]
    divisions = list(range(len(present) + 1))
    by_bucket = orders.set_index("bucket", divisions=divisions)
    _write(by_bucket, staging / FILE_STEMS["orders"], ["user_id", "order_number"])
    for table in ("order_products__prior", "order_products__train"):
        if table not in inputs:
            continue
        with _reading(inputs[table], as_text):
            rows = _checked(inputs[table], table, as_text)
            # A row whose order is unknown goes to partition 0, where loading it drops and counts
            # it (naming the partition file and row) as it would in the original layout.
            rows = dd.merge(rows, owners, on="order_id", how="left")
            rows = rows.assign(bucket=rows["bucket"].fillna(0).astype(np.int64))
            _write(rows.set_index("bucket", divisions=divisions), staging / FILE_STEMS[table],
                   ["order_id", "add_to_cart_order"])
    tables = partition_tables(staging)
    names = [partition_file_name(i) for i in range(len(present))]
    # Each worker reads back the files it can see; the client only writes the list.
    write_manifest(staging, client.gather(client.map(part_facts, [staging] * len(names), names,
                                                     tables=tables, pure=False)))
    return len(present)


def _renumbered(bucket: pd.Series, dense: np.ndarray) -> pd.Series:
    return pd.Series(dense[bucket.to_numpy()], index=bucket.index, name=bucket.name)


def _write(frame: Any, folder: Path, order: list[str]) -> None:
    """One parquet file per bucket, rows sorted within it."""
    folder.mkdir()
    ordered = frame.map_partitions(lambda part: part.sort_values(order, kind="stable"))
    ordered.to_parquet(str(folder), write_index=False, write_metadata_file=False,
                       name_function=partition_file_name)


class _NeedsText(Exception):
    """pandas could not parse a table's numbers; the shuffle is run again reading text."""


@contextmanager
def _reading(files: list[Path], as_text: bool) -> Iterator[None]:
    """Errors met reading ``files`` as one line naming the file (and the row, where known).

    A bad value the checks found names its row in the file (:func:`_located`);
    what pandas' parser rejects asks for a text read first (:class:`_NeedsText`),
    and then names the file.
    """
    try:
        yield
    except _BlockError as exc:
        raise _located(exc) from None
    except GpusegError:
        raise
    except (ValueError, TypeError) as exc:  # pandas' ParserError is a ValueError
        if not as_text:
            raise _NeedsText() from exc
        where = files[0] if len(files) == 1 else files[0].parent
        raise DataValidationError(f"{where}: not a table gpuseg can read "
                                  f"({' '.join(str(exc).split())[:200]})") from None


def _located(exc: _BlockError) -> DataValidationError:
    """The block's bad row as a row of its input file (counts the rows of the blocks before)."""
    before = 0
    if exc.block:
        # As text: counting lines must not stop at the value that made the error.
        lengths = _reader(Path(exc.file), exc.table, as_text=True).map_partitions(len).compute()
        before = int(np.asarray(lengths)[:exc.block].sum())
    return DataValidationError(exc.message.replace(f"row {exc.row}:", f"row {exc.row + before}:",
                                                   1))


def _checked(paths: list[Path], table: str, as_text: bool) -> Any:
    """The table's required columns, range-checked and compact, from one or more files."""
    import dask.dataframe as dd

    frames = []
    for path in paths:
        reader = _reader(path, table, as_text=as_text)
        frames.append(reader.map_partitions(_compact_block, table=table, file=str(path),
                                            meta=_meta(table)))
    return frames[0] if len(frames) == 1 else dd.concat(frames)


def _reader(path: Path, table: str, *, as_text: bool) -> Any:
    import dask.dataframe as dd

    columns = list(TABLE_DTYPES[table])
    if path.name.endswith(".parquet"):
        return dd.read_parquet(str(path), columns=columns)
    if path.name.endswith(".zip"):
        raise DataValidationError(
            f"{path}: gpuseg partition reads .csv, .csv.gz and .parquet; unzip the archive "
            "first (a zip archive cannot be split into blocks)")
    # Numbers as float64 keep empty fields (NaN) for the checks to report by row; as text, every
    # field reaches the checks (ten times slower: only when pandas has refused a number).
    dtypes = {c: ("float64" if d != "str" and not as_text else "object")
              for c, d in TABLE_DTYPES[table].items()}
    compressed = path.name.endswith(".gz")
    return dd.read_csv(str(path), usecols=columns, dtype=dtypes,
                       blocksize=None if compressed else CSV_BLOCK_BYTES)


def _compact_block(block: pd.DataFrame, *, table: str, file: str,
                   partition_info: dict | None = None) -> pd.DataFrame:
    """One block checked with the loader's rules and cast to the compact dtypes."""
    number = 0 if partition_info is None else int(partition_info["number"])
    columns = {}
    for column, dtype in TABLE_DTYPES[table].items():
        try:
            values = compact_column(pa.array(block[column].to_numpy(), from_pandas=True),
                                    column=column, dtype=dtype, file=file, first_row=1)
        except BadValueError as exc:
            raise _BlockError(file, table, number, exc.row, str(exc)) from None
        columns[column] = values if isinstance(values, np.ndarray) else values.to_pandas()
    return pd.DataFrame(columns)


def _meta(table: str) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="str" if dtype == "str" else dtype)
                         for column, dtype in TABLE_DTYPES[table].items()
                         if column not in ORDERS_OPTIONAL})
