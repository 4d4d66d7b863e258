"""What a run needs before a stage starts: enough memory, enough users, enough distinct users.

The memory-heavy stages are checked against :meth:`Backend.available_memory`
(host RAM on the CPU, free GPU memory on the GPU) before they run, so that a
run too large for the machine stops at once with a message naming the stage
and the option that shrinks it, instead of minutes later with an allocator's
error. Each estimate counts the large arrays a stage allocates beyond what the
run already holds, from sizes known before it starts (rows, users, components,
samples, K); the factors were measured with ``tracemalloc`` on synthetic
Instacart data on the CPU backend (``tests/test_resources.py`` keeps them
within a factor of two), whose numpy calls CuPy mirrors on the GPU.

They are estimates, not bounds: DBSCAN's neighbourhoods grow with the density
of the data, and allocators fragment. What an estimate misses surfaces as a
``MemoryError`` inside the stage, which :class:`gpuseg.timing.StageTimer` turns
into the same kind of message (:func:`out_of_memory`).

Pairwise distances are never estimated whole: both backends compute them in
tiles (a fixed 16 MiB on the CPU; cuML's silhouette ``chunksize`` and DBSCAN
``max_mbytes_per_batch`` on the GPU), so only a minimal tile is counted.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .backend import MEMORY_LIMIT_ENV, memory_limit
from .config import option, setting
from .errors import GpusegError, ResourceLimitError

if TYPE_CHECKING:
    from .backend import Backend
    from .config import PipelineConfig
    from .data.tables import InstacartData

_FLOAT = 8  # float64 and int64 bytes
#: The smallest distance tile a tiled pairwise computation needs: the CPU silhouette's tile
#: (16 MiB), more than cuML's 1,000-row silhouette tile (8 MB).
MIN_TILE_BYTES = 16 << 20
#: Neighbours within eps per DBSCAN user, in units of ``min_samples``: eps sits at the knee of
#: the ``min_samples``-distance curve, and on synthetic Instacart data a user then has about
#: ten times ``min_samples`` neighbours within it (measured: 200 for min_samples=20).
NEIGHBOURS_PER_MIN_SAMPLE = 10
#: UMAP's spectral initialisation needs more users than its two dimensions plus one.
UMAP_MIN_USERS = 4
#: umap-learn finds neighbours exactly, from a dense distance matrix, below this many users.
UMAP_EXACT_BELOW = 4_096


@dataclass(frozen=True)
class Remedy:
    """How a user shrinks one stage: an option (a config field), or advice alone."""

    field: str | None
    advice: str
    verb: str = "lower"

    def text(self, value: int | None = None) -> str:
        """The advice as a clause, with ``value`` as the suggested setting when one is known."""
        advice = _name_options(self.advice)
        if self.field is None:
            return advice
        target = f" to about {value:,}" if value is not None else ""
        return f"{self.verb} {option(self.field)}{target} {advice}"


class _OptionNames(dict):
    def __missing__(self, key: str) -> str:
        return option(key)


def _name_options(text: str) -> str:
    """``text`` with each ``{field}`` replaced by how messages name that option here."""
    return text.format_map(_OptionNames())


_MORE_MEMORY = "or run where more memory is free"
#: Per stage: what to change when it does not fit.
REMEDIES = {
    "load": Remedy(None, "the compact tables must fit: about 11 bytes per order-product "
                         "row; run across Dask workers instead (gpuseg partition, then "
                         "gpuseg run with {workers}), or where more memory is free"),
    "features": Remedy(None, "the feature stage holds every order-product row at once: "
                             "run across Dask workers instead (gpuseg partition, then "
                             "gpuseg run with {workers}), or where more memory is free"),
    "preprocess": Remedy("min_orders", "to segment fewer users, " + _MORE_MEMORY,
                         verb="raise"),
    "k_sweep": Remedy("sweep_sample", _MORE_MEMORY),
    "kmeans": Remedy("pca_components", "or raise {min_orders}, " + _MORE_MEMORY),
    "silhouette": Remedy("silhouette_sample", _MORE_MEMORY),
    "stability": Remedy("stability_sample", _MORE_MEMORY),
    "hierarchical": Remedy("hierarchical_micro_clusters", _MORE_MEMORY),
    "certainty": Remedy("certainty_sample", _MORE_MEMORY),
    "dbscan": Remedy("dbscan_sample", _MORE_MEMORY),
    "hdbscan": Remedy("hdbscan_sample", _MORE_MEMORY),
    "umap": Remedy("umap_sample", _MORE_MEMORY),
}
# The preprocess estimate covers both of its timed stages.
REMEDIES["scale"] = REMEDIES["pca"] = REMEDIES["preprocess"]
_DEFAULT_REMEDY = Remedy(None, "run where more memory is free")


@dataclass(frozen=True)
class StageMemory:
    """Estimated extra bytes one stage allocates, and the arithmetic behind it."""

    stage: str
    bytes: int
    basis: str


# -- estimates --------------------------------------------------------------------------------
def features_memory(*, n_product_rows: int, n_orders: int, n_users: int, n_aisles: int,
                    n_departments: int) -> StageMemory:
    """The feature stage: one sort of every product row plus per-user aisle and department sums.

    About 24 bytes per product row (dense order and product positions, the
    int64 sort key and its run boundaries), 64 per order (sorted order
    columns), and two float64 arrays of users x (aisles + departments + 32).
    """
    per_user = (n_aisles + n_departments + 32) * _FLOAT * 2
    total = 24 * n_product_rows + 64 * n_orders + per_user * n_users
    return StageMemory("features", total,
                       f"{n_product_rows:,} product rows x 24 B + {n_orders:,} orders x 64 B + "
                       f"{n_users:,} users x {per_user:,} B")


def preprocess_memory(n_users: int, n_features: int) -> StageMemory:
    """Scaling and PCA: four users x features float64 matrices.

    The input, its scaled copy, PCA's centred copy and its SVD factor.
    """
    return StageMemory("preprocess", 4 * n_users * n_features * _FLOAT,
                       f"4 x {n_users:,} users x {n_features} features x 8 B")


def kmeans_memory(n_users: int, n_components: int, k: int, stage: str = "kmeans") -> StageMemory:
    """KMeans: a contiguous and a centred copy of X, its norms, labels and users x K distances."""
    total = n_users * (2 * n_components + k + 2) * _FLOAT
    return StageMemory(stage, total,
                       f"{n_users:,} users x (2 x {n_components} components + K={k} + 2) x 8 B")


def silhouette_memory(n_scored: int, n_components: int, k: int,
                      stage: str = "silhouette") -> StageMemory:
    """Silhouette: the scored users' copy, their users x K mean distances, a minimal tile."""
    total = n_scored * (n_components + k + 3) * _FLOAT + MIN_TILE_BYTES
    return StageMemory(stage, total,
                       f"{n_scored:,} scored users x ({n_components} components + K={k} + 3) "
                       f"x 8 B + a {MIN_TILE_BYTES >> 20} MiB distance tile")


def k_sweep_memory(n_fit: int, n_scored: int, n_components: int, k_max: int) -> StageMemory:
    """The K sweep: KMeans on the sweep sample, then the three indices on the scoring sample."""
    fit = kmeans_memory(n_fit, n_components, k_max, "k_sweep")
    score = silhouette_memory(n_scored, n_components, k_max, "k_sweep")
    return StageMemory("k_sweep", max(fit.bytes, score.bytes),
                       f"the larger of KMeans ({fit.basis}) and scoring ({score.basis})")


def stability_memory(n_sample: int, n_components: int, k: int) -> StageMemory:
    """Stability refits: a (bootstrap) copy of the sample, and KMeans on it."""
    refit = kmeans_memory(n_sample, n_components, k, "stability")
    total = refit.bytes + n_sample * n_components * _FLOAT
    return StageMemory("stability", total,
                       f"{n_sample:,} users x {n_components} components x 8 B "
                       f"+ KMeans ({refit.basis})")


def certainty_memory(n_sample: int, n_components: int, k: int) -> StageMemory:
    """Certainty refits: the sample and its float32 copy, a subsample's, KMeans on it, and the
    sample's distances to the centres."""
    refit = kmeans_memory(n_sample, n_components, k, "certainty")
    total = refit.bytes + 2 * n_sample * n_components * _FLOAT + 4 * n_sample * k * _FLOAT
    return StageMemory("certainty", total,
                       f"2 x {n_sample:,} users x {n_components} components x 8 B "
                       f"+ KMeans ({refit.basis}) + distances")


def dbscan_memory(n_fit: int, n_users: int, n_components: int, min_samples: int) -> StageMemory:
    """DBSCAN: the fitted users' copy, their k-distance neighbours and eps-neighbourhoods.

    Neighbourhoods are counted at :data:`NEIGHBOURS_PER_MIN_SAMPLE` x
    ``min_samples`` neighbours per user (int64 index + float64 distance);
    denser data holds more.
    """
    neighbours = NEIGHBOURS_PER_MIN_SAMPLE * min_samples
    total = (n_fit * n_components * _FLOAT + n_fit * (min_samples + neighbours) * 2 * _FLOAT
             + n_users * 2 * _FLOAT + MIN_TILE_BYTES)
    return StageMemory("dbscan", total,
                       f"{n_fit:,} fitted users x ({n_components} components + "
                       f"{min_samples + neighbours} neighbours x 2) x 8 B + a "
                       f"{MIN_TILE_BYTES >> 20} MiB distance tile")


def umap_memory(n_fit: int, n_components: int, n_neighbors: int,
                n_placed: int = 0) -> StageMemory:
    """UMAP: the fitted users' copy, their kNN graph and its symmetrised fuzzy graph.

    About 64 bytes per graph edge (indices, distances and weights of the kNN
    graph, then of its union with its transpose), plus the dense distance
    matrix umap-learn builds below :data:`UMAP_EXACT_BELOW` users when it
    finds the neighbours itself (the CPU backend hands it exact neighbours
    instead, so there the term is an overcount of at most 128 MiB); users
    placed with ``transform`` add their copy and their neighbours' indices,
    distances, weights and edge arrays (about 40 bytes each). Counted from
    the arrays, not measured: umap-learn allocates through numba, which
    ``tracemalloc`` does not see.
    """
    exact = min(n_fit, UMAP_EXACT_BELOW - 1) ** 2 * _FLOAT if n_fit < UMAP_EXACT_BELOW else 0
    placed = n_placed * (n_components * _FLOAT + n_neighbors * 40)
    total = n_fit * (n_components * _FLOAT + n_neighbors * 64) + exact + placed
    return StageMemory("umap", total,
                       f"{n_fit:,} fitted users x ({n_components} components x 8 B + "
                       f"{n_neighbors} neighbours x 64 B)"
                       + (f" + {n_fit:,}^2 exact distances x 8 B" if exact else "")
                       + (f" + {n_placed:,} placed users x ({n_components} x 8 B + "
                          f"{n_neighbors} x 40 B)" if n_placed else ""))


# -- checks --------------------------------------------------------------------------------------
def check_features(data: InstacartData, backend: Backend) -> None:
    """Refuse the feature stage if its arrays cannot fit (before it allocates any)."""
    need = features_memory(n_product_rows=len(data.order_products), n_orders=len(data.orders),
                           n_users=data.n_users, n_aisles=len(data.aisles),
                           n_departments=len(data.departments))
    _require(need, backend)


def check_preprocess(n_users: int, n_features: int, backend: Backend) -> None:
    """Refuse scaling and PCA if their users x features matrices cannot fit."""
    _require(preprocess_memory(n_users, n_features), backend,
             lambda users: preprocess_memory(users, n_features), n_users)


def check_run(config: PipelineConfig, backend: Backend, *, n_users: int, n_components: int,
              n_excluded: int, embed: bool) -> None:
    """Before clustering: enough users for every stage, and memory for each heavy one.

    Called once the segmented users and the kept components are known, so
    that a run which cannot finish says so before its first KMeans fit rather
    than after minutes of work.

    Raises
    ------
    GpusegError
        Too few users for K, the sweep, DBSCAN or UMAP; the message names the option.
    ResourceLimitError
        A stage would not fit in the available memory.
    """
    _require_users(config, backend, n_users, n_excluded, embed)
    k = config.k if config.k != "auto" else config.k_business_range[1]
    k_max = max(k, config.k_sweep_range[1])
    d = n_components

    def sample(name: str, n: int = n_users) -> int:
        return _resolved(config, name, backend, n)

    n_fit = sample("sweep_sample")
    checks: list[tuple[StageMemory, Callable[[int], StageMemory] | None, int]] = [
        (k_sweep_memory(n_fit, sample("sweep_score_sample", n_fit), d, k_max),
         lambda s: k_sweep_memory(s, sample("sweep_score_sample", s), d, k_max),
         n_fit),
        (kmeans_memory(n_users, d, k), None, n_users),
    ]
    n_sil = sample("silhouette_sample")
    checks.append((silhouette_memory(n_sil, d, k), lambda s: silhouette_memory(s, d, k), n_sil))
    n_stab = sample("stability_sample")
    checks.append((stability_memory(n_stab, d, k), lambda s: stability_memory(s, d, k), n_stab))
    n_cert = sample("certainty_sample")
    checks.append((certainty_memory(n_cert, d, k), lambda s: certainty_memory(s, d, k), n_cert))
    if config.density == "dbscan":
        n_db = sample("dbscan_sample")
        checks.append((dbscan_memory(n_db, n_users, d, config.dbscan_min_samples),
                       lambda s: dbscan_memory(s, n_users, d, config.dbscan_min_samples), n_db))
    if embed:
        n_umap = n_users if config.umap_sample is None else min(config.umap_sample, n_users)
        n_layout = min(n_umap, sample("umap_fit_sample"))
        checks.append((umap_memory(n_layout, d, config.umap_neighbors, n_umap - n_layout),
                       lambda s: umap_memory(min(s, n_layout), d, config.umap_neighbors,
                                             s - min(s, n_layout)), n_umap))
    for need, at_sample, current in checks:
        _require(need, backend, at_sample, current)


def check_segments(sizes: tuple[int, ...], n_users: int) -> None:
    """Refuse a KMeans fit that left segments empty (fewer distinct users than K).

    KMeans can only fill as many segments as there are distinct points; with
    copied or all-identical users the rest stay empty and have no profile.
    """
    filled = sum(1 for size in sizes if size > 0)
    if filled == len(sizes):
        return
    if filled < 2:
        raise GpusegError(
            f"all {n_users:,} users have the same features after scaling, so there is nothing "
            "to segment; check the input for copied or placeholder users")
    raise GpusegError(
        f"KMeans could fill only {filled} of {len(sizes)} segments: the {n_users:,} users have "
        f"only {filled} distinct feature profiles; choose {setting('k', filled)} or fewer, or "
        "check the "
        "input for copied users")


def out_of_memory(stage: str, backend: Backend, exc: BaseException) -> ResourceLimitError:
    """The error for a ``MemoryError`` raised inside ``stage``: what ran out, and what to lower."""
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return ResourceLimitError(
        f"the {stage} stage ran out of memory on {backend.device}{_limit_note()} ({detail}); "
        f"{REMEDIES.get(stage, _DEFAULT_REMEDY).text()}")


def _require(need: StageMemory, backend: Backend,
             at_sample: Callable[[int], StageMemory] | None = None, current: int = 0) -> None:
    available = backend.available_memory()
    if need.bytes <= available:
        return
    remedy = REMEDIES.get(need.stage, _DEFAULT_REMEDY)
    fits = None
    if at_sample is not None and remedy.field is not None and remedy.field.endswith("_sample"):
        fits = _largest_fitting(at_sample, current, available)
    raise ResourceLimitError(
        f"the {need.stage} stage needs about {_gib(need.bytes)} ({need.basis}) but "
        f"{_gib(available)} is available on {backend.device}{_limit_note()}; "
        f"{remedy.text(fits)}")


def _largest_fitting(at_sample: Callable[[int], StageMemory], current: int,
                     available: int) -> int | None:
    """The largest sample (at least 100, the config's floor) whose estimate fits, else None."""
    low, high = 100, current - 1
    if high < low or at_sample(low).bytes > available:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if at_sample(middle).bytes <= available:
            low = middle
        else:
            high = middle - 1
    # Round down to two significant digits: an option value a person would type.
    step = 10 ** max(0, int(math.log10(low)) - 1)
    return max(100, low // step * step)


def _require_users(config: PipelineConfig, backend: Backend, n_users: int, n_excluded: int,
                   embed: bool) -> None:
    """Refuse a run whose later stages cannot work on ``n_users`` users, naming the option."""
    requirements = []  # (users needed, users there, what needs them, what to lower)
    if config.k != "auto":
        requirements.append((config.k + 1, n_users, f"{setting('k', config.k)} needs at least "
                             f"{config.k + 1} users", _name_options("{k} or {min_orders}")))
    lo = config.k_sweep_range[0]
    requirements.append((lo + 1, n_users, f"the K sweep starts at K={lo} and needs at least "
                         f"{lo + 1} users", _name_options("{k_sweep_range} or {min_orders}")))
    if config.density == "dbscan":
        n_density = _resolved(config, "dbscan_sample", backend, n_users)
        requirements.append((config.dbscan_min_samples, n_density,
                             f"DBSCAN needs at least {option('dbscan_min_samples')} "
                             f"({config.dbscan_min_samples}) users to fit on",
                             _name_options("{dbscan_min_samples} or {min_orders}"
                                           if n_density == n_users else
                                           "{dbscan_min_samples} (or raise {dbscan_sample})")))
    else:
        n_density = _resolved(config, "hdbscan_sample", backend, n_users)
        requirements.append((config.hdbscan_min_samples + 1, n_density,
                             f"HDBSCAN needs more than {option('hdbscan_min_samples')} "
                             f"({config.hdbscan_min_samples}) users to fit on",
                             _name_options("{hdbscan_min_samples} or {min_orders}"
                                           if n_density == n_users else
                                           "{hdbscan_min_samples} (or raise {hdbscan_sample})")))
    if embed:
        requirements.append((UMAP_MIN_USERS, n_users, f"the UMAP map needs at least "
                             f"{UMAP_MIN_USERS} users", option("min_orders")))
    for needed, have, what, fix in requirements:
        if have >= needed:
            continue
        excluded = (f" ({n_excluded:,} more had fewer than "
                    f"{setting('min_orders', config.min_orders)} "
                    "orders)" if n_excluded else "")
        method = "DBSCAN" if config.density == "dbscan" else "HDBSCAN"
        sampled = "" if have == n_users else f", {method} fits on a sample of {have:,}"
        raise GpusegError(f"{n_users:,} users remain to segment{excluded}{sampled}, but {what}; "
                          f"lower {fix}, or supply more users")


def _resolved(config: PipelineConfig, name: str, backend: Backend, n_users: int) -> int:
    """Users the sampled stage sized by field ``name`` runs on, at most ``n_users``."""
    size = config.sample_size(name, backend)
    return n_users if size is None else min(int(size), n_users)


def _limit_note() -> str:
    limit = memory_limit()
    return "" if limit is None else f" (capped at {_gib(limit)} by {MEMORY_LIMIT_ENV})"


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"
