"""Why shoppers land in their segment: grouped permutation importance and segment rules.

:func:`grouped_importance` (:mod:`~gpuseg.explain.importance`) shuffles one
feature family at a time (:mod:`~gpuseg.explain.families`) and counts the
shoppers the saved model then moves; :func:`segment_rules`
(:mod:`~gpuseg.explain.rules`) gives each segment one or two readable rules
(:mod:`~gpuseg.explain.readable`) with their precision and coverage.
"""
from __future__ import annotations

from .families import BEHAVIOUR_FAMILIES, FeatureGroup, feature_groups
from .importance import CLEAR_DROP, GroupedImportance, GroupImportance, grouped_importance
from .readable import RuleFeature, rule_features
from .rules import MAX_DEPTH, Condition, Rule, SegmentRules, segment_rules

__all__ = ["BEHAVIOUR_FAMILIES", "CLEAR_DROP", "MAX_DEPTH", "Condition", "FeatureGroup",
           "GroupImportance", "GroupedImportance", "Rule", "RuleFeature", "SegmentRules",
           "feature_groups", "grouped_importance", "rule_features", "segment_rules"]
