"""The GPU backend's Dask engine: dask-cuda's LocalCUDACluster, a worker per GPU."""
from __future__ import annotations

from typing import Any

from ..config import option, setting
from ..distributed.engine import DaskEngine
from ..errors import ConfigError


class GpuDaskEngine(DaskEngine):
    """dask-cuda's LocalCUDACluster: a worker per GPU, each computing with the RAPIDS backend."""

    name = "gpu"
    modules = ("distributed", "dask_cuda", "bokeh")
    extra = "gpu"

    def local_cluster(self, n_workers: int, memory_limit: int | None) -> Any:
        """One worker per GPU, on the first ``n_workers`` visible GPUs.

        Raises
        ------
        ConfigError
            When ``n_workers`` is above the GPUs visible here (dask-cuda would
            raise a bare ``ValueError("Can not scale beyond visible devices")``
            once its scheduler is up, naming no option).
        """
        check_worker_count(n_workers, self.visible_gpus())
        from dask_cuda import LocalCUDACluster

        return LocalCUDACluster(**self.cluster_params(n_workers, memory_limit))

    @staticmethod
    def visible_gpus() -> int:
        """GPUs a local cluster can start workers on, counted as dask-cuda counts them."""
        from dask_cuda.utils import get_n_gpus

        # CUDA_VISIBLE_DEVICES when set, else every device NVML sees.
        return int(get_n_gpus())

    @staticmethod
    def cluster_params(n_workers: int, memory_limit: int | None) -> dict[str, Any]:
        """Keywords of ``LocalCUDACluster`` (checked against it in tests/test_rapids_api.py)."""
        return {"n_workers": n_workers, "threads_per_worker": 1,
                "memory_limit": "auto" if memory_limit is None else memory_limit,
                "dashboard_address": ":0"}


def check_worker_count(n_workers: int, gpus: int) -> None:
    """Refuse more GPU workers than GPUs, naming the option and the count.

    Raises
    ------
    ConfigError
    """
    if n_workers <= gpus:
        return
    if gpus < 1:
        visible, advice = "no GPU is visible here", ""
    else:
        visible = f"{gpus} GPU{'s are' if gpus != 1 else ' is'} visible here"
        advice = f"use {setting('workers', gpus)} or fewer, or "
    raise ConfigError(
        f"{setting('workers', n_workers)} starts one worker per GPU, but {visible} "
        f"(CUDA_VISIBLE_DEVICES selects them): {advice}join a running cluster with more GPU "
        f"workers through {option('scheduler')}")
