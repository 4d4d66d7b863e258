"""Descriptive names for segments no market persona fits, from their largest material differences."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..feature_labels import feature_label
from .basket import MATERIAL_SHARE, DepartmentShare, basket_evidence, material_differences
from .claims import Claim, clock, later_or_earlier, part_of_day
from .population import Population, row_hour
from .signals import (
    HOUR_SUBJECT,
    HOUR_UNIT,
    LIFT_UNIT,
    SIGNAL_CAP,
    TRAIT_THRESHOLD,
    Z_UNIT,
    feature_comparison,
)

#: At most this many departments in a descriptive name.
MAX_NAMED_DEPARTMENTS = 2


# -- descriptive names ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Trait:
    feature: str | None  # None: the ordering hour
    sign: int
    high: str | None
    low: str | None


#: Behavioural traits a descriptive name may use, in the order adjectives are written.
_TRAITS = (
    _Trait("n_orders", 1, "Loyal", "Light"),
    _Trait("days_between_mean", -1, "Frequent", "Occasional"),
    _Trait(None, 1, None, None),
    _Trait("weekend_ratio", 1, "Weekend", "Weekday"),
    _Trait("organic_ratio", 1, "Organic", None),
    _Trait("reorder_ratio", 1, "Routine", "Variety-Seeking"),
    _Trait("basket_size_mean", 1, "Big-Basket", "Small-Basket"),
)

#: How a department reads in a name.
_DEPARTMENT_NOUNS = {
    "snacks": "Snack", "frozen": "Frozen-Food", "beverages": "Beverage", "alcohol": "Wine & Beer",
    "pets": "Pet-Supply", "babies": "Baby-Care", "produce": "Fresh-Produce", "dairy eggs": "Dairy",
    "bakery": "Bakery", "deli": "Deli", "meat seafood": "Meat & Seafood",
    "household": "Household-Essentials", "personal care": "Personal-Care",
    "international": "World-Food", "breakfast": "Breakfast", "pantry": "Pantry",
    "canned goods": "Canned-Goods", "dry goods pasta": "Pasta & Grains", "bulk": "Bulk-Bin",
}
_GENERIC_NAME = "Mainstream Shoppers"


@dataclass(frozen=True)
class Description:
    """A descriptive name, the claims behind it and the basket it rests on."""

    name: str
    evidence: tuple[Claim, ...]
    basket: tuple[DepartmentShare, ...]


def _joined(nouns: list[str]) -> str:
    """``Beverage & Snack``, or ``Meat & Seafood and Dairy`` where a noun has its own ampersand."""
    return (" and " if any("&" in noun for noun in nouns) else " & ").join(nouns)


def _trait(trait: _Trait, row: Mapping[str, Any],
           population: Population) -> tuple[float, str, Claim] | None:
    """A trait's strength in signal units (capped as a naming signal is), its name word and the
    claim, when it is strong enough."""
    if trait.feature is None:
        shift = float(row["hour_shift"])
        if abs(shift / HOUR_UNIT) < TRAIT_THRESHOLD:
            return None
        hour = row_hour(row)
        hour = float(row["preferred_hour"]) if hour is None else hour
        average = (hour - shift) % 24.0
        word = part_of_day(int(row["preferred_hour"])).title()
        return min(abs(shift) / HOUR_UNIT, SIGNAL_CAP), word, Claim(
            "hour", HOUR_SUBJECT, "order time",
            f"orders around {clock(hour)}, {later_or_earlier(shift)} the average shopper's "
            f"{clock(average)}; named '{word}' ({HOUR_UNIT * TRAIT_THRESHOLD:g} h or more either "
            "way)", {"hour": hour, "average": average, "shift": shift,
                     "word_from": HOUR_UNIT * TRAIT_THRESHOLD})
    z = row.get(f"z_{trait.feature}")
    if z is None or not math.isfinite(z) or abs(z) / Z_UNIT < TRAIT_THRESHOLD:
        return None
    chosen = trait.high if trait.sign * z > 0 else trait.low
    if chosen is None:
        return None
    word = chosen
    detail, numbers = feature_comparison(row, population, trait.feature)
    needed = Z_UNIT * TRAIT_THRESHOLD
    return min(abs(z) / Z_UNIT, SIGNAL_CAP), word, Claim(
        "feature", trait.feature, feature_label(trait.feature),
        f"{detail}; named '{word}' ({needed:.2f} SD or more either way)",
        {**numbers, "word_from": needed})


def department_claim(share: DepartmentShare, *, noun: str | None) -> Claim:
    """A department a descriptive name uses (``noun``), or the segment's material shortfall."""
    stated = (f"{share.share:.1%} of the segment's items, {share.lift:.2f}x the average shopper's "
              f"{share.population_share:.1%}")
    numbers = {"share": share.share, "average": share.population_share, "lift": share.lift}
    if noun is not None:
        return Claim("department", share.department, share.department,
                     f"{stated}; named '{noun}' (at least {MATERIAL_SHARE:.0%} of the segment's "
                     f"items and {LIFT_UNIT:g}x)",
                     {**numbers, "share_needed": MATERIAL_SHARE, "lift_needed": LIFT_UNIT})
    return Claim("department", share.department, share.department,
                 f"{stated}: a material shortfall ({1 / LIFT_UNIT:.2f}x or less of a department "
                 f"that is at least {MATERIAL_SHARE:.0%} of the average shopper's items), not "
                 "used in the name",
                 {**numbers, "lift_at_most": 1 / LIFT_UNIT, "average_needed": MATERIAL_SHARE})


def describe_segment(row: Mapping[str, Any], population: Population,
                     shares: Mapping[str, DepartmentShare], used: set[str]) -> Description:
    """A descriptive name from the segment's largest material differences.

    Parameters
    ----------
    row : mapping
        One row of the profile table.
    population : Population
        The average shopper of the same table.
    shares : mapping of str to DepartmentShare
        The segment's departments against the population's.
    used : set of str
        Names already given; the name returned is not among them.

    Returns
    -------
    Description

    Notes
    -----
    The name is built from behavioural traits of at least one signal unit
    (``TRAIT_THRESHOLD``: 0.75 SD from the average shopper, or 2 hours for
    the ordering hour; strongest first) and from up to
    :data:`MAX_NAMED_DEPARTMENTS` departments the segment over-buys
    materially (at least 5 % of its items and 1.5x the average shopper's
    rate; :mod:`~gpuseg.personas.basket`), largest difference in share points
    first. A department bought at a high lift over a small base is never
    named. The largest material shortfall (a big department bought at 1/1.5
    of the average rate or less) is stated in the evidence, not named. Each
    claim of the evidence states the numbers and the threshold behind its word.
    """
    traits = []
    for order, trait in enumerate(_TRAITS):
        found = _trait(trait, row, population)
        if found is not None:
            strength, word, claim = found
            traits.append((strength, order, word, claim))
    traits.sort(key=lambda t: (-t[0], t[1]))

    over, under = material_differences(shares)
    focus = [s for s in over if s.department in _DEPARTMENT_NOUNS][:MAX_NAMED_DEPARTMENTS]
    shortfall = under[0] if under else None
    noun = _joined([_DEPARTMENT_NOUNS[s.department] for s in focus]) if focus else None

    if not traits and noun is None:
        options: list[tuple[str, list[Any]]] = [(_GENERIC_NAME, [])]
    else:
        # One adjective before department nouns ("Late-Night Snack Buyers"), two without them
        # ("Frequent Small-Basket Shoppers"); more only when needed to keep names distinct.
        first = 1 if noun else 2
        counts = list(range(min(first, len(traits)), len(traits) + 1))
        options = []
        for count in counts:
            chosen = sorted(traits[:count], key=lambda t: t[1])
            words = [t[2] for t in chosen] + ([noun, "Buyers"] if noun else ["Shoppers"])
            options.append((" ".join(words), chosen))
    name, chosen = next(((n, c) for n, c in options if n not in used), options[0])
    if name in used:
        name = f"{name} (segment {int(row['segment'])})"
    evidence = ([t[3] for t in chosen]
                + [department_claim(s, noun=_DEPARTMENT_NOUNS[s.department]) for s in focus]
                + ([department_claim(shortfall, noun=None)] if shortfall else []))
    return Description(name=name, evidence=tuple(evidence),
                       basket=basket_evidence(shares, [s.department for s in focus]))
