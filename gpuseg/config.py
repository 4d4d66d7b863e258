"""The run's configuration: one frozen, validated, keyword-only dataclass, and how options are named.

:class:`PipelineConfig` is the single source of every knob: its fields carry
their help text and the kind of value they take, from which the command line
builds its flags, defaults and choices (:mod:`gpuseg.cli`) and from which the
class's own parameter documentation is written. Library messages name an
option with :func:`option`: the field name (``min_orders``) for Python
callers, the flag (``--min-orders``) inside the command line.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError

if TYPE_CHECKING:
    from .backend import Backend

#: The backends a run may ask for; ``BackendName`` spells the same names for type checkers.
BACKEND_NAMES = ("auto", "gpu", "cpu")
BackendName = Literal["auto", "gpu", "cpu"]
KChoice = Literal["auto"] | int
#: K when --k is not given: a number of segments a CRM team can act on.
DEFAULT_K = 5
#: The density clustering methods.
DENSITY_METHODS = ("dbscan", "hdbscan")
DensityMethod = Literal["dbscan", "hdbscan"]
#: A sampled stage's size: ``"auto"`` (see :data:`SAMPLED`), ``None`` (every user) or a count.
SampleSize = int | None | Literal["auto"]
#: What ``"auto"`` means for each sampled stage wherever sampling bounds the work: on the CPU,
#: and on every run across Dask workers, CPU or GPU, whose sampled stages gather their rows to
#: the client and run there on one device. A backend that declares
#: :attr:`~gpuseg.backend.Backend.fits_every_user` (the GPU) runs them on every user in one
#: process instead. The arithmetic for a distributed run of 2,062,090 users (10x Instacart):
#: the silhouette of every user is n^2 = 4.3e12 distance pairs per K, hours even on one GPU and
#: a 33 GB gather to the client; on its 20,000-user sample it is 4.0e8 pairs (seconds on a
#: CPU, milliseconds on a GPU), the same for any n. The other samples keep the gathered rows
#: to at most 100,000 x ~125 float64 components (100 MB) and their costs constant in n; only
#: the maps that assign every user, which run on the workers, grow with n (linearly).
SAMPLED = MappingProxyType({
    "sweep_sample": 20_000, "sweep_score_sample": 5_000, "kmeans_sample": 20_000,
    "silhouette_sample": 20_000, "stability_sample": 10_000, "dbscan_sample": 10_000,
    "hdbscan_sample": 5_000, "certainty_sample": 20_000, "umap_fit_sample": 30_000,
    "short_history_sample": 2_000,
    "importance_sample": 100_000})
#: Default cap on standardised feature values (``feature_cap``), in population standard
#: deviations. Measured on synthetic ``realistic`` shoppers (20,000 users x 5 seeds, 50,000 x 3):
#: without a cap 66-90 of the 134 aisle-share columns reach more than 20 SD after scaling, and a
#: segment of one rare aisle's few heavy buyers (30-80 SD out along its axis) takes one of the K
#: centroids in every run, vanishes on an 80% resample (best-match Jaccard 0.004-0.04) and draws
#: the map's radial streaks. Caps of 2-4 all remove them (worst Jaccard >= 0.94 in every run);
#: 5 is not enough (0.57), and square-root, log or pooled shares keep the niches. 3 sits in the
#: middle of that plateau and is the usual 3-SD winsorisation; strong data keeps ARI 1.0.
FEATURE_CAP = 3.0
#: Smallest sample a sampled stage accepts.
MIN_SAMPLE = 100
#: Largest hdbscan_min_samples (the user counted): cuML's HDBSCAN refuses min_samples above
#: 1023 (the user not counted; cuml/cluster/hdbscan/hdbscan.pyx, 26.10).
HDBSCAN_MAX_MIN_SAMPLES = 1024
#: Bounds of the Dask scale-out fields.
MAX_WORKERS = 1024
MIN_WORKER_MEMORY = 256 << 20

#: Flags that are not the field name with dashes (kept as users already type them), and the
#: flags of Python arguments spelled differently (write_instacart's out_dir and overwrite).
_FLAG_NAMES = {"k_business_range": "--k-range", "out_dir": "--out", "overwrite": "--force"}
_OPTIONS_AS_FLAGS: ContextVar[bool] = ContextVar("gpuseg_options_as_flags", default=False)


def flag(name: str) -> str:
    """The command-line flag of option ``name`` (a config field, or a command argument such as ``force``)."""
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def option(name: str) -> str:
    """How a message names option ``name``: the field for Python callers, the flag in the CLI."""
    return flag(name) if _OPTIONS_AS_FLAGS.get() else name


def setting(name: str, value: Any) -> str:
    """An option with a value, as a message shows it: ``k=5`` for Python, ``--k 5`` in the CLI."""
    if not _OPTIONS_AS_FLAGS.get():
        return f"{name}={value!r}"
    return flag(name) if value is True else f"{flag(name)} {value}"


@contextmanager
def options_as_flags() -> Iterator[None]:
    """Within this block :func:`option` names flags (the CLI wraps each command in it)."""
    token = _OPTIONS_AS_FLAGS.set(True)
    try:
        yield
    finally:
        _OPTIONS_AS_FLAGS.reset(token)


def _option(default: Any, kind: str, help: str, **limits: Any) -> Any:
    """A config field: its default, the kind of value it takes, its help text and limits.

    Kinds: ``int``, ``float``, ``backend``, ``k`` ("auto" or int), ``range``
    (two ints), ``sample`` ("auto", None or int), ``optional_int`` (None or
    int; ``every`` names what None means), ``count`` (the same, given as a plain
    number on the command line), ``eps`` (None or a positive float), ``cap`` (None or a
    positive float: a bound that can be switched off), ``address``
    (None or a non-empty text), ``bytes`` (None or a byte count), ``choice`` (one of
    the strings in ``choices``).
    """
    return field(default=default, metadata={"kind": kind, "help": help, **limits})


def python_number(value: Any) -> Any:
    """``value`` with a numpy (or other ``numbers``) integer or real made a Python int or float.

    Arguments computed with numpy arrive as ``np.int64(4)`` or ``np.float32(0.9)``;
    they are accepted wherever ``4`` and ``0.9`` are. Bools (Python's and
    numpy's), text and everything else are returned unchanged, so the checks
    still refuse them; a tuple is converted element by element.
    """
    if isinstance(value, tuple):
        return tuple(python_number(item) for item in value)
    if isinstance(value, bool) or type(value) in (int, float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _fail(name: str, expected: str, value: Any) -> None:
    raise ConfigError(f"{option(name)} must be {expected} (got {value!r})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _int_span(low: int, high: int | None) -> str:
    return f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"


def _int_in(value: Any, low: int, high: int | None) -> bool:
    """Type first, then range: a bool or a string never reaches the comparison."""
    return _is_int(value) and value >= low and (high is None or value <= high)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if not _int_in(value, low, high):
        _fail(name, _int_span(low, high), value)


def _check(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    kind = meta["kind"]
    if kind == "int":
        _check_int(name, value, meta["low"], meta.get("high"))
    elif kind == "float":
        low, high = meta["low"], meta["high"]
        span = f"a number in {'(' if meta.get('open_low') else '['}{low:g}, {high:g}]"
        if (not _is_number(value) or value > high
                or (value <= low if meta.get("open_low") else value < low)):
            _fail(name, span, value)
    elif kind == "k":
        if value != "auto" and (not _is_int(value) or value < 2):
            _fail(name, "'auto' or an integer >= 2", value)
    elif kind == "range":
        if (not isinstance(value, tuple) or len(value) != 2 or not all(map(_is_int, value))
                or not 2 <= value[0] <= value[1]):
            _fail(name, "(low, high) with 2 <= low <= high", value)
    elif kind == "sample":
        if value != "auto" and value is not None and (not _is_int(value) or value < MIN_SAMPLE):
            _fail(name, f"None (every user), 'auto' or an integer >= {MIN_SAMPLE}", value)
    elif kind in ("optional_int", "count", "bytes"):
        low, high = meta["low"], meta.get("high")
        if value is not None and not _int_in(value, low, high):
            _fail(name, f"None ({meta['every']}) or {_int_span(low, high)}", value)
    elif kind == "address":
        if value is not None and (not isinstance(value, str) or not value.strip()):
            _fail(name, "None or a scheduler address such as tcp://host:8786", value)
    elif kind == "choice":
        if value not in meta["choices"]:
            _fail(name, f"one of {', '.join(meta['choices'])}", value)
    elif kind == "eps":
        if value is not None and (not _is_number(value) or value <= 0):
            _fail(name, "None (auto) or a number > 0", value)
    elif kind == "cap":
        if value is not None and (not _is_number(value) or value <= 0):
            _fail(name, "None (no cap) or a number > 0", value)
    else:  # a field declared with a kind this function does not know is a bug
        raise AssertionError(f"unknown option kind {kind!r} of {name}")


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """Every knob of a segmentation run (the parameters below are each field's help).

    Validated on construction: a value of the wrong type or out of range
    raises :class:`~gpuseg.errors.ConfigError` naming the field, its allowed
    values and the value given. numpy integers and floats are taken as the
    Python numbers they hold.
    """

    backend: BackendName = _option(
        "auto", "choice", "compute backend: auto takes the GPU when RAPIDS imports and a "
        "device is visible; gpu without them is an error, not a fallback", choices=BACKEND_NAMES)
    seed: int = _option(42, "int", "seed of every random step (KMeans, samples, bootstrap, "
                        "UMAP)", low=0, high=2**32 - 1)
    min_orders: int = _option(5, "int", "users with fewer orders in their history are "
                              "excluded", low=1)
    pca_variance: float = _option(
        0.95, "float", "keep the fewest principal components whose cumulative explained "
        "variance reaches this share (ignored when {pca_components} is set)",
        low=0.0, high=1.0, open_low=True)
    pca_components: int | None = _option(
        None, "optional_int", "a fixed number of principal components instead of the variance "
        "target", low=1, every="the variance target decides")
    feature_cap: float | None = _option(
        FEATURE_CAP, "cap", "cap on standardised feature values, in standard deviations: after "
        "the StandardScaler every value is clipped to [-cap, cap] before the PCA (and so in "
        "gpuseg assign), so that the few heavy buyers of one rare aisle, 30-80 SD out, cannot "
        "claim a segment that vanishes on resampling ('none': no cap)")
    k: KChoice = _option(DEFAULT_K, "k", "number of segments, or 'auto' to choose it from the K sweep")
    k_sweep_range: tuple[int, int] = _option((2, 10), "range",
                                             "inclusive range of K the sweep evaluates")
    k_business_range: tuple[int, int] = _option(
        (3, 8), "range", "inclusive range of K that k='auto' may choose from")
    n_init: int = _option(10, "int", "KMeans initialisations of the final fit and of the "
                          "stability refits", low=1)
    sweep_n_init: int = _option(
        3, "int", "KMeans initialisations per K in the sweep (its curves need each K's typical "
        "fit, not the best of many)", low=1)
    sweep_sample: SampleSize = _option(
        "auto", "sample", "users (seeded sample) the K sweep fits on")
    sweep_score_sample: SampleSize = _option(
        "auto", "sample", "users of the sweep sample its silhouette, Calinski-Harabasz and "
        "Davies-Bouldin are computed on")
    kmeans_sample: SampleSize = _option(
        "auto", "sample", "users (seeded sample) the final KMeans runs its {n_init} "
        "initialisations on; the best is then refined by Lloyd iterations over every user, "
        "who are all assigned")
    silhouette_sample: SampleSize = _option(
        "auto", "sample", "users the reported silhouette is computed on")
    stability_sample: SampleSize = _option(
        "auto", "sample", "users the stability refits run on")
    stability_seeds: int = _option(5, "int", "KMeans refits with other seeds (mean pairwise "
                                   "ARI)", low=2)
    bootstrap_rounds: int = _option(5, "int", "bootstrap refits (ARI against the full fit on "
                                    "the resampled users)", low=1)
    importance_sample: SampleSize = _option(
        "auto", "sample", "users the grouped permutation importance shuffles and reassigns "
        "(eta squared is computed over every user)")
    rules_sample: int | None = _option(
        10_000, "optional_int", "users (seeded host sample) the segment-rule decision trees are "
        "fitted on; the rules' precision and coverage are measured on every user",
        low=MIN_SAMPLE, every="every user")
    hierarchical_micro_clusters: int = _option(
        1000, "int", "KMeans micro-clusters that Ward linkage runs over", low=10)
    dbscan_eps: float | None = _option(
        None, "eps", "DBSCAN radius (None: the knee of the k-distance curve)")
    dbscan_min_samples: int = _option(20, "int", "DBSCAN core-point threshold", low=2)
    dbscan_sample: SampleSize = _option(
        "auto", "sample", "users DBSCAN is fitted on, the others joining the nearest core point "
        "within eps")
    density: DensityMethod = _option(
        "dbscan", "choice", "density clustering run beside KMeans: dbscan (one radius, eps) or "
        "hdbscan (clusters of varying density, no radius to choose)", choices=DENSITY_METHODS)
    hdbscan_min_cluster_size: int = _option(
        50, "int", "HDBSCAN's smallest cluster, in fitted users", low=2)
    hdbscan_min_samples: int = _option(
        5, "int", "HDBSCAN core-point threshold: the neighbour (the user counted) whose distance "
        "is the user's core distance", low=2, high=HDBSCAN_MAX_MIN_SAMPLES)
    hdbscan_sample: SampleSize = _option(
        "auto", "sample", "users HDBSCAN is fitted on, the others joining the cluster of their "
        "nearest fitted user when within its core distance")
    certainty_sample: SampleSize = _option(
        "auto", "sample", "users (seeded sample) the certainty is calibrated on: KMeans is "
        "refitted on {certainty_refits} subsamples of four fifths of them, and every user's membership "
        "is then calibrated to the share of such refits that keep shoppers like them in their "
        "segment")
    certainty_refits: int = _option(
        3, "int", "subsample refits the certainty and each segment's reproducibility are "
        "measured on", low=2)
    short_history_sample: SampleSize = _option(
        "auto", "sample", "segmented shoppers (seeded sample) whose histories are cut to their "
        "first 2, 3 and 4 orders to measure how well a segment holds for a new shopper")
    umap_neighbors: int = _option(15, "int", "UMAP n_neighbors", low=2, high=200)
    umap_min_dist: float = _option(0.1, "float", "UMAP min_dist", low=0.0, high=1.0)
    umap_sample: int | None = _option(
        None, "optional_int", "embed a seeded sample of this many users in the map",
        low=MIN_SAMPLE, every="every user")
    umap_fit_sample: SampleSize = _option(
        "auto", "sample", "users the UMAP layout is fitted on; the other embedded users are "
        "placed with the fitted model's transform and still get coordinates")
    # -- scale-out on Dask (gpuseg.distributed) --
    workers: int | None = _option(
        None, "count", "start a local Dask cluster of this many workers for the run (a "
        "LocalCUDACluster, one worker per GPU, on the GPU backend); the data must be in the "
        "partitioned layout (gpuseg partition)", low=1, high=MAX_WORKERS, every="one process")
    scheduler: str | None = _option(
        None, "address", "address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786) to run "
        "across its workers instead of starting {workers}")
    worker_memory: int | None = _option(
        None, "bytes", "memory limit in bytes of each worker that {workers} starts",
        low=MIN_WORKER_MEMORY, every="the machine's memory shared equally")

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = python_number(getattr(self, spec.name))
            object.__setattr__(self, spec.name, value)  # frozen: the plain value replaces numpy's
            _check(spec.name, value, spec.metadata)
        if self.workers is not None and self.scheduler is not None:
            raise ConfigError(f"{option('workers')} and {option('scheduler')} exclude each other: "
                              "the one starts a local cluster, the other joins a running one")
        if self.worker_memory is not None and self.workers is None:
            raise ConfigError(f"{option('worker_memory')} applies only with {option('workers')} "
                              "(a running cluster's workers have their own limits)")

    @property
    def distributed(self) -> bool:
        """Whether the run goes across Dask workers (``workers`` or ``scheduler`` set)."""
        return self.workers is not None or self.scheduler is not None

    def sample_size(self, name: str, backend: Backend) -> int | None:
        """Users the sampled stage ``name`` runs on: ``"auto"`` resolved for ``backend``.

        ``None`` means every user. The one place where ``"auto"`` becomes a
        number: every user where the backend declares
        :attr:`~gpuseg.backend.Backend.fits_every_user` and the run is in one
        process, else :data:`SAMPLED`.
        """
        value = getattr(self, name)
        if value != "auto":
            return value
        return None if backend.fits_every_user and not self.distributed else SAMPLED[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


def help_text(name: str, *, as_flags: bool) -> str:
    """Field ``name``'s help, naming the options it mentions as flags or as fields."""
    spec = next(f for f in dataclasses.fields(PipelineConfig) if f.name == name)
    names = {f.name: flag(f.name) if as_flags else f"``{f.name}``"
             for f in dataclasses.fields(PipelineConfig)}
    return str(spec.metadata["help"]).format_map(names)


def _parameters_doc() -> str:
    lines = ["", "    Parameters", "    ----------"]
    for spec in dataclasses.fields(PipelineConfig):
        text = help_text(spec.name, as_flags=False)
        auto = (" ``auto`` is every user on a GPU in one process, else "
                f"{SAMPLED.get(spec.name, 0):,} (:data:`SAMPLED`); ``None`` is every user."
                if spec.metadata["kind"] == "sample" else "")
        lines.append(f"    {spec.name} : {spec.type}")
        lines.append(f"        {text[0].upper()}{text[1:]}.{auto} Default {spec.default!r}.")
    return "\n".join(lines) + "\n"


PipelineConfig.__doc__ = (PipelineConfig.__doc__ or "") + _parameters_doc()
#: Names of the fields that take a sample size.
SAMPLE_FIELDS = tuple(spec.name for spec in dataclasses.fields(PipelineConfig)
                      if spec.metadata["kind"] == "sample")
