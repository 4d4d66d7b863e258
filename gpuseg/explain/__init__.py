"""Why shoppers land in their segment: grouped permutation importance.

:func:`grouped_importance` (:mod:`~gpuseg.explain.importance`) shuffles one
feature family at a time (:mod:`~gpuseg.explain.families`) and counts the
shoppers the saved model then moves.
"""
from __future__ import annotations

from .families import BEHAVIOUR_FAMILIES, FeatureGroup, feature_groups
from .importance import CLEAR_DROP, GroupedImportance, GroupImportance, grouped_importance

__all__ = ["BEHAVIOUR_FAMILIES", "CLEAR_DROP", "FeatureGroup", "GroupImportance",
           "GroupedImportance", "feature_groups", "grouped_importance"]
