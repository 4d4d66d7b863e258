"""Business actions, each triggered by one fact of a segment's profile that passes a documented threshold.

A segment gets an action only when a fact of its profile row, compared with
the average shopper's (:mod:`~gpuseg.personas.population`), passes that
action's threshold; the action carries the fact as a
:class:`~gpuseg.personas.claims.Claim` that states the segment's number, the
average shopper's and the threshold. Actions follow the facts, not the name:
a "Busy Convenience Seekers" segment that orders at the average shopper's hour
gets no delivery-slot action.

The thresholds (declared here once; the report and the README show them):

=====================================  ======================================================
fact                                   the action needs
=====================================  ======================================================
items per order, days between orders,  at least :data:`VOLUME_RATIO` (1.3) times the average
orders placed                          shopper's, or at most 1/1.3 (0.77) of it
organic share, reordered share,        at least :data:`RATE_RATIO` (1.2) times the average
weekend share of orders                shopper's, or at most 1/1.2 (0.83) of it
preferred ordering hour                :data:`SLOT_HOURS` (2) hours or more from the average
                                       shopper's, either way
a department the segment over-buys     a lift of :data:`DEPARTMENT_LIFT` (1.2) or more, and at
                                       least :data:`~gpuseg.personas.basket.MATERIAL_SHARE`
                                       (5 %) of the segment's items
a department the segment under-buys    a material shortfall: at least 5 % of the average
                                       shopper's items, bought at 1/1.5 (0.67) of that rate
                                       or less
=====================================  ======================================================

Why these: 1.3x is the issue's "bulk" line (a 13-item basket against a
10-item average); rates vary less than volumes across shoppers, so 1.2x (a
fifth above the average) is already a difference a campaign can use; two hours
is one delivery-slot window either side; a department action needs the same
material share as a name that rests on a department, so no offer is built on a
lift over a small base. Triggered actions are listed strongest first (how many
times over its threshold each fact is, on a log scale), at most
:data:`MAX_ACTIONS`. A segment no fact triggers gets no generic offer: it is
described by what it is, its share of shoppers, orders and items
(:func:`baseline_action`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..feature_labels import feature_label, feature_unit, format_value
from .basket import MATERIAL_SHARE, DepartmentShare
from .claims import Claim, clock, later_or_earlier, part_of_day
from .population import Population, row_hour
from .profile import DEPARTMENT_SHARE_PREFIX
from .signals import HOUR_SUBJECT, LIFT_UNIT

#: Items per order, days between orders and orders placed trigger at this ratio to the average.
VOLUME_RATIO = 1.3
#: Organic, reordered and weekend shares trigger at this ratio to the average.
RATE_RATIO = 1.2
#: A delivery-slot action needs a preferred hour at least this many hours from the average's.
SLOT_HOURS = 2.0
#: A department action needs this lift (and :data:`MATERIAL_SHARE` of the segment's items).
DEPARTMENT_LIFT = 1.2
#: At most this many actions per segment, strongest first (every one is in metrics.json).
MAX_ACTIONS = 5
#: The key of the statement a segment without a triggered action gets.
BASELINE = "baseline"


@dataclass(frozen=True)
class Action:
    """What to do about a segment, and the fact that triggers it.

    Attributes
    ----------
    key : str
        Which trigger fired (``basket_size_mean:high``, ``hour``,
        ``department:frozen``, ``shortfall:produce``, or :data:`BASELINE`).
    text : str
        What to do.
    fact : Claim
        The fact, with the segment's number, the average shopper's and the threshold.
    strength : float
        How far past its threshold the fact is (1: at the threshold).
    """

    key: str
    text: str
    fact: Claim
    strength: float = 1.0

    def __str__(self) -> str:
        return f"{self.text} ({self.fact.text})"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "text": self.text, "fact": self.fact.to_dict()}


@dataclass(frozen=True)
class FeatureTrigger:
    """An action for a segment whose mean of ``feature`` is far above (``high``) or below (``low``)
    the average shopper's: at least ``ratio`` times it, or at most ``1 / ratio``."""

    feature: str
    ratio: float
    high: str | None
    low: str | None


#: The behavioural facts that trigger an action, and what to do.
FEATURE_TRIGGERS: tuple[FeatureTrigger, ...] = (
    FeatureTrigger("basket_size_mean", VOLUME_RATIO,
                   "bulk and multi-buy discounts, with free delivery above a large-basket "
                   "threshold", "basket-building bundles that lift order value"),
    FeatureTrigger("days_between_mean", VOLUME_RATIO,
                   "win-back reminders timed to the segment's usual reorder interval",
                   "a delivery pass that rewards frequent orders"),
    FeatureTrigger("n_orders", VOLUME_RATIO, "loyalty rewards for the most active customers",
                   "onboarding offers that build an ordering habit"),
    FeatureTrigger("organic_ratio", RATE_RATIO,
                   "organic promotions and early access to new organic lines", None),
    FeatureTrigger("reorder_ratio", RATE_RATIO, "one-click reorder of usual items",
                   "personalised new-product recommendations"),
    FeatureTrigger("weekend_ratio", RATE_RATIO, "weekend delivery slots and weekend offers",
                   "weekday delivery slots and offers"),
)

#: What to do for a segment that over-buys a department materially.
DEPARTMENT_ACTIONS: Mapping[str, str] = {
    "snacks": "snack multipacks and checkout add-ons",
    "frozen": "frozen-meal bundles",
    "beverages": "beverage multipack deals",
    "alcohol": "wine and beer pairing suggestions where permitted",
    "pets": "pet-food auto-replenishment",
    "babies": "baby-essentials subscriptions",
    "produce": "a weekly fresh-produce subscription",
    "dairy eggs": "dairy and breakfast bundles",
    "bakery": "fresh-bakery add-ons",
    "deli": "ready-to-eat meal deals",
    "meat seafood": "meal kits built around meat and seafood",
    "household": "household-essentials subscriptions",
    "personal care": "personal-care replenishment reminders",
    "international": "world-food discovery boxes",
    "breakfast": "breakfast bundles",
    "pantry": "pantry subscriptions with auto-replenishment",
    "canned goods": "canned-goods multi-buy offers",
    "dry goods pasta": "pasta-night bundles",
    "bulk": "bulk-bin promotions",
}


def thresholds() -> list[tuple[str, str]]:
    """(fact, what an action needs) for every trigger: the table the report and README show."""
    volume = ", ".join(feature_label(t.feature) for t in FEATURE_TRIGGERS if t.ratio == VOLUME_RATIO)
    rate = ", ".join(feature_label(t.feature) for t in FEATURE_TRIGGERS if t.ratio == RATE_RATIO)
    return [
        (volume, f"at least {VOLUME_RATIO:g}x the average shopper's, or at most "
                 f"{1 / VOLUME_RATIO:.2f}x"),
        (rate, f"at least {RATE_RATIO:g}x the average shopper's, or at most {1 / RATE_RATIO:.2f}x"),
        ("preferred ordering hour", f"{SLOT_HOURS:g} h or more from the average shopper's"),
        ("a department bought more", f"a lift of {DEPARTMENT_LIFT:g}x or more, and at least "
                                     f"{MATERIAL_SHARE:.0%} of the segment's items"),
        ("a department bought less", f"at least {MATERIAL_SHARE:.0%} of the average shopper's "
                                     f"items, bought at {1 / LIFT_UNIT:.2f}x or less"),
    ]


def triggered_actions(row: Mapping[str, Any], population: Population,
                      shares: Mapping[str, DepartmentShare], *, largest: bool) -> tuple[Action, ...]:
    """The actions the facts of one profile row trigger, strongest first.

    Parameters
    ----------
    row : mapping
        One row of the profile table.
    population : Population
        The average shopper of the same table.
    shares : mapping of str to DepartmentShare
        The row's departments against the population's.
    largest : bool
        Whether the row is the largest segment (said in the baseline statement).

    Returns
    -------
    tuple of Action
        At most :data:`MAX_ACTIONS`; a segment no fact triggers gets the one
        :func:`baseline_action`.
    """
    found = [*_feature_actions(row, population), *_hour_action(row, population),
             *_department_actions(shares)]
    found.sort(key=lambda action: (-action.strength, action.key))
    return tuple(found[:MAX_ACTIONS]) or (baseline_action(row, largest=largest),)


def _feature_actions(row: Mapping[str, Any], population: Population) -> list[Action]:
    actions = []
    for trigger in FEATURE_TRIGGERS:
        value, average = row.get(trigger.feature), population.mean(trigger.feature)
        if value is None or not math.isfinite(value) or average is None or average <= 0:
            continue
        ratio = float(value) / average
        if ratio >= trigger.ratio and trigger.high:
            key, text, bound, needs = "high", trigger.high, trigger.ratio, "or more"
        elif ratio <= 1.0 / trigger.ratio and trigger.low:
            key, text, bound, needs = "low", trigger.low, 1.0 / trigger.ratio, "or less"
        else:
            continue
        unit = feature_unit(trigger.feature)
        fact = Claim("trigger", trigger.feature, feature_label(trigger.feature),
                     f"{format_value(value, unit)} against the average shopper's "
                     f"{format_value(average, unit)} ({ratio:.2f}x; the action needs "
                     f"{bound:.2f}x {needs})",
                     {"value": float(value), "average": average, "ratio": ratio,
                      ("at_least" if key == "high" else "at_most"): bound})
        actions.append(Action(f"{trigger.feature}:{key}", text, fact,
                              strength=abs(math.log(ratio)) / math.log(trigger.ratio)))
    return actions


def _hour_action(row: Mapping[str, Any], population: Population) -> list[Action]:
    shift = float(row["hour_shift"])
    if abs(shift) < SLOT_HOURS:
        return []
    hour = row_hour(row)
    hour = float(row["preferred_hour"]) if hour is None else hour
    average = (hour - shift) % 24.0
    slot = int(row["preferred_hour"])
    fact = Claim("trigger", HOUR_SUBJECT, "order time",
                 f"orders around {clock(hour)}, {later_or_earlier(shift)} the average shopper's "
                 f"{clock(average)} (the action needs {SLOT_HOURS:g} h or more either way)",
                 {"hour": hour, "average": average, "shift": shift, "at_least": SLOT_HOURS})
    return [Action("hour", f"{part_of_day(slot)} delivery slots around {slot:02d}:00, when this "
                           "segment orders", fact, strength=abs(shift) / SLOT_HOURS)]


def _department_actions(shares: Mapping[str, DepartmentShare]) -> list[Action]:
    actions = []
    for department, share in sorted(shares.items()):
        if not math.isfinite(share.lift) or share.lift <= 0:
            continue
        subject = f"{DEPARTMENT_SHARE_PREFIX}{department}"
        stated = (f"{share.share:.1%} of the segment's items, {share.lift:.2f}x the average "
                  f"shopper's {share.population_share:.1%}")
        numbers = {"share": share.share, "average": share.population_share, "lift": share.lift}
        if (department in DEPARTMENT_ACTIONS and share.lift >= DEPARTMENT_LIFT
                and share.share >= MATERIAL_SHARE):
            fact = Claim("trigger", subject, department,
                         f"{stated} (the action needs {DEPARTMENT_LIFT:g}x or more and at least "
                         f"{MATERIAL_SHARE:.0%} of the segment's items)",
                         {**numbers, "lift_at_least": DEPARTMENT_LIFT,
                          "share_at_least": MATERIAL_SHARE})
            actions.append(Action(f"department:{department}", DEPARTMENT_ACTIONS[department], fact,
                                  strength=math.log(share.lift) / math.log(DEPARTMENT_LIFT)))
        elif share.material_under:
            fact = Claim("trigger", subject, department,
                         f"{stated} (the action needs {1 / LIFT_UNIT:.2f}x or less of a "
                         f"department that is at least {MATERIAL_SHARE:.0%} of the average "
                         "shopper's items)",
                         {**numbers, "lift_at_most": 1 / LIFT_UNIT,
                          "average_at_least": MATERIAL_SHARE})
            actions.append(Action(f"shortfall:{department}",
                                  f"trial offers that bring {department} into these baskets", fact,
                                  strength=-math.log(share.lift) / math.log(LIFT_UNIT)))
    return actions


def baseline_action(row: Mapping[str, Any], *, largest: bool) -> Action:
    """What a segment no fact triggers an action for is: its shares of shoppers, orders and items.

    Where the profile has no order and item volumes (a hand-built table), only
    the share of shoppers is stated.
    """
    numbers = {"share": float(row["share"])}
    volume = f"{numbers['share']:.1%} of shoppers"
    if row.get("order_share") is not None and row.get("item_share") is not None:
        numbers.update(order_share=float(row["order_share"]), item_share=float(row["item_share"]))
        volume += (f", {numbers['order_share']:.1%} of all orders and {numbers['item_share']:.1%} "
                   "of all items")
    numbers["largest"] = 1.0 if largest else 0.0
    which = "the largest segment, " if largest else ""
    fact = Claim("baseline", "segment", "no action triggered",
                 f"no fact of this segment passes an action's threshold, so it shops like the "
                 f"average shopper; it is {which}{volume}", numbers)
    return Action(BASELINE, "keep it on the standard range and service, and use it as the "
                            "baseline other segments' campaigns are measured against", fact)
