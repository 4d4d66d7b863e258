"""The Dask side of a backend: what a distributed run asks of it, whichever backend it is.

A backend's engine starts its local cluster, refines KMeans over the workers
and places users on a fitted UMAP layout: the CPU's engine is
:class:`cpu_fallback.dask_engine.CpuDaskEngine` (dask.distributed, dask-ml), the
GPU's :class:`gpuseg.rapids.dask_engine.GpuDaskEngine` (dask-cuda, cuml.dask);
:func:`gpuseg.registry.dask_engine` builds the one of a backend, and the run never
asks which it has. Every import happens inside the method that needs it, so
neither dask nor RAPIDS loads with ``import gpuseg``.
"""
from __future__ import annotations

import abc
import importlib.util
from typing import Any

import numpy as np

#: Iterations of the distributed KMeans refinement (it starts from a converged sample fit).
KMEANS_MAX_ITER = 300
#: Relative tolerance of the refinement, scikit-learn's default: the squared centre shift is
#: compared with this share of the mean variance of the data's columns.
KMEANS_TOL = 1e-4


class DaskEngine(abc.ABC):
    """Starts a local cluster and builds the distributed estimators of one backend."""

    name: str
    #: The modules its workers import, and the pip extra that installs them.
    modules: tuple[str, ...]
    extra: str

    @abc.abstractmethod
    def local_cluster(self, n_workers: int, memory_limit: int | None) -> Any:
        """A local cluster of ``n_workers`` worker processes (``None``: memory shared equally)."""

    @abc.abstractmethod
    def kmeans_centres(self, client: Any, X: Any, init: np.ndarray, *, seed: int,
                       variance: float) -> np.ndarray:
        """Lloyd iterations over the distributed ``X`` from ``init``; the final centres (host).

        Parameters
        ----------
        client : distributed.Client
        X : dask array, shape (n_users, n_components)
        init : numpy.ndarray, shape (k, n_components)
            Starting centres (a KMeans fit on a seeded sample).
        seed : int
        variance : float
            Mean variance of ``X``'s columns, the scale of the stopping tolerance.
        """

    @abc.abstractmethod
    def place(self, client: Any, X: Any, reducer: Any) -> Any:
        """UMAP coordinates of every row of ``X`` from a fitted single-process ``reducer``.

        Returns a dask array of shape (n_users, 2).
        """


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
