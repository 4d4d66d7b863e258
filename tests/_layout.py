"""Hand-built Kaggle-layout folders for the data-layer tests.

:func:`sample_tables` is a tiny Instacart export written out by hand, shaped
like Kaggle's files (int64 ids, ``eval_set`` text, NaN for a first order's
``days_since_prior_order``); :func:`write_layout` writes it in any of the
accepted formats, and :func:`folder_digest` proves a folder was not touched. :func:`hidden_entries` lists
what gpuseg's staging leaves beside an output (dot names), and :func:`killed_while_writing`
leaves it there on purpose.
"""
from __future__ import annotations

import gzip
import hashlib
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

NAN = np.nan
FORMATS = ("csv", "csv.zip", "csv.gz", "parquet")


def sample_tables() -> dict[str, pd.DataFrame]:
    """Three users, eight orders (one a product-less ``test`` order), five products."""
    orders = pd.DataFrame({
        "order_id": [10, 11, 12, 20, 21, 22, 30, 31],
        "user_id": [1, 1, 1, 2, 2, 2, 3, 3],
        "eval_set": ["prior", "prior", "train", "prior", "prior", "test", "prior", "train"],
        "order_number": [1, 2, 3, 1, 2, 3, 1, 2],
        "order_dow": [0, 3, 6, 1, 2, 5, 4, 4],
        "order_hour_of_day": [8, 9, 23, 0, 12, 18, 10, 11],
        "days_since_prior_order": [NAN, 7.0, 30.0, NAN, 14.0, 3.0, NAN, 0.0],
    })
    prior = pd.DataFrame({
        "order_id": [10, 10, 11, 11, 11, 20, 21, 21, 30],
        "product_id": [1, 3, 1, 2, 5, 4, 4, 3, 2],
        "add_to_cart_order": [1, 2, 1, 2, 3, 1, 1, 2, 1],
        "reordered": [0, 0, 1, 0, 0, 0, 1, 0, 0],
    })
    train = pd.DataFrame({
        "order_id": [12, 12, 31],
        "product_id": [1, 5, 2],
        "add_to_cart_order": [1, 2, 1],
        "reordered": [1, 1, 1],
    })
    products = pd.DataFrame({
        "product_id": [1, 2, 3, 4, 5],
        # A comma and quotes inside names: the CSV writer must quote them, the reader unquote.
        "product_name": ["Banana", "Baby Spinach", "Greek Yogurt", "Pizza, Frozen",
                         'Organic "Fuji" Apple'],
        "aisle_id": [1, 2, 3, 4, 1],
        "department_id": [2, 2, 3, 1, 2],
    })
    aisles = pd.DataFrame({"aisle_id": [1, 2, 3, 4],
                           "aisle": ["fresh fruits", "fresh vegetables", "yogurt", "frozen meals"]})
    departments = pd.DataFrame({"department_id": [1, 2, 3],
                                "department": ["frozen", "produce", "dairy eggs"]})
    return {"orders": orders, "order_products__prior": prior, "order_products__train": train,
            "products": products, "aisles": aisles, "departments": departments}


def write_layout(folder: Path, tables: Mapping[str, pd.DataFrame] | None = None, *,
                 fmt: str = "csv", skip: Iterable[str] = ()) -> Path:
    """Write ``tables`` (default :func:`sample_tables`) into ``folder`` as ``<stem>.<fmt>``."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = sample_tables() if tables is None else tables
    for stem, frame in tables.items():
        if stem not in set(skip):
            write_table(folder, stem, frame, fmt=fmt)
    return folder


def write_table(folder: Path, stem: str, frame: pd.DataFrame, *, fmt: str = "csv") -> Path:
    """One table as ``folder/<stem>.<fmt>``; empty cells for NaN, as Kaggle's CSVs have."""
    path = folder / f"{stem}.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return path
    text = frame.to_csv(index=False).encode()
    if fmt == "csv":
        path.write_bytes(text)
    elif fmt == "csv.gz":
        path.write_bytes(gzip.compress(text))
    elif fmt == "csv.zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{stem}.csv", text)
    else:
        raise ValueError(fmt)
    return path


def write_text(folder: Path, name: str, text: str) -> Path:
    """A file with exactly ``text`` (for malformed inputs)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def folder_digest(folder: Path) -> str:
    """Digest of every file's relative path, bytes and mtime under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
            digest.update(str(path.stat().st_mtime_ns).encode())
    return digest.hexdigest()


def hidden_entries(folder: Path) -> list[str]:
    """The dot names in ``folder``, sorted: staging folders and files moved aside."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def killed_while_writing(script: str, args: Iterable[str], env: Mapping[str, str]) -> int:
    """Run ``python -c script *args`` until it prints ``writing``, SIGKILL it, and return its
    process id (which names its staging folder)."""
    process = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=dict(env))
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    process.kill()
    assert process.wait(timeout=60) == -signal.SIGKILL
    return process.pid
