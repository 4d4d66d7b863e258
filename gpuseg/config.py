"""The run's configuration: one frozen, validated, keyword-only dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Union

from .errors import ConfigError

BackendName = Literal["auto", "gpu", "cpu"]
KChoice = Union[Literal["auto"], int]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """Every knob of a segmentation run.

    Parameters
    ----------
    backend : {"auto", "gpu", "cpu"}
        ``auto`` takes the GPU when RAPIDS imports and a device is visible.
    seed : int
        Seed of every random step (KMeans, samples, bootstrap, UMAP).
    min_orders : int
        Users with fewer orders in their purchase history are excluded.
    pca_variance : float
        Keep the fewest principal components whose cumulative explained
        variance reaches this share. Ignored when ``pca_components`` is set.
    pca_components : int or None
        A fixed number of components instead of the variance target.
    k : "auto" or int
        Number of segments; ``auto`` picks it from silhouette and the elbow
        inside ``k_business_range``.
    k_sweep_range : (int, int)
        Inclusive range of K evaluated by the sweep.
    k_business_range : (int, int)
        Inclusive range ``k="auto"`` may choose from.
    n_init : int
        KMeans initialisations of the final fit and of the stability refits.
    sweep_n_init : int
        KMeans initialisations per K in the sweep; its curves only need each
        K's typical fit, not the best of many (9 K x 10 inits would dominate a
        CPU run).
    sweep_sample : "auto", int or None
        Users (seeded sample) the K sweep runs on (fits and indices); ``auto``
        is the backend's default (GPU: every user; CPU: 20,000).
    silhouette_sample : "auto", int or None
        Users the reported silhouette is computed on; ``None`` means every
        user (chunked), an int a seeded sample, ``auto`` the backend's
        default (GPU: every user; CPU: 20,000).
    sweep_score_sample : "auto", int or None
        Users of the sweep sample the per-K silhouette, CH and DB are
        computed on (``auto``: GPU every user, CPU 5,000).
    stability_sample : "auto", int or None
        Users the stability refits run on (``auto``: GPU every user, CPU 10,000).
    stability_seeds : int
        KMeans refits with other seeds (mean pairwise ARI).
    bootstrap_rounds : int
        Bootstrap refits (ARI against the full fit on the resampled users).
    hierarchical_micro_clusters : int
        KMeans micro-clusters that Ward linkage is run over.
    dbscan_eps : float or None
        DBSCAN radius; ``None`` picks it at the knee of the k-distance curve.
    dbscan_min_samples : int
        DBSCAN core-point threshold.
    dbscan_sample : "auto", int or None
        Fit DBSCAN on a seeded sample of this many users and assign the rest
        to the nearest core point (``None``: every user; ``auto``: the
        backend's default, GPU every user, CPU 10,000).
    umap_neighbors, umap_min_dist : int, float
        UMAP parameters.
    umap_sample : int or None
        Embed a seeded sample of this many users (``None``: every user).
    umap_fit_sample : "auto", int or None
        Fit the UMAP layout on a seeded sample of this many of the embedded
        users and place the others with the fitted model's ``transform``
        (their nearest fitted users, then a few epochs with the layout held
        fixed); every embedded user still gets coordinates. ``None`` fits
        every embedded user; ``auto`` is the backend's default (GPU: every
        user; CPU: 20,000, since a seeded umap-learn fit is single-threaded).
    """

    backend: BackendName = "auto"
    seed: int = 42
    min_orders: int = 5
    pca_variance: float = 0.95
    pca_components: int | None = None
    k: KChoice = 5
    k_sweep_range: tuple[int, int] = (2, 10)
    k_business_range: tuple[int, int] = (3, 8)
    n_init: int = 10
    sweep_n_init: int = 3
    sweep_sample: int | None | Literal["auto"] = "auto"
    sweep_score_sample: int | None | Literal["auto"] = "auto"
    silhouette_sample: int | None | Literal["auto"] = "auto"
    stability_sample: int | None | Literal["auto"] = "auto"
    stability_seeds: int = 5
    bootstrap_rounds: int = 5
    hierarchical_micro_clusters: int = 1000
    dbscan_eps: float | None = None
    dbscan_min_samples: int = 20
    dbscan_sample: int | None | Literal["auto"] = "auto"
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    umap_sample: int | None = None
    umap_fit_sample: int | None | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        _require(self.backend in ("auto", "gpu", "cpu"),
                 f"backend must be one of auto, gpu, cpu (got {self.backend!r})")
        _require(isinstance(self.seed, int) and 0 <= self.seed < 2**32,
                 f"seed must be an integer in [0, 2**32) (got {self.seed!r})")
        _require(isinstance(self.min_orders, int) and self.min_orders >= 1,
                 f"min_orders must be an integer >= 1 (got {self.min_orders!r})")
        _require(0.0 < self.pca_variance <= 1.0,
                 f"pca_variance must be in (0, 1] (got {self.pca_variance!r})")
        _require(self.pca_components is None
                 or (isinstance(self.pca_components, int) and self.pca_components >= 1),
                 f"pca_components must be None or an integer >= 1 (got {self.pca_components!r})")
        _require(self.k == "auto" or (isinstance(self.k, int) and self.k >= 2),
                 f"k must be 'auto' or an integer >= 2 (got {self.k!r})")
        for name in ("k_sweep_range", "k_business_range"):
            lo, hi = getattr(self, name)
            _require(isinstance(lo, int) and isinstance(hi, int) and 2 <= lo <= hi,
                     f"{name} must be (low, high) with 2 <= low <= high (got {(lo, hi)!r})")
        for name in ("n_init", "sweep_n_init"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 1,
                     f"{name} must be an integer >= 1 (got {value!r})")
        for name in ("sweep_sample", "sweep_score_sample", "silhouette_sample", "stability_sample",
                     "dbscan_sample", "umap_sample", "umap_fit_sample"):
            value = getattr(self, name)
            auto_ok = name != "umap_sample" and value == "auto"
            allowed = "None (every user), 'auto' or" if name != "umap_sample" else "None (every user) or"
            _require(auto_ok or value is None or (isinstance(value, int) and value >= 100),
                     f"{name} must be {allowed} an integer >= 100 (got {value!r})")
        _require(isinstance(self.stability_seeds, int) and self.stability_seeds >= 2,
                 f"stability_seeds must be an integer >= 2 (got {self.stability_seeds!r})")
        _require(isinstance(self.bootstrap_rounds, int) and self.bootstrap_rounds >= 1,
                 f"bootstrap_rounds must be an integer >= 1 (got {self.bootstrap_rounds!r})")
        _require(isinstance(self.hierarchical_micro_clusters, int)
                 and self.hierarchical_micro_clusters >= 10,
                 "hierarchical_micro_clusters must be an integer >= 10 "
                 f"(got {self.hierarchical_micro_clusters!r})")
        _require(self.dbscan_eps is None or self.dbscan_eps > 0,
                 f"dbscan_eps must be None (auto) or > 0 (got {self.dbscan_eps!r})")
        _require(isinstance(self.dbscan_min_samples, int) and self.dbscan_min_samples >= 2,
                 f"dbscan_min_samples must be an integer >= 2 (got {self.dbscan_min_samples!r})")
        _require(isinstance(self.umap_neighbors, int) and 2 <= self.umap_neighbors <= 200,
                 f"umap_neighbors must be an integer in [2, 200] (got {self.umap_neighbors!r})")
        _require(0.0 <= self.umap_min_dist <= 1.0,
                 f"umap_min_dist must be in [0, 1] (got {self.umap_min_dist!r})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}
