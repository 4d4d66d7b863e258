"""The manifest of a partitioned folder: what ``gpuseg partition`` and ``synth --partitions`` wrote.

``partitions.json`` lists every partition in order with its users and, for each
of its files, the rows, the bytes and a SHA-256 of the bytes. The loader
(:mod:`gpuseg.data.partitions.source`) verifies it in two steps, so that a
check never costs a second read of the data:

* when the folder is found: the same partitions as the manifest, each file's
  size (a ``stat``) and its row count (the parquet footer, a few kilobytes);
* when a partition is read: each file's SHA-256 (the file is being read anyway,
  and a data page changed in place keeps its size and footer) and the users
  of its orders.

SHA-256 runs at about 1.2 GB/s on one core of the machines measured (OpenSSL's
SHA extensions), a fraction of what parsing the same parquet bytes costs.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ... import __version__
from ...errors import DataValidationError

MANIFEST_FILE = "partitions.json"
#: Bumped when the manifest changes shape; a reader refuses formats it does not know.
MANIFEST_FORMAT = 1
_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class Manifest:
    """A read manifest: per partition file name, its users and its files' facts.

    Attributes
    ----------
    path : Path
        The ``partitions.json`` it was read from (for messages).
    parts : Mapping[str, Mapping[str, Any]]
        ``part-NNNNN.parquet`` -> ``{"users": int, "files": {table: {"rows",
        "bytes", "sha256"}}}``, in partition order.
    """

    path: Path
    parts: Mapping[str, Mapping[str, Any]]


def file_facts(path: Path) -> dict[str, Any]:
    """Rows (parquet footer), bytes and SHA-256 of one partition file."""
    return {"rows": int(pq.ParquetFile(path).metadata.num_rows), "bytes": path.stat().st_size,
            "sha256": sha256_of(path)}


def part_facts(folder: Path, name: str, tables: Mapping[str, str]) -> dict[str, Any]:
    """One partition's manifest entry: its users and each of its files' facts.

    Parameters
    ----------
    folder : Path
        The partitioned folder.
    name : str
        The partition's file name (``part-00003.parquet``).
    tables : Mapping[str, str]
        Table -> its folder's name, for the tables this partition has a file of
        (``orders`` first: its distinct ``user_id`` values are the users).
    """
    orders = folder / tables["orders"] / name
    user_ids = pq.read_table(orders, columns=["user_id"]).column("user_id")
    return {"name": name, "users": len(user_ids.unique()),
            "files": {table: file_facts(folder / stem / name) for table, stem in tables.items()}}


def write_manifest(folder: Path, parts: Sequence[Mapping[str, Any]]) -> None:
    """Write ``partitions.json`` into ``folder``: ``parts`` as :func:`part_facts` returns them."""
    manifest = {"format": MANIFEST_FORMAT, "written_by": f"gpuseg {__version__}",
                "partitions": len(parts), "parts": list(parts)}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or ``None`` when it has none (a layout written by an older gpuseg).

    Raises
    ------
    DataValidationError
        The manifest is unreadable, of an unknown format or malformed.
    """
    path = folder / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _unreadable(path, exc) from None
    found = payload.get("format") if isinstance(payload, dict) else None
    if found != MANIFEST_FORMAT:
        raise DataValidationError(f"{path}: manifest format {found!r}; this gpuseg ({__version__}) "
                                  f"reads format {MANIFEST_FORMAT}")
    try:
        parts = {str(part["name"]): {"users": int(part["users"]),
                                     "files": {str(table): {key: facts[key] for key in
                                                            ("rows", "bytes", "sha256")}
                                               for table, facts in part["files"].items()}}
                 for part in payload["parts"]}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _unreadable(path, exc) from None
    return Manifest(path=path, parts=parts)


def _unreadable(path: Path, exc: BaseException) -> DataValidationError:
    return DataValidationError(f"{path}: not a readable partition manifest ({exc!r}); rewrite "
                               "the layout with gpuseg partition")


def check_file(path: Path, facts: Mapping[str, Any], manifest: Manifest, *,
               checksum: bool) -> None:
    """Raise unless ``path`` has the size and rows (and with ``checksum``, the SHA-256) recorded.

    Raises
    ------
    DataValidationError
        Naming the file, what differs and the manifest.
    """
    size = path.stat().st_size
    if size != facts["bytes"]:
        raise _changed(path, f"{size:,} bytes", f"{facts['bytes']:,}", manifest)
    if checksum:
        if sha256_of(path) != facts["sha256"]:
            raise DataValidationError(
                f"{path}: its bytes do not match the SHA-256 that {manifest.path.name} records; "
                "the file changed after gpuseg wrote it (rewrite the layout with gpuseg partition)")
        return
    try:
        rows = int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: not a readable parquet file ({exc})") from None
    if rows != facts["rows"]:
        raise _changed(path, f"{rows:,} rows", f"{facts['rows']:,}", manifest)


def check_users(path: Path, n_users: int, recorded: int, manifest: Manifest) -> None:
    """Raise unless the orders file ``path`` holds the ``recorded`` number of users."""
    if n_users != recorded:
        raise _changed(path, f"{n_users:,} users", f"{recorded:,}", manifest)


def _changed(path: Path, found: str, recorded: str, manifest: Manifest) -> DataValidationError:
    return DataValidationError(
        f"{path}: {found}, but {manifest.path.name} records {recorded}; the file changed after "
        "gpuseg wrote it (rewrite the layout with gpuseg partition)")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
