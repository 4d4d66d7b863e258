"""gpuseg: GPU-accelerated batch customer segmentation for grocery e-commerce.

``import gpuseg`` never imports a GPU library; the RAPIDS backend is built only
when asked for (``backend="gpu"``, or ``"auto"`` on a machine with a GPU).
"""
from __future__ import annotations

from .backend import Backend
from .config import PipelineConfig
from .errors import GpusegError
from .registry import get_backend

__version__ = "0.1.0"

__all__ = ["Backend", "GpusegError", "InstacartData", "PipelineConfig", "get_backend",
           "load_instacart", "segment", "__version__"]

_LAZY = {"segment": "gpuseg.pipeline", "load_instacart": "gpuseg.data",
         "InstacartData": "gpuseg.data"}


def __getattr__(name: str):
    # The pipeline pulls in scikit-learn and scipy; load it on first use, not at import.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gpuseg' has no attribute {name!r}")
