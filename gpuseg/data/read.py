"""Read and check the tables of a data set: one file, or one frame in memory, at a time.

Files are streamed block by block through pyarrow: integer columns are parsed
as int64, range-checked and narrowed to the compact dtypes of
:mod:`gpuseg.data.schema` one block at a time, so peak memory stays near the
size of the compact tables rather than of the int64 ones. Every table goes
through the same checks (:mod:`gpuseg.data.checks`) whether a folder
(:func:`gpuseg.data.load.load_instacart`), a partition
(:mod:`gpuseg.data.partitions.source`) or a frame in memory
(:func:`gpuseg.data.frames.from_frames`) holds it.
"""
from __future__ import annotations

import csv
import difflib
import io
import logging
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import DataValidationError
from .checks import (
    BadValueError,
    check_order_numbers,
    check_references,
    check_unique,
    clean_order_products,
    compact_column,
)
from .schema import FILE_STEMS, FILE_SUFFIXES, OPTIONAL_FILES, ORDERS_OPTIONAL, TABLE_DTYPES

log = logging.getLogger(__name__)

#: Bytes per CSV block: about a million order-product rows, a few MB once compact.
_CSV_BLOCK_BYTES = 16 << 20
_PARQUET_BATCH_ROWS = 1 << 20
_ARROW_TYPES = {"int8": pa.int64(), "int16": pa.int64(), "int32": pa.int64(),
                "float32": pa.float64(), "str": pa.string()}
_ORDER_PRODUCT_TABLES = ("order_products__prior", "order_products__train")


def find_source_files(folder: Path) -> dict[str, Path]:
    """The file of each table in ``folder``, by logical table name.

    The first existing suffix of :data:`~gpuseg.data.schema.FILE_SUFFIXES` wins.

    Raises
    ------
    DataValidationError
        When a required table has no file, naming the file names looked for.
    """
    found = {}
    for table, stem in FILE_STEMS.items():
        candidates = [folder / f"{stem}{suffix}" for suffix in FILE_SUFFIXES]
        existing = [path for path in candidates if path.is_file()]
        if existing:
            found[table] = existing[0]
            if len(existing) > 1:
                log.info("using %s (ignoring %s)", existing[0].name,
                         ", ".join(path.name for path in existing[1:]))
        elif table not in OPTIONAL_FILES:
            raise DataValidationError(
                f"{folder}: no {stem} file; expected one of "
                f"{', '.join(path.name for path in candidates)}")
    return found


class TableSource(Protocol):
    """Where one table's rows come from: a file, or a frame already in memory."""

    @property
    def label(self) -> str:
        """How messages name it in full (a file's path)."""
        ...

    @property
    def name(self) -> str:
        """How messages name it in short (a file's name)."""
        ...

    def read(self, table: str) -> dict[str, Any]:
        """The table's required columns, checked and compact (see :func:`read_table`)."""
        ...


@dataclass(frozen=True)
class FileSource:
    """A table's file; messages name it by its path, and in short by ``short_name``.

    ``short_name`` defaults to the file's name; a partition file
    (:mod:`gpuseg.data.partitions.source`) is named by its path inside the folder.
    """

    path: Path
    short_name: str | None = None

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name if self.short_name is None else self.short_name

    def read(self, table: str) -> dict[str, Any]:
        return read_table(self.path, table)


def read_instacart_folder(files: Mapping[str, Path],
                          ) -> tuple[dict[str, pd.DataFrame], dict[str, int], tuple[str, ...]]:
    """Read, validate and clean the files found by :func:`find_source_files`.

    See :func:`read_instacart_sources`, which this calls with one source per file.
    """
    return read_instacart_sources({table: FileSource(path) for table, path in files.items()})


def read_instacart_sources(sources: Mapping[str, TableSource],
                           ) -> tuple[dict[str, pd.DataFrame], dict[str, int], tuple[str, ...]]:
    """Read, validate and clean the tables of a data set, whatever holds them.

    Every table goes through the same checks whether it comes from a file or
    from a frame in memory (:func:`gpuseg.data.frames.from_frames`).

    Returns
    -------
    frames : dict of str to pandas.DataFrame
        ``orders``, ``order_products``, ``products``, ``aisles``, ``departments``.
    cleaning : dict of str to int
        Dropped-row counts by reason.
    messages : tuple of str
        The warning text of each non-zero drop.
    """
    orders = read_orders(sources["orders"])
    catalog = read_catalog_tables(sources)
    order_products, cleaning, messages = read_order_products(
        sources, order_ids=orders["order_id"], product_ids=catalog["products"]["product_id"],
        orders_file=sources["orders"].name, products_file=sources["products"].name)

    frames = {"orders": columns_frame(orders), "order_products": order_products,
              **{table: columns_frame(columns) for table, columns in catalog.items()}}
    return frames, cleaning, tuple(messages)


def read_orders(source: TableSource) -> dict[str, Any]:
    """The orders table's columns, with unique order ids and each user's order numbers unique."""
    orders = source.read("orders")
    check_unique(orders["order_id"], column="order_id", file=source.label)
    check_order_numbers(orders["user_id"], orders["order_number"], file=source.label)
    return orders


def read_catalog_tables(sources: Mapping[str, TableSource]) -> dict[str, dict[str, Any]]:
    """The columns of ``products``, ``aisles`` and ``departments`` (in that order), checked.

    Ids are unique in each table, and every product's aisle and department exist.
    """
    products = sources["products"].read("products")
    check_unique(products["product_id"], column="product_id", file=sources["products"].label)
    aisles = sources["aisles"].read("aisles")
    check_unique(aisles["aisle_id"], column="aisle_id", file=sources["aisles"].label)
    departments = sources["departments"].read("departments")
    check_unique(departments["department_id"], column="department_id",
                 file=sources["departments"].label)
    check_references(products["aisle_id"], aisles["aisle_id"], column="aisle_id",
                     file=sources["products"].label, target=sources["aisles"].name)
    check_references(products["department_id"], departments["department_id"],
                     column="department_id", file=sources["products"].label,
                     target=sources["departments"].name)
    return {"products": products, "aisles": aisles, "departments": departments}


def read_order_products(sources: Mapping[str, TableSource], *, order_ids: np.ndarray,
                        product_ids: np.ndarray, orders_file: str, products_file: str,
                        ) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """The ``order_products__*`` tables in ``sources``, concatenated and cleaned.

    What :func:`gpuseg.data.checks.clean_order_products` returns; its
    messages name each table by its source's ``name``.
    """
    parts, pieces = [], []
    for table in _ORDER_PRODUCT_TABLES:
        if table in sources:
            piece = sources[table].read(table)
            parts.append((sources[table].name, len(piece["order_id"])))
            pieces.append(piece)
    del piece
    columns = _concatenate(pieces)
    del pieces
    return clean_order_products(columns, order_ids=order_ids, product_ids=product_ids,
                                parts=parts, orders_file=orders_file,
                                products_file=products_file)


def read_table(path: Path, table: str) -> dict[str, Any]:
    """One file's required columns, checked and compact.

    Parameters
    ----------
    path : Path
        A ``.csv``, ``.csv.zip``, ``.csv.gz`` or ``.parquet`` file.
    table : str
        Its logical name (a key of :data:`~gpuseg.data.schema.TABLE_DTYPES`).

    Returns
    -------
    dict of str to numpy.ndarray or pyarrow.ChunkedArray
        Numeric columns as numpy arrays of their compact dtype, text columns
        as pyarrow string arrays; extra columns of the file are not read. An
        optional table (``order_products__train``) whose file has a header but
        no rows gives empty columns.

    Raises
    ------
    DataValidationError
        An empty or unreadable file, a missing column, a malformed row or a
        bad value (naming the column and the first bad row).
    """
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the file is empty")
    parquet = path.name.endswith(".parquet")
    spec = _table_spec(table, _parquet_columns(path) if parquet else _csv_header(path), str(path))
    if parquet:
        chunks = _compact(_parquet_batches(path, spec), spec, str(path))
    else:
        try:
            chunks = _compact(_csv_batches(path, spec, as_text=False), spec, str(path))
        except _NeedsText:
            # pyarrow's int64 parser rejects "7.0" and names neither the row nor the value
            # of what it rejects; reading the columns as text accepts the one, names the other.
            chunks = _compact(_csv_batches(path, spec, as_text=True), spec, str(path))
    return _columns(chunks, spec, table, str(path))


def read_arrow_table(data: pa.Table, table: str, label: str) -> dict[str, Any]:
    """:func:`read_table` for rows already in memory as an Arrow table, named ``label``."""
    spec = _table_spec(table, data.column_names, label)
    batches = data.select(list(spec)).to_batches(max_chunksize=_PARQUET_BATCH_ROWS)
    return _columns(_compact(iter(batches), spec, label), spec, table, label)


def _table_spec(table: str, names: list[str], label: str) -> dict[str, str]:
    """The columns to read and their compact dtypes; refuses a table that lacks one."""
    spec = dict(TABLE_DTYPES[table])
    missing = [column for column in spec if column not in names]
    if missing:
        raise DataValidationError(
            f"{label}: missing column(s) {', '.join(map(repr, missing))} "
            f"(it has: {', '.join(names)}){_header_hint(missing, names, spec)}")
    if table == "orders":
        spec.update({column: "str" for column in ORDERS_OPTIONAL if column in names})
    return spec


def _columns(chunks: dict[str, list], spec: Mapping[str, str], table: str,
             label: str) -> dict[str, Any]:
    """The checked chunks joined into one column each; an empty required table is refused."""
    if not chunks[next(iter(spec))]:
        if table in OPTIONAL_FILES:
            # An optional file with a header only is the same as no file: no rows to add.
            log.info("%s has a header but no data rows; it adds no rows", label)
            return {column: np.empty(0, dtype=dtype) for column, dtype in spec.items()}
        raise DataValidationError(f"{label}: the file has a header but no data rows")
    columns = {column: _join(chunks.pop(column)) for column in list(chunks)}
    # Arrow's allocator keeps the freed int64 blocks for reuse; numpy cannot use them.
    pa.default_memory_pool().release_unused()
    return columns


class _NeedsText(Exception):
    """A typed CSV read could not convert a value; the file is read again as text."""


def _compact(batches: Iterator[pa.RecordBatch], spec: Mapping[str, str],
             label: str) -> dict[str, list]:
    chunks: dict[str, list] = {column: [] for column in spec}
    first_row = 1
    for batch in batches:
        if batch.num_rows == 0:
            continue
        bad = []
        for column, dtype in spec.items():
            try:
                chunks[column].append(compact_column(batch.column(column), column=column,
                                                     dtype=dtype, file=label,
                                                     first_row=first_row))
            except BadValueError as exc:
                bad.append(exc)
        if bad:
            # The file's first bad row, whichever column holds it (ties: the first column).
            raise min(bad, key=lambda exc: exc.row) from None
        first_row += batch.num_rows
    return chunks


def _join(pieces: list) -> Any:
    if isinstance(pieces[0], np.ndarray):
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return pa.chunked_array(pieces, type=pa.string())


def _concatenate(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    """Column-wise concatenation that frees each input column once it is copied."""
    if len(pieces) == 1:
        return pieces.pop()
    return {column: np.concatenate([piece.pop(column) for piece in pieces])
            for column in list(pieces[0])}


def columns_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """A pandas frame of checked columns (the optional order columns dictionary-encoded)."""
    data = {}
    for name, column in columns.items():
        if name in ORDERS_OPTIONAL:
            labels = pc.dictionary_encode(column).to_pandas()
            # Sorted categories give the same codes whatever order the file lists its rows in.
            data[name] = labels.cat.reorder_categories(sorted(labels.cat.categories))
        elif isinstance(column, pa.ChunkedArray):
            data[name] = column.to_pandas()
        else:
            data[name] = column
    # copy=False keeps each numpy column as its own block instead of consolidating copies.
    return pd.DataFrame(data, copy=False)


def _parquet_columns(path: Path) -> list[str]:
    try:
        return pq.ParquetFile(path).schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable_parquet(path, exc) from None


def _parquet_batches(path: Path, spec: Mapping[str, str]) -> Iterator[pa.RecordBatch]:
    try:
        yield from pq.ParquetFile(path).iter_batches(batch_size=_PARQUET_BATCH_ROWS,
                                                     columns=list(spec))
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable_parquet(path, exc) from None


def _unreadable_parquet(path: Path, exc: BaseException) -> DataValidationError:
    return DataValidationError(f"{path}: not a readable parquet file ({_one_line(exc)})")


def _csv_header(path: Path) -> list[str]:
    with ExitStack() as stack:
        stream = _open_csv_stream(path, stack)
        head = b""
        try:
            while b"\n" not in head:
                block = stream.read(1 << 16)
                if not block:
                    break
                head += block
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataValidationError(f"{path}: cannot read ({_one_line(exc)})") from None
    if not head.strip():
        raise DataValidationError(f"{path}: the file is empty")
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    return next(csv.reader([line]))


def _csv_batches(path: Path, spec: Mapping[str, str], *, as_text: bool) -> Iterator[pa.RecordBatch]:
    types = {column: pa.string() if as_text else _ARROW_TYPES[dtype]
             for column, dtype in spec.items()}
    convert = pacsv.ConvertOptions(include_columns=list(spec), column_types=types,
                                   strings_can_be_null=as_text)
    with ExitStack() as stack:
        stream = _open_csv_stream(path, stack)
        try:
            reader = pacsv.open_csv(stream, convert_options=convert,
                                    read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES))
            yield from reader
        except pa.ArrowInvalid as exc:
            if "invalid UTF8" in str(exc):
                raise DataValidationError(
                    f"{path}{_csv_problem(path, spec)}: not UTF-8 text; re-save the file as UTF-8 "
                    f"({_one_line(exc)})") from None
            if "conversion error" in str(exc) and not as_text:
                raise _NeedsText() from None
            raise DataValidationError(
                f"{path}: malformed CSV{_csv_problem(path, spec)} ({_one_line(exc)})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataValidationError(f"{path}: cannot read ({_one_line(exc)})") from None


def _header_hint(missing: list[str], names: list[str], spec: Mapping[str, str]) -> str:
    """Why required columns may look missing: another delimiter, or a renamed column."""
    if len(names) == 1:
        for delimiter, word in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if delimiter in names[0]:
                return (f"; the header looks {word}-separated, but gpuseg reads comma-separated "
                        "files: re-export it with commas")
    # Only the file's other columns can be a required one under another name, each once.
    unused = {name.lower().strip(): name for name in names if name not in spec}
    renamed = []
    for column in missing:
        close = difflib.get_close_matches(column, list(unused), n=1, cutoff=0.8)
        if close:
            renamed.append(f"{unused.pop(close[0])!r} to {column!r}")
    return f"; rename {', '.join(renamed)}" if renamed else ""


def _csv_problem(path: Path, spec: Mapping[str, str]) -> str:
    """Where a CSV that pyarrow refused first breaks: ``", row N: ..."``, or ``""`` if not found.

    pyarrow's streaming reader does not report row numbers, so after it fails
    the file is read again with Python's csv module (same quoting rules) to
    find the first row with the wrong field count or bytes that are not UTF-8.
    Only the error path pays for this second read.
    """
    with ExitStack() as stack:
        stream = _open_csv_stream(path, stack)
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape",
                                newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, [])
            row_number = 0
            for row in reader:
                if not row:
                    continue  # pyarrow skips empty lines, and does not count them as rows
                row_number += 1
                if len(row) != len(header):
                    return (f", row {row_number}: expected {len(header)} fields, "
                            f"found {len(row)}")
                for column, cell in zip(header, row):
                    if column in spec and _has_undecodable_bytes(cell):
                        return f", column {column!r}, row {row_number}"
        except (csv.Error, OSError, EOFError, zipfile.BadZipFile):
            pass
    return ""


def _has_undecodable_bytes(cell: str) -> bool:
    # errors="surrogateescape" decodes each byte that is not UTF-8 to a lone surrogate.
    return any("\udc80" <= char <= "\udcff" for char in cell)


def _open_csv_stream(path: Path, stack: ExitStack) -> IO[bytes] | pa.NativeFile:
    """A binary stream of the CSV text, decompressing ``.csv.zip`` and ``.csv.gz``."""
    if path.name.endswith(".zip"):
        try:
            archive = stack.enter_context(zipfile.ZipFile(path))
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataValidationError(
                f"{path}: not a readable zip archive ({_one_line(exc)})") from None
        # Archives zipped on macOS carry resource-fork copies under __MACOSX/.
        members = [name for name in archive.namelist()
                   if name.lower().endswith(".csv") and not name.startswith("__MACOSX/")]
        if len(members) != 1:
            raise DataValidationError(
                f"{path}: expected exactly one .csv file inside the archive, found {len(members)}")
        return stack.enter_context(archive.open(members[0]))
    compression = "gzip" if path.name.endswith(".gz") else None
    try:
        return stack.enter_context(pa.input_stream(str(path), compression=compression))
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
