"""The backend registry: build a backend (and its Dask engine) by name, and say why the GPU is out.

This is the one module that knows the implementations (:mod:`cpu_fallback.backend`
and :mod:`gpuseg.rapids.backend`, both imported only when asked for); the interface they
implement, :mod:`gpuseg.backend`, depends on neither.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .backend import Backend
from .config import BACKEND_NAMES, option, setting
from .errors import BackendUnavailableError, GpusegError

if TYPE_CHECKING:
    from .distributed.engine import DaskEngine

log = logging.getLogger(__name__)


def gpu_unavailable_reason() -> str | None:
    """Why the RAPIDS backend cannot run here, or ``None`` when it can."""
    from .rapids.backend import unavailable_reason

    return unavailable_reason()


def get_backend(choice: str | Backend = "auto") -> Backend:
    """Build the backend for ``"auto"``, ``"gpu"`` or ``"cpu"``.

    ``auto`` takes the GPU when RAPIDS imports and a device is visible, else the
    CPU, and logs one line saying which and why. ``gpu`` where that is not
    possible raises :class:`BackendUnavailableError` rather than falling back.
    """
    if isinstance(choice, Backend):
        return choice
    if choice not in BACKEND_NAMES:
        raise BackendUnavailableError(
            f"{option('backend')} must be one of {', '.join(BACKEND_NAMES)} (got {choice!r})")
    if choice == "cpu":
        return _cpu()
    reason = gpu_unavailable_reason()
    if choice == "gpu":
        if reason is not None:
            raise BackendUnavailableError(
                f"{setting('backend', 'gpu')} is not possible here: {reason}. "
                f"Use {setting('backend', 'cpu')}, or install RAPIDS (pip install 'gpuseg[gpu]' "
                "or environment.yml).")
        return _gpu()
    if reason is None:
        backend = _gpu()
        log.info("backend auto: using the GPU (%s) because RAPIDS imports and a device is visible",
                 backend.device)
        return backend
    log.info("backend auto: falling back to CPU: %s", reason)
    return _cpu()


def _cpu() -> Backend:
    from cpu_fallback.backend import CpuBackend

    return CpuBackend()


def _gpu() -> Backend:
    from .rapids.backend import RapidsBackend

    return RapidsBackend()


def dask_engine(backend: Backend) -> DaskEngine:
    """The Dask engine of ``backend`` (by its name).

    Raises
    ------
    BackendUnavailableError
        When the backend has no Dask engine or its Dask libraries do not import.
    """
    from cpu_fallback.dask_engine import CpuDaskEngine

    from .distributed.engine import missing_modules
    from .rapids.dask_engine import GpuDaskEngine

    engines: dict[str, type[DaskEngine]] = {engine.name: engine
                                            for engine in (CpuDaskEngine, GpuDaskEngine)}
    if backend.name not in engines:
        raise GpusegError(f"no Dask engine for backend {backend.name!r}")
    engine = engines[backend.name]
    missing = missing_modules(engine.modules)
    if missing:
        raise BackendUnavailableError(
            f"a run across Dask workers on the {backend.name.upper()} needs "
            f"{', '.join(missing)}; install them with pip install 'gpuseg[{engine.extra}]'")
    return engine()
