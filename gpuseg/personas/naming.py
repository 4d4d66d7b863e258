"""Persona names and business actions for profiled segments, from explicit rules.

:func:`name_segments` reads the table of
:func:`~gpuseg.personas.profile.profile_segments` only and names each segment
with explicit rules in this market's vocabulary (:mod:`gpuseg.vocabulary`), or,
where no persona fits, with a description of the segment's largest material differences.

The naming rules
----------------
Every rule is a weighted list of *signals*, each a number on a common scale
where 1 means "clearly distinctive" and 0 means "like the population" (the
scale and its constants live in :mod:`~gpuseg.personas.signals`):

- ``z`` signals: the segment's standardised mean difference (segment mean
  minus population mean, in population standard deviations of the per-user
  feature) divided by ``Z_UNIT`` (0.75 SD);
- ``lift`` signals: for a group of departments, the mean over its departments
  of log(lift) / log(``LIFT_UNIT``), each capped (a 1.5x over-index
  scores 1, and one absent department cannot outweigh the rest), lift
  being the segment's department share over the population's, for
  departments with at least ``MIN_POPULATION_SHARE`` (0.5 %) of the
  population's items;
- ``hour``: the segment's preferred hour minus the population's, in units of
  ``HOUR_UNIT`` (2 hours, circular);
- ``cadence``: how close the segment's mean days between orders is to a
  persona's rhythm (1 at the target, 0 at ``CADENCE_WIDTH`` (5) days off).

Each signal is capped at +-``SIGNAL_CAP`` (2) so that no single extreme
trait carries a rule. A rule's score is the weighted mean of its signals; a
segment is eligible for a persona when the score reaches
``MATCH_THRESHOLD`` (0.5) and every *core* signal of the rule is positive
(see :data:`PERSONA_RULES`). Every persona has a core department group, and
that group must also be *material*: the departments of it that the segment
over-buys must make up at least ``MATERIAL_SHARE`` (5 %) of its items
(:mod:`~gpuseg.personas.basket` says why 5 %), so that no persona rests on a
lift over a small base. Names are then assigned by a maximum-total-score
matching over the eligible segment x persona pairs (scipy's
``linear_sum_assignment``), so no persona name is used twice; when two segments
compete for one persona and neither fits another, the higher score wins. A
persona name must also win by a margin: ``NAME_MARGIN`` (0.1) above the
threshold, above the segment's next eligible persona and above every other
segment eligible for the same persona; a name that passes its rule only just
(score 0.50 against 0.50) changes with the seed. A caller may withhold persona
names from some segments (:func:`name_segments`' ``withheld``: the run withholds
them from a segment that does not come back on subsample refits, or whose
matched refit segments do not win the same persona). A
segment without a persona gets a descriptive name from its largest material
differences (:mod:`~gpuseg.personas.describe`), e.g. "Routine Beverage & Snack
Buyers".
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import GpusegError
from ..numerics.arrays import finite_or_none
from ..vocabulary import (
    BULK_PANTRY_STOCKERS,
    BUSY_CONVENIENCE_SEEKERS,
    EXPLORATORY_FOODIES,
    FAMILY_SHOPPERS,
    HEALTH_CONSCIOUS_REGULARS,
)
from .actions import Action, triggered_actions
from .basket import (
    MATERIAL_SHARE,
    DepartmentShare,
    basket_evidence,
    department_shares,
    group_share,
)
from .claims import Claim, joined
from .describe import describe_segment
from .population import Population, population
from .signals import MATCH_THRESHOLD, SIGNAL_CAP, Signal


@dataclass(frozen=True)
class PersonaRule:
    """A market persona: the signals that define it (its actions follow the segment's facts,
    :mod:`~gpuseg.personas.actions`)."""

    name: str
    signals: tuple[Signal, ...]


#: The five personas of this market, as explicit rules (see the module docstring for the scale).
PERSONA_RULES: tuple[PersonaRule, ...] = (
    PersonaRule(
        name=HEALTH_CONSCIOUS_REGULARS,
        signals=(
            Signal("z", "organic_ratio", "organic share", core=True),
            Signal("lift", ("produce",), "produce lift", core=True),
            Signal("z", "reorder_ratio", "reorder rate", weight=0.75),
            Signal("cadence", 7.0, "weekly cadence", weight=0.5),
        ),
    ),
    PersonaRule(
        name=BULK_PANTRY_STOCKERS,
        signals=(
            Signal("z", "basket_size_mean", "basket size", core=True),
            Signal("lift", ("pantry", "canned goods", "dry goods pasta", "household", "bulk"),
                   "pantry, canned and household lift", core=True),
            Signal("z", "days_between_mean", "long intervals"),
        ),
    ),
    PersonaRule(
        name=BUSY_CONVENIENCE_SEEKERS,
        signals=(
            Signal("lift", ("deli", "frozen", "snacks"), "prepared, frozen and snack lift",
                   core=True),
            Signal("hour", None, "late ordering"),
            Signal("z", "order_interval_cv", "irregular cadence", weight=0.75),
            Signal("z", "reorder_ratio", "lower reorder rate", weight=0.5, sign=-1),
        ),
    ),
    PersonaRule(
        name=FAMILY_SHOPPERS,
        signals=(
            Signal("lift", ("dairy eggs", "bakery", "meat seafood", "babies"),
                   "dairy, bakery, meat and baby lift", core=True),
            Signal("z", "basket_size_mean", "large-ish baskets", weight=0.75),
            Signal("z", "dept_entropy", "broad department mix", weight=0.5),
            Signal("cadence", 14.0, "fortnightly cadence", weight=0.5),
        ),
    ),
    PersonaRule(
        name=EXPLORATORY_FOODIES,
        signals=(
            Signal("z", "dept_entropy", "broad department mix", core=True),
            Signal("z", "reorder_ratio", "low reorder rate", weight=0.75, sign=-1, core=True),
            Signal("z", "product_repeat_rate", "few repeat purchases", weight=0.75, sign=-1),
            # The name is about food: broad, non-repeating baskets alone fit a
            # household or personal-care stock-up just as well.
            Signal("lift", ("international", "alcohol"), "world-food and wine lift", core=True),
            Signal("z", "weekend_ratio", "weekend shopping", weight=0.5),
        ),
    ),
)


# -- naming ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Persona:
    """The name of one segment and why.

    Attributes
    ----------
    segment : int
    name : str
        A market persona (:data:`gpuseg.vocabulary.PERSONA_NAMES`) or a
        descriptive name.
    rule : Claim
        Why the segment has this name, with the scores it rests on.
    actions : tuple of Action
        Business actions, each with the fact of the segment that triggers it
        (:mod:`~gpuseg.personas.actions`).
    evidence : tuple of Claim
        The measured signals behind the name, each stating its numbers.
    matched : bool
        Whether the name is a market persona.
    score : float
        The matched persona's score, or the best persona score of an unmatched segment.
    scores : dict of str to float
        Every persona rule's score for this segment.
    basket : tuple of DepartmentShare
        The departments the name rests on (``named``), then the segment's other
        largest material differences from the average shopper: the shares and
        lifts behind the name.
    """

    segment: int
    name: str
    rule: Claim
    actions: tuple[Action, ...]
    evidence: tuple[Claim, ...]
    matched: bool
    score: float
    scores: dict[str, float]
    basket: tuple[DepartmentShare, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "name": self.name, "rule": self.rule.to_dict(),
                "actions": [action.to_dict() for action in self.actions],
                "evidence": [claim.to_dict() for claim in self.evidence],
                "matched": self.matched, "score": finite_or_none(self.score),
                "scores": {k: finite_or_none(v) for k, v in self.scores.items()},
                "basket": [share.to_dict() for share in self.basket]}


#: How far a persona's score must exceed the threshold, the segment's next eligible persona and
#: every other segment eligible for it. Measured on synthetic realistic shoppers (issue 25
#: research, 5 seeds x 3 subsamples at 20,000 users): with the features capped persona margins
#: are 0.23-0.62, so 0.1 withholds no stable name, while a name passing at the threshold
#: (a real-shopper run: 0.50 >= 0.50) changed with the seed.
NAME_MARGIN = 0.1


@dataclass(frozen=True)
class _Fit:
    score: float
    eligible: bool
    evidence: tuple[Claim, ...]
    failed_core: tuple[str, ...]
    #: The numbers behind ``failed_core``: a core signal's value, a core group's share of items.
    failed_numbers: dict[str, float]
    #: (label, signal, weight) of each measured signal: what the score is the weighted mean of.
    terms: tuple[tuple[str, float, float], ...]


def _evaluate(rule: PersonaRule, row: Mapping[str, Any], population: Population,
              shares: Mapping[str, DepartmentShare]) -> _Fit:
    total, weights, evidence, failed_core = 0.0, 0.0, [], []
    failed_numbers: dict[str, float] = {}
    terms = []
    for signal in rule.signals:
        value, claim = signal.measure(row, population)
        if value is None:
            evidence.append(claim)
            if signal.core:
                failed_core.append(f"{signal.label} not measured")
            continue
        if signal.core and value <= 0:
            failed_core.append(f"{signal.label} signal {value:+.2f}, not above 0")
            failed_numbers[f"core:{signal.label}"] = value
        elif signal.core and signal.kind == "lift":
            # A persona that rests on departments needs them to be a material part of the
            # basket, not only a high lift over a small base (see basket.py).
            claim, material = _material(claim, signal, shares)
            if material < MATERIAL_SHARE:
                failed_core.append(f"{signal.label} not material ({material:.1%} of items, "
                                   f"{MATERIAL_SHARE:.0%} needed)")
                failed_numbers["share_above"] = material
        evidence.append(claim)
        terms.append((signal.label, value, signal.weight))
        total += signal.weight * value
        weights += signal.weight
    score = total / weights if weights else -math.inf
    return _Fit(score=score, eligible=score >= MATCH_THRESHOLD and not failed_core,
                evidence=tuple(evidence), failed_core=tuple(failed_core),
                failed_numbers=failed_numbers, terms=tuple(terms))


def _material(claim: Claim, signal: Signal, shares: Mapping[str, DepartmentShare]
              ) -> tuple[Claim, float]:
    """A core department group's claim with its material share stated, and that share."""
    above = [d for d in signal.target if d in shares and math.isfinite(shares[d].lift)
             and shares[d].lift > 1.0]
    material = group_share(shares, signal.target)
    stated = (f"the departments bought above the average rate ({joined(above)}) together "
              f"{material:.1%} of the segment's items" if above
              else "no department of the group is bought above the average rate")
    return replace(claim, detail=f"{claim.detail}; {stated} ({MATERIAL_SHARE:.0%} needed)",
                   numbers={**claim.numbers, "share_above": material,
                            "needed": MATERIAL_SHARE}), material


def name_segments(profiles: pd.DataFrame,
                  withheld: Mapping[int, Claim] | None = None) -> list[Persona]:
    """Name every segment of a profile table (see the module docstring for the rules).

    Parameters
    ----------
    profiles : pandas.DataFrame
        The output of :func:`profile_segments` (or a table with its columns:
        ``segment``, ``share``, ``z_<feature>``, ``dept_share_<name>``,
        ``dept_lift_<name>``, ``preferred_hour``, ``hour_shift``,
        ``days_between_mean``). Departments missing from the catalog make
        their signals unmeasurable: dropped from a score, or, for a core
        signal, the persona cannot be claimed.
    withheld : mapping of int to Claim, optional
        Segments (by ``segment`` number) that get no persona name, with the claim
        saying why (kind ``rule_withheld``); they are named from their own traits.

    Returns
    -------
    list of Persona
        One per row, in row order; no name appears twice. Every segment's
        actions are those its facts trigger (:func:`~gpuseg.personas.actions.triggered_actions`).
    """
    from scipy.optimize import linear_sum_assignment

    required = ("segment", "share", "preferred_hour", "hour_shift", "days_between_mean")
    missing = [c for c in required if c not in profiles.columns]
    if missing:
        raise GpusegError(f"name_segments needs the profile columns {', '.join(missing)}")
    average = population(profiles)
    rows = profiles.to_dict("records")
    shares = [department_shares(row, average.departments) for row in rows]
    fits = [[_evaluate(rule, row, average, row_shares) for rule in PERSONA_RULES]
            for row, row_shares in zip(rows, shares)]
    scores = np.array([[fit.score for fit in row_fits] for row_fits in fits])
    eligible = np.array([[fit.eligible for fit in row_fits] for row_fits in fits], dtype=bool)
    withheld = dict(withheld or {})
    why_not = {r: withheld[int(row["segment"])] for r, row in enumerate(rows)
               if int(row["segment"]) in withheld}
    eligible[list(why_not)] = False
    # Ineligible pairs cost more than any eligible pair can gain, so the matching first
    # maximises how many segments get a fitting persona, then their total score.
    penalty = 1.0 + 2.0 * SIGNAL_CAP * len(rows)
    cost = np.where(eligible, -np.nan_to_num(scores, neginf=-SIGNAL_CAP), penalty)
    assigned = {int(r): int(c) for r, c in zip(*linear_sum_assignment(cost)) if eligible[r, c]}
    # The other segments' "taken by" claims name the matching's winner, named or not.
    matching = dict(assigned)
    for r, c in list(assigned.items()):
        margin = persona_margin(scores, eligible, r, c)
        if margin < NAME_MARGIN:
            del assigned[r]
            name = PERSONA_RULES[c].name
            why_not[r] = Claim(
                "rule_withheld", name, "persona withheld",
                f"{name} scores {scores[r, c]:.2f} but wins by only {margin:.2f} over the "
                f"{MATCH_THRESHOLD:.2f} needed, the segment's next persona and any other segment "
                f"fitting it ({NAME_MARGIN:g} needed); named from its own traits and material "
                "differences",
                {"score": float(scores[r, c]), "threshold": MATCH_THRESHOLD,
                 "margin": margin, "margin_needed": NAME_MARGIN})
    largest = int(np.argmax(profiles["share"].to_numpy()))

    personas: list[Persona | None] = [None] * len(rows)
    used_names = set()
    for r, c in assigned.items():
        rule, fit = PERSONA_RULES[c], fits[r][c]
        used_names.add(rule.name)
        personas[r] = Persona(
            segment=int(rows[r]["segment"]), name=rule.name, rule=_matched_rule(rule, fit),
            actions=triggered_actions(rows[r], average, shares[r], largest=r == largest),
            evidence=fit.evidence, matched=True, score=float(fit.score),
            scores=_score_map(scores[r]), basket=_persona_basket(rule, shares[r]))
    for r, row in enumerate(rows):
        if personas[r] is not None:
            continue
        described = describe_segment(row, average, shares[r], used_names)
        used_names.add(described.name)
        best = int(np.argmax(scores[r]))
        personas[r] = Persona(
            segment=int(row["segment"]), name=described.name,
            rule=(why_not[r] if r in why_not
                  else _unmatched_rule(fits, scores, eligible, matching, r, rows)),
            actions=triggered_actions(row, average, shares[r], largest=r == largest),
            evidence=described.evidence, matched=False,
            score=float(scores[r][best]), scores=_score_map(scores[r]), basket=described.basket)
    return [p for p in personas if p is not None]


def _score_map(row_scores: np.ndarray) -> dict[str, float]:
    return {rule.name: float(s) for rule, s in zip(PERSONA_RULES, row_scores)}


def _persona_basket(rule: PersonaRule, shares: Mapping[str, DepartmentShare]
                    ) -> tuple[DepartmentShare, ...]:
    """The over-bought departments a persona rests on, then the segment's other largest differences."""
    named = [d for signal in rule.signals if signal.kind == "lift" for d in signal.target
             if d in shares and shares[d].lift > 1.0]
    return basket_evidence(shares, named)


def persona_margin(scores: np.ndarray, eligible: np.ndarray, r: int, c: int) -> float:
    """How far segment ``r``'s score for persona ``c`` exceeds the threshold, its next eligible
    persona and every other segment eligible for ``c``."""
    score = float(scores[r, c])
    rivals = [MATCH_THRESHOLD]
    rivals += [float(scores[r, j]) for j in np.flatnonzero(eligible[r]) if j != c]
    rivals += [float(scores[i, c]) for i in np.flatnonzero(eligible[:, c]) if i != r]
    return score - max(rivals)


def _matched_rule(rule: PersonaRule, fit: _Fit) -> Claim:
    terms = ", ".join(f"{label} {value:+.2f}" + ("" if weight == 1 else f" x{weight:g}")
                      for label, value, weight in fit.terms)
    core = "; ".join(s.label for s in rule.signals if s.core)
    return Claim("rule", rule.name, rule.name,
                 f"score {fit.score:.2f}, at least {MATCH_THRESHOLD:.2f} needed: the weighted "
                 f"mean of its signals ({terms}); every core signal ({core}) is above 0",
                 {"score": fit.score, "threshold": MATCH_THRESHOLD})


def _unmatched_rule(fits: list[list[_Fit]], scores: np.ndarray, eligible: np.ndarray,
                    assigned: Mapping[int, int], r: int, rows: list[dict[str, Any]]) -> Claim:
    if eligible[r].any():
        winner_of = {c: w for w, c in assigned.items()}
        parts, numbers = [], {"threshold": MATCH_THRESHOLD}
        for c in np.flatnonzero(eligible[r]):
            name, w = PERSONA_RULES[c].name, winner_of[int(c)]
            winner = int(rows[w]["segment"])
            # The assignment maximises the total score, so the winner may score less here.
            how = ("fits it at least as well" if scores[w][c] >= scores[r][c] else
                   "was given it so that the segments' scores are highest in total")
            parts.append(f"{name} (score {scores[r][c]:.2f}, at least {MATCH_THRESHOLD:.2f} "
                         f"needed), but segment {winner} {how} (score {scores[w][c]:.2f})")
            numbers.update({f"score:{name}": float(scores[r][c]),
                            f"winner_segment:{name}": float(winner),
                            f"winner_score:{name}": float(scores[w][c])})
        taken = [PERSONA_RULES[c].name for c in np.flatnonzero(eligible[r])]
        return Claim("rule_taken", ", ".join(taken), "persona taken",
                     f"fits {'; and '.join(parts)}; named from its own traits and material "
                     "differences", numbers)
    best = int(np.argmax(scores[r]))
    rule, fit = PERSONA_RULES[best], fits[r][best]
    if not math.isfinite(fit.score):
        scored = "cannot be scored: none of its signals is measured in this run"
    else:
        scored = f"scores {fit.score:.2f}" + (f", under the {MATCH_THRESHOLD:.2f} needed"
                                              if fit.score < MATCH_THRESHOLD else "")
    # "; " between the reasons: each may hold commas of its own ("-0.35, not above 0").
    failed = (f"; core signal{'s' if len(fit.failed_core) > 1 else ''} not met: "
              f"{'; '.join(fit.failed_core)}" if fit.failed_core else "")
    return Claim("no_rule", rule.name, "no persona rule fits",
                 f"the closest, {rule.name}, {scored}{failed}; named from its own traits and "
                 "material differences",
                 {"score": fit.score, "threshold": MATCH_THRESHOLD, **fit.failed_numbers})
