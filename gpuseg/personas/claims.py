"""Evidence that states its numbers: every sentence of "Why this name" and of an action's trigger.

A :class:`Claim` is one sentence and the numbers it states. Its words are
generated from those numbers, and the numbers are read from one profile row and
the population (:mod:`~gpuseg.personas.population`), so the sentence cannot
say what its numbers contradict and anyone holding ``profiles.csv`` can
recompute it (``tests/_claims_reference.py`` does, for every segment of
several runs). metrics.json keeps each claim's kind, subject, text and numbers.

Kinds and the numbers they state:

``feature``
    A behavioural feature (``subject``: its column) against the average
    shopper: ``value``, ``average``, ``ratio`` (value / average, where the
    average is not 0), ``z`` (the profile's ``z_<feature>``); as a naming
    signal also ``signal`` and ``weight``; as a word of a descriptive name
    ``word_from`` (the SD it needs).
``hour``
    The preferred ordering hour: ``hour`` and ``average`` (circular means,
    in hours), ``shift`` (hours later, or earlier when negative); as a signal
    ``signal`` and ``weight``; as a name word ``word_from`` (hours).
``cadence``
    Days between orders against a persona's rhythm: ``value``, ``target``,
    ``signal``, ``weight``.
``departments``
    A persona's department group (``subject``: the departments, joined by
    ", "): ``lift:<department>`` for each one compared, ``signal``,
    ``weight``, and for a core group ``share_above`` (the share of items in
    the group's departments bought above the average rate) and ``needed``.
``department``
    One department: ``share``, ``average``, ``lift`` and the thresholds it
    passes (``share_needed`` and ``lift_needed`` to be named; ``average_needed``
    and ``lift_at_most`` for a material shortfall).
``rule``
    Why a segment has its name: ``score`` and ``threshold`` of the persona
    named (``subject``), or of the closest or taken persona of a descriptive
    name, with ``winner_segment`` / ``winner_score`` where another segment
    took it.
``rule_withheld``
    A persona a segment fits but is not given: ``score`` and ``threshold``, and
    either ``margin`` and ``margin_needed`` (it wins by too little), or
    ``reproducibility`` and ``dissolves_below`` (the segment does not come back
    on the subsample refits), or ``refits_differing`` and ``refits`` (the
    refits' matched segments carry another persona).
``trigger``, ``baseline``
    The fact behind an action (:mod:`~gpuseg.personas.actions`), and the
    statement of a segment no action is triggered for.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..numerics.arrays import finite_or_none


@dataclass(frozen=True)
class Claim:
    """One sentence of evidence and the numbers it states.

    Attributes
    ----------
    kind : str
        What is claimed (see the module docstring).
    subject : str
        The technical name of what the claim is about: a feature column, a
        department, a persona, an action trigger. The report shows it on
        hover over ``label``.
    label : str
        The plain words the sentence starts with.
    detail : str
        The rest of the sentence, generated from ``numbers``.
    numbers : mapping of str to float
        Every number the sentence states, by what it is.
    """

    kind: str
    subject: str
    label: str
    detail: str
    numbers: Mapping[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.label}: {self.detail}"

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "label": self.label,
                "text": self.text,
                "numbers": {key: finite_or_none(value) for key, value in self.numbers.items()}}


def clock(hour: float) -> str:
    """``16:05`` for 16.08 (to the minute, on a 24-hour clock)."""
    minutes = int(round(hour * 60.0)) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def later_or_earlier(shift: float) -> str:
    """``2.5 h later`` / ``1.1 h earlier`` (``at the same hour`` when it rounds to 0.0 h)."""
    if round(abs(shift), 1) == 0.0:
        return "at the same hour as"
    return f"{abs(shift):.1f} h {'later' if shift > 0 else 'earlier'} than"


def higher_or_lower(z: float) -> str:
    """How a segment's mean compares with the average shopper's, from its standardised difference."""
    if round(z, 2) == 0.0:
        return "level with the average shopper"
    return "higher" if z > 0 else "lower"


def part_of_day(hour: int) -> str:
    """``late-night`` (20-4 h), ``early-morning`` (4-9), ``morning`` (9-12), ``afternoon`` (12-17)
    or ``evening`` (17-20)."""
    if hour >= 20 or hour < 4:
        return "late-night"
    if hour < 9:
        return "early-morning"
    if hour < 12:
        return "morning"
    if hour < 17:
        return "afternoon"
    return "evening"


def joined(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
