"""CPU backend: numpy/pandas arrays and frames, scikit-learn and umap-learn estimators."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from gpuseg.backend import Backend, capped
from gpuseg.host import cpu_name, host_available_bytes

#: Bounds of scikit-learn's ``working_memory`` (MiB) for the tiled silhouette: its default,
#: 1024, is the ceiling; a quarter of the available memory below that; 16 at least.
_TILE_MIB_RANGE = (16, 1024)


class CpuBackend(Backend):
    """Everything on the host. Silhouette and DBSCAN default to seeded samples to stay O(n)."""

    name = "cpu"
    xp = np
    df = pd
    # Silhouette, DBSCAN and UMAP on every one of 175,000 users would take hours on a few cores.
    fits_every_user = False

    def __init__(self) -> None:
        self.device = f"CPU: {cpu_name()} ({os.cpu_count()} cores)"
        self._warm_up: Any = None

    def prepare(self, *, embed: bool) -> None:
        # A cold numba cache compiles umap-learn's kernels in the background meanwhile.
        if embed and self._warm_up is None:
            from .numba_cache import start_warm_up

            self._warm_up = start_warm_up()

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
        return capped(host_available_bytes())

    def KMeans(self, n_clusters: int, *, n_init: int, random_state: int, **params: Any) -> Any:
        # Iterates in float32 (three times faster), answers in float64: see the module.
        from .kmeans import Float32KMeans

        return Float32KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state,
                             **params)

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

    def UMAP(self, *, n_neighbors: int, min_dist: float, random_state: int, **params: Any) -> Any:
        # umap-learn's transform is slower than a fit for many new users; this one is not.
        # Imported while a warm-up may still compile: numba reads its cache at a kernel's first
        # call, not at import, and the import is a second of work the wait would otherwise idle.
        from .numba_cache import wait_for
        from .umap_transform import PlacingUMAP

        wait_for(self._warm_up)

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
