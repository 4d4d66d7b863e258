"""The words a reader sees for each catalog-independent feature, and the unit its values are in.

A business sentence (a rule, a profile's evidence, an action's trigger) names a
feature by its plain label; the column name (``basket_size_mean``) is the
technical name, which the report keeps for hover text and the glossary.
"""
from __future__ import annotations

from collections.abc import Mapping

#: Plain label and unit of each catalog-independent feature column. Units: ``share`` (0-1, shown
#: as a percentage), ``items``, ``days``, ``orders``, ``number`` (a unitless index).
FEATURE_LABELS: Mapping[str, tuple[str, str]] = {
    "n_orders": ("orders placed", "orders"),
    "basket_size_mean": ("items per order", "items"),
    "days_between_mean": ("days between orders", "days"),
    "order_interval_cv": ("irregularity of days between orders", "number"),
    "basket_consistency": ("overlap of consecutive baskets", "share"),
    "weekend_ratio": ("weekend share of orders", "share"),
    "reorder_ratio": ("reordered share of items", "share"),
    "product_repeat_rate": ("purchases per distinct product", "number"),
    "loyalty_hhi": ("concentration on favourite products (0-1)", "number"),
    "organic_ratio": ("organic share of items", "share"),
    "dept_entropy": ("department variety (0-1)", "number"),
}


def feature_label(name: str) -> str:
    """The plain label of a feature column (its name with spaces where it has none)."""
    return FEATURE_LABELS.get(name, (name.replace("_", " "), ""))[0]


def feature_unit(name: str) -> str:
    """The unit of a feature column's values (``number`` where none is declared)."""
    return FEATURE_LABELS.get(name, ("", "number"))[1]


def format_value(value: float, unit: str) -> str:
    """A feature value as a sentence shows it: shares as percentages, counts to one decimal."""
    if unit == "share":
        return f"{value:.1%}"
    if unit in ("items", "days", "orders"):
        return f"{value:.1f}"
    return f"{value:.2f}"
