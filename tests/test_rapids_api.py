"""Every cuML, cuDF, RMM, dask-cuda and CuPy call of the GPU path, checked against the libraries.

Runs wherever cuML and cuDF import, with or without a GPU (``../shared/gpu/device-like-env.sh``
builds such an environment; the GPU host is one too), and skips elsewhere. Nothing here touches
a device: the backend's factories and metrics are called on a stand-in of the ``cuml`` module
that resolves every attribute path on the real module and binds every call to the real
signature, so a renamed class, a removed keyword or a misspelt attribute fails here, before
device time is spent. The factory calls are the ones the pipeline really makes: a whole small
run goes through a CPU backend that hands each estimator request to the RAPIDS backend's
factory first, then checks each method the pipeline calls on the estimator (and each fitted
attribute it reads) against the cuML class. The run itself computes with the CPU backend, under
whatever library versions this environment has (on the device-like one, the GPU host's). The
array code that only the GPU runs on CuPy (the mixture's EM, HDBSCAN's scales) runs on numpy
through a stand-in that checks each function it reaches against CuPy's, and RMM's Cython
classes are checked against the ``.pyi`` stubs shipped beside them.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

cuml = pytest.importorskip("cuml", reason="cuML does not import here (the device-like "
                                          "environment and the GPU host run these checks)")
cudf = pytest.importorskip("cudf")

from cpu_fallback.backend import CpuBackend  # noqa: E402
from gpuseg.config import PipelineConfig  # noqa: E402
from gpuseg.data.synth import generate_instacart, write_instacart  # noqa: E402
from gpuseg.pipeline import segment  # noqa: E402
from gpuseg.rapids.backend import RapidsBackend  # noqa: E402
from gpuseg.rapids.memory import DeviceMemory  # noqa: E402

#: The estimator factories of the backend interface that the pipeline builds from cuML.
FACTORIES = ("KMeans", "DBSCAN", "HDBSCAN", "UMAP", "NearestNeighbors")


class _Checked:
    """A stand-in for a module or callable: attributes resolve on the real one, calls bind."""

    def __init__(self, target: Any, calls: list) -> None:
        self._target = target
        self._calls = calls

    def __getattr__(self, name: str) -> _Checked:
        return _Checked(getattr(self._target, name), self._calls)  # AttributeError if absent

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        inspect.signature(self._target).bind(*args, **kwargs)  # TypeError on a wrong argument
        self._calls.append((self._target, kwargs))
        return 0.0


def _stand_in(calls: list) -> RapidsBackend:
    """A RapidsBackend that needs no device: cuml checked, arrays on numpy, 16 GiB free."""
    backend = RapidsBackend.__new__(RapidsBackend)
    backend._cuml = _Checked(cuml, calls)
    backend.xp = np
    backend.df = cudf
    backend._memory = DeviceMemory(statistics=False, release_threshold=None)
    backend.available_memory = lambda: 16 * 2**30
    return backend


def _sets_attribute(cls: type, name: str) -> bool:
    """Whether the cuML class declares ``name`` or its source assigns ``self.name``."""
    if hasattr(cls, name):
        return True
    origin = importlib.util.find_spec(cls.__module__).origin
    source = Path(origin.split(".abi3")[0].split(".cpython")[0]).with_suffix(".pyx")
    if not source.exists():
        source = Path(origin)
    return f"self.{name} =" in source.read_text(encoding="utf-8", errors="replace")


class _MethodChecked:
    """A CPU estimator whose method calls and fitted attributes are checked against a cuML class."""

    def __init__(self, estimator: Any, cuml_class: type, problems: list) -> None:
        self._estimator = estimator
        self._cuml_class = cuml_class
        self._problems = problems

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._estimator, name)
        where = f"{self._cuml_class.__name__}.{name}"
        if not callable(value):
            if name.endswith("_") and not _sets_attribute(self._cuml_class, name):
                self._problems.append(f"{where}: cuML does not set this fitted attribute")
            return value
        if not hasattr(self._cuml_class, name):
            self._problems.append(f"{where}: cuML has no such method")
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                inspect.signature(getattr(self._cuml_class, name)).bind(None, *args, **kwargs)
            except TypeError as exc:
                self._problems.append(f"{where}: {exc}")
            result = value(*args, **kwargs)
            return self if result is self._estimator else result

        return call


class _CheckingCpuBackend(CpuBackend):
    """Computes on the CPU; every estimator request also goes through the RAPIDS factory."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list = []
        self.problems: list = []
        self.rapids = _stand_in(self.calls)


def _checking_factory(name: str):
    def factory(self: _CheckingCpuBackend, *args: Any, **kwargs: Any) -> Any:
        getattr(RapidsBackend, name)(self.rapids, *args, **kwargs)
        cuml_class = self.calls[-1][0]
        return _MethodChecked(getattr(CpuBackend, name)(self, *args, **kwargs), cuml_class,
                              self.problems)

    return factory


for _name in FACTORIES:
    setattr(_CheckingCpuBackend, _name, _checking_factory(_name))


@pytest.fixture(scope="module")
def checked_run(tmp_path_factory):
    folder = write_instacart(generate_instacart(1_500, seed=4, separation="strong"),
                             tmp_path_factory.mktemp("api") / "data", fmt="parquet")
    backend = _CheckingCpuBackend()
    # Samples below the user count, so the sampled paths (DBSCAN's nearest-core assignment,
    # UMAP's transform of the users outside the layout) make their calls too.
    config = PipelineConfig(backend="cpu", seed=3, dbscan_sample=600, umap_fit_sample=500,
                            sweep_sample=800, stability_sample=600, silhouette_sample=900)
    result = segment(folder, config, backend=backend)
    # Again with HDBSCAN, sampled, so that its assignment makes its calls, and with k='auto',
    # so that the K rule's Ward-started bootstrap refits make theirs.
    hdbscan_config = PipelineConfig(backend="cpu", seed=3, density="hdbscan", k="auto",
                                    hdbscan_sample=600, k_sweep_range=(4, 6),
                                    k_business_range=(4, 6), n_init=1, sweep_n_init=1,
                                    stability_seeds=2, bootstrap_rounds=1)
    hdbscan_result = segment(folder, hdbscan_config, backend=backend, embed=False)
    return backend, result, hdbscan_result


def test_every_estimator_the_pipeline_builds_exists_in_cuml_with_those_arguments(checked_run):
    backend, result, hdbscan_result = checked_run
    built = {target.__name__ for target, _ in backend.calls}
    assert built >= set(FACTORIES), built
    assert backend.problems == []
    assert result.metrics.to_dict()["dbscan"]["core_assignment"] is not None
    assert hdbscan_result.metrics.to_dict()["hdbscan"]["assignment"] is not None
    assert len(hdbscan_result.metrics.to_dict()["k_sweep"]["stability_aris"]) == 3
    assert result.metrics.to_dict()["umap"]["fit_sample_size"] == 500


def test_the_gpu_mixture_is_gpusegs_em_on_the_backends_arrays():
    """cuML has no Gaussian mixture: the RAPIDS factory hands out the EM over its xp."""
    from gpuseg.numerics.mixture import GaussianMixtureEM

    backend = _stand_in([])
    model = backend.GaussianMixture(2, covariance_type="diag", random_state=0, reg_covar=1e-6,
                                    weights_init=np.ones(2) / 2, means_init=np.zeros((2, 3)),
                                    precisions_init=np.ones((2, 3)))
    assert isinstance(model, GaussianMixtureEM) and model.xp is backend.xp
    assert model.covariance_type == "diag" and model.reg_covar == 1e-6
    X = np.random.default_rng(0).normal(size=(40, 3))
    assert model.fit(X).predict_proba(X).shape == (40, 2)


def test_the_pipeline_passes_cuml_the_algorithms_it_was_reviewed_for(checked_run):
    backend, _, _ = checked_run
    by_class = {}
    for target, kwargs in backend.calls:
        by_class.setdefault(target.__name__, []).append(kwargs)
    assert all(k["algorithm"] == "brute" for k in by_class["NearestNeighbors"])
    assert all(k["algorithm"] == "brute" and k["max_mbytes_per_batch"] >= 256
               for k in by_class["DBSCAN"])
    # The K sweep's Ward starts hand cuML KMeans an array of initial centres, with one init.
    started = [k for k in by_class["KMeans"] if not isinstance(k.get("init", ""), str)]
    assert started and all(k["n_init"] == 1 for k in started)
    assert all(k["n_components"] == 2 for k in by_class["UMAP"])
    # cuML's min_samples leaves the point out: the config's 5 (point counted) becomes 4.
    assert all(k["min_samples"] == 4 and k["min_cluster_size"] == 50
               for k in by_class["HDBSCAN"])


def test_every_metric_call_binds_to_cuml():
    calls: list = []
    backend = _stand_in(calls)
    X = np.random.default_rng(0).normal(size=(50, 3))
    labels = np.arange(50) % 3
    backend.silhouette_score(X, labels)
    backend.silhouette_samples(X, labels)
    backend.adjusted_rand_score(labels, labels)
    backend.trustworthiness(X, X[:, :2], n_neighbors=5)
    called = [target.__name__ for target, _ in calls]
    # cuML exports its silhouette functions under their Cython names.
    assert [name.removeprefix("cython_") for name in called] == [
        "silhouette_score", "silhouette_samples", "adjusted_rand_score", "trustworthiness"]
    # At most the rows there are, never above cuML's own default tile.
    assert calls[0][1]["chunksize"] == calls[1][1]["chunksize"] == 50


def test_the_cudf_calls_bind():
    for frame_type in (cudf.DataFrame, cudf.Series, cudf.Index):
        inspect.signature(frame_type.to_cupy).bind(None, dtype="float64", na_value=np.nan)
    inspect.signature(cudf.read_parquet).bind("cache.parquet")
    inspect.signature(cudf.from_pandas).bind(pd.DataFrame())
    inspect.signature(cudf.DataFrame.to_arrow).bind(None, preserve_index=False)  # from_frames
    # Building cuDF objects needs a device; their classes are enough here.
    for name in ("start", "stop", "step"):
        assert isinstance(getattr(cudf.RangeIndex, name), property), name
    assert isinstance(cudf.Series.has_nulls, property)
    assert isinstance(cudf.Index.hasnans, (property, functools.cached_property))
    for frame_type in (cudf.DataFrame, cudf.Series, cudf.Index):
        assert callable(frame_type.to_pandas)
    inspect.signature(cudf.Index).bind(np.arange(3), name="user_id")
    inspect.signature(cudf.DataFrame).bind({"a": np.arange(3.0)}, index=None)


def test_the_rmm_pieces_the_backend_sets_up_exist():
    import rmm
    import rmm.statistics
    from rmm.allocators.cupy import rmm_cupy_allocator  # noqa: F401

    for name in ("CudaAsyncMemoryResource", "CudaMemoryResource", "StatisticsResourceAdaptor",
                 "UpstreamResourceAdaptor", "get_current_device_resource",
                 "set_current_device_resource"):
        assert hasattr(rmm.mr, name), name
    fields = {f.name for f in dataclasses.fields(rmm.statistics.Statistics)}
    assert {"peak_bytes", "current_bytes"} <= fields
    assert callable(rmm.statistics.enable_statistics) and callable(rmm.statistics.get_statistics)


def _stub_signature(cls: type, method: str = "__init__") -> inspect.Signature:
    """A Cython class's method signature from the ``.pyi`` stub shipped beside it."""
    origin = importlib.util.find_spec(cls.__module__).origin
    stub = ast.parse(Path(origin.split(".abi3")[0].split(".cpython")[0]).with_suffix(".pyi")
                     .read_text(encoding="utf-8"))
    [definition] = [node for node in ast.walk(stub)
                    if isinstance(node, ast.ClassDef) and node.name == cls.__name__]
    [function] = [node for node in definition.body
                  if isinstance(node, ast.FunctionDef) and node.name == method]
    for argument in (*function.args.args, *function.args.kwonlyargs):
        argument.annotation = None
    function.returns, function.body, function.decorator_list = None, [ast.Pass()], []
    namespace: dict = {}
    exec(compile(ast.fix_missing_locations(ast.Module([function], [])), "<stub>", "exec"),
         namespace)
    return inspect.signature(namespace[method])


def test_the_memory_resource_choice_makes_calls_rmm_has():
    """gpuseg's pool where RMM's default is current; a dask-cuda worker's resource kept."""
    import rmm.mr

    from gpuseg.rapids.memory import install_pool

    made = []

    class Recording:
        CudaMemoryResource = rmm.mr.CudaMemoryResource
        UpstreamResourceAdaptor = rmm.mr.UpstreamResourceAdaptor
        current = rmm.mr.CudaMemoryResource()  # builds no CUDA state

        @staticmethod
        def CudaAsyncMemoryResource(**kwargs):
            _stub_signature(rmm.mr.CudaAsyncMemoryResource).bind(None, **kwargs)
            made.append(kwargs)
            return object()

        @classmethod
        def get_current_device_resource(cls):
            return cls.current

        @classmethod
        def set_current_device_resource(cls, resource):
            cls.current = resource

    assert install_pool(Recording, device=77, total_bytes=16 * 2**30) == 4 * 2**30
    assert made == [{"release_threshold": 4 * 2**30}]
    # What dask-cuda's plugin and RMM's statistics put over a resource all expose the upstream
    # one, so gpuseg's pool is found under them and another's resource is recognised as such.
    for name in ("StatisticsResourceAdaptor", "PoolMemoryResource", "LimitingResourceAdaptor",
                 "TrackingResourceAdaptor", "LoggingResourceAdaptor"):
        assert issubclass(getattr(rmm.mr, name), rmm.mr.UpstreamResourceAdaptor), name
    assert "get_upstream" in vars(rmm.mr.UpstreamResourceAdaptor)
    for kept in ("ManagedMemoryResource", "CudaAsyncMemoryResource", "PoolMemoryResource"):
        assert not issubclass(getattr(rmm.mr, kept), rmm.mr.CudaMemoryResource), kept


class _OnCupyToo:
    """numpy computes; every function or module the code reaches must exist on CuPy too, and
    each call must bind to CuPy's signature where CuPy exposes one (not its ufuncs)."""

    def __init__(self, on_numpy: Any, on_cupy: Any, path: str, problems: list) -> None:
        self._numpy, self._cupy, self._path, self._problems = on_numpy, on_cupy, path, problems

    def __getattr__(self, name: str) -> Any:
        on_numpy = getattr(self._numpy, name)
        path = f"{self._path}.{name}"
        if not hasattr(self._cupy, name):
            self._problems.append(f"{path}: CuPy has no such attribute")
            return on_numpy
        if isinstance(on_numpy, type) or not (callable(on_numpy)
                                              or isinstance(on_numpy, ModuleType)):
            return on_numpy  # dtypes, constants, exception classes
        return _OnCupyToo(on_numpy, getattr(self._cupy, name), path, self._problems)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            signature = inspect.signature(self._cupy)
        except (TypeError, ValueError):
            signature = None  # a ufunc or a Cython builtin: the attribute check is what there is
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                self._problems.append(f"{self._path}: {exc}")
        return self._numpy(*args, **kwargs)


@pytest.fixture()
def xp_checked():
    import cupy

    problems: list = []
    yield _OnCupyToo(np, cupy, "cupy", problems)
    assert problems == []


def test_the_em_cluster_scale_and_hdbscan_input_use_only_what_cupy_has(xp_checked):
    """The xp code that only the GPU runs on CuPy: the mixture's EM, the clusters' scales."""
    from gpuseg.cluster.density import cluster_scale
    from gpuseg.numerics.mixture import GaussianMixtureEM, gaussian_parameters

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) + 4.0 * (np.arange(300) % 2)[:, None]
    resp = np.eye(2)[np.arange(300) % 2]
    for covariance_type in ("full", "diag"):
        nk, means, covariances = gaussian_parameters(X, resp, 1e-6, covariance_type,
                                                     xp=xp_checked)
        precisions = (np.linalg.inv(covariances) if covariance_type == "full"
                      else 1.0 / covariances)
        model = GaussianMixtureEM(2, covariance_type=covariance_type, weights_init=nk / 300,
                                  means_init=means, precisions_init=precisions,
                                  xp=xp_checked).fit(X)
        assert model.predict_proba(X).shape == (300, 2)
    labels = np.arange(300) % 3 - 1
    assert cluster_scale(labels, rng.random(300), xp=xp_checked).shape == (2,)
    backend = _stand_in([])
    backend.xp = xp_checked
    fitted = []
    backend._cuml = SimpleNamespace(cluster=SimpleNamespace(
        HDBSCAN=lambda **params: SimpleNamespace(fit=fitted.append)))
    backend.HDBSCAN(min_cluster_size=5, min_samples=5).fit(np.asfortranarray(X))
    assert fitted[0].flags.c_contiguous


def test_the_gpu_mixture_factors_under_cupys_raising_error_state():
    """CuPy's cholesky raises on a matrix that is not positive definite only when asked."""
    import cupyx

    model = _stand_in([]).GaussianMixture(2, covariance_type="full", random_state=0,
                                          weights_init=np.ones(2) / 2,
                                          means_init=np.zeros((2, 3)),
                                          precisions_init=np.stack([np.eye(3)] * 2))
    assert cupyx.geterr()["linalg"] == "ignore"  # CuPy's default
    with model.linalg_errors():
        assert cupyx.geterr()["linalg"] == "raise"
    assert cupyx.geterr()["linalg"] == "ignore"


# -- runs across Dask workers (gpuseg.distributed) ------------------------------------------
def test_the_dask_gpu_cluster_call_binds():
    """The GPU engine's LocalCUDACluster call, as it makes it (the stages run on the workers
    through the GPU backend itself, so no cuml.dask estimator is called)."""
    dask_cuda = pytest.importorskip("dask_cuda")
    import distributed

    from gpuseg.rapids.dask_engine import GpuDaskEngine

    cluster = GpuDaskEngine.cluster_params(2, 8 << 30)
    inspect.signature(dask_cuda.LocalCUDACluster).bind(**cluster)
    # LocalCUDACluster passes what it does not name on to LocalCluster.
    named = inspect.signature(dask_cuda.LocalCUDACluster).parameters
    inspect.signature(distributed.LocalCluster).bind(
        **{key: value for key, value in cluster.items() if key not in named})

    # The GPU count --workers is checked against, as LocalCUDACluster counts the devices.
    import dask_cuda.utils

    inspect.signature(dask_cuda.utils.get_n_gpus).bind()
    # The worker of tests/test_gpu_guards.py that keeps its dask-cuda pool.
    inspect.signature(dask_cuda.LocalCUDACluster).bind(n_workers=1, rmm_pool_size="1GB",
                                                       dashboard_address=":0")


def test_the_cudf_calls_of_the_partition_tasks_bind():
    """What gpuseg.distributed.tasks asks of cuDF beyond the single-process pipeline."""
    inspect.signature(cudf.Series.isin).bind(None, [1, 2])
    inspect.signature(cudf.DataFrame.__getitem__).bind(None, ["order_id", "user_id"])
