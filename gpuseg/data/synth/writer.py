"""Writing a generated data set in the Kaggle folder layout, atomically."""
from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

from ...errors import ConfigError
from ...outputs import output_folder
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
        Replace an existing ``out_dir`` that gpuseg wrote as a data set;
        otherwise an existing one is refused.

    Returns
    -------
    Path
        The written folder.

    Raises
    ------
    OutputError
        ``out_dir`` exists and may not be replaced, or lies inside another
        gpuseg output (:func:`gpuseg.outputs.check_output`).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"fmt must be one of {', '.join(FORMATS)} (got {fmt!r})")
    with dataset_folder(out_dir, overwrite=overwrite) as staging:
        for name, frame in synth.tables().items():
            write_table(frame, staging / f"{FILE_STEMS[name]}.{fmt}", fmt)
        synth.truth.to_csv(staging / TRUTH_FILE, index=False)
    return Path(out_dir)


def dataset_folder(out_dir: str | os.PathLike[str], *,
                   overwrite: bool) -> AbstractContextManager[Path]:
    """The staging folder of a generated data set (:func:`gpuseg.outputs.output_folder`)."""
    return output_folder(out_dir, kind="dataset", force=overwrite, name="out_dir",
                         force_name="overwrite")
