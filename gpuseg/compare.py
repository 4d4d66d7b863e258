"""How shoppers moved between the segments of two runs (e.g. last month's and this month's)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .compare_checks import incompatibility
from .errors import GpusegError
from .model import SegmentModel, load_model
from .outputs import COMPARISON_COLUMNS
from .run_layout import MODEL_DIR, SEGMENTS_FILE


@dataclass(frozen=True)
class Comparison:
    """Segment migration between run A and run B.

    Attributes
    ----------
    run_a, run_b : Path
        The two run directories.
    counts : pandas.DataFrame
        Users in both runs, by A's segment (rows) and B's segment (columns);
        rows and columns are labelled with persona names, every segment
        present even when empty.
    shares : pandas.DataFrame
        ``counts`` divided by its row sums: where A's shoppers went (rows sum
        to 1; an empty row stays 0).
    ari : float
        Adjusted Rand index of the two labelings over the common users (1:
        the same partition, up to renumbering).
    n_common : int
        Users in both runs.
    appeared : numpy.ndarray
        User ids segmented in B but not in A, ascending.
    left : numpy.ndarray
        User ids segmented in A but not in B, ascending.
    n_a, n_b : int
        Users segmented in each run.
    warning : str or None
        Why the runs' inputs look unrelated, when they were compared anyway.
    """

    run_a: Path
    run_b: Path
    counts: pd.DataFrame
    shares: pd.DataFrame
    ari: float
    n_common: int
    appeared: np.ndarray
    left: np.ndarray
    n_a: int = 0
    n_b: int = 0
    warning: str | None = None

    def to_long(self) -> pd.DataFrame:
        """One row per (A segment, B segment) cell: personas, users and share of A's segment."""
        counts = self.counts.stack().rename("users")
        shares = self.shares.stack().rename("share_of_from")
        table = pd.concat([counts, shares], axis=1).reset_index(names=["from_persona", "to_persona"])
        a_segment = {label: i for i, label in enumerate(self.counts.index)}
        b_segment = {label: i for i, label in enumerate(self.counts.columns)}
        table.insert(0, "from_segment", table["from_persona"].map(a_segment))
        table.insert(2, "to_segment", table["to_persona"].map(b_segment))
        # These columns are the CSV's header, by which gpuseg recognises a comparison it wrote.
        return table[list(COMPARISON_COLUMNS)]

    def summary(self) -> str:
        """The matrix (counts, then shares in percent) and the headline numbers, as plain text."""
        # Unnamed axes print without pandas' extra header row; the captions say which is which.
        counts = self.counts.rename_axis(index=None, columns=None)
        percent = (self.shares * 100).round(1).rename_axis(index=None, columns=None)
        def share(n: int) -> str:
            return f"{self.n_common / n:.1%}" if n else "-"

        lines = [
            f"users in both runs: {self.n_common:,} ({share(self.n_a)} of A's {self.n_a:,}, "
            f"{share(self.n_b)} of B's {self.n_b:,})",
            *([f"WARNING: compared with --force although {self.warning}"] if self.warning else []),
            f"A: {self.run_a}",
            f"B: {self.run_b}",
            f"users in both: {self.n_common:,}   appeared in B: {self.appeared.size:,}   "
            f"left after A: {self.left.size:,}   ARI: {self.ari:.3f}",
            "",
            "users by segment (rows: A, columns: B)",
            counts.to_string(),
            "",
            "share of each A segment going to each B segment (%)",
            percent.to_string(),
        ]
        return "\n".join(lines)


def compare_runs(a: str | os.PathLike, b: str | os.PathLike, *, force: bool = False) -> Comparison:
    """Compare the segments of two run directories.

    Parameters
    ----------
    a, b : path
        Run directories written by ``gpuseg run`` (``segments.parquet`` and
        ``model/``).
    force : bool
        Compare them even when their inputs look unrelated
        (:func:`gpuseg.compare_checks.incompatibility`); the comparison then says so.

    Returns
    -------
    Comparison

    Raises
    ------
    GpusegError
        When a run directory or its files are missing, or (without ``force``) when the
        runs' feature sets, taxonomies or product catalogs differ: both runs are named.
    """
    from sklearn.metrics import adjusted_rand_score

    a, b = Path(a), Path(b)
    seg_a, model_a = _read_run(a)
    seg_b, model_b = _read_run(b)
    names_a, names_b = model_a.persona_names, model_b.persona_names
    warning = incompatibility(model_a, model_b)
    if warning is not None and not force:
        raise GpusegError(f"{a} and {b} cannot be compared: {warning}; their shared user ids "
                          "are a coincidence, not the same shoppers (--force compares them "
                          "anyway)")
    common = seg_a.merge(seg_b, on="user_id", suffixes=("_a", "_b"))
    labels_a = _unique_labels(names_a)
    labels_b = _unique_labels(names_b)
    cells = np.zeros((len(labels_a), len(labels_b)), dtype=np.int64)
    np.add.at(cells, (common["segment_a"].to_numpy(), common["segment_b"].to_numpy()), 1)
    counts = pd.DataFrame(cells, index=pd.Index(labels_a, name="A"),
                          columns=pd.Index(labels_b, name="B"))
    row_totals = cells.sum(axis=1, keepdims=True)
    shares = counts.copy().astype(np.float64)
    shares[:] = np.divide(cells, row_totals, out=np.zeros(cells.shape), where=row_totals > 0)
    ari = (float(adjusted_rand_score(common["segment_a"], common["segment_b"]))
           if len(common) else float("nan"))
    ids_a, ids_b = seg_a["user_id"].to_numpy(), seg_b["user_id"].to_numpy()
    return Comparison(run_a=a, run_b=b, counts=counts, shares=shares, ari=ari,
                      n_common=int(len(common)),
                      appeared=np.setdiff1d(ids_b, ids_a), left=np.setdiff1d(ids_a, ids_b),
                      n_a=int(len(seg_a)), n_b=int(len(seg_b)), warning=warning)


def _read_run(run: Path) -> tuple[pd.DataFrame, SegmentModel]:
    path = run / SEGMENTS_FILE
    if not path.is_file():
        raise GpusegError(f"{run} is not a gpuseg run directory: {SEGMENTS_FILE} is missing")
    segments = pd.read_parquet(path, columns=["user_id", "segment"])
    model = load_model(run / MODEL_DIR)
    k = len(model.persona_names)
    if len(segments) and not segments["segment"].between(0, k - 1).all():
        raise GpusegError(f"{path} has segment numbers outside the model's 0..{k - 1}")
    return segments, model


def _unique_labels(persona_names: tuple[str, ...]) -> list[str]:
    """Persona names as labels; a name shared by several segments gets its segment number."""
    repeated = {name for name in persona_names if persona_names.count(name) > 1}
    return [f"{name} ({i})" if name in repeated else name for i, name in enumerate(persona_names)]
