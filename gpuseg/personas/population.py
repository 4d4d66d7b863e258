"""The average shopper, read back from a profile table: what every segment is compared with.

Each profile row holds its segment's means over its users and ``share``, the
segment's share of all users, so the size-weighted mean of the rows is the mean
over every user: the population's feature means, department shares and
(circular) ordering hour follow from the table alone. Evidence and action
triggers compare a row with these, so anyone holding ``profiles.csv`` can
recompute them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .profile import DEPARTMENT_SHARE_PREFIX


@dataclass(frozen=True)
class Population:
    """Every segmented shopper together, from a profile table.

    Attributes
    ----------
    means : mapping of str to float
        The mean of each numeric profile column over every user (behavioural
        features, department shares, ...).
    departments : mapping of str to float
        Each department's share of all shoppers' items (the mean of the
        per-user shares).
    hour : float or None
        The population's preferred hour in [0, 24): the circular mean of
        ``hour_sin`` / ``hour_cos`` (``None`` without those columns).
    """

    means: Mapping[str, float]
    departments: Mapping[str, float]
    hour: float | None

    def mean(self, column: str) -> float | None:
        """The population's mean of ``column`` (``None`` when the table has no such column)."""
        value = self.means.get(column)
        return None if value is None or not math.isfinite(value) else float(value)


def population_shares(profiles: Any) -> dict[str, float]:
    """Every department's share of all segmented shoppers' items, from a profile table.

    The size-weighted mean of the segments' shares (each segment's share is the
    mean over its users, so this is the mean over every user).
    """
    weights = profiles["share"].to_numpy(dtype=np.float64)
    return {column[len(DEPARTMENT_SHARE_PREFIX):]: float(weights @ profiles[column].to_numpy(np.float64))
            for column in profiles.columns if column.startswith(DEPARTMENT_SHARE_PREFIX)}


def population(profiles: Any) -> Population:
    """The average shopper of a profile table (see :class:`Population`)."""
    weights = profiles["share"].to_numpy(dtype=np.float64)
    means = {}
    for column in profiles.columns:
        values = profiles[column]
        if column in ("segment", "share", "size") or values.dtype.kind not in "fiu":
            continue
        means[str(column)] = float(weights @ values.to_numpy(dtype=np.float64))
    hour = None
    if "hour_sin" in means and "hour_cos" in means:
        hour = circular_hour(means["hour_sin"], means["hour_cos"])
    return Population(means=means, departments=population_shares(profiles), hour=hour)


def circular_hour(mean_sin: float, mean_cos: float) -> float:
    """Hour of day in [0, 24) of the mean direction of (cos, sin) of 2*pi*hour/24."""
    return float((math.atan2(mean_sin, mean_cos) * 24.0 / (2.0 * math.pi)) % 24.0)


def row_hour(row: Mapping[str, Any]) -> float | None:
    """A profile row's preferred hour before rounding (``None`` without ``hour_sin``/``hour_cos``)."""
    if row.get("hour_sin") is None or row.get("hour_cos") is None:
        return None
    return circular_hour(float(row["hour_sin"]), float(row["hour_cos"]))
