"""Where the GPU backend's device memory comes from: RMM's memory resource, and what it keeps.

cuDF, cuML and CuPy all allocate through RMM's current device resource.
:func:`set_up_device_memory` decides it when the backend is built: a process
that still has RMM's default gets gpuseg's pool (the client of a distributed
run, a one-process run, a Dask worker started without RMM options); a process
whose resource someone chose keeps it (a dask-cuda worker started with
``--rmm-pool-size``, ``--rmm-async``, ``--rmm-release-threshold``, or a caller
that set one). Either way RMM's statistics are switched on around it, for the
run's peak device memory. :meth:`DeviceMemory.cached_bytes` says how much of
what the driver counts as used the resource holds for reuse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Share of the card that gpuseg's pool keeps for reuse across a synchronisation. The pool
#: hands freed memory out again without asking the driver (RMM's default resource calls
#: cudaMalloc/cudaFree for each allocation, and cudaFree stalls the device); past this much it
#: gives the excess back at the next synchronisation. Without a threshold (RMM's default is
#: unlimited) the client of a distributed run would hold its peak while the workers, one of
#: them on the same card, compute: with a quarter each, the client and that worker each keep
#: at most a quarter of the card between their stages.
POOL_RELEASE_SHARE = 0.25

#: The pool this process installed and its release threshold, by device. RMM's current
#: resource is per process and device, and a later backend in the process finds it in place.
_installed: dict[int, tuple[Any, int]] = {}


@dataclass(frozen=True)
class DeviceMemory:
    """The resource the backend allocates from, as far as its memory figures need it.

    Attributes
    ----------
    statistics : bool
        Whether RMM counts allocations (False where RMM is missing).
    release_threshold : int or None
        Bytes gpuseg's pool keeps for reuse; ``None`` when the process's own
        resource was kept, whose reuse gpuseg cannot see.
    """

    statistics: bool
    release_threshold: int | None

    def cached_bytes(self, stats: Any) -> int:
        """Bytes the resource holds for reuse, which the driver's free figure counts as used.

        gpuseg's pool once held the peak of what was allocated at once and
        gives memory back only down to its release threshold, so
        ``min(peak, threshold) - current`` is a lower bound of what it could
        hand out again without asking the driver. A kept resource counts
        nothing (a lower bound too): tiles and batches sized from the free
        memory come out smaller, never too large. ``stats`` is RMM's
        ``Statistics`` or ``None``.
        """
        if stats is None or self.release_threshold is None:
            return 0
        held = min(int(stats.peak_bytes), self.release_threshold)
        return max(0, held - int(stats.current_bytes))


def set_up_device_memory(cupy_module: Any, device: int, total_bytes: int) -> DeviceMemory:
    """Pick the RMM resource (see :func:`install_pool`), count it, and route CuPy through it.

    Returns the resource's :class:`DeviceMemory`; without RMM, CuPy keeps its
    own pool and nothing is counted.
    """
    try:
        import rmm
        import rmm.statistics
        from rmm.allocators.cupy import rmm_cupy_allocator
    except ImportError:
        return DeviceMemory(statistics=False, release_threshold=None)
    threshold = install_pool(rmm.mr, device, total_bytes)
    # Wraps whatever resource is current in a StatisticsResourceAdaptor, once.
    rmm.statistics.enable_statistics()
    cupy_module.cuda.set_allocator(rmm_cupy_allocator)
    return DeviceMemory(statistics=True, release_threshold=threshold)


def install_pool(mr: Any, device: int, total_bytes: int) -> int | None:
    """Make gpuseg's async pool current where nobody chose a resource; keep one that was chosen.

    Parameters
    ----------
    mr : module
        ``rmm.mr`` (tests hand in a stand-in).
    device : int
        The current CUDA device.
    total_bytes : int
        Its memory; the pool's release threshold is :data:`POOL_RELEASE_SHARE` of it.

    Returns
    -------
    int or None
        The release threshold of gpuseg's pool, now current (installed now or
        by an earlier backend of this process); ``None`` when the current
        resource is someone else's and was kept.
    """
    current = mr.get_current_device_resource()
    ours = _installed.get(device)
    if ours is not None and _wraps(current, ours[0], mr):
        return ours[1]
    # RMM's default, which nobody chose: a process of gpuseg's own. dask-cuda's RMM plugin
    # sets a pool, an async or a managed resource (and adaptors over them) before any task
    # runs; replacing it would silently drop the worker's --rmm-* settings.
    if type(current) is not mr.CudaMemoryResource:
        return None
    threshold = int(total_bytes * POOL_RELEASE_SHARE)
    pool = mr.CudaAsyncMemoryResource(release_threshold=threshold)
    mr.set_current_device_resource(pool)
    _installed[device] = (pool, threshold)
    return threshold


def _wraps(resource: Any, target: Any, mr: Any) -> bool:
    """Whether ``resource`` is ``target`` or an adaptor chain over it."""
    while True:
        if resource is target:
            return True
        if not isinstance(resource, mr.UpstreamResourceAdaptor):
            return False
        resource = resource.get_upstream()
