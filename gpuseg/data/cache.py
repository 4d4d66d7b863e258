"""Parquet cache of the validated, compact tables.

The first load of a folder writes its cleaned tables as parquet into a cache
entry outside the folder; later loads read them back in seconds, straight into
the backend's dataframe library (cuDF decodes parquet on the device). An entry
is trusted only while its manifest matches the source files' names, sizes and
modification times; an entry that cannot be read is rebuilt with a
:class:`CacheWarning`, never half-used.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError
from ..staging import atomic_directory
from .checks import CLEANING_KEYS
from .schema import (
    AISLES_DTYPES,
    DEPARTMENTS_DTYPES,
    ORDER_PRODUCTS_DTYPES,
    ORDERS_DTYPES,
    PRODUCTS_DTYPES,
)

log = logging.getLogger(__name__)

#: Environment variable that moves the cache (default ``~/.cache/gpuseg``).
CACHE_ENV = "GPUSEG_CACHE_DIR"
#: Bumped whenever what is written changes, so older entries are rebuilt, not misread.
CACHE_FORMAT = 1
MANIFEST = "manifest.json"

#: Frames of ``InstacartData`` as cached -> their columns and dtypes.
FRAME_DTYPES = MappingProxyType({
    "orders": ORDERS_DTYPES,
    "order_products": ORDER_PRODUCTS_DTYPES,
    "products": PRODUCTS_DTYPES,
    "aisles": AISLES_DTYPES,
    "departments": DEPARTMENTS_DTYPES,
})


class CacheWarning(UserWarning):
    """The parquet cache was unusable (so rebuilt) or could not be written (so skipped)."""


@dataclass(frozen=True)
class CachedTables:
    """What a cache entry holds: the frames, the cleaning counts and their warning texts."""

    frames: Mapping[str, Any]
    cleaning: Mapping[str, int]
    messages: tuple[str, ...]


def file_stamps(files: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """Name, size and modification time (ns) of each source file, by table."""
    stamps = {}
    for table, path in sorted(files.items()):
        stat = path.stat()
        stamps[table] = {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return stamps


def fingerprint(stamps: Mapping[str, Mapping[str, Any]]) -> str:
    """A stable digest of the source files' names, sizes and modification times."""
    text = json.dumps(stamps, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root() -> Path:
    """Where gpuseg keeps what it may rebuild: ``$GPUSEG_CACHE_DIR`` or ``~/.cache/gpuseg``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gpuseg").expanduser()


def cache_entry(source: Path, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder for one source folder.

    Parameters
    ----------
    source : Path
        The source folder.
    cache_dir : path, optional
        Where entries live; default ``$GPUSEG_CACHE_DIR`` or ``~/.cache/gpuseg``.
        Each source gets a subfolder named by a digest of its absolute path.

    Raises
    ------
    ConfigError
        When the entry would lie inside the source folder (inputs are never modified).
    """
    if cache_dir is None:
        cache_dir = cache_root()
    source = source.resolve()
    base = Path(cache_dir).expanduser().resolve()
    if base.is_relative_to(source):
        raise ConfigError(
            f"cache_dir {base} is inside the source folder {source}; the loader never writes "
            f"into its input, so choose a folder outside it (or set {CACHE_ENV})")
    return base / hashlib.sha256(str(source).encode()).hexdigest()[:16]


def read_cache(entry: Path, stamps: Mapping[str, Mapping[str, Any]],
               frame_library: ModuleType) -> CachedTables | None:
    """The cached tables as ``frame_library``'s frames (pandas or cudf), or ``None`` to rebuild.

    A missing entry or one written for other source files is a plain miss; an
    entry that cannot be trusted (bad manifest, missing or unreadable parquet,
    wrong columns) is a miss with a :class:`CacheWarning`.
    """
    if not entry.exists():
        return None
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("manifest is not a JSON object")
        if manifest.get("format") != CACHE_FORMAT:
            log.info("cache %s has format %s, not %s; rebuilding",
                     entry, manifest.get("format"), CACHE_FORMAT)
            return None
        if manifest.get("files") != _jsonable(stamps):
            log.info("source files changed since cache %s was written; rebuilding", entry)
            return None
        cleaning = {key: int(manifest["cleaning"][key]) for key in CLEANING_KEYS}
        messages = tuple(str(message) for message in manifest["messages"])
        frames = {name: _read_frame(entry / f"{name}.parquet", name, int(manifest["rows"][name]),
                                    frame_library)
                  for name in FRAME_DTYPES}
    except MemoryError:
        raise
    except Exception as exc:  # whatever a reader raises, the entry cannot be trusted: rebuild it
        warnings.warn(f"parquet cache {entry} is unusable ({type(exc).__name__}: "
                      f"{_one_line(exc)}); rebuilding it from the source files",
                      CacheWarning, stacklevel=3)
        return None
    log.info("loaded the Instacart tables from cache %s", entry)
    return CachedTables(frames=frames, cleaning=cleaning, messages=messages)


def write_cache(entry: Path, frames: Mapping[str, Any], stamps: Mapping[str, Mapping[str, Any]],
                cleaning: Mapping[str, int], messages: tuple[str, ...] | list[str],
                source: Path) -> bool:
    """Write host (pandas) frames as a cache entry, atomically; ``False`` if it could not be.

    The entry is assembled in a temporary sibling folder and renamed into place, so
    a reader sees either the old entry, the new one, or none, never a partial one.
    """
    manifest = {
        "format": CACHE_FORMAT,
        "source": str(source),
        "files": _jsonable(stamps),
        "rows": {name: len(frames[name]) for name in FRAME_DTYPES},
        "cleaning": dict(cleaning),
        "messages": list(messages),
    }
    try:
        # Staged beside the entry and renamed into place (an interrupt removes the staging
        # folder; what a hard kill leaves, the next write of the entry removes).
        with atomic_directory(entry) as staging:
            for name in FRAME_DTYPES:
                table = pa.Table.from_pandas(frames[name], preserve_index=False)
                # Dictionary-encoding id columns triples the write time for no gain; text repeats.
                text = [column for column in table.column_names
                        if pa.types.is_string(table.schema.field(column).type)
                        or pa.types.is_large_string(table.schema.field(column).type)
                        or pa.types.is_dictionary(table.schema.field(column).type)]
                pq.write_table(table, staging / f"{name}.parquet", use_dictionary=text)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    except OSError as exc:
        _warn_unwritten(entry, exc)
        return False
    log.info("wrote parquet cache %s", entry)
    return True


def read_frames(entry: Path, frame_library: ModuleType) -> dict[str, Any]:
    """The frames of an entry just written, as ``frame_library``'s frames (pandas or cudf)."""
    manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
    return {name: _read_frame(entry / f"{name}.parquet", name, int(manifest["rows"][name]),
                        frame_library)
            for name in FRAME_DTYPES}


def _read_frame(path: Path, name: str, n_rows: int, frame_library: ModuleType) -> Any:
    frame = frame_library.read_parquet(str(path))
    expected = FRAME_DTYPES[name]
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise ValueError(f"{path.name} lacks column(s) {', '.join(missing)}")
    wrong = [column for column, dtype in expected.items()
             if dtype != "str" and str(frame[column].dtype) != dtype]
    if wrong:
        raise ValueError(f"{path.name} has other dtypes for {', '.join(wrong)}")
    if len(frame) != n_rows:
        raise ValueError(f"{path.name} has {len(frame)} rows, the manifest says {n_rows}")
    if "eval_set" in frame.columns:
        # cuDF reads a parquet dictionary column back as plain strings.
        frame["eval_set"] = frame["eval_set"].astype("category")
    return frame


def _jsonable(stamps: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return json.loads(json.dumps(stamps, sort_keys=True))


def _warn_unwritten(entry: Path, exc: OSError) -> None:
    warnings.warn(f"could not write the parquet cache {entry} ({_one_line(exc)}); "
                  "continuing without it", CacheWarning, stacklevel=4)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
