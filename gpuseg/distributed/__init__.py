"""Scale-out on Dask: one segmentation across many CPU or GPU workers.

:mod:`~gpuseg.distributed.run` runs the pipeline's stages over a partitioned
folder (:mod:`gpuseg.data.partitions.source`) on a Dask cluster that
:mod:`~gpuseg.distributed.client` starts or joins; the per-partition work is
in :mod:`~gpuseg.distributed.tasks`, the stages that touch every user in
:mod:`~gpuseg.distributed.stages`, and what differs between CPU and GPU
clusters (dask-ml or cuml.dask) is the interface :mod:`~gpuseg.distributed.engine`,
implemented by :mod:`cpu_fallback.dask_engine` and :mod:`gpuseg.rapids.dask_engine`.
:mod:`~gpuseg.distributed.shuffle` rewrites any input as partitions.
Nothing here is imported by ``import gpuseg``: dask loads only for a
distributed run.
"""
