"""The GPU backend's Dask engine: dask-cuda's LocalCUDACluster (a worker per GPU) and cuML's
multi-GPU KMeans and UMAP (``cuml.dask``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..distributed.engine import KMEANS_MAX_ITER, DaskEngine


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
