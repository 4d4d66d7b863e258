"""Segment profiles, persona names and business actions.

:func:`profile_segments` (:mod:`~gpuseg.personas.profile`) summarises every
segment in one K-row host table (means, department shares, lifts, preferred
hour, standardised differences). :func:`name_segments`
(:mod:`~gpuseg.personas.naming`, where the naming rules are described) reads
that table only and names each segment with explicit rules in this market's
vocabulary (:mod:`gpuseg.vocabulary`), or, where no persona fits, with a
description of the segment's largest material differences. A department a
name rests on must be a material share of the segment's items, not only a
high lift (:mod:`~gpuseg.personas.basket`). Every sentence of the evidence is
a :class:`~gpuseg.personas.claims.Claim` generated from the numbers it states,
and every action is triggered by a fact of the segment that passes a
documented threshold (:mod:`~gpuseg.personas.actions`).
"""
from __future__ import annotations

from .actions import (
                     DEPARTMENT_LIFT,
                     MAX_ACTIONS,
                     RATE_RATIO,
                     SLOT_HOURS,
                     VOLUME_RATIO,
                     Action,
                     thresholds,
)
from .basket import MATERIAL_SHARE, DepartmentShare
from .claims import Claim
from .naming import PERSONA_RULES, Persona, PersonaRule, name_segments
from .profile import (
                     AISLE_PREFIX,
                     MIN_POPULATION_SHARE,
                     TOP_AISLES,
                     TOP_DEPARTMENTS,
                     profile_segments,
                     profiles_from_moments,
)
from .signals import (
                     CADENCE_WIDTH,
                     HOUR_UNIT,
                     LIFT_UNIT,
                     MATCH_THRESHOLD,
                     SIGNAL_CAP,
                     TRAIT_THRESHOLD,
                     Z_UNIT,
                     Signal,
)

__all__ = ["AISLE_PREFIX", "CADENCE_WIDTH", "DEPARTMENT_LIFT", "HOUR_UNIT", "LIFT_UNIT",
           "MATCH_THRESHOLD", "MATERIAL_SHARE", "MAX_ACTIONS", "MIN_POPULATION_SHARE",
           "PERSONA_RULES", "RATE_RATIO", "SIGNAL_CAP", "SLOT_HOURS", "TOP_AISLES",
           "TOP_DEPARTMENTS", "TRAIT_THRESHOLD", "VOLUME_RATIO", "Z_UNIT", "Action", "Claim",
           "DepartmentShare", "Persona", "PersonaRule", "Signal", "name_segments",
           "profile_segments", "profiles_from_moments", "thresholds"]
