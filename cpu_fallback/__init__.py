"""The CPU backend of gpuseg: pandas, numpy, scikit-learn and umap-learn behind the same interface."""
from __future__ import annotations

from .backend import CpuBackend

__all__ = ["CpuBackend"]
