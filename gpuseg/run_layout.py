"""Names inside a run directory, shared by the code that writes one and the code that reads one.

:mod:`gpuseg.rundir` writes run directories, :mod:`gpuseg.model` and
:mod:`gpuseg.compare` read them; all three take the names from here, so none of
them has to import another for a file name.
"""
from __future__ import annotations

#: The per-user table and the saved model's subfolder inside a run directory.
SEGMENTS_FILE = "segments.parquet"
MODEL_DIR = "model"

#: Columns of segments.parquet, in order (UMAP columns only when the embedding ran; one of
#: ``dbscan`` and ``hdbscan``, the density method that ran).
SEGMENT_COLUMNS = ("user_id", "segment", "persona", "membership", "second_segment",
                   "second_membership", "silhouette", "umap_x", "umap_y", "hierarchical",
                   "dbscan", "hdbscan")

#: The per-segment customer lists beside the report: ``customers/segment-<j>.csv``.
CUSTOMERS_DIR = "customers"


def customer_list_file(segment: int) -> str:
    """The customer list of ``segment``, relative to the run directory (a link that survives a move)."""
    return f"{CUSTOMERS_DIR}/segment-{int(segment)}.csv"
