"""Writing a run directory: its files, staged beside the target and renamed into place at the end."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .outputs import output_folder
from .run_layout import MODEL_DIR, SEGMENT_COLUMNS, SEGMENTS_FILE

if TYPE_CHECKING:
    from .result import SegmentationResult


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


def profiles_table(result: SegmentationResult) -> pd.DataFrame:
    """The profiles as written to ``profiles.csv``: lists joined with "; ", plus the actions.

    A spreadsheet shows ``fresh fruits; yogurt`` better than a Python list's repr.
    """
    actions = {p.segment: "; ".join(str(action) for action in p.actions) for p in result.personas}
    table = result.profiles.assign(actions=result.profiles["segment"].map(actions))
    for column in table.columns:
        if table[column].map(lambda cell: isinstance(cell, (list, tuple))).any():
            table[column] = table[column].map(_joined)
    return table


def _joined(cell: Any) -> str:
    return "; ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in cell)


def write_run(result: SegmentationResult, out: str | os.PathLike, *,
              force: bool = False) -> Path:
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
    ``customers/segment-<j>.csv``
        Each segment's customer list (:func:`gpuseg.customers.customer_list`),
        linked from its card in the report.
    ``report.html``, ``figures/*.png``
        The self-contained report (:func:`gpuseg.report.write_report`).
    ``dask-performance-report.html``
        A distributed run's Dask performance report (``result.files``).

    Raises
    ------
    OutputError
        When ``out`` exists and ``force`` is false, or breaks another rule of
        :func:`gpuseg.outputs.check_output` (the result's input folder counts
        as an input).
    """
    from . import report
    from .customers import write_customer_lists
    from .model import save_model

    source = result.metrics.input.source
    inputs = {"the run's input": source} if source and Path(source).is_absolute() else {}
    with output_folder(out, kind="run", force=force, inputs=inputs) as staging:
        columns = [c for c in SEGMENT_COLUMNS if c in result.segments.columns]
        segments = result.segments[columns].copy()
        segments["persona"] = segments["persona"].astype(str)
        segments.to_parquet(staging / SEGMENTS_FILE, index=False)
        profiles_table(result).to_csv(staging / "profiles.csv", index=False)
        write_json(staging / "metrics.json", {**result.metrics.to_dict(), "timings": result.timings})
        save_model(result.model, staging / MODEL_DIR,
                   fitted_on={"backend": result.backend, "device": result.device},
                   source_fingerprint=result.metrics.input.fingerprint)
        lists = write_customer_lists(result.segments, list(result.model.persona_names), staging)
        report.write_report(result, staging, customer_lists=lists)
        for name, text in result.files.items():
            (staging / name).write_text(text, encoding="utf-8")
    return Path(out)
