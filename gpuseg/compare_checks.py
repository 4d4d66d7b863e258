"""Whether two runs' segments can be compared at all: the same features over the same catalog.

Two runs share user ids by coincidence as easily as by design (every synthetic
and Kaggle data set numbers its users from 1), so ``gpuseg compare`` first
checks that the two models read the same kind of data: the same feature list
(which holds the aisle shares, so the same aisle taxonomy), the same aisles and
departments by id and name, and product catalogs in which at least half of the
product ids they share sit in the same aisle under the same aisle name. A model
saved before catalogs were kept (format 2) is checked on its features only.
"""
from __future__ import annotations

import numpy as np

from .model import SegmentModel
from .model_catalog import ModelCatalog

#: Of the product ids two catalogs share, at least this share must sit in the same aisle
#: with the same aisle name for the runs to be about the same products.
SAME_PRODUCTS = 0.5


def incompatibility(a: SegmentModel, b: SegmentModel) -> str | None:
    """Why the two models' segments cannot be compared, or ``None`` when they can."""
    if a.feature_names != b.feature_names:
        only_a = sorted(set(a.feature_names) - set(b.feature_names))
        only_b = sorted(set(b.feature_names) - set(a.feature_names))
        shown = (f"only A has {', '.join(only_a[:3])}" if only_a else
                 f"only B has {', '.join(only_b[:3])}" if only_b else "in another order")
        return (f"their feature sets differ ({len(a.feature_names)} and "
                f"{len(b.feature_names)} features; {shown})")
    if a.catalog is None or b.catalog is None:
        return None
    return _catalog_difference(a.catalog, b.catalog)


def _named(ids: np.ndarray, names: tuple[str, ...]) -> dict[int, str]:
    return dict(zip(ids.tolist(), names))


def _catalog_difference(a: ModelCatalog, b: ModelCatalog) -> str | None:
    aisles_a, aisles_b = _named(a.aisle_ids, a.aisle_names), _named(b.aisle_ids, b.aisle_names)
    departments_a = _named(a.department_ids, a.department_names)
    departments_b = _named(b.department_ids, b.department_names)
    if aisles_a != aisles_b or departments_a != departments_b:
        return "their aisle and department taxonomies differ (ids or names)"
    shared, at_a, at_b = np.intersect1d(a.product_ids, b.product_ids, return_indices=True)
    if shared.size == 0:
        return "their product catalogs share no product id"
    aisle_a, aisle_b = a.product_aisles[at_a], b.product_aisles[at_b]
    same = (aisle_a == aisle_b) & np.asarray(
        [aisles_a.get(int(x)) == aisles_b.get(int(y)) for x, y in zip(aisle_a, aisle_b)])
    share = float(same.mean())
    if share < SAME_PRODUCTS:
        return (f"their product catalogs disagree: of the {shared.size:,} product ids they "
                f"share, {share:.0%} sit in the same aisle (under {SAME_PRODUCTS:.0%})")
    return None
