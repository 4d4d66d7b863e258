"""The GPU backend's Dask engine: dask-cuda's LocalCUDACluster, a worker per GPU."""
from __future__ import annotations

from typing import Any

from ..distributed.engine import DaskEngine


class GpuDaskEngine(DaskEngine):
    """dask-cuda's LocalCUDACluster: a worker per GPU, each computing with the RAPIDS backend."""

    name = "gpu"
    modules = ("distributed", "dask_cuda", "bokeh")
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
