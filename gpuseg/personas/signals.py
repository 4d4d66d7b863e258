"""The scale the naming rules measure a segment on: standardised differences, lifts, hour, cadence."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GpusegError
from .profile import DEPARTMENT_LIFT_PREFIX, DEPARTMENT_SHARE_PREFIX, MIN_POPULATION_SHARE

Z_UNIT = 0.75
LIFT_UNIT = 1.5
HOUR_UNIT = 2.0
CADENCE_WIDTH = 5.0
SIGNAL_CAP = 2.0
MATCH_THRESHOLD = 0.5
TRAIT_THRESHOLD = 1.0


# -- signals ------------------------------------------------------------------------------------
def _cap(value: float) -> float:
    return float(min(SIGNAL_CAP, max(-SIGNAL_CAP, value)))


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
        How the evidence names it.
    """

    kind: str
    target: Any
    label: str
    weight: float = 1.0
    sign: int = 1
    core: bool = False

    def measure(self, row: Mapping[str, Any], population_share: Mapping[str, float]
                ) -> tuple[float | None, str]:
        """The signal for one profile row and its evidence text (``None``: not measurable)."""
        if self.kind == "z":
            z = row.get(f"z_{self.target}")
            if z is None or not math.isfinite(z):
                return None, f"{self.target} not measured"
            return _cap(self.sign * z / Z_UNIT), f"{self.target} {z:+.2f} SD"
        if self.kind == "lift":
            parts, texts = [], []
            for department in self.target:
                lift = row.get(f"{DEPARTMENT_LIFT_PREFIX}{department}")
                if (lift is None or not math.isfinite(lift) or lift <= 0
                        or population_share.get(department, 0.0) < MIN_POPULATION_SHARE):
                    continue
                parts.append(_cap(math.log(lift) / math.log(LIFT_UNIT)))
                share = row.get(f"{DEPARTMENT_SHARE_PREFIX}{department}")
                of_items = ("" if share is None or not math.isfinite(share)
                            else f" ({share:.1%} of items vs {share / lift:.1%})")
                texts.append(f"{department} {lift:.2f}x{of_items}")
            if not parts:
                return None, f"{'/'.join(self.target)} not bought enough to compare"
            return _cap(self.sign * float(np.mean(parts))), "lift " + ", ".join(texts)
        if self.kind == "hour":
            shift = float(row["hour_shift"])
            hour = int(row["preferred_hour"])
            return (_cap(self.sign * shift / HOUR_UNIT),
                    f"preferred hour {hour:02d}:00 ({shift:+.1f} h vs all users)")
        if self.kind == "cadence":
            days = float(row["days_between_mean"])
            closeness = 1.0 - abs(days - self.target) / CADENCE_WIDTH
            return (max(-1.0, min(1.0, closeness)),
                    f"{days:.1f} days between orders (target {self.target:g})")
        raise GpusegError(f"unknown signal kind {self.kind!r}")
