"""The CPU backend's Dask engine: dask.distributed's LocalCluster, dask-ml's KMeans, and
umap-learn's transform mapped over blocks."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from gpuseg.distributed.engine import KMEANS_MAX_ITER, KMEANS_TOL, DaskEngine


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

        from gpuseg.distributed.tasks import umap_place

        # One copy of the fitted model in the graph, shipped to each worker once.
        model = dask.delayed(reducer, pure=True)
        return X.map_blocks(umap_place, model, dtype=np.float64,
                            chunks=(X.chunks[0], (2,)), meta=np.empty((0, 0)))
