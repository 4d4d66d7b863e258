"""Descriptive names for segments no market persona fits, from their largest material differences."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .basket import DepartmentShare, basket_evidence, material_differences
from .signals import TRAIT_THRESHOLD, Signal

#: At most this many departments in a descriptive name.
MAX_NAMED_DEPARTMENTS = 2


# -- descriptive names ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Trait:
    signal: Signal
    high: str | None
    low: str | None
    high_action: str | None
    low_action: str | None


#: Behavioural traits a descriptive name may use, in the order adjectives are written.
_TRAITS = (
    _Trait(Signal("z", "n_orders", "order count"), "Loyal", "Light",
           "loyalty rewards for the most active customers",
           "onboarding offers that build an ordering habit"),
    _Trait(Signal("z", "days_between_mean", "days between orders", sign=-1),
           "Frequent", "Occasional",
           "a delivery pass that rewards frequent orders",
           "win-back reminders timed to the usual reorder interval"),
    _Trait(Signal("hour", None, "ordering hour"), None, None,
           "delivery slots at the hours this segment orders",
           "delivery slots at the hours this segment orders"),
    _Trait(Signal("z", "weekend_ratio", "weekend share"), "Weekend", "Weekday",
           "weekend delivery slots and weekend offers", "weekday delivery slots"),
    _Trait(Signal("z", "organic_ratio", "organic share"), "Organic", None,
           "organic promotions", None),
    _Trait(Signal("z", "reorder_ratio", "reorder rate"), "Routine", "Variety-Seeking",
           "one-click reorder of usual items", "personalised new-product recommendations"),
    _Trait(Signal("z", "basket_size_mean", "basket size"), "Big-Basket", "Small-Basket",
           "volume discounts on large baskets", "basket-building bundles that lift order value"),
)

#: How a department reads in a name, and an action for a segment that over-buys it.
_DEPARTMENT_FOCUS = {
    "snacks": ("Snack", "snack multipacks and checkout add-ons"),
    "frozen": ("Frozen-Food", "frozen-meal bundles"),
    "beverages": ("Beverage", "beverage multipack deals"),
    "alcohol": ("Wine & Beer", "wine and beer pairing suggestions where permitted"),
    "pets": ("Pet-Supply", "pet-food auto-replenishment"),
    "babies": ("Baby-Care", "baby-essentials subscriptions"),
    "produce": ("Fresh-Produce", "seasonal produce boxes"),
    "dairy eggs": ("Dairy", "dairy and breakfast bundles"),
    "bakery": ("Bakery", "fresh-bakery add-ons"),
    "deli": ("Deli", "ready-to-eat meal deals"),
    "meat seafood": ("Meat & Seafood", "meal kits built around meat and seafood"),
    "household": ("Household-Essentials", "household-essentials subscriptions"),
    "personal care": ("Personal-Care", "personal-care replenishment reminders"),
    "international": ("World-Food", "world-food discovery boxes"),
    "breakfast": ("Breakfast", "breakfast bundles"),
    "pantry": ("Pantry", "pantry restock offers"),
    "canned goods": ("Canned-Goods", "canned-goods multi-buy offers"),
    "dry goods pasta": ("Pasta & Grains", "pasta-night bundles"),
    "bulk": ("Bulk-Bin", "bulk-bin promotions"),
}
_GENERIC_NAME = "Mainstream Shoppers"
_GENERIC_ACTIONS = ("broad seasonal promotions",
                    "personalised recommendations from purchase history")


def _hour_word(hour: int) -> str:
    if hour >= 20 or hour < 4:
        return "Late-Night"
    if hour < 9:
        return "Early-Morning"
    if hour < 12:
        return "Morning"
    if hour < 17:
        return "Afternoon"
    return "Evening"



@dataclass(frozen=True)
class Description:
    """A descriptive name, the evidence behind it, its actions and the basket it rests on."""

    name: str
    evidence: tuple[str, ...]
    actions: tuple[str, ...]
    basket: tuple[DepartmentShare, ...]


def _joined(nouns: list[str]) -> str:
    """``Beverage & Snack``, or ``Meat & Seafood and Dairy`` where a noun has its own ampersand."""
    return (" and " if any("&" in noun for noun in nouns) else " & ").join(nouns)


def describe_segment(row: Mapping[str, Any], population_share: Mapping[str, float],
                     shares: Mapping[str, DepartmentShare], used: set[str]) -> Description:
    """A descriptive name from the segment's largest material differences.

    Parameters
    ----------
    row : mapping
        One row of the profile table.
    population_share : mapping of str to float
        Every department's share of all shoppers' items.
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
    (``|signal| >= TRAIT_THRESHOLD``, strongest first) and from up to
    :data:`MAX_NAMED_DEPARTMENTS` departments the segment over-buys
    materially (at least 5 % of its items and 1.5x the average shopper's
    rate; :mod:`~gpuseg.personas.basket`), largest difference in share points
    first. A department bought at a high lift over a small base is never
    named. The largest material shortfall (a big department bought at 1/1.5
    of the average rate or less) is stated in the evidence and gets an action,
    but not a word in the name. Actions follow the traits and departments
    the name uses.
    """
    traits = []
    for order, trait in enumerate(_TRAITS):
        value, text = trait.signal.measure(row, population_share)
        if value is None or abs(value) < TRAIT_THRESHOLD:
            continue
        word: str | None
        if trait.signal.kind == "hour":
            word = _hour_word(int(row["preferred_hour"]))
            action = trait.high_action
        else:
            word = trait.high if value > 0 else trait.low
            action = trait.high_action if value > 0 else trait.low_action
        if word is not None:
            traits.append((abs(value), order, word, f"{trait.signal.label}: {text}", action))
    traits.sort(key=lambda t: (-t[0], t[1]))

    over, under = material_differences(shares)
    focus = [s for s in over if s.department in _DEPARTMENT_FOCUS][:MAX_NAMED_DEPARTMENTS]
    shortfall = under[0] if under else None
    noun = _joined([_DEPARTMENT_FOCUS[s.department][0] for s in focus]) if focus else None

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
    evidence = ([t[3] for t in chosen] + [f"department focus: {s.text()}" for s in focus]
                + ([f"material shortfall: {shortfall.text()}"] if shortfall else []))
    actions = ([t[4] for t in chosen if t[4]]
               + [_DEPARTMENT_FOCUS[s.department][1] for s in focus]
               + ([f"trial offers that bring {shortfall.department} into these baskets"]
                  if shortfall else []))
    return Description(
        name=name, evidence=tuple(evidence),
        actions=tuple(dict.fromkeys(actions)) or _GENERIC_ACTIONS,
        basket=basket_evidence(shares, [s.department for s in focus]))
