"""gpuseg: GPU-accelerated batch customer segmentation for grocery e-commerce.

``import gpuseg`` never imports a GPU library; the RAPIDS backend is built only
when asked for (``backend="gpu"``, or ``"auto"`` on a machine with a GPU).
"""
from __future__ import annotations

from .backend import Backend, get_backend
from .config import PipelineConfig
from .errors import GpusegError

__version__ = "0.1.0"

__all__ = ["Backend", "GpusegError", "PipelineConfig", "get_backend", "__version__"]
