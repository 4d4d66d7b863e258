"""The loaded data set: five tables in one backend's dataframe library."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InstacartData:
    """Validated Instacart tables, resident where the backend computes.

    Attributes
    ----------
    orders : DataFrame
        ``order_id, user_id, order_number, order_dow, order_hour_of_day,
        days_since_prior_order`` (+ ``eval_set`` when the export has it), one
        row per order, ``order_id`` unique.
    order_products : DataFrame
        ``order_id, product_id, add_to_cart_order, reordered``: the prior and
        train product rows together; every row references a known order and a
        known product (unknown ones were dropped and counted in ``cleaning``).
    products, aisles, departments : DataFrame
        The catalog, with the dtypes of :mod:`gpuseg.data.schema`.
    cleaning : Mapping[str, int]
        Rows dropped or repaired while loading, by reason (reported in
        ``metrics.json``; never silent).
    source : str
        Where the data came from (a folder path, or ``kaggle:<handle>``).
    fingerprint : str
        A stable digest of the source files (names, sizes, mtimes), written
        next to results so that a run can be traced to its input.
    """

    orders: Any
    order_products: Any
    products: Any
    aisles: Any
    departments: Any
    cleaning: Mapping[str, int] = field(default_factory=dict)
    source: str = ""
    fingerprint: str = ""

    @property
    def n_users(self) -> int:
        return int(self.orders["user_id"].nunique())
