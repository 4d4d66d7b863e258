"""RAPIDS backend: cuDF frames, CuPy arrays and cuML estimators, all in GPU memory.

Nothing here is imported at ``import gpuseg`` time: the GPU libraries are
imported inside :func:`unavailable_reason` and :class:`RapidsBackend` only when
the GPU backend is asked for.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import platform
from importlib import metadata
from typing import TYPE_CHECKING, Any

from ..backend import Backend, capped
from .memory import set_up_device_memory

if TYPE_CHECKING:
    import cupy

_REQUIRED = ("cudf", "cuml", "cupy")
#: Most rows per side of a silhouette tile: cuML's own default. cuML (cuVS's batched
#: silhouette) computes the distances tile by tile, chunk x chunk of them at once.
SILHOUETTE_CHUNK = 40_000
#: Fewest rows per side: smaller tiles only add kernel launches.
SILHOUETTE_MIN_CHUNK = 1_000
#: Share of the free device memory one silhouette tile or one DBSCAN batch may take; the
#: rest absorbs allocator fragmentation and what cuML allocates beside it.
TILE_MEMORY_SHARE = 0.5
#: Least DBSCAN batch budget (MB): cuML subtracts n * 5 bytes of fixed arrays from it in
#: unsigned arithmetic, and a budget below that would wrap around to one batch of every row.
DBSCAN_MIN_MBYTES = 256


def unavailable_reason() -> str | None:
    """Why RAPIDS cannot run here (missing library or no visible device), or ``None``."""
    missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        return f"RAPIDS is not installed ({', '.join(missing)} cannot be imported)"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # the CUDA runtime raises its own error types when no driver is loaded
        return f"no usable CUDA device ({type(exc).__name__}: {exc})"
    if count < 1:
        return "no CUDA device is visible"
    try:
        import cudf  # noqa: F401
        import cuml  # noqa: F401
    except Exception as exc:  # a version mismatch surfaces as ImportError or a CUDA error at import
        return f"RAPIDS fails to import ({type(exc).__name__}: {exc})"
    return None


class RapidsBackend(Backend):
    """cuDF + CuPy + cuML. Estimators return CuPy arrays so results stay on the device."""

    name = "gpu"
    # Full data everywhere: silhouette is tiled by cuML, DBSCAN batches its neighbourhoods,
    # HDBSCAN builds a k-nearest-neighbour graph and the mixture's EM is a few GEMMs a step.
    fits_every_user = True

    def __init__(self) -> None:
        import cudf
        import cuml
        import cupy

        self.xp = cupy
        self.df = cudf
        self._cuml = cuml
        # cuML mirrors its input type by default; pin CuPy so nothing silently lands on the host.
        cuml.set_global_output_type("cupy")
        device = cupy.cuda.Device().id
        props = cupy.cuda.runtime.getDeviceProperties(device)
        self._memory = set_up_device_memory(cupy, device, int(props["totalGlobalMem"]))
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        self.device = f"GPU: {name} ({props['totalGlobalMem'] / 2**30:.0f} GiB)"

    def asarray(self, data: Any, dtype: Any = None) -> cupy.ndarray:
        if isinstance(data, self.df.RangeIndex):
            # RangeIndex.to_cupy takes no arguments; its values are an arange anyway.
            return self.xp.arange(data.start, data.stop, data.step, dtype=dtype or self.xp.int64)
        if isinstance(data, (self.df.DataFrame, self.df.Series, self.df.Index)):
            floating = _target_kind(data, dtype, self.xp) == "f"
            if not floating and _has_nulls(data):
                # pandas raises on nulls cast to an integer type; cuDF would hand back whatever
                # the null slots hold.
                raise ValueError("cannot convert a column with missing values to an integer array")
            # Float nulls become NaN, as pandas' to_numpy gives them.
            return data.to_cupy(dtype=dtype, na_value=self.xp.nan if floating else None)
        return self.xp.asarray(data, dtype=dtype)

    def to_host(self, obj: Any) -> Any:
        if isinstance(obj, (self.df.DataFrame, self.df.Series, self.df.Index)):
            return obj.to_pandas()
        if isinstance(obj, self.xp.ndarray):
            return obj.get() if obj.ndim else obj.item()
        return obj

    def from_host(self, obj: Any) -> Any:
        import numpy as np
        import pandas as pd

        if isinstance(obj, (pd.DataFrame, pd.Series)):
            return self.df.from_pandas(obj)
        if isinstance(obj, np.ndarray):
            return self.xp.asarray(obj)
        return obj

    def synchronize(self) -> None:
        self.xp.cuda.Device().synchronize()

    def available_memory(self) -> int:
        free, _total = self.xp.cuda.runtime.memGetInfo()
        stats = None
        if self._memory.statistics:
            import rmm.statistics

            stats = rmm.statistics.get_statistics()
        return capped(free + self._memory.cached_bytes(stats))

    def peak_device_memory(self) -> int | None:
        if not self._memory.statistics:
            return None
        import rmm.statistics

        stats = rmm.statistics.get_statistics()
        return None if stats is None else int(stats.peak_bytes)

    def KMeans(self, n_clusters: int, *, n_init: int, random_state: int, **params: Any) -> Any:
        # cuML defaults to scalable k-means|| initialisation; n_init keeps the best of several runs.
        return self._cuml.cluster.KMeans(
            n_clusters=n_clusters, n_init=n_init, random_state=random_state, **params)

    def DBSCAN(self, eps: float, min_samples: int, **params: Any) -> Any:
        # cuML sizes its neighbourhood batches from 80% of the card's *total* memory less the
        # data, blind to what this run already holds; pass a budget from the free memory.
        params.setdefault("max_mbytes_per_batch", self._dbscan_batch_mbytes())
        # Brute force as for NearestNeighbors (cuML's DBSCAN also offers random ball cover).
        # A given eps is cut to float32 there: a relative change below 1e-7, below what the
        # k-distance knee can resolve.
        params.setdefault("algorithm", "brute")
        return self._cuml.cluster.DBSCAN(eps=eps, min_samples=min_samples, **params)

    def HDBSCAN(self, min_cluster_size: int, min_samples: int, **params: Any) -> Any:
        # min_samples counts the point itself here (scikit-learn's convention). cuML's C++
        # runner asks the k-NN graph for min_samples + 1 neighbours, the point itself the first
        # of them (its self-loop: cpp/src/hdbscan/runner.h, 26.10), so cuML's core distance is
        # to the min_samples-th *other* point and scikit-learn's k is cuML's k - 1. Not from
        # cuML's docstring: the August 26.10 sources say "This includes the point itself", the
        # 26.10.0 wheel says "excluding"; the runner is the same in both.
        model = self._cuml.cluster.HDBSCAN(min_cluster_size=min_cluster_size,
                                           min_samples=min_samples - 1, **params)
        return _RowMajorHDBSCAN(model, self.xp)

    def GaussianMixture(self, n_components: int, *, covariance_type: str, random_state: int,
                        **params: Any) -> Any:
        # cuML has no Gaussian mixture: gpuseg's EM over CuPy. It starts from the given
        # parameters and draws nothing, so random_state has nothing to seed. CuPy's cholesky
        # checks cuSOLVER's status (and raises on a matrix that is not positive definite) only
        # under errstate(linalg="raise") (cupy/linalg/_util.py): one sync per factorisation.
        import cupyx

        from ..numerics.mixture import GaussianMixtureEM

        return GaussianMixtureEM(n_components, covariance_type=covariance_type,  # type: ignore[arg-type]
                                 xp=self.xp,
                                 linalg_errors=functools.partial(cupyx.errstate, linalg="raise"),
                                 **params)

    def UMAP(self, *, n_neighbors: int, min_dist: float, random_state: int, **params: Any) -> Any:
        params.setdefault("n_components", 2)
        return self._cuml.manifold.UMAP(
            n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state, **params)

    def NearestNeighbors(self, n_neighbors: int, **params: Any) -> Any:
        # "auto" switches to random ball cover below 4 features: brute force everywhere keeps
        # low-dimensional tests on the code path that the pipeline's ~125 components take.
        # cuML searches in float32 (expanded-form L2): a user at a distance within float32
        # rounding of eps may fall on the other side of it than in scikit-learn's float64.
        params.setdefault("algorithm", "brute")
        return self._cuml.neighbors.NearestNeighbors(n_neighbors=n_neighbors, **params)

    def silhouette_score(self, X: Any, labels: Any) -> float:
        return float(self._cuml.metrics.cluster.silhouette_score(
            X, labels, chunksize=self._silhouette_chunk(X, labels)))

    def silhouette_samples(self, X: Any, labels: Any) -> cupy.ndarray:
        return self.xp.asarray(self._cuml.metrics.cluster.silhouette_samples(
            X, labels, chunksize=self._silhouette_chunk(X, labels)))

    def _silhouette_chunk(self, X: Any, labels: Any) -> int:
        """Rows per side of cuML's silhouette distance tiles, sized from the free memory.

        Besides X, cuML holds an n x n_labels matrix of mean distances and one
        chunk x chunk tile of distances (float64 at most, 8 bytes each). At
        Instacart scale on a 16 GB card (206,209 users x ~125 components): the
        resident tables and matrices take about 2 GB, so about 13 GB are free;
        the n x 10 matrix takes 16 MB; half of the rest, 6.5 GB, gives tiles of
        isqrt(6.5e9 / 8) = 28,500 rows, 8 x 8 = 64 tiles. cuML's 40,000-row
        default needs 40,000**2 * 8 = 12.8 GB for one float64 tile: all that is
        free, with nothing left for fragmentation or the rest of the run.
        """
        n = int(X.shape[0])
        n_labels = int(self.xp.unique(labels).shape[0])
        fixed = n * (n_labels + 2) * 8
        budget = max(0, int((self.available_memory() - fixed) * TILE_MEMORY_SHARE))
        chunk = max(SILHOUETTE_MIN_CHUNK, math.isqrt(budget // 8))
        return max(1, min(SILHOUETTE_CHUNK, chunk, n))

    def _dbscan_batch_mbytes(self) -> int:
        """cuML DBSCAN's ``max_mbytes_per_batch``: half the free memory, in cuML's 1e6-byte MB.

        cuML budgets each batch row at n bytes (dense adjacency row, bool) plus
        (n + 2) * 4 bytes (sparse adjacency, worst case, int32), plus n * 5
        fixed. At 206,209 users that is 1.03 MB a row: with about 13 GB free on
        a 16 GB card, 6,500 MB gives batches of about 6,300 rows (33 of them),
        where cuML's default (80% of 16 GB = 12,800 MB, less the data) would
        try twice that on top of what the run already holds. cuML also caps a
        batch at INT32_MAX / n rows (about 10,400 at 206,209 users), and on a
        large card (a 139 GiB H200) that cap, not this budget, sets the batch.
        """
        return max(DBSCAN_MIN_MBYTES, int(self.available_memory() * TILE_MEMORY_SHARE / 1e6))

    def adjusted_rand_score(self, labels_a: Any, labels_b: Any) -> float:
        if int(labels_a.shape[0]) < 2:
            # raft asserts at least two samples; scikit-learn calls 0 or 1 a perfect match.
            return 1.0
        return float(self._cuml.metrics.adjusted_rand_score(
            self.xp.asarray(labels_a, dtype="int32"), self.xp.asarray(labels_b, dtype="int32")))

    def trustworthiness(self, X: Any, X_embedded: Any, n_neighbors: int) -> float:
        return float(self._cuml.metrics.trustworthiness(X, X_embedded, n_neighbors=n_neighbors))

    def versions(self) -> dict[str, str]:
        found = {}
        for dist in ("cudf", "cuml", "cupy", "rmm"):
            for candidate in (f"{dist}-cu13", f"{dist}-cu12", f"{dist}-cuda13x", f"{dist}-cuda12x", dist):
                try:
                    found[dist] = metadata.version(candidate)
                    break
                except metadata.PackageNotFoundError:
                    continue
            else:
                found[dist] = "unknown"
        found["cuda_runtime"] = str(self.xp.cuda.runtime.runtimeGetVersion())
        found["python"] = platform.python_version()
        return found


class _RowMajorHDBSCAN:
    """cuML's HDBSCAN, fitted on C-ordered float32 rows; everything else is the model's.

    cuML's PCA returns Fortran-ordered arrays and a slice of their columns stays
    Fortran-ordered. HDBSCAN's ``fit`` in the August 26.10 sources converted its
    input without ``order="C"`` while the C++ side reads rows: scrambled points,
    wrong labels and no error (the 26.10.0 wheel asks for C order).
    The copy is made here whatever the installed version does, in the float32
    that cuML computes HDBSCAN in, so cuML copies nothing more.
    """

    def __init__(self, model: Any, xp: Any) -> None:
        self.model = model
        self.xp = xp

    def fit(self, X: Any, y: Any = None) -> _RowMajorHDBSCAN:
        self.model.fit(self.xp.ascontiguousarray(X, dtype=self.xp.float32))
        return self

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set in __init__: the fitted model's (labels_, ...).
        return getattr(self.__dict__["model"], name)


def _has_nulls(data: Any) -> bool:
    """Whether a cuDF frame, series or index holds a null (or, for an index, a NaN)."""
    if hasattr(data, "columns"):
        return any(bool(data[name].has_nulls) for name in data.columns)
    # A Series says has_nulls; an Index only hasnans, which counts NaN too (neither fits an
    # integer array either).
    return bool(data.has_nulls if hasattr(data, "has_nulls") else data.hasnans)


def _target_kind(data: Any, dtype: Any, xp: Any) -> str:
    """NumPy kind of the array ``asarray`` makes: of ``dtype``, else of the data's own dtypes."""
    if dtype is not None:
        return xp.dtype(dtype).kind
    dtypes = list(data.dtypes) if hasattr(data, "columns") else [data.dtype]
    import numpy as np

    return np.result_type(*dtypes).kind
