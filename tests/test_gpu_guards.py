"""The RAPIDS path's guards: each shown here with stand-ins (no device), and on a device.

What a reading of cuML, dask-cuda, RMM and CuPy 26.10 found that the GPU path
must guard against: a ``--workers`` count above the visible GPUs, a Dask
worker's memory resource replaced by the backend, and HDBSCAN fed Fortran-ordered
rows. The stand-ins mirror the library behaviour each guard is
for; the ``gpu`` cases check the same on the real libraries.
"""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from gpuseg.config import options_as_flags
from gpuseg.errors import ConfigError
from gpuseg.rapids import memory
from gpuseg.rapids.backend import RapidsBackend
from gpuseg.rapids.dask_engine import GpuDaskEngine

GiB = 2**30
#: Each test that installs a pool takes a device number of its own: the record of the pool a
#: process installed is per device, as RMM's current resource is.
_devices = itertools.count(1_000)


# -- --workers above the GPU count -----------------------------------------------------------
def test_more_gpu_workers_than_gpus_is_refused_naming_the_option_and_the_count(monkeypatch):
    monkeypatch.setattr(GpuDaskEngine, "visible_gpus", staticmethod(lambda: 1))
    with pytest.raises(ConfigError) as error:
        GpuDaskEngine().local_cluster(2, None)
    assert str(error.value).startswith("workers=2 starts one worker per GPU, but 1 GPU is "
                                       "visible here")
    assert "use workers=1 or fewer" in str(error.value)
    # In the CLI the message names the flag (the run exits 2 with it).
    monkeypatch.setattr(GpuDaskEngine, "visible_gpus", staticmethod(lambda: 2))
    with options_as_flags(), pytest.raises(ConfigError, match="^--workers 3 .* but 2 GPUs are "
                                                              "visible .* --workers 2 or fewer"):
        GpuDaskEngine().local_cluster(3, None)


@pytest.mark.gpu
def test_the_gpu_engine_refuses_one_worker_more_than_the_visible_gpus(gpu_backend):
    pytest.importorskip("dask_cuda")
    gpus = GpuDaskEngine.visible_gpus()
    assert gpus >= 1
    # Refused before dask-cuda starts anything (its own error comes once its scheduler is up).
    with pytest.raises(ConfigError, match=f"but {gpus} GPUs? (is|are) visible"):
        GpuDaskEngine().local_cluster(gpus + 1, None)


# -- the memory resource ---------------------------------------------------------------------
class _Resource:
    """Stand-ins for rmm.mr's classes: a resource, and adaptors that wrap an upstream one."""


class _CudaMemoryResource(_Resource):
    """RMM's default: cudaMalloc and cudaFree for each allocation."""


class _UpstreamResourceAdaptor(_Resource):
    def __init__(self, upstream: _Resource) -> None:
        self.upstream = upstream

    def get_upstream(self) -> _Resource:
        return self.upstream


class _PoolMemoryResource(_UpstreamResourceAdaptor):
    """What dask-cuda's --rmm-pool-size sets (through rmm.reinitialize)."""


class _LimitingResourceAdaptor(_UpstreamResourceAdaptor):
    """What dask-cuda puts over its async resource for --rmm-maximum-pool-size."""


class _StatisticsResourceAdaptor(_UpstreamResourceAdaptor):
    """What rmm.statistics.enable_statistics puts over the current resource."""


class _CudaAsyncMemoryResource(_Resource):
    def __init__(self, initial_pool_size=None, release_threshold=None, enable_ipc=False,
                 enable_fabric=False) -> None:
        self.release_threshold = release_threshold


def _rmm_mr(current: _Resource) -> SimpleNamespace:
    """A stand-in of ``rmm.mr`` whose current resource is ``current``; it records replacements."""
    mr = SimpleNamespace(CudaMemoryResource=_CudaMemoryResource,
                         CudaAsyncMemoryResource=_CudaAsyncMemoryResource,
                         UpstreamResourceAdaptor=_UpstreamResourceAdaptor, current=current,
                         replaced=[])
    mr.get_current_device_resource = lambda: mr.current

    def set_current_device_resource(resource: _Resource) -> None:
        mr.replaced.append(resource)
        mr.current = resource

    mr.set_current_device_resource = set_current_device_resource
    return mr


def test_a_fresh_process_gets_gpusegs_async_pool_with_a_release_threshold():
    """The client of a distributed run (or a one-process run) gives memory back past a quarter."""
    mr = _rmm_mr(_CudaMemoryResource())
    device = next(_devices)
    threshold = memory.install_pool(mr, device, 140 * GiB)
    assert threshold == 35 * GiB == int(140 * GiB * memory.POOL_RELEASE_SHARE)
    [pool] = mr.replaced
    assert isinstance(pool, _CudaAsyncMemoryResource) and pool.release_threshold == threshold
    # A later backend of the same process finds the pool under RMM's statistics and keeps it.
    mr.current = _StatisticsResourceAdaptor(pool)
    assert memory.install_pool(mr, device, 140 * GiB) == threshold
    assert mr.replaced == [pool]


@pytest.mark.parametrize("worker_resource", [
    _PoolMemoryResource(_CudaMemoryResource()),                      # --rmm-pool-size
    _LimitingResourceAdaptor(_CudaAsyncMemoryResource(release_threshold=GiB)),  # --rmm-async
    _StatisticsResourceAdaptor(_PoolMemoryResource(_CudaMemoryResource())),
], ids=["pool", "async-limited", "already-counted"])
def test_a_dask_cuda_workers_memory_resource_is_kept(worker_resource):
    mr = _rmm_mr(worker_resource)
    assert memory.install_pool(mr, next(_devices), 140 * GiB) is None
    assert mr.replaced == [] and mr.current is worker_resource


def test_a_resource_set_over_gpusegs_pool_later_is_kept_too():
    mr = _rmm_mr(_CudaMemoryResource())
    device = next(_devices)
    memory.install_pool(mr, device, 16 * GiB)
    chosen = _PoolMemoryResource(_CudaMemoryResource())
    mr.current = chosen
    assert memory.install_pool(mr, device, 16 * GiB) is None
    assert mr.current is chosen


@pytest.mark.gpu
def test_the_client_pool_has_its_threshold_and_a_dask_cuda_workers_pool_survives(gpu_backend):
    """dask-cuda's --rmm-pool-size stays the worker's resource once its backend is built."""
    pytest.importorskip("dask_cuda")
    import cupy
    import rmm
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    from gpuseg.distributed.tasks import worker_backend

    device = cupy.cuda.Device().id
    total = int(cupy.cuda.runtime.getDeviceProperties(device)["totalGlobalMem"])
    # This process's backend installed gpuseg's pool; asking again finds it with its threshold.
    assert memory.install_pool(rmm.mr, device, total) == int(total * memory.POOL_RELEASE_SHARE)

    def resource_chain() -> list[str]:
        worker_backend("gpu")
        chain, resource = [], rmm.mr.get_current_device_resource()
        while True:
            chain.append(type(resource).__name__)
            if not isinstance(resource, rmm.mr.UpstreamResourceAdaptor):
                return chain
            resource = resource.get_upstream()

    with LocalCUDACluster(n_workers=1, rmm_pool_size="1GB", dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        [chain] = client.run(resource_chain).values()
    assert chain == ["StatisticsResourceAdaptor", "PoolMemoryResource", "CudaMemoryResource"]


# -- HDBSCAN gets C-ordered rows -------------------------------------------------------------
class _RecordingHDBSCAN:
    """Stands in for cuml.cluster.HDBSCAN: records what fit was given."""

    def __init__(self, **params) -> None:
        self.params = params

    def fit(self, X, y=None):
        self.fitted_on = X
        self.labels_ = np.zeros(len(X), dtype=np.int32)
        return self


def test_hdbscan_is_fitted_on_c_ordered_float32_rows_whatever_it_is_given():
    """cuML's PCA output is Fortran-ordered; its HDBSCAN's C++ side reads rows."""
    backend = RapidsBackend.__new__(RapidsBackend)
    backend.xp = np
    backend._cuml = SimpleNamespace(cluster=SimpleNamespace(HDBSCAN=_RecordingHDBSCAN))
    pca_output = np.asfortranarray(np.random.default_rng(0).normal(size=(40, 6)))
    X = pca_output[:, :4]
    assert not X.flags.c_contiguous
    model = backend.HDBSCAN(min_cluster_size=5, min_samples=5).fit(X)
    assert model.fitted_on.flags.c_contiguous and model.fitted_on.dtype == np.float32
    np.testing.assert_array_equal(model.fitted_on, X.astype(np.float32))
    # cuML's min_samples does not count the point: scikit-learn's 5 is cuML's 4.
    assert model.params == {"min_cluster_size": 5, "min_samples": 4}
    assert model.labels_.shape == (40,)
