"""Department shares and lifts of a segment's basket, and which differences are material enough to name.

A name that refers to a department ("Wine & Beer Buyers", "Fresh-Produce
Buyers") or a persona that rests on one ("Family Shoppers" on dairy, bakery,
meat and baby items) must rest on behaviour that is both *distinctive* and
*material*:

- distinctive: the segment buys the department at :data:`~gpuseg.personas.signals.LIFT_UNIT` (1.5)
  times the average shopper's rate or more (its *lift*);
- material: the department makes up at least :data:`MATERIAL_SHARE` (5 %) of
  the segment's items.

Why 5 %: it is one item in twenty, about one item in every second order at
Instacart's published mean basket of 10.1 items, and it is the weight of an
average department (21 departments share 100 % of the items, 4.8 % each). In
the real Instacart data only six departments reach it for the average
shopper (produce 29 %, dairy eggs 17 %, snacks 9 %, beverages 8 %, frozen 7 %,
pantry 6 %), so a big department is material as it is, while a small one
must be bought at many times its base rate before a name may use it: alcohol
(0.5 % of all items) needs a lift of about 10, babies (1.3 %) about 4,
household (2.3 %) about 2.2. A lift over a tiny base (alcohol at 1.7 % of a
segment's items, lift 2.4) is therefore distinctive but not material, and no
name or action is built on it.

The same threshold marks a material *shortfall*: a department holding at
least 5 % of the average shopper's items that the segment buys at 1/1.5 of
that rate or less (a segment with half the average produce share).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..numerics.arrays import finite_or_none
from .profile import DEPARTMENT_LIFT_PREFIX, DEPARTMENT_SHARE_PREFIX
from .signals import LIFT_UNIT

#: Share of a segment's items a department must reach before a name may refer to it.
MATERIAL_SHARE = 0.05
#: Material differences "Why this name" shows beyond the departments the name rests on.
EXTRA_DIFFERENCES = 3


@dataclass(frozen=True)
class DepartmentShare:
    """One department in one segment's basket, against the average shopper's.

    Attributes
    ----------
    department : str
    share : float
        The department's share of the segment's items (0-1).
    population_share : float
        Its share of every segmented shopper's items.
    lift : float
        ``share / population_share`` (NaN when the population never buys it).
    named : bool
        Whether the segment's name or persona refers to it.
    """

    department: str
    share: float
    population_share: float
    lift: float
    named: bool = False

    @property
    def excess(self) -> float:
        """Share points above (+) or below (-) the average shopper's."""
        return self.share - self.population_share

    @property
    def material_over(self) -> bool:
        """Bought distinctively more, and a material share of the segment's items."""
        return (math.isfinite(self.lift) and self.lift >= LIFT_UNIT
                and self.share >= MATERIAL_SHARE)

    @property
    def material_under(self) -> bool:
        """A department material for the average shopper that the segment distinctively under-buys."""
        return (math.isfinite(self.lift) and self.lift <= 1.0 / LIFT_UNIT
                and self.population_share >= MATERIAL_SHARE)

    def text(self) -> str:
        """E.g. ``canned goods 7.4% of items (3.70x the average shopper's 2.0%)``."""
        lift = f"{self.lift:.2f}x" if math.isfinite(self.lift) else "no"
        return (f"{self.department} {self.share:.1%} of items ({lift} the average shopper's "
                f"{self.population_share:.1%})")

    def to_dict(self) -> dict[str, Any]:
        return {"department": self.department, "share": self.share,
                "population_share": self.population_share, "lift": finite_or_none(self.lift),
                "named": self.named, "material": self.share >= MATERIAL_SHARE,
                "material_difference": self.material_over or self.material_under}


def department_shares(row: Mapping[str, Any],
                      population_share: Mapping[str, float]) -> dict[str, DepartmentShare]:
    """Each department of one profile row against the population.

    The share is the row's ``dept_share_<name>`` and the lift its
    ``dept_lift_<name>`` (what the profile measured against every user); the
    population's share is then ``share / lift``, and ``population_share``
    stands in only where the lift is missing or zero.
    """
    shares = {}
    for department, base in population_share.items():
        share = row.get(f"{DEPARTMENT_SHARE_PREFIX}{department}")
        if share is None or not math.isfinite(share):
            continue
        lift = row.get(f"{DEPARTMENT_LIFT_PREFIX}{department}")
        if lift is None or not math.isfinite(lift):
            lift = share / base if base > 0 else math.nan
        elif lift > 0:
            base = share / lift
        shares[department] = DepartmentShare(department, float(share), float(base), float(lift))
    return shares


def group_share(shares: Mapping[str, DepartmentShare], departments: Iterable[str]) -> float:
    """Combined share of the segment's items in the departments of a group it over-buys (lift > 1).

    A persona's department group ("dairy, bakery, meat and baby") is material
    when this reaches :data:`MATERIAL_SHARE`: the departments the segment buys
    at or below the average rate do not count towards it.
    """
    return float(sum(shares[d].share for d in departments
                     if d in shares and math.isfinite(shares[d].lift) and shares[d].lift > 1.0))


def material_differences(shares: Mapping[str, DepartmentShare]
                         ) -> tuple[list[DepartmentShare], list[DepartmentShare]]:
    """The material over- and under-bought departments, each largest difference (share points) first."""
    over = sorted((s for s in shares.values() if s.material_over),
                  key=lambda s: (-s.excess, s.department))
    under = sorted((s for s in shares.values() if s.material_under),
                   key=lambda s: (s.excess, s.department))
    return over, under


def basket_evidence(shares: Mapping[str, DepartmentShare], named: Iterable[str]
                    ) -> tuple[DepartmentShare, ...]:
    """The departments a name rests on (marked ``named``), then the largest other material differences.

    Parameters
    ----------
    shares : mapping of department to DepartmentShare
        One segment's departments (:func:`department_shares`).
    named : iterable of str
        Departments the name or persona refers to, in the order to show.

    Returns
    -------
    tuple of DepartmentShare
        The named departments, then up to :data:`EXTRA_DIFFERENCES` other
        material over- or under-bought departments, largest difference first.
    """
    named = [d for d in dict.fromkeys(named) if d in shares]
    over, under = material_differences(shares)
    others = sorted(over + under, key=lambda s: (-abs(s.excess), s.department))
    extra = [s for s in others if s.department not in named][:EXTRA_DIFFERENCES]
    return tuple(replace(shares[d], named=True) for d in named) + tuple(extra)
