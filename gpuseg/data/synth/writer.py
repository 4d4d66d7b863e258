"""Writing a generated data set in the Kaggle folder layout, atomically."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import ConfigError
from ..partitions.write import write_table
from ..schema import FILE_STEMS
from .generator import SyntheticInstacart

FORMATS = ("csv", "parquet")
TRUTH_FILE = "personas_truth.csv"


def write_instacart(synth: SyntheticInstacart, out_dir: str | os.PathLike[str], *,
                    fmt: str = "csv", overwrite: bool = False) -> Path:
    """Write the Kaggle folder layout plus ``personas_truth.csv``, atomically.

    The files are written into a temporary folder beside ``out_dir`` that is
    renamed into place at the end, so a reader never sees half a data set.

    Parameters
    ----------
    synth : SyntheticInstacart
    out_dir : path
        Folder to create (its parent is created if missing).
    fmt : {"csv", "parquet"}
        Format of the six tables; the truth file is always CSV.
    overwrite : bool
        Replace an existing ``out_dir``; otherwise an existing one is refused.

    Returns
    -------
    Path
        The written folder.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"fmt must be one of {', '.join(FORMATS)} (got {fmt!r})")
    with staged_folder(out_dir, overwrite=overwrite) as staging:
        for name, frame in synth.tables().items():
            write_table(frame, staging / f"{FILE_STEMS[name]}.{fmt}", fmt)
        synth.truth.to_csv(staging / TRUTH_FILE, index=False)
    return Path(out_dir)


@contextmanager
def staged_folder(out_dir: str | os.PathLike[str], *, overwrite: bool) -> Iterator[Path]:
    """A hidden folder beside ``out_dir`` that replaces it when the block succeeds.

    An existing ``out_dir`` is refused unless ``overwrite``; on any error or
    interrupt the staging folder is removed and ``out_dir`` is untouched.
    """
    target = Path(out_dir)
    if target.exists() and not overwrite:
        raise ConfigError(
            f"out_dir {str(target)!r} already exists; overwrite=True (CLI: --force) replaces it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                    dir=target.parent))
    try:
        yield staging
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_folder(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    retired.rmdir()
    target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
