"""Writing a run directory atomically: build beside the target, rename at the end."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import setting
from .errors import GpusegError
from .run_layout import MODEL_DIR, SEGMENT_COLUMNS, SEGMENTS_FILE

log = logging.getLogger(__name__)


@contextmanager
def atomic_directory(target: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` that becomes ``target`` only on success.

    An existing ``target`` is refused unless ``force``; then it is replaced only
    once the new one is complete. On any error or interrupt the temporary
    folder is removed and ``target`` is untouched. A hard kill (SIGKILL, power
    loss) can leave the temporary folder, ``.<name>.tmp-<pid>-*``, or the
    previous run moved aside, ``.<name>.old-<pid>-*``; the next call for the
    same target cleans both up (:func:`recover_interrupted`).
    """
    target = Path(target)
    refuse_existing(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target)}{os.getpid()}-",
                                    dir=target.parent))
    retired = None
    try:
        yield staging
        if target.exists():
            retired = target.with_name(f"{_retired_prefix(target)}{os.getpid()}-"
                                       f"{uuid.uuid4().hex[:8]}")
            os.replace(target, retired)
        os.replace(staging, target)
    except BaseException:
        # An interrupt between the two renames must not lose the previous run.
        if retired is not None and retired.exists():
            if target.exists():
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(retired, target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def refuse_existing(target: str | os.PathLike, *, force: bool) -> None:
    """Raise :class:`GpusegError` if ``target`` exists and ``force`` is false.

    Commands call this before their long work, so that a run is not computed
    only to be refused. What a killed earlier write left is recovered first, so
    a previous run it had moved aside counts as existing.
    """
    recover_interrupted(target)
    if Path(target).exists() and not force:
        raise GpusegError(f"{target} already exists; pass {setting('force', True)} to replace it")


def recover_interrupted(target: str | os.PathLike) -> None:
    """Clean up what a killed :func:`atomic_directory` left beside ``target``.

    Siblings are touched only when the process named in them is dead: a
    staging folder is removed; a previous run moved aside is put back when
    ``target`` is missing (the kill came between the two renames) and removed
    otherwise. Process ids are those of this host: a folder shared by several
    hosts writing the same target at once is not supported.
    """
    target = Path(target)
    try:
        siblings = sorted(target.parent.iterdir())
    except OSError:
        return  # no such folder yet, or one this user cannot list: nothing of ours is there
    staging, retired = _staging_prefix(target), _retired_prefix(target)
    for sibling in siblings:
        prefix = next((p for p in (staging, retired) if sibling.name.startswith(p)), None)
        if prefix is None or _process_alive(sibling.name[len(prefix):].split("-", 1)[0]):
            continue
        if prefix == retired and not target.exists():
            os.replace(sibling, target)
            log.warning("restored %s: an earlier write was killed after moving it aside", target)
        else:
            shutil.rmtree(sibling, ignore_errors=True)
            log.info("removed %s, left by a killed earlier write", sibling)


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _retired_prefix(target: Path) -> str:
    return f".{target.name}.old-"


def _process_alive(pid_text: str) -> bool:
    """Whether the process ``pid_text`` names may still run; unknown counts as alive."""
    if os.name != "posix" or not pid_text.isdigit():
        return True  # no pid in the name (an older gpuseg), or no signal-0 probe on this OS
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's live process (EPERM), or a number no pid can be
    return True


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


def profiles_table(result: Any) -> pd.DataFrame:
    """The profiles as written to ``profiles.csv``: lists joined with "; ", plus the actions.

    A spreadsheet shows ``fresh fruits; yogurt`` better than a Python list's repr.
    """
    actions = {p["segment"]: "; ".join(p["actions"]) for p in result.metrics["personas"]}
    table = result.profiles.assign(actions=result.profiles["segment"].map(actions))
    for column in table.columns:
        if table[column].map(lambda cell: isinstance(cell, (list, tuple))).any():
            table[column] = table[column].map(_joined)
    return table


def _joined(cell: Any) -> str:
    return "; ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in cell)


def write_run(result: Any, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a :class:`~gpuseg.result.SegmentationResult` as a run directory.

    The folder is built beside ``out`` and renamed into place only when every
    file is written, so an error or an interrupt leaves no ``out`` behind.

    Notes
    -----
    The run directory holds:

    ``segments.parquet``
        One row per user: :data:`~gpuseg.run_layout.SEGMENT_COLUMNS` (UMAP
        columns only when the embedding ran).
    ``profiles.csv``
        One row per segment (:func:`profiles_table`).
    ``metrics.json``
        Every metric of the run plus per-stage ``timings``.
    ``model/``
        The saved model (:func:`gpuseg.model.save_model`).
    ``report.html``, ``figures/*.png``
        The self-contained report (:func:`gpuseg.report.write_report`).
    ``dask-performance-report.html``
        A distributed run's Dask performance report (``result.files``).

    Raises
    ------
    GpusegError
        When ``out`` exists and ``force`` is false.
    """
    from . import report
    from .model import save_model

    with atomic_directory(out, force=force) as staging:
        columns = [c for c in SEGMENT_COLUMNS if c in result.segments.columns]
        segments = result.segments[columns].copy()
        segments["persona"] = segments["persona"].astype(str)
        segments.to_parquet(staging / SEGMENTS_FILE, index=False)
        profiles_table(result).to_csv(staging / "profiles.csv", index=False)
        write_json(staging / "metrics.json", {**result.metrics, "timings": result.timings})
        save_model(result.model, staging / MODEL_DIR,
                   fitted_on={"backend": result.backend, "device": result.device},
                   source_fingerprint=result.metrics.get("input", {}).get("fingerprint"))
        report.write_report(result, staging)
        for name, text in result.files.items():
            (staging / name).write_text(text, encoding="utf-8")
    return Path(out)
