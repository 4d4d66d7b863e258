"""The Dask side of a backend: what a distributed run asks of it, whichever backend it is.

A backend's engine starts its local cluster (the stages themselves run the same
block functions on every row source): the CPU's engine is
:class:`cpu_fallback.dask_engine.CpuDaskEngine` (dask.distributed), the
GPU's :class:`gpuseg.rapids.dask_engine.GpuDaskEngine` (dask-cuda);
:func:`gpuseg.registry.dask_engine` builds the one of a backend, and the run never
asks which it has. Every import happens inside the method that needs it, so
neither dask nor RAPIDS loads with ``import gpuseg``.
"""
from __future__ import annotations

import abc
import importlib.util
from typing import Any


class DaskEngine(abc.ABC):
    """Starts the local cluster of one backend's workers."""

    name: str
    #: The modules its workers import, and the pip extra that installs them.
    modules: tuple[str, ...]
    extra: str

    @abc.abstractmethod
    def local_cluster(self, n_workers: int, memory_limit: int | None) -> Any:
        """A local cluster of ``n_workers`` worker processes (``None``: memory shared equally)."""


def missing_modules(wanted: tuple[str, ...]) -> list[str]:
    """The modules of ``wanted`` that cannot be imported here."""
    missing = []
    for module in wanted:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(module)
    return missing
