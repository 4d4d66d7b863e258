"""The backend interface: one object that carries every library the pipeline may touch.

Pipeline modules receive a :class:`Backend` and use only what it offers: the
array namespace ``xp`` (numpy or cupy), the dataframe namespace ``df``
(pandas or cudf), estimator factories with scikit-learn's API (cuML mirrors
it), a few metrics, and the single device-to-host boundary :meth:`to_host`.
What differs between the libraries lives in :mod:`cpu_fallback.backend` and
:mod:`gpuseg.rapids.backend`, which implement this interface; :mod:`gpuseg.registry`
builds one by name. Pipeline code never asks which backend it has.
"""
from __future__ import annotations

import abc
import os
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ConfigError

#: A backend array (``numpy.ndarray`` or ``cupy.ndarray``) and a backend dataframe (pandas or
#: cuDF). Aliases of ``Any``: the GPU types must not be imported where RAPIDS is absent, and the
#: pipeline never branches on which it holds; the names say what a signature expects.
Array = Any
Frame = Any

#: Environment variable that caps :meth:`Backend.available_memory` (bytes), to rehearse a
#: smaller machine or card, or to keep a run below a share of a shared one.
MEMORY_LIMIT_ENV = "GPUSEG_MEMORY_LIMIT_BYTES"


class Backend(abc.ABC):
    """Libraries and conversions of one compute backend.

    Attributes
    ----------
    name : str
        ``"cpu"`` or ``"gpu"``; recorded in results, never branched on by
        pipeline code.
    xp : module
        Array namespace (numpy or cupy).
    df : module
        Dataframe namespace (pandas or cudf).
    device : str
        Human-readable device description (CPU model and cores, or GPU name).
    fits_every_user : bool
        Whether the stages that sample on a CPU (the K sweep, silhouette,
        stability, certainty, density and UMAP fits) run on every user of one
        process in reasonable time and memory here. The config resolves its
        ``"auto"`` sample sizes from it
        (:meth:`PipelineConfig.sample_size <gpuseg.config.PipelineConfig.sample_size>`).
    """

    name: str
    xp: ModuleType
    df: ModuleType
    device: str
    fits_every_user: bool

    # -- data movement -------------------------------------------------------------
    @abc.abstractmethod
    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """A backend array from a backend DataFrame/Series/Index, a host array or a list."""

    @abc.abstractmethod
    def to_host(self, obj: Any) -> Any:
        """The one device-to-host boundary: numpy for arrays, pandas for frames/series.

        Scalars become Python scalars; host objects pass through unchanged.
        """

    def to_numpy(self, array: Array, dtype: Any = None) -> np.ndarray:
        """A backend array (or scalar) as a host numpy array of ``dtype``, through :meth:`to_host`."""
        return np.asarray(self.to_host(array), dtype=dtype)

    @abc.abstractmethod
    def from_host(self, obj: Any) -> Any:
        """Move a numpy array or pandas DataFrame/Series into this backend."""

    def prepare(self, *, embed: bool) -> None:  # noqa: B027  (most backends have nothing to do)
        """Start, in the background, what the run's later stages will need (``embed``: the map
        stage will run). Called when a run starts, and earlier by commands that start it before
        their own slow steps: a second call must not start the work again."""

    def synchronize(self) -> None:  # noqa: B027  (host work is synchronous: nothing to wait for)
        """Block until queued device work is done (for honest stage timings)."""

    def peak_device_memory(self) -> int | None:
        """Peak bytes allocated on the device since the backend was built (None on CPU)."""
        return None

    @abc.abstractmethod
    def available_memory(self) -> int:
        """Bytes the computation can still allocate where it runs (host RAM or GPU memory).

        Capped by ``$GPUSEG_MEMORY_LIMIT_BYTES`` when set (see :func:`memory_limit`).
        """

    # -- estimators with scikit-learn's API ---------------------------------------
    @abc.abstractmethod
    def KMeans(self, n_clusters: int, *, n_init: int, random_state: int, **params: Any) -> Any: ...

    @abc.abstractmethod
    def DBSCAN(self, eps: float, min_samples: int, **params: Any) -> Any: ...

    @abc.abstractmethod
    def HDBSCAN(self, min_cluster_size: int, min_samples: int, **params: Any) -> Any:
        """HDBSCAN; ``min_samples`` counts the point itself (scikit-learn's convention)."""

    @abc.abstractmethod
    def UMAP(self, *, n_neighbors: int, min_dist: float, random_state: int, **params: Any) -> Any: ...

    @abc.abstractmethod
    def NearestNeighbors(self, n_neighbors: int, **params: Any) -> Any: ...

    # -- metrics ---------------------------------------------------------------------
    @abc.abstractmethod
    def silhouette_score(self, X: Any, labels: Any) -> float: ...

    @abc.abstractmethod
    def silhouette_samples(self, X: Any, labels: Any) -> Any:
        """Per-sample silhouette as a backend array (memory-bounded on the device)."""

    @abc.abstractmethod
    def adjusted_rand_score(self, labels_a: Any, labels_b: Any) -> float: ...

    @abc.abstractmethod
    def trustworthiness(self, X: Any, X_embedded: Any, n_neighbors: int) -> float:
        """How well an embedding keeps each point's nearest neighbours (1 is perfect)."""

    # -- provenance ------------------------------------------------------------------
    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the libraries this backend computes with."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device, "versions": self.versions()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.device}>"


def memory_limit() -> int | None:
    """The byte cap set by ``$GPUSEG_MEMORY_LIMIT_BYTES``, or ``None`` when unset.

    Raises
    ------
    ConfigError
        When the variable is not a positive integer.
    """
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not text:
        return None
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(f"{MEMORY_LIMIT_ENV} must be a positive number of bytes (got {text!r}); "
                          "unset it to use all available memory")
    return limit


def capped(available: int) -> int:
    """``available`` bytes, lowered to :func:`memory_limit` when that is set and smaller."""
    limit = memory_limit()
    return int(available) if limit is None else min(int(available), limit)
