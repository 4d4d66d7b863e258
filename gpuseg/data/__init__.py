"""The Instacart data layer: load, validate, clean and cache the six Kaggle tables.

``load_instacart(folder)`` returns an :class:`InstacartData` of compact tables in
the backend's dataframe library; ``load_instacart("kaggle")`` downloads them first.
"""
from __future__ import annotations

from .cache import CacheWarning
from .checks import DataCleaningWarning
from .kaggle import download_instacart
from .load import load_instacart
from .synth import generate_instacart, write_instacart
from .tables import InstacartData

__all__ = ["CacheWarning", "DataCleaningWarning", "InstacartData", "download_instacart",
           "generate_instacart", "load_instacart", "write_instacart"]
