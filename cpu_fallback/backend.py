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
from gpuseg.resources import MIN_TILE_BYTES

#: Distance tile of the silhouette: small enough to stay in a CPU's last-level cache, and
#: within any memory budget. On 20,000 users x 40 components (2-core AMD EPYC, 32 MiB L3):
#: 2.1 s with 16 MiB tiles, 4.8 s with scikit-learn's default 1 GiB.
SILHOUETTE_TILE_BYTES = MIN_TILE_BYTES


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
        from .silhouette import silhouette_score

        return silhouette_score(X, labels, tile_bytes=SILHOUETTE_TILE_BYTES)

    def silhouette_samples(self, X: Any, labels: Any) -> np.ndarray:
        from .silhouette import silhouette_samples

        return silhouette_samples(X, labels, tile_bytes=SILHOUETTE_TILE_BYTES)

    def adjusted_rand_score(self, labels_a: Any, labels_b: Any) -> float:
        from sklearn.metrics import adjusted_rand_score

        return float(adjusted_rand_score(labels_a, labels_b))

    def trustworthiness(self, X: Any, X_embedded: Any, n_neighbors: int) -> float:
        # scikit-learn's score, counted instead of sorted: 0.6 s instead of 2.5 s at 5,000 users.
        from .trust import trustworthiness

        return trustworthiness(X, X_embedded, n_neighbors=n_neighbors)

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
