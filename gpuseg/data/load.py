"""Load the Instacart tables from a Kaggle-layout folder (or from Kaggle itself).

The tables are read and checked by :mod:`gpuseg.data.read` (a partitioned folder
by :mod:`gpuseg.data.partitions.source`); the cleaned tables are cached as
parquet (:mod:`gpuseg.data.cache`), and later loads read the cache.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import pandas as pd

from ..backend import Backend, capped
from ..errors import ConfigError, DataValidationError
from ..host import host_available_bytes
from .cache import cache_entry, file_stamps, fingerprint, read_cache, read_frames, write_cache
from .checks import DataCleaningWarning
from .partitions.source import find_partitioned, read_partitioned
from .read import find_source_files, read_instacart_folder
from .tables import InstacartData

log = logging.getLogger(__name__)


def load_instacart(source: str | os.PathLike[str] = "kaggle", *, backend: Backend | None = None,
                   cache: bool = True, cache_dir: str | os.PathLike[str] | None = None,
                   competition: bool = False) -> InstacartData:
    """Load, validate and clean the Instacart tables into ``backend``'s dataframe library.

    Parameters
    ----------
    source : str or path, default "kaggle"
        A folder in the Kaggle layout (``orders``, ``order_products__prior``,
        optional ``order_products__train``, ``products``, ``aisles``,
        ``departments``, each ``.csv``, ``.csv.zip``, ``.csv.gz`` or
        ``.parquet``), a folder in the partitioned layout
        (:mod:`gpuseg.data.partitions.source`), or the string ``"kaggle"`` to download
        it with kagglehub (:func:`gpuseg.data.kaggle.download_instacart`).
    backend : Backend, optional
        Where the tables are returned: the backend's dataframes (cuDF on the GPU);
        pandas frames on the host when omitted.
    cache : bool, default True
        Read and write the parquet cache of the cleaned tables.
    cache_dir : path, optional
        Folder holding cache entries (one per source folder); default
        ``$GPUSEG_CACHE_DIR`` or ``~/.cache/gpuseg``. Never inside ``source``.
    competition : bool, default False
        With ``source="kaggle"``: download the competition files instead of the
        public dataset copy (needs the competition rules accepted on Kaggle).

    Returns
    -------
    InstacartData
        Compact tables; ``order_products`` holds prior and train rows together.
        Rows dropped while cleaning are counted in ``cleaning`` (keys in
        :data:`gpuseg.data.checks.CLEANING_KEYS`) and announced with a
        :class:`~gpuseg.data.checks.DataCleaningWarning`.

    Raises
    ------
    DataValidationError
        A file or column is missing or holds a bad value; the message names the
        file, the column and the first bad row.
    GpusegError
        The download failed (credentials, competition rules, network).

    Examples
    --------
    >>> data = load_instacart("~/data/instacart")          # doctest: +SKIP
    >>> data.cleaning["orders_without_products"]            # doctest: +SKIP
    75000
    """
    folder, label = _resolve_source(source, competition=competition)
    # A folder of partitions (orders/part-*.parquet, ...) loads as one data set too.
    partitioned = find_partitioned(folder)
    files = find_source_files(folder) if partitioned is None else partitioned.files()
    stamps = file_stamps(files)
    entry = cache_entry(folder, cache_dir) if cache else None

    frame_library = pd if backend is None else backend.df
    cached = read_cache(entry, stamps, frame_library) if entry is not None else None
    if cached is not None:
        frames, cleaning, messages = dict(cached.frames), dict(cached.cleaning), cached.messages
    else:
        started = time.perf_counter()
        host, cleaning, messages = (
            read_instacart_folder(files) if partitioned is None
            else read_partitioned(partitioned, *_room(backend)))
        log.info("read and validated %s in %.1f s", folder, time.perf_counter() - started)
        written = entry is not None and write_cache(entry, host, stamps, cleaning, messages, folder)
        if written and entry is not None and frame_library is not pd:
            # cuDF decodes the parquet just written straight into device memory, which is
            # cheaper than converting pandas' pyarrow-backed string columns from the host.
            del host
            frames = read_frames(entry, frame_library)
        else:
            frames = host if backend is None else {name: backend.from_host(frame)
                                                    for name, frame in host.items()}

    for message in messages:
        warnings.warn(message, DataCleaningWarning, stacklevel=2)
    if cleaning["orders_without_products"]:
        log.info("%d orders have no product rows (e.g. Kaggle's test orders); the feature "
                 "stage ignores them", cleaning["orders_without_products"])
    return InstacartData(**frames, cleaning=cleaning, source=label, fingerprint=fingerprint(stamps))


def _resolve_source(source: str | os.PathLike[str], *, competition: bool) -> tuple[Path, str]:
    """The folder to read and how results should name it."""
    if isinstance(source, str) and source == "kaggle":
        from .kaggle import download_instacart, kaggle_handle

        return download_instacart(competition=competition), f"kaggle:{kaggle_handle(competition)}"
    if competition:
        raise ConfigError("competition=True applies only to source='kaggle'")
    folder = Path(source).expanduser().resolve()
    if not folder.exists():
        raise DataValidationError(f"{folder}: the source folder does not exist")
    if not folder.is_dir():
        raise DataValidationError(
            f"{folder}: the source must be a folder in the Kaggle layout (orders.csv, ...), "
            "not a file")
    return folder, str(folder)


def _room(backend: Backend | None) -> tuple[int, str]:
    """Memory a whole partitioned data set may take where it is loaded, and where that is."""
    if backend is not None:
        return backend.available_memory(), backend.device
    return capped(host_available_bytes()), "this machine"
