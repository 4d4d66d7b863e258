"""CPU backend: numpy/pandas arrays and frames, scikit-learn and umap-learn estimators."""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from gpuseg.backend import Backend, capped

#: Bounds of scikit-learn's ``working_memory`` (MiB) for the tiled silhouette: its default,
#: 1024, is the ceiling; a quarter of the available memory below that; 16 at least.
_TILE_MIB_RANGE = (16, 1024)


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), or what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class CpuBackend(Backend):
    """Everything on the host. Silhouette and DBSCAN default to seeded samples to stay O(n)."""

    name = "cpu"
    xp = np
    df = pd
    sample_defaults = MappingProxyType(
        {"sweep_sample": 20_000, "sweep_score_sample": 5_000, "silhouette_sample": 20_000,
         "stability_sample": 10_000, "dbscan_sample": 10_000, "umap_fit_sample": 30_000,
         "hdbscan_sample": 5_000, "gmm_sample": 20_000})
    demo_umap_fit_sample = 2_500

    def __init__(self) -> None:
        self.device = f"CPU: {cpu_name()} ({os.cpu_count()} cores)"

    def asarray(self, data: Any, dtype: Any = None) -> np.ndarray:
        if isinstance(data, (pd.DataFrame, pd.Series, pd.Index)):
            return data.to_numpy(dtype=dtype)
        return np.asarray(data, dtype=dtype)

    def to_host(self, obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        return obj

    def from_host(self, obj: Any) -> Any:
        return obj

    def available_memory(self) -> int:
        # Host RAM: the kernel's MemAvailable, lowered to a container's cgroup headroom if smaller.
        return capped(_host_available_bytes())

    def StandardScaler(self, **params: Any) -> Any:
        from sklearn.preprocessing import StandardScaler

        return StandardScaler(**params)

    def PCA(self, n_components: int, **params: Any) -> Any:
        from sklearn.decomposition import PCA

        # cuML's "full" solver is an eigendecomposition of the covariance; scikit-learn's
        # "covariance_eigh" is the same algorithm, ~9x faster than an SVD of 175K x 147 users.
        params.setdefault("svd_solver", "covariance_eigh")
        return PCA(n_components=n_components, **params)

    def KMeans(self, n_clusters: int, *, n_init: int, random_state: int, **params: Any) -> Any:
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state, **params)

    def DBSCAN(self, eps: float, min_samples: int, **params: Any) -> Any:
        from sklearn.cluster import DBSCAN

        return DBSCAN(eps=eps, min_samples=min_samples, **params)

    def HDBSCAN(self, min_cluster_size: int, min_samples: int, **params: Any) -> Any:
        from sklearn.cluster import HDBSCAN

        # In ~125 dimensions a tree prunes nothing: brute force fits 5,000 synthetic users in
        # 1.8 s where the ball tree takes 4.1 s (10,000: 9.9 s against 34 s).
        params.setdefault("algorithm", "brute")
        # copy=True is the coming default (scikit-learn 1.10); saying so silences its warning.
        params.setdefault("copy", True)
        return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, **params)

    def GaussianMixture(self, n_components: int, *, covariance_type: str, random_state: int,
                        **params: Any) -> Any:
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(n_components=n_components, covariance_type=covariance_type,
                               random_state=random_state, **params)

    def UMAP(self, *, n_neighbors: int, min_dist: float, random_state: int, **params: Any) -> Any:
        # umap-learn's transform is slower than a fit for many new users; this one is not.
        from .umap_transform import PlacingUMAP

        params.setdefault("n_components", 2)
        # A seeded umap-learn run is single-threaded anyway; saying so silences its warning.
        params.setdefault("n_jobs", 1)
        return PlacingUMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state,
                           **params)

    def NearestNeighbors(self, n_neighbors: int, **params: Any) -> Any:
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=n_neighbors, **params)

    def silhouette_score(self, X: Any, labels: Any) -> float:
        from sklearn import config_context
        from sklearn.metrics import silhouette_score

        with config_context(working_memory=self._tile_mib()):
            return float(silhouette_score(X, labels))

    def silhouette_samples(self, X: Any, labels: Any) -> np.ndarray:
        from sklearn import config_context
        from sklearn.metrics import silhouette_samples

        with config_context(working_memory=self._tile_mib()):
            return silhouette_samples(X, labels)

    def _tile_mib(self) -> int:
        """Distance-tile size for scikit-learn's chunked silhouette, sized from free memory.

        Its fixed 1 GiB default would take most of a small machine (or of a
        ``GPUSEG_MEMORY_LIMIT_BYTES`` budget); a quarter of what is available
        leaves room for the rest of the run.
        """
        low, high = _TILE_MIB_RANGE
        return int(min(high, max(low, self.available_memory() // 4 >> 20)))

    def adjusted_rand_score(self, labels_a: Any, labels_b: Any) -> float:
        from sklearn.metrics import adjusted_rand_score

        return float(adjusted_rand_score(labels_a, labels_b))

    def trustworthiness(self, X: Any, X_embedded: Any, n_neighbors: int) -> float:
        from sklearn.manifold import trustworthiness

        return float(trustworthiness(X, X_embedded, n_neighbors=n_neighbors))

    def versions(self) -> dict[str, str]:
        names = ("numpy", "pandas", "pyarrow", "scikit-learn", "umap-learn")
        found = {}
        for dist in names:
            try:
                found[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                found[dist] = "not installed"
        found["python"] = platform.python_version()
        return found


def _host_available_bytes() -> int:
    """Bytes of host RAM available to this process; ``sys.maxsize`` where nothing says."""
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = sys.maxsize  # no way to tell (not Linux): never refuse for lack of a number
    headroom = _cgroup_headroom()
    return available if headroom is None else min(available, headroom)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


#: (limit, usage, statistics, reclaimable-cache key) of cgroup v2 and v1 memory controllers.
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
     "/sys/fs/cgroup/memory.stat", "inactive_file"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
     "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"),
)


def _cgroup_headroom() -> int | None:
    """What a container's memory limit still allows (its page cache counts as free), or None.

    MemAvailable describes the whole host; a container is killed at its
    cgroup limit long before the host runs out.
    """
    for limit_file, usage_file, stat_file, cache_key in _CGROUP_FILES:
        try:
            limit_text = Path(limit_file).read_text().strip()
            if limit_text == "max":
                return None
            limit, usage = int(limit_text), int(Path(usage_file).read_text())
            stats = dict(line.split() for line in Path(stat_file).read_text().splitlines())
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:  # cgroup v1 spells "no limit" as a page-rounded 2**63 - 1
            return None
        return max(0, limit - usage + int(stats.get(cache_key, 0)))
    return None
