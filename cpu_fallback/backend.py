"""CPU backend: numpy/pandas arrays and frames, scikit-learn and umap-learn estimators."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from gpuseg.backend import Backend


def _cpu_name() -> str:
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
        {"sweep": 20_000, "sweep_score": 5_000, "silhouette": 20_000, "stability": 10_000,
         "dbscan": 10_000, "demo_umap": 2_500})

    def __init__(self) -> None:
        self.device = f"CPU: {_cpu_name()} ({os.cpu_count()} cores)"

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

    def StandardScaler(self, **params: Any) -> Any:
        from sklearn.preprocessing import StandardScaler

        return StandardScaler(**params)

    def PCA(self, n_components: int, **params: Any) -> Any:
        from sklearn.decomposition import PCA

        # "full" matches cuML's eigen-solver results to float tolerance; the matrices are narrow.
        params.setdefault("svd_solver", "full")
        return PCA(n_components=n_components, **params)

    def KMeans(self, n_clusters: int, *, n_init: int, random_state: int, **params: Any) -> Any:
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state, **params)

    def DBSCAN(self, eps: float, min_samples: int, **params: Any) -> Any:
        from sklearn.cluster import DBSCAN

        return DBSCAN(eps=eps, min_samples=min_samples, **params)

    def UMAP(self, *, n_neighbors: int, min_dist: float, random_state: int, **params: Any) -> Any:
        from umap import UMAP

        params.setdefault("n_components", 2)
        # A seeded umap-learn run is single-threaded anyway; saying so silences its warning.
        params.setdefault("n_jobs", 1)
        return UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state, **params)

    def AgglomerativeClustering(self, n_clusters: int, **params: Any) -> Any:
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(n_clusters=n_clusters, **params)

    def NearestNeighbors(self, n_neighbors: int, **params: Any) -> Any:
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=n_neighbors, **params)

    def silhouette_score(self, X: Any, labels: Any) -> float:
        from sklearn.metrics import silhouette_score

        return float(silhouette_score(X, labels))

    def silhouette_samples(self, X: Any, labels: Any) -> np.ndarray:
        from sklearn.metrics import silhouette_samples

        return silhouette_samples(X, labels)

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
