"""The scale the naming rules measure a segment on: standardised differences, lifts, hour, cadence.

Each :class:`Signal` measures one trait of a profile row as a number on a
common scale (1: clearly distinctive, 0: like the average shopper) and says so
in a :class:`~gpuseg.personas.claims.Claim` that states every number it used.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GpusegError
from ..feature_labels import feature_label, feature_unit, format_value
from .claims import Claim, clock, higher_or_lower, joined, later_or_earlier
from .population import Population, row_hour
from .profile import DEPARTMENT_LIFT_PREFIX, MIN_POPULATION_SHARE

Z_UNIT = 0.75
LIFT_UNIT = 1.5
HOUR_UNIT = 2.0
CADENCE_WIDTH = 5.0
SIGNAL_CAP = 2.0
MATCH_THRESHOLD = 0.5
TRAIT_THRESHOLD = 1.0
#: The columns an ``hour`` claim is computed from (its technical name).
HOUR_SUBJECT = "hour_sin, hour_cos"


# -- signals ------------------------------------------------------------------------------------
def _cap(value: float) -> float:
    return float(min(SIGNAL_CAP, max(-SIGNAL_CAP, value)))


def lift_signal(lift: float) -> float:
    """One department's lift on the signal scale: log(lift) / log(``LIFT_UNIT``), capped."""
    return _cap(math.log(lift) / math.log(LIFT_UNIT))


@dataclass(frozen=True)
class Signal:
    """One measurable trait of a segment, on the common signal scale.

    Attributes
    ----------
    kind : {"z", "lift", "hour", "cadence"}
        ``z``: standardised difference of feature ``target``; ``lift``: mean
        log-lift of the departments in ``target``; ``hour``: preferred-hour
        shift; ``cadence``: closeness of days between orders to ``target`` days.
    target : str, tuple of str or float
    sign : int
        -1 turns "high" into "low" (e.g. a low reorder rate).
    weight : float
        Weight in the rule's score.
    core : bool
        The rule needs this signal positive.
    label : str
        How a rule's score names it.
    """

    kind: str
    target: Any
    label: str
    weight: float = 1.0
    sign: int = 1
    core: bool = False

    def measure(self, row: Mapping[str, Any], population: Population
                ) -> tuple[float | None, Claim]:
        """The signal for one profile row (``None``: not measurable) and the claim stating it."""
        if self.kind == "z":
            return self._feature(row, population)
        if self.kind == "lift":
            return self._lift(row, population)
        if self.kind == "hour":
            return self._hour(row, population)
        if self.kind == "cadence":
            days = float(row["days_between_mean"])
            value = max(-1.0, min(1.0, 1.0 - abs(days - self.target) / CADENCE_WIDTH))
            return value, Claim(
                "cadence", "days_between_mean", feature_label("days_between_mean"),
                f"{days:.1f}, {abs(days - self.target):.1f} days from a {self.target:g}-day "
                f"rhythm ({CADENCE_WIDTH:g} days off counts 0); signal {value:+.2f}",
                {"value": days, "target": float(self.target), "signal": value,
                 "weight": self.weight})
        raise GpusegError(f"unknown signal kind {self.kind!r}")

    def _feature(self, row: Mapping[str, Any], population: Population
                 ) -> tuple[float | None, Claim]:
        label = feature_label(self.target)
        z = row.get(f"z_{self.target}")
        if z is None or not math.isfinite(z):
            return None, Claim("feature", self.target, label, "not measured in this run")
        value = _cap(self.sign * z / Z_UNIT)
        wanted = "higher" if self.sign > 0 else "lower"
        verdict = (f"{higher_or_lower(z)}, as the persona wants" if self.sign * z > 0
                   else f"{higher_or_lower(z)}, where the persona wants it {wanted}")
        detail, numbers = feature_comparison(row, population, self.target)
        return value, Claim("feature", self.target, label,
                            f"{detail}: {verdict}; signal {value:+.2f}",
                            {**numbers, "signal": value, "weight": self.weight})

    def _lift(self, row: Mapping[str, Any], population: Population
              ) -> tuple[float | None, Claim]:
        subject = ", ".join(self.target)
        parts: list[float] = []
        above: list[str] = []
        below: list[str] = []
        left_out: list[str] = []
        numbers: dict[str, float] = {}
        for department in self.target:
            lift = row.get(f"{DEPARTMENT_LIFT_PREFIX}{department}")
            if (lift is None or not math.isfinite(lift) or lift <= 0
                    or population.departments.get(department, 0.0) < MIN_POPULATION_SHARE):
                left_out.append(department)
                continue
            parts.append(lift_signal(lift))
            numbers[f"lift:{department}"] = float(lift)
            (above if lift > 1.0 else below).append(f"{department} {lift:.2f}x")
        if not parts:
            return None, Claim("departments", subject, self.label,
                               f"{'/'.join(self.target)} not bought enough to compare")
        value = _cap(self.sign * float(np.mean(parts)))
        compared = "; ".join(
            [f"{joined(above)} above the average shopper's share" if above else "",
             f"{joined(below)} at or below it" if below else ""]).strip("; ")
        ignored = (f"; {joined(left_out)} not compared (under {MIN_POPULATION_SHARE:.1%} of "
                   "all items)" if left_out else "")
        return value, Claim("departments", subject, self.label,
                            f"{compared}{ignored}; signal {value:+.2f} (the mean of each "
                            "department's capped log-lift)",
                            {**numbers, "signal": value, "weight": self.weight})

    def _hour(self, row: Mapping[str, Any], population: Population
              ) -> tuple[float | None, Claim]:
        shift = float(row["hour_shift"])
        hour = row_hour(row)
        hour = float(row["preferred_hour"]) if hour is None else hour
        value = _cap(self.sign * shift / HOUR_UNIT)
        average = (hour - shift) % 24.0
        return value, Claim("hour", HOUR_SUBJECT, "order time",
                            f"orders around {clock(hour)}, {later_or_earlier(shift)} the "
                            f"average shopper's {clock(average)}; signal {value:+.2f}",
                            {"hour": hour, "average": average, "shift": shift, "signal": value,
                             "weight": self.weight})


def feature_comparison(row: Mapping[str, Any], population: Population,
                       feature: str) -> tuple[str, dict[str, float]]:
    """``13.5 against the average shopper's 10.0 (1.35x; +0.69 SD)`` and the numbers it states.

    Without the segment's or the population's mean (a table of ``z_``
    columns only) only the standardised difference is stated.
    """
    z = float(row.get(f"z_{feature}", math.nan))
    value, average = row.get(feature), population.mean(feature)
    if value is None or average is None or not math.isfinite(value):
        return f"{z:+.2f} SD from the average shopper", {"z": z}
    unit = feature_unit(feature)
    numbers = {"value": float(value), "average": average, "z": z}
    ratio = ""
    if average != 0:
        numbers["ratio"] = float(value) / average
        ratio = f"{numbers['ratio']:.2f}x; "
    return (f"{format_value(value, unit)} against the average shopper's "
            f"{format_value(average, unit)} ({ratio}{z:+.2f} SD)"), numbers

