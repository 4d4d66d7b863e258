"""The partitioned layout: parquet files that each hold whole users, and its validating reader.

A partitioned folder holds the small catalog tables as the Kaggle layout does
(``products``, ``aisles``, ``departments``) and one folder per large table,
``orders/``, ``order_products__prior/`` and (optional) ``order_products__train/``,
of parquet files named ``part-00000.parquet``, ``part-00001.parquet``, ... . The
files of one name across the folders form a partition: its orders, and every
product row of those orders. A user's orders all sit in one partition, so every
user's features can be computed from one partition alone
(:mod:`gpuseg.distributed` maps :func:`gpuseg.features.compute_features` over
them). ``gpuseg synth --partitions`` and ``gpuseg partition`` write this layout.

The layout is checked as a whole when it is found (:func:`find_partitioned`):
the same partitions in every table folder, numbered without gaps, and those
that ``partitions.json`` lists (:mod:`gpuseg.data.partitions.manifest`); a
missing or changed file is an error naming it, never a smaller data set.
Every file is checked with the loader's own rules (:func:`gpuseg.data.read.read_table`
and :mod:`gpuseg.data.checks`), so an error names the partition file, the
column and the row within that file. A product row whose order is not in its
own partition cannot be joined there: it is dropped and counted like any other
unknown order.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ...errors import DataValidationError, ResourceLimitError
from ..checks import CLEANING_KEYS, first_repeat
from ..read import FileSource, columns_frame, read_catalog_tables, read_order_products, read_orders
from ..schema import FILE_STEMS, FILE_SUFFIXES, OPTIONAL_FILES
from .manifest import Manifest, check_file, check_users, read_manifest

#: Tables split into partitions, in the order a partition lists them.
PARTITIONED_TABLES = ("orders", "order_products__prior", "order_products__train")
#: Tables every partition shares, as single files beside the partition folders.
CATALOG_TABLES = ("products", "aisles", "departments")
_PART_NAME = re.compile(r"part-([0-9]+)\.parquet")
#: Compact bytes per row once loaded (the dtypes of :mod:`gpuseg.data.schema`).
_ORDER_BYTES, _ORDER_PRODUCT_BYTES = 16, 11


def partition_file_name(index: int) -> str:
    """File name of partition ``index`` inside each partition folder."""
    return f"part-{index:05d}.parquet"


@dataclass(frozen=True)
class PartitionedSource:
    """The files of a partitioned folder.

    Attributes
    ----------
    folder : Path
    catalog : Mapping[str, Path]
        ``products``, ``aisles``, ``departments`` -> their file.
    parts : tuple of Mapping[str, Path]
        One per partition, in order: table -> file (``order_products__train``
        only where the layout has that table).
    manifest : Manifest or None
        What ``partitions.json`` records, verified as partitions are read;
        ``None`` for a layout written without one.
    """

    folder: Path
    catalog: Mapping[str, Path]
    parts: tuple[Mapping[str, Path], ...]
    manifest: Manifest | None = None

    @property
    def n_partitions(self) -> int:
        return len(self.parts)

    def files(self) -> dict[str, Path]:
        """Every file by a unique key (``table`` or ``table/part-N.parquet``), for cache stamps."""
        found = dict(self.catalog)
        for part in self.parts:
            found.update({f"{table}/{path.name}": path for table, path in part.items()})
        return found

    def rows(self) -> dict[str, int]:
        """Rows of the partitioned tables, summed over partitions, from the parquet footers."""
        totals = dict.fromkeys(PARTITIONED_TABLES, 0)
        for part in self.parts:
            for table, path in part.items():
                totals[table] += _parquet_rows(path)
        return totals


def find_partitioned(folder: Path) -> PartitionedSource | None:
    """The partitioned layout in ``folder``, checked as a whole; ``None`` without an ``orders/`` folder.

    Every table folder must hold the same partitions (``order_products__train``
    may be absent altogether), numbered from ``part-00000`` without a gap. A
    folder with a manifest (:mod:`gpuseg.data.partitions.manifest`) must also
    hold exactly the partitions it lists, each file of the size and row count
    recorded; each file's checksum is verified when its partition is read
    (:func:`read_partition`). A folder without one, written by an older gpuseg,
    gets the layout checks only.

    Raises
    ------
    DataValidationError
        A catalog file is missing, ``orders/`` holds no partition file, a
        partition is missing from a table or from every table, or a file
        differs from the manifest (naming the file).
    """
    if not (folder / "orders").is_dir():
        return None
    catalog = {}
    for table in CATALOG_TABLES:
        stem = FILE_STEMS[table]
        candidates = [folder / f"{stem}{suffix}" for suffix in FILE_SUFFIXES]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            raise DataValidationError(
                f"{folder}: no {stem} file beside the partition folders; expected one of "
                f"{', '.join(path.name for path in candidates)}")
        catalog[table] = existing[0]
    names, tables = _partition_names(folder)
    manifest = read_manifest(folder)
    parts = tuple({table: folder / FILE_STEMS[table] / name for table in tables} for name in names)
    if manifest is not None:
        _check_against(manifest, names, parts)
    return PartitionedSource(folder=folder, catalog=catalog, parts=parts, manifest=manifest)


def _partition_names(folder: Path) -> tuple[list[str], tuple[str, ...]]:
    """The partition file names in order, and the tables that have them; the layout checked whole."""
    found = {}
    for table in PARTITIONED_TABLES:
        table_folder = folder / FILE_STEMS[table]
        if table_folder.is_dir():
            found[table] = {path.name: path for path in table_folder.glob("part-*.parquet")}
    numbers: dict[int, str] = {}
    for files in found.values():
        for name, path in files.items():
            match = _PART_NAME.fullmatch(name)
            if match is None:
                raise DataValidationError(f"{path}: not a partition file name (part-NNNNN.parquet)")
            if numbers.setdefault(int(match.group(1)), name) != name:
                raise DataValidationError(f"{path}: partition {int(match.group(1))} has two "
                                          f"file names, {numbers[int(match.group(1))]} and {name}")
    if not found["orders"]:
        raise DataValidationError(
            f"{folder / 'orders'}: no partition files (part-00000.parquet, ...) in the folder")
    # The train rows are optional: a layout without them has no such folder (or an empty one).
    tables = tuple(table for table in PARTITIONED_TABLES
                   if table not in OPTIONAL_FILES or found.get(table))
    names = [numbers[number] for number in sorted(numbers)]
    for name in names:
        for table in tables:
            if name not in found.get(table, {}):
                present = next(t for t in tables if name in found.get(t, {}))
                raise DataValidationError(
                    f"{folder / FILE_STEMS[table] / name}: missing; every partition needs a file "
                    f"in each table folder, and {FILE_STEMS[present]}/{name} is there (an empty "
                    "file when a partition has no rows of a table)")
    gap = next((i for i, number in enumerate(sorted(numbers)) if number != i), None)
    if gap is not None:
        raise DataValidationError(
            f"{folder}: partition {partition_file_name(gap)} is missing from every table folder "
            f"(the files run from {names[0]} to {names[-1]}); partitions are numbered from "
            "part-00000 without gaps")
    return names, tables


def _check_against(manifest: Manifest, names: list[str],
                   parts: tuple[Mapping[str, Path], ...]) -> None:
    """The partitions found are those the manifest lists, each file of its recorded size and rows."""
    listed = list(manifest.parts)
    for name in listed:
        if name not in names:
            raise DataValidationError(
                f"{manifest.path.parent / 'orders' / name}: missing; {manifest.path.name} lists "
                f"{len(listed):,} partitions (a partition was deleted or not copied)")
    for name, part in zip(names, parts):
        if name not in manifest.parts:
            raise DataValidationError(
                f"{part['orders']}: not in {manifest.path.name}, which lists {len(listed):,} "
                "partitions; rewrite the layout with gpuseg partition")
        recorded = manifest.parts[name]["files"]
        for table, path in part.items():
            if table not in recorded:
                raise DataValidationError(f"{path}: not in {manifest.path.name}; rewrite the "
                                          "layout with gpuseg partition")
            check_file(path, recorded[table], manifest, checksum=False)
        for table in recorded:
            if table not in part:
                raise DataValidationError(
                    f"{manifest.path.parent / FILE_STEMS[table] / name}: missing; "
                    f"{manifest.path.name} records it")


def read_catalog(source: PartitionedSource) -> dict[str, pd.DataFrame]:
    """The validated catalog tables (products, aisles, departments) as pandas frames."""
    catalog = read_catalog_tables({table: FileSource(path)
                                   for table, path in source.catalog.items()})
    return {table: columns_frame(columns) for table, columns in catalog.items()}


@dataclass(frozen=True)
class Partition:
    """One partition's orders and joinable product rows, validated, as pandas frames."""

    orders: pd.DataFrame
    order_products: pd.DataFrame
    cleaning: Mapping[str, int]
    messages: tuple[str, ...]


def read_partition(source: PartitionedSource, index: int,
                   products: pd.DataFrame) -> Partition:
    """Read and validate partition ``index``; messages name its files and rows in them.

    Parameters
    ----------
    source : PartitionedSource
    index : int
        Position in ``source.parts``.
    products : pandas.DataFrame
        The catalog's products (:func:`read_catalog`), to drop unknown products.

    Raises
    ------
    DataValidationError
        A bad file, column or value, an order number repeated for a user, or
        a file whose bytes or users differ from the manifest.
    """
    # Messages name a partition file by its path inside the folder
    # (order_products__prior/part-00002.parquet): every table's folder has a file of its name.
    files = source.parts[index]
    recorded = None
    if source.manifest is not None:
        recorded = source.manifest.parts[files["orders"].name]
        for table, path in files.items():
            check_file(path, recorded["files"][table], source.manifest, checksum=True)
    sources = {table: FileSource(path, _relative(source, path)) for table, path in files.items()}
    orders = read_orders(sources["orders"])
    if recorded is not None and source.manifest is not None:
        check_users(files["orders"], len(pd.unique(orders["user_id"])), recorded["users"],
                    source.manifest)
    rows, cleaning, messages = read_order_products(
        sources, order_ids=orders["order_id"], product_ids=products["product_id"].to_numpy(),
        orders_file=sources["orders"].name, products_file=source.catalog["products"].name)
    return Partition(orders=columns_frame(orders), order_products=rows, cleaning=cleaning,
                     messages=tuple(messages))


def check_users_disjoint(user_ids: list[np.ndarray], source: PartitionedSource) -> None:
    """Raise when a user has orders in two partitions (the layout keeps each user in one).

    Parameters
    ----------
    user_ids : list of numpy.ndarray
        The distinct user ids of each partition's orders, in partition order.
    source : PartitionedSource
        For the file names in the message.
    """
    found = _first_repeat_across(user_ids)
    if found is None:
        return
    user, (first, _), (second, _) = found
    raise DataValidationError(
        f"user {user} has orders in both {source.parts[first]['orders']} and "
        f"{source.parts[second]['orders']}; each user's orders must sit in one partition "
        "(gpuseg partition rewrites a data set that way)")


def read_partitioned(source: PartitionedSource, available_bytes: int, where: str,
                     ) -> tuple[dict[str, pd.DataFrame], dict[str, int], tuple[str, ...]]:
    """Every partition in one process: what :func:`gpuseg.data.read.read_instacart_folder` returns.

    Refuses before reading when the compact tables alone would not fit in
    ``available_bytes``, naming ``--workers`` (the run that needs no process
    to hold them all).

    Parameters
    ----------
    source : PartitionedSource
    available_bytes : int
        Memory the tables may take where they are loaded.
    where : str
        That place, for the message (the backend's device).

    Raises
    ------
    ResourceLimitError
        The tables would not fit.
    DataValidationError
        A bad partition, or a user or an order id in two partitions.
    """
    rows = source.rows()
    n_product_rows = rows["order_products__prior"] + rows["order_products__train"]
    need = rows["orders"] * _ORDER_BYTES + n_product_rows * _ORDER_PRODUCT_BYTES
    if need > available_bytes:
        raise ResourceLimitError(
            f"{source.folder}: {n_product_rows:,} product rows in {source.n_partitions} "
            f"partitions need about {need / 2**30:.2f} GiB in one process but "
            f"{available_bytes / 2**30:.2f} GiB is available on {where}; run it across Dask "
            f"workers instead: gpuseg run --data {source.folder} --workers N "
            "(or --scheduler ADDRESS for a running cluster)")
    catalog = read_catalog(source)
    partitions = [read_partition(source, i, catalog["products"])
                  for i in range(source.n_partitions)]
    check_users_disjoint([p.orders["user_id"].unique() for p in partitions], source)
    _check_orders_unique([p.orders["order_id"].to_numpy() for p in partitions], source)
    frames = {
        "orders": pd.concat([p.orders for p in partitions], ignore_index=True),
        "order_products": pd.concat([p.order_products for p in partitions],
                                    ignore_index=True),
        **catalog,
    }
    cleaning = {key: sum(int(p.cleaning[key]) for p in partitions) for key in CLEANING_KEYS}
    messages = tuple(message for p in partitions for message in p.messages)
    return frames, cleaning, messages


def _check_orders_unique(order_ids: list[np.ndarray], source: PartitionedSource) -> None:
    """One process joins all partitions' rows, so an order id must be unique across them.

    ``order_ids`` holds each partition's order ids, in partition order.
    """
    found = _first_repeat_across(order_ids)
    if found is None:
        return
    order_id, first, second = found

    def where(part: int, row: int) -> str:
        return f"{source.parts[part]['orders']} row {row + 1}"

    raise DataValidationError(
        f"order_id {order_id} is in {where(*first)} and in {where(*second)}; "
        "order ids must be unique across partitions")


def _first_repeat_across(pieces: list[np.ndarray],
                         ) -> tuple[Any, tuple[int, int], tuple[int, int]] | None:
    """:func:`~gpuseg.data.checks.first_repeat` over ``pieces`` taken one after another.

    Returns
    -------
    tuple or None
        ``(value, (piece, row), (piece, row))``: the first value that an
        earlier one already holds, then where it first appears and where it
        repeats, each as the piece's index and the 0-based row within it;
        ``None`` when all values differ.
    """
    values = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)
    found = first_repeat(values)
    if found is None:
        return None
    repeat, first = found
    starts = np.cumsum([0, *(len(piece) for piece in pieces)])

    def locate(row: int) -> tuple[int, int]:
        piece = int(np.searchsorted(starts, row, side="right")) - 1
        return piece, row - int(starts[piece])

    return values[repeat], locate(first), locate(repeat)


def _relative(source: PartitionedSource, path: Path) -> str:
    return str(path.relative_to(source.folder))


def _parquet_rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: not a readable parquet file ({exc})") from None
