"""Per-segment customer lists: who is in each segment, how sure, and where else they could go.

A campaign starts from a list of customers. Each segment's list holds its
shoppers, surest first, with their membership, whether they sit between
personas (membership below :data:`~gpuseg.cluster.BETWEEN_PERSONAS`) and
their second segment with its persona, so that a campaign tool can take the
sure shoppers, or treat those between personas apart. The run directory
writes one CSV per segment (:func:`write_customer_lists`) and the report links
each from its segment's card.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .cluster import BETWEEN_PERSONAS
from .run_layout import CUSTOMERS_DIR, customer_list_file

#: The columns of a customer list, in order.
CUSTOMER_COLUMNS = ("user_id", "segment", "persona", "membership", "between_personas",
                    "second_segment", "second_persona", "second_membership")


def customer_list(segments: pd.DataFrame, names: Sequence[str], segment: int) -> pd.DataFrame:
    """One segment's shoppers, surest first (ties by user id).

    Parameters
    ----------
    segments : pandas.DataFrame
        The run's per-user table (``user_id, segment, membership,
        second_segment, second_membership``).
    names : sequence of str
        The persona name of each segment, by segment number.
    segment : int

    Returns
    -------
    pandas.DataFrame
        :data:`CUSTOMER_COLUMNS`, one row per shopper of the segment.
    """
    users = segments[segments["segment"] == segment]
    membership = users["membership"].to_numpy(dtype=np.float64)
    second = users["second_segment"].to_numpy(dtype=np.int64)
    table = pd.DataFrame({
        "user_id": users["user_id"].to_numpy(dtype=np.int64),
        "segment": np.full(len(users), int(segment), dtype=np.int64),
        "persona": names[int(segment)],
        "membership": membership,
        "between_personas": membership < BETWEEN_PERSONAS,
        "second_segment": second,
        "second_persona": [names[int(j)] for j in second],
        "second_membership": users["second_membership"].to_numpy(dtype=np.float64),
    })
    return table.sort_values(["membership", "user_id"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)


def write_customer_lists(segments: pd.DataFrame, names: Sequence[str],
                         folder: Path) -> dict[int, str]:
    """Write every segment's list as ``customers/segment-<j>.csv`` under ``folder``.

    Returns
    -------
    dict of int to str
        Each segment's file, relative to ``folder`` (what the report links).
    """
    (folder / CUSTOMERS_DIR).mkdir(parents=True, exist_ok=True)
    files = {}
    for segment in range(len(names)):
        relative = customer_list_file(segment)
        customer_list(segments, names, segment).to_csv(folder / relative, index=False)
        files[segment] = relative
    return files
