"""The loaded data set: five tables in one backend's dataframe library."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..backend import Frame

if TYPE_CHECKING:
    from ..backend import Backend

#: The five frames of a data set, in the order of the Kaggle layout.
TABLES = ("orders", "order_products", "products", "aisles", "departments")


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

    orders: Frame
    order_products: Frame
    products: Frame
    aisles: Frame
    departments: Frame
    cleaning: Mapping[str, int] = field(default_factory=dict)
    source: str = ""
    fingerprint: str = ""

    @property
    def n_users(self) -> int:
        return int(self.orders["user_id"].nunique())

    @classmethod
    def from_frames(cls, *, orders: Any, order_products: Any, products: Any, aisles: Any,
                    departments: Any, backend: Backend | None = None) -> InstacartData:
        """Tables already in memory, validated exactly as files are.

        Parameters
        ----------
        orders, order_products, products, aisles, departments : DataFrame
            pandas, cuDF or polars frames (or pyarrow Tables) with the columns of
            the Kaggle files (:func:`gpuseg.data.frames.validate_frames`); a bad
            value names the argument, the column and the first bad row.
        backend : Backend, optional
            Where the validated tables are placed (pandas on the host when omitted;
            a run moves them to its backend).

        Returns
        -------
        InstacartData
            ``source`` is ``"frames"`` and ``fingerprint`` a digest of the
            validated contents.
        """
        from .frames import validate_frames

        valid = validate_frames(orders=orders, order_products=order_products, products=products,
                                aisles=aisles, departments=departments)
        frames = valid.frames if backend is None else {
            name: backend.from_host(frame) for name, frame in valid.frames.items()}
        return cls(**frames, cleaning=valid.cleaning, source="frames",
                   fingerprint=valid.fingerprint)

    def on(self, backend: Backend) -> InstacartData:
        """These tables in ``backend``'s dataframe library (``self`` when they already are)."""
        if all(isinstance(getattr(self, name), backend.df.DataFrame) for name in TABLES):
            return self
        moved = {}
        for name in TABLES:
            frame = getattr(self, name)
            # Through pandas, the one library both backends read: cuDF to host, then across.
            host = frame.to_pandas() if hasattr(frame, "to_pandas") else frame
            moved[name] = backend.from_host(host)
        return replace(self, **moved)
