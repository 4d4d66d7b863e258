"""The features segment rules are written in, with the names and units a marketer reads.

Rules test the original per-user features (:mod:`gpuseg.features`), plus two
kinds derived from them so that a rule can say what a marketer would:

- ``dept_share_<department>``: the sum of the department's aisle shares
  (the share of the shopper's items in that department), as in the profiles;
- ``order_hour``: the shopper's usual order time, the circular mean of their
  order hours, ``atan2(hour_sin, hour_cos) * 24 / (2 pi)``, counted on a day
  that starts at :data:`DAY_START` (04:00) so that orders at 23:00 and 01:00
  sit next to each other (it replaces ``hour_sin`` and ``hour_cos``, which
  nobody reads).

A threshold is rounded to two significant digits in the unit shown (shares in
percent, days, items, orders; the order time to the quarter hour) *before*
precision and coverage are measured, so the rule as written is the rule as
measured.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..feature_labels import FEATURE_LABELS
from ..features import AISLE_COLUMN_PREFIX, aisle_id
from ..personas.profile import DEPARTMENT_SHARE_PREFIX
from .families import aisles_by_department

#: The usual order time is counted from this hour (the quietest hour of Instacart's day).
DAY_START = 4.0
ORDER_HOUR = "order_hour"
_HOUR_COLUMNS = ("hour_sin", "hour_cos")


def _round_significant(value: float, digits: int = 2) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


@dataclass(frozen=True)
class RuleFeature:
    """One feature a rule may test.

    Attributes
    ----------
    key : str
        ``aisle_<id>``, ``dept_share_<department>``, ``order_hour`` or a
        behavioural feature name.
    label : str
        How a rule names it ("canned goods share", "days between orders").
    unit : {"share", "days", "items", "orders", "number", "hour"}
    columns : tuple of str
        The feature-table columns it is computed from (summed for a
        department; ``hour_sin``, ``hour_cos`` for the order time).
    """

    key: str
    label: str
    unit: str
    columns: tuple[str, ...]

    def values(self, X: Any, position: Mapping[str, int], xp: Any) -> Any:
        """Its value per row of ``X`` (rows: users; ``position``: column of each feature)."""
        if self.key == ORDER_HOUR:
            angle = xp.arctan2(X[:, position["hour_sin"]], X[:, position["hour_cos"]])
            return (angle * 24.0 / (2.0 * math.pi) - DAY_START) % 24.0 + DAY_START
        if len(self.columns) == 1:
            return X[:, position[self.columns[0]]]
        return X[:, [position[c] for c in self.columns]].sum(axis=1)

    def rounded(self, threshold: float) -> float:
        """The threshold in the precision the rule is written with."""
        if self.unit == "hour":
            return round(threshold * 4.0) / 4.0
        if self.unit == "share":
            return _round_significant(threshold * 100.0) / 100.0
        return float(_round_significant(threshold))

    def condition(self, op: str, threshold: float) -> str:
        """E.g. ``canned goods share > 4.1%``, ``usual order time after 20:30``."""
        if self.unit == "hour":
            minutes = int(round(threshold * 60.0)) % (24 * 60)
            clock = f"{minutes // 60:02d}:{minutes % 60:02d}"
            return (f"{self.label} after {clock}" if op == ">"
                    else f"{self.label} {clock} or earlier")
        shown = threshold * 100.0 if self.unit == "share" else threshold
        percent = "%" if self.unit == "share" else ""
        return f"{self.label} {op} {_round_significant(shown, 4):g}{percent}"


def rule_features(feature_names: Sequence[str], *, aisles: Mapping[int, str],
                  departments: Mapping[int, str],
                  aisle_department: Mapping[int, int]) -> list[RuleFeature]:
    """Every feature a rule may test, for a feature table with columns ``feature_names``.

    Parameters
    ----------
    feature_names : sequence of str
        Columns of the per-user feature table.
    aisles, departments : mapping of id to name
    aisle_department : mapping of aisle id to department id

    Returns
    -------
    list of RuleFeature
        Behavioural features (``order_hour`` in place of ``hour_sin`` and
        ``hour_cos`` when both are present), then one share per department
        with aisles in the table, then every aisle share.
    """
    names = list(feature_names)
    aisle_columns = [c for c in names if c.startswith(AISLE_COLUMN_PREFIX)]
    result = []
    hours = all(c in names for c in _HOUR_COLUMNS)
    for name in names:
        if name in aisle_columns or (hours and name in _HOUR_COLUMNS):
            continue
        label, unit = FEATURE_LABELS.get(name, (name.replace("_", " "), "number"))
        result.append(RuleFeature(name, label, unit, (name,)))
    if hours:
        result.append(RuleFeature(ORDER_HOUR, "usual order time", "hour", _HOUR_COLUMNS))
    by_department = aisles_by_department(aisle_columns, aisle_department=aisle_department,
                                         departments=departments)
    for department in sorted(d for d in by_department if d is not None):
        name = departments[department]
        result.append(RuleFeature(f"{DEPARTMENT_SHARE_PREFIX}{name}", f"{name} share", "share",
                                  tuple(by_department[department])))
    for column in aisle_columns:
        aisle = aisle_id(column)
        result.append(RuleFeature(column, f"{aisles.get(aisle, f'aisle {aisle}')} aisle share",
                                  "share", (column,)))
    return result
