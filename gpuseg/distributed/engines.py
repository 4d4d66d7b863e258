"""The Dask side of each backend: its local cluster, distributed KMeans and UMAP placement.

What a distributed run needs beyond the backend's own single-process
libraries: the CPU uses dask.distributed's ``LocalCluster`` and dask-ml's
``KMeans``, the GPU dask-cuda's ``LocalCUDACluster`` and cuML's multi-GPU
``cuml.dask`` estimators. :func:`engine_for` picks one by the backend's name;
the run never asks which it has. Every import happens inside the method that
needs it, so neither dask nor RAPIDS loads with ``import gpuseg``.
"""
from __future__ import annotations

import abc
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BackendUnavailableError, GpusegError

if TYPE_CHECKING:
    from ..backend import Backend

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


class CpuDaskEngine(DaskEngine):
    """dask.distributed's LocalCluster, dask-ml's KMeans, umap-learn's transform over blocks."""

    name = "cpu"
    modules = ("distributed", "dask_ml", "bokeh")
    extra = "distributed"

    def local_cluster(self, n_workers: int, memory_limit: int | None) -> Any:
        from distributed import LocalCluster

        # One thread per core in all: numpy code runs one thread per task, and the nanny
        # already sets OMP/MKL/OpenBLAS threads to 1 in each worker.
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                            memory_limit="auto" if memory_limit is None else memory_limit,
                            dashboard_address=":0")

    def kmeans_centres(self, client: Any, X: Any, init: np.ndarray, *, seed: int,
                       variance: float) -> np.ndarray:
        from dask_ml.cluster import KMeans

        # dask-ml stops on an absolute squared shift; scaled like scikit-learn's tolerance.
        model = KMeans(n_clusters=int(init.shape[0]), init=init, random_state=seed,
                       max_iter=KMEANS_MAX_ITER, tol=KMEANS_TOL * variance).fit(X)
        return np.asarray(model.cluster_centers_, dtype=np.float64)

    def place(self, client: Any, X: Any, reducer: Any) -> Any:
        import dask

        from .partitions import umap_place

        # One copy of the fitted model in the graph, shipped to each worker once.
        model = dask.delayed(reducer, pure=True)
        return X.map_blocks(umap_place, model, dtype=np.float64,
                            chunks=(X.chunks[0], (2,)), meta=np.empty((0, 0)))


class GpuDaskEngine(DaskEngine):
    """dask-cuda's LocalCUDACluster (a worker per GPU) and cuML's multi-GPU KMeans and UMAP."""

    name = "gpu"
    modules = ("distributed", "dask_cuda", "dask_cudf", "cuml.dask", "bokeh")
    extra = "gpu"

    def local_cluster(self, n_workers: int, memory_limit: int | None) -> Any:
        from dask_cuda import LocalCUDACluster

        return LocalCUDACluster(**self.cluster_params(n_workers, memory_limit))

    @staticmethod
    def cluster_params(n_workers: int, memory_limit: int | None) -> dict[str, Any]:
        """Keywords of ``LocalCUDACluster`` (checked against it in tests/test_rapids_api.py)."""
        return {"n_workers": n_workers, "threads_per_worker": 1,
                "memory_limit": "auto" if memory_limit is None else memory_limit,
                "dashboard_address": ":0"}

    def kmeans_centres(self, client: Any, X: Any, init: np.ndarray, *, seed: int,
                       variance: float) -> np.ndarray:
        import cupy
        from cuml.dask.cluster import KMeans

        model = KMeans(client=client, **self.kmeans_params(cupy.asarray(init), seed)).fit(X)
        return np.asarray(cupy.asnumpy(cupy.asarray(model.cluster_centers_)), dtype=np.float64)

    @staticmethod
    def kmeans_params(init: Any, seed: int) -> dict[str, Any]:
        """Keywords of ``cuml.dask.cluster.KMeans``, which hands them to cuML's ``KMeans``.

        cuML's own stopping rule, as in a single-GPU run (its tol is not scikit-learn's).
        """
        return {"n_clusters": int(init.shape[0]), "init": init, "random_state": seed,
                "max_iter": KMEANS_MAX_ITER}

    def place(self, client: Any, X: Any, reducer: Any) -> Any:
        from cuml.dask.manifold import UMAP

        return UMAP(model=reducer, client=client).transform(X)


def engine_for(backend: Backend) -> DaskEngine:
    """The Dask engine of ``backend`` (by its name).

    Raises
    ------
    BackendUnavailableError
        When the backend has no Dask engine or its Dask libraries do not import.
    """
    engines = {engine.name: engine for engine in (CpuDaskEngine, GpuDaskEngine)}
    if backend.name not in engines:
        raise GpusegError(f"no Dask engine for backend {backend.name!r}")
    engine = engines[backend.name]
    missing = _missing_modules(engine.modules)
    if missing:
        raise BackendUnavailableError(
            f"a run across Dask workers on the {backend.name.upper()} needs "
            f"{', '.join(missing)}; install them with pip install 'gpuseg[{engine.extra}]'")
    return engine()


def _missing_modules(wanted: tuple[str, ...]) -> list[str]:
    import importlib.util

    missing = []
    for module in wanted:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(module)
    return missing
