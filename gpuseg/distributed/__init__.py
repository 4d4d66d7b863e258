"""Scale-out on Dask: the pipeline's row source across many CPU or GPU workers.

:mod:`~gpuseg.distributed.session` opens a partitioned folder
(:mod:`gpuseg.data.partitions`) on a Dask cluster that
:mod:`~gpuseg.distributed.client` starts or joins, as the row source
:mod:`~gpuseg.distributed.rows` (every user's columns in partition blocks on the
workers) on which :func:`gpuseg.pipeline.segment` runs the same stages as in one
process. What a worker runs on one partition is in :mod:`~gpuseg.distributed.tasks`;
starting a backend's local cluster is the interface :mod:`~gpuseg.distributed.engine`,
implemented by :mod:`cpu_fallback.dask_engine` and :mod:`gpuseg.rapids.dask_engine`.
:mod:`~gpuseg.distributed.shuffle` rewrites any input as partitions. Nothing here is
imported by ``import gpuseg``: dask loads only for a distributed run.
"""
