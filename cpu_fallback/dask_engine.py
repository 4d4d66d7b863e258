"""The CPU backend's Dask engine: dask.distributed's LocalCluster of worker processes."""
from __future__ import annotations

import os
from typing import Any

from gpuseg.distributed.engine import DaskEngine


class CpuDaskEngine(DaskEngine):
    """dask.distributed's LocalCluster of worker processes."""

    name = "cpu"
    modules = ("distributed", "bokeh")
    extra = "distributed"

    def local_cluster(self, n_workers: int, memory_limit: int | None) -> Any:
        from distributed import LocalCluster

        # One thread per core in all: numpy code runs one thread per task, and the nanny
        # already sets OMP/MKL/OpenBLAS threads to 1 in each worker.
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                            memory_limit="auto" if memory_limit is None else memory_limit,
                            dashboard_address=":0")
