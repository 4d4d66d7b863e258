"""Where the GPU backend's device memory comes from: RMM's memory resource, and what it keeps.

cuDF, cuML and CuPy all allocate through RMM's current device resource;
:func:`use_rmm_async_pool` sets it up when the backend is built, and
:func:`pool_cached_bytes` says how much of what the driver counts as used the
resource holds for reuse.
"""
from __future__ import annotations

from typing import Any


def use_rmm_async_pool(cupy_module: Any) -> bool:
    """Allocate cuDF, cuML and CuPy memory from one CUDA async pool through RMM, and count it.

    RMM's default resource calls cudaMalloc/cudaFree for every allocation, and
    cudaFree synchronises the device: every CuPy temporary would stall the
    GPU, and stage timings would show the allocator, not the computation.
    ``CudaAsyncMemoryResource`` (stream-ordered allocations from a pool that
    keeps freed memory for reuse) removes that cost; the statistics adaptor
    on top counts every allocation for :meth:`RapidsBackend.peak_device_memory`.
    A second backend in the same process keeps the first one's resources.
    Returns whether the statistics are on (False where RMM is missing).
    """
    try:
        import rmm
        import rmm.statistics
        from rmm.allocators.cupy import rmm_cupy_allocator
    except ImportError:
        return False
    if not isinstance(rmm.mr.get_current_device_resource(), rmm.mr.StatisticsResourceAdaptor):
        rmm.mr.set_current_device_resource(rmm.mr.CudaAsyncMemoryResource())
    rmm.statistics.enable_statistics()
    cupy_module.cuda.set_allocator(rmm_cupy_allocator)
    return True


def pool_cached_bytes(stats: Any) -> int:
    """Bytes the async pool holds for reuse, which the driver's free figure counts as used.

    The pool keeps what it once needed (its release threshold is unlimited):
    it holds at least the peak of what was allocated at once, so peak minus
    current bytes is a lower bound of what it could hand out again without
    asking the driver. ``stats`` is RMM's ``Statistics`` or ``None``.
    """
    if stats is None:
        return 0
    return max(0, int(stats.peak_bytes) - int(stats.current_bytes))
