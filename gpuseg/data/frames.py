"""Tables already in memory (pandas, cuDF or polars frames), validated as a data set's tables.

For analysts who start in a notebook: :func:`validate_frames` (behind
:meth:`InstacartData.from_frames <gpuseg.data.tables.InstacartData.from_frames>`) takes the five
tables of the Instacart layout as dataframes and puts them through exactly the
checks and cleaning a folder of files gets (:func:`gpuseg.data.read.read_instacart_sources`),
so a bad value is reported the same way, naming the table, the column and the
first bad row. Each frame is handed over as an Arrow table: pandas through
``pyarrow.Table.from_pandas``, cuDF and polars through their ``to_arrow``; the
checks run on the host, like a file's.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import DataValidationError
from .checks import DataCleaningWarning
from .read import read_arrow_table, read_instacart_sources

#: Argument name -> the table of the Kaggle layout it stands for.
FRAME_TABLES = {"orders": "orders", "order_products": "order_products__prior",
                "products": "products", "aisles": "aisles", "departments": "departments"}


@dataclass(frozen=True)
class _FrameSource:
    """One in-memory table, named in messages by the argument it was passed as."""

    argument: str
    data: pa.Table

    @property
    def label(self) -> str:
        return self.argument

    @property
    def name(self) -> str:
        return self.argument

    def read(self, table: str) -> dict[str, Any]:
        return read_arrow_table(self.data, table, self.argument)


def as_arrow(frame: Any, name: str) -> pa.Table:
    """A pandas, cuDF or polars dataframe (or an Arrow table) as an Arrow table, index dropped.

    Raises
    ------
    DataValidationError
        ``frame`` is not a table (a Series, a list), has a column name twice,
        or holds a column Arrow cannot convert; the message names ``name``.
    """
    table_like = isinstance(frame, pa.Table) or hasattr(frame, "columns")
    if type(frame).__name__ == "Series" or not table_like:
        raise DataValidationError(
            f"{name}: expected a pandas, cuDF or polars DataFrame or a pyarrow Table "
            f"(got {type(frame).__module__.split('.')[0]}.{type(frame).__name__})")
    names = [str(column) for column in
             (frame.column_names if isinstance(frame, pa.Table) else frame.columns)]
    repeated = next((column for i, column in enumerate(names) if column in names[:i]), None)
    if repeated is not None:
        raise DataValidationError(f"{name}: column {repeated!r} appears twice; each column name "
                                  "must be unique")
    if isinstance(frame, pa.Table):
        return frame
    module = type(frame).__module__.split(".")[0]
    if module == "pandas":
        return _pandas_as_arrow(frame, name)
    if module == "cudf":
        # The checks run on the host, as they do for files.
        return frame.to_arrow(preserve_index=False)
    # polars, and other Arrow-backed frames
    return pa.table(frame.to_arrow())


def _pandas_as_arrow(frame: Any, name: str) -> pa.Table:
    """A pandas frame as Arrow; an object column of mixed types goes over as text.

    Arrow refuses a column holding, say, integers and strings; as text, the
    loader's checks read each value as a file's (``"7"`` is a number) and name
    the row of one that is not.
    """
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    mixed = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        try:
            pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            mixed[column] = values.map(lambda value: value if pd.isna(value) else str(value))
    try:
        return pa.Table.from_pandas(frame.assign(**mixed), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError) as exc:
        raise DataValidationError(f"{name}: cannot be read as a table "
                                  f"({' '.join(str(exc).split())[:200]})") from None


@dataclass(frozen=True)
class ValidatedFrames:
    """Five tables checked and cleaned as files are, on the host (pandas).

    Attributes
    ----------
    frames : dict of str to pandas.DataFrame
        ``orders``, ``order_products``, ``products``, ``aisles``, ``departments``.
    cleaning : dict of str to int
        Dropped-row counts by reason.
    fingerprint : str
        A digest of the validated contents.
    """

    frames: dict[str, Any]
    cleaning: dict[str, int]
    fingerprint: str


def validate_frames(*, orders: Any, order_products: Any, products: Any, aisles: Any,
                    departments: Any) -> ValidatedFrames:
    """Validate and clean five in-memory tables (pandas, cuDF, polars or Arrow).

    Parameters
    ----------
    orders, products, aisles, departments : DataFrame
        pandas, cuDF or polars frames (or pyarrow Tables) with the columns of
        the Kaggle files of the same names; extra columns are ignored.
    order_products : DataFrame
        The order-product rows (Kaggle's ``order_products__prior``, with the
        ``__train`` rows appended if wanted).

    Returns
    -------
    ValidatedFrames
        The tables :func:`gpuseg.data.load_instacart` would return for the
        same rows, on the host, with the cleaning counts and a digest of the
        validated contents.

    Raises
    ------
    DataValidationError
        A missing column or a bad value, naming the argument, the column and
        the first bad row (0-based row of the frame + 1).
    """
    import warnings

    given = {"orders": orders, "order_products": order_products, "products": products,
             "aisles": aisles, "departments": departments}
    sources = {FRAME_TABLES[name]: _FrameSource(name, as_arrow(frame, name))
               for name, frame in given.items()}
    host, cleaning, messages = read_instacart_sources(sources)
    for message in messages:
        warnings.warn(message, DataCleaningWarning, stacklevel=2)
    return ValidatedFrames(frames=host, cleaning=cleaning, fingerprint=_digest(host))


def _digest(frames: dict[str, Any]) -> str:
    """A stable digest of the validated tables' contents (their columns' bytes)."""
    digest = hashlib.sha256()
    for name in sorted(frames):
        for column in frames[name].columns:
            digest.update(f"{name}.{column}".encode())
            values = frames[name][column].to_numpy()
            if values.dtype.kind in "biuf":
                digest.update(np.ascontiguousarray(values).tobytes())
            else:
                digest.update("\x1f".join(map(str, values)).encode())
    return digest.hexdigest()[:16]
