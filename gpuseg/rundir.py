"""Writing a run directory atomically: build beside the target, rename at the end."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import GpusegError


@contextmanager
def atomic_directory(target: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` that becomes ``target`` only on success.

    An existing ``target`` is refused unless ``force``; then it is replaced only
    once the new one is complete. On any error (or a kill) the temporary folder
    is removed (or, after a hard kill, left as an obviously named
    ``.<name>.tmp-*`` sibling) and ``target`` is untouched.
    """
    target = Path(target)
    if target.exists() and not force:
        raise GpusegError(f"{target} already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            retired = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


#: Columns of segments.parquet, in order (UMAP columns only when the embedding ran).
SEGMENT_COLUMNS = ("user_id", "segment", "persona", "silhouette", "umap_x", "umap_y",
                   "hierarchical", "dbscan")


def write_run(result: Any, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a :class:`~gpuseg.result.SegmentationResult` as a run directory.

    Contents: ``segments.parquet``, ``profiles.csv`` and ``metrics.json``
    (metrics plus per-stage timings).
    """
    with atomic_directory(out, force=force) as staging:
        columns = [c for c in SEGMENT_COLUMNS if c in result.segments.columns]
        segments = result.segments[columns].copy()
        segments["persona"] = segments["persona"].astype(str)
        segments.to_parquet(staging / "segments.parquet", index=False)
        result.profiles.to_csv(staging / "profiles.csv", index=False)
        write_json(staging / "metrics.json", {**result.metrics, "timings": result.timings})
    return Path(out)
