"""Feature families for grouped importance: one group per department's aisles, one per behaviour.

A family is permuted as a whole, so the importance it gets is the evidence the
family carries together: 134 aisle shares, each too small to move a shopper
on its own, still place shoppers as the aisles of one department. The aisle
groups come from the run's own catalog (each aisle's department); the
behavioural families are fixed below, one entry per catalog-independent
feature of :mod:`gpuseg.features`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..features import AISLE_COLUMN_PREFIX, aisle_id

#: The behavioural family of every catalog-independent feature, in the order families are listed.
BEHAVIOUR_FAMILIES: Mapping[str, str] = {
    "basket_size_mean": "basket size",
    "n_orders": "cadence and regularity",
    "days_between_mean": "cadence and regularity",
    "order_interval_cv": "cadence and regularity",
    "hour_sin": "time of day and weekend",
    "hour_cos": "time of day and weekend",
    "weekend_ratio": "time of day and weekend",
    "reorder_ratio": "reorder and loyalty",
    "product_repeat_rate": "reorder and loyalty",
    "loyalty_hhi": "reorder and loyalty",
    "basket_consistency": "reorder and loyalty",
    "organic_ratio": "organic",
    "dept_entropy": "department breadth",
}
#: The group of aisles whose department the catalog does not name.
UNKNOWN_DEPARTMENT = "aisles outside the catalog's departments"


@dataclass(frozen=True)
class FeatureGroup:
    """Features permuted together.

    Attributes
    ----------
    name : str
        ``"<department> aisles"`` or a behavioural family (``"basket size"``).
    kind : {"department", "behaviour"}
    features : tuple of str
        Feature columns of the group, in table order.
    """

    name: str
    kind: str
    features: tuple[str, ...]


def aisles_by_department(aisle_columns: Iterable[str], *, aisle_department: Mapping[int, int],
                         departments: Mapping[int, str]) -> dict[int | None, list[str]]:
    """The ``aisle_<id>`` columns grouped by their aisle's department.

    Parameters
    ----------
    aisle_columns : iterable of str
        Aisle-share columns, in table order.
    aisle_department : mapping of aisle id to department id
    departments : mapping of department id to name

    Returns
    -------
    dict of department id (or None) to list of str
        Each department's columns in the order given, keyed in order of first
        appearance; aisles without a department, or whose department
        ``departments`` does not name, are under ``None``.
    """
    groups: dict[int | None, list[str]] = {}
    for column in aisle_columns:
        department = aisle_department.get(aisle_id(column))
        groups.setdefault(department if department in departments else None, []).append(column)
    return groups


def feature_groups(feature_names: Sequence[str], *, aisle_department: Mapping[int, int],
                   departments: Mapping[int, str]) -> list[FeatureGroup]:
    """Split the feature columns into families: behaviours first, then each department's aisles.

    Parameters
    ----------
    feature_names : sequence of str
        The feature table's columns (``aisle_<id>`` and behavioural names).
    aisle_department : mapping of aisle id to department id
    departments : mapping of department id to name

    Returns
    -------
    list of FeatureGroup
        Every column in exactly one group. A behavioural column without a
        family in :data:`BEHAVIOUR_FAMILIES` is a group of its own; aisles of
        an unknown department form :data:`UNKNOWN_DEPARTMENT`. Departments
        are in id order.
    """
    behaviour: dict[str, list[str]] = {family: [] for family in BEHAVIOUR_FAMILIES.values()}
    for name in feature_names:
        if not name.startswith(AISLE_COLUMN_PREFIX):
            behaviour.setdefault(BEHAVIOUR_FAMILIES.get(name, name), []).append(name)
    aisles = aisles_by_department([n for n in feature_names if n.startswith(AISLE_COLUMN_PREFIX)],
                                  aisle_department=aisle_department, departments=departments)
    groups = [FeatureGroup(family, "behaviour", tuple(columns))
              for family, columns in behaviour.items() if columns]
    for department in sorted(d for d in aisles if d is not None):
        groups.append(FeatureGroup(f"{departments[department]} aisles", "department",
                                   tuple(aisles[department])))
    if None in aisles:
        groups.append(FeatureGroup(UNKNOWN_DEPARTMENT, "department", tuple(aisles[None])))
    return groups
