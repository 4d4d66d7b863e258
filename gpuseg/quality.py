"""How far to trust the segments: silhouette, stability, feature importance, a verdict.

Each function takes backend arrays and a :class:`~gpuseg.backend.Backend`,
computes with ``backend.xp`` and the backend's metrics, and returns a frozen
dataclass whose ``to_dict()`` is JSON-ready (NaN becomes ``null``). Only
K- or feature-sized results come to the host.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .cluster import fit_kmeans
from .errors import GpusegError
from .numerics.arrays import dense_codes, finite_or_none, segment_sums

if TYPE_CHECKING:
    from .backend import Backend

#: Silhouette thresholds (Kaufman & Rousseeuw's reading of the average silhouette):
#: at least 0.50 the segments are well separated; 0.25-0.50 they are real but
#: border on each other; below 0.25 there is no substantial separation.
SILHOUETTE_STRONG = 0.50
SILHOUETTE_MODERATE = 0.25
#: Stability thresholds on the adjusted Rand index between refits: at least 0.90
#: nearly every user keeps its segment; 0.75-0.90 a minority moves; below 0.75
#: refits reshuffle the segments.
ARI_STABLE = 0.90
ARI_FAIR = 0.75


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _min(values: Sequence[float]) -> float:
    return float(np.min(values)) if values else math.nan


# -- silhouette ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SilhouetteReport:
    """Silhouette of a segmentation, overall, per segment and per user.

    Attributes
    ----------
    overall : float
        Mean silhouette of the scored users; NaN when undefined (fewer than two
        segments among them, or each its own segment).
    per_cluster : dict of int to float
        Mean silhouette of the scored users of each segment.
    sample_size : int or None
        Users in the seeded sample, or ``None`` when every user was scored.
    per_user : backend array, shape (n_users,)
        Each user's silhouette, NaN for users outside the sample.
    n_scored : int
        Users the scores cover.
    """

    overall: float
    per_cluster: dict[int, float]
    sample_size: int | None
    per_user: Any
    n_scored: int

    def to_dict(self) -> dict[str, Any]:
        """Host summary (``per_user`` stays out); segment keys become strings, as in JSON."""
        scope = ("every user" if self.sample_size is None
                 else f"a seeded sample of {self.sample_size:,} users")
        return {"overall": finite_or_none(self.overall),
                "per_cluster": {str(k): finite_or_none(v) for k, v in self.per_cluster.items()},
                "sample_size": self.sample_size, "n_scored": self.n_scored, "scope": scope}


def silhouette_report(X: Any, labels: Any, backend: Backend) -> SilhouetteReport:
    """Silhouette of ``labels`` on the users ``X`` holds (a stage's seeded sample, or all).

    Parameters
    ----------
    X : backend array, shape (n_scored, n_components)
    labels : backend int array, shape (n_scored,)
    backend : Backend
        On the GPU, cuML computes the full silhouette in memory-bounded tiles.

    Returns
    -------
    SilhouetteReport
        ``per_user`` holds the scored users' values (NaN everywhere when the
        silhouette is undefined); ``sample_size`` is left ``None`` for the
        caller that sampled to set.
    """
    xp = backend.xp
    n_scored = int(X.shape[0])
    codes, uniques = dense_codes(labels, xp=xp)
    n_labels = int(uniques.shape[0])
    if not 2 <= n_labels <= n_scored - 1:
        return SilhouetteReport(overall=math.nan, per_cluster={}, sample_size=None,
                                per_user=xp.full(n_scored, xp.nan, dtype=xp.float64),
                                n_scored=n_scored)
    # cuML returns X's dtype (cuml/metrics/cluster/silhouette_score.pyx, 26.10); X is float64.
    scores = backend.asarray(backend.silhouette_samples(X, labels)).astype(xp.float64)
    # A K-sized table and one scalar come to the host.
    by_segment = backend.to_host(xp.bincount(codes, weights=scores, minlength=n_labels)
                                 / xp.bincount(codes, minlength=n_labels))
    segment_ids = backend.to_host(uniques)
    return SilhouetteReport(
        overall=float(backend.to_host(scores.mean())),
        per_cluster={int(k): float(v) for k, v in zip(segment_ids, by_segment)},
        sample_size=None, per_user=scores, n_scored=n_scored)


# -- stability -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stability:
    """Agreement of KMeans refits, as adjusted Rand indices (1 = identical partitions).

    Attributes
    ----------
    seed_ari_mean, seed_ari_min : float
        Mean and minimum over every pair of refits with different seeds.
    seed_aris : tuple of float
        The pairwise values, pairs in ``itertools.combinations`` order.
    bootstrap_ari_mean, bootstrap_ari_min : float
        Mean and minimum over bootstrap refits.
    bootstrap_aris : tuple of float
        ARI of each bootstrap refit against the full fit on the resampled users.
    n_seeds, n_bootstrap : int
    sample_size : int
        Users the refits ran on.
    """

    seed_ari_mean: float
    seed_ari_min: float
    seed_aris: tuple[float, ...]
    bootstrap_ari_mean: float
    bootstrap_ari_min: float
    bootstrap_aris: tuple[float, ...]
    n_seeds: int
    n_bootstrap: int
    sample_size: int

    def to_dict(self) -> dict[str, Any]:
        return {"seed_ari_mean": finite_or_none(self.seed_ari_mean),
                "seed_ari_min": finite_or_none(self.seed_ari_min),
                "seed_aris": [finite_or_none(v) for v in self.seed_aris],
                "bootstrap_ari_mean": finite_or_none(self.bootstrap_ari_mean),
                "bootstrap_ari_min": finite_or_none(self.bootstrap_ari_min),
                "bootstrap_aris": [finite_or_none(v) for v in self.bootstrap_aris],
                "n_seeds": self.n_seeds, "n_bootstrap": self.n_bootstrap,
                "sample_size": self.sample_size}


def stability(X: Any, labels: Any, backend: Backend, *, k: int, n_seeds: int = 5,
              n_bootstrap: int = 5, n_init: int, seed: int) -> Stability:
    """How reproducible the KMeans segmentation is, on the users ``X`` holds.

    The stability stage hands it a seeded sample: ten full refits at
    Instacart scale would dominate a CPU run, while a 10,000-user sample
    answers the same question. The refits run in float32.

    Seed stability refits KMeans on every user with seeds ``seed, seed+1, ...,
    seed+n_seeds-1`` and averages the ARI over all pairs: does the answer
    depend on the initialisation? Bootstrap stability draws users with
    replacement (seeded by ``seed``), refits with ``seed`` and compares with
    ``labels`` on the drawn users: does the answer depend on which customers
    happened to be in the data?

    Parameters
    ----------
    X : backend array, shape (n_users, n_components)
    labels : backend int array, shape (n_users,)
        The full-fit labels.
    backend : Backend
    k : int
    n_seeds : int
        Refits with different seeds (at least 2, for one pair).
    n_bootstrap : int
        Bootstrap refits (0 skips them).
    n_init : int
        Initialisations per refit.
    seed : int

    Returns
    -------
    Stability

    Raises
    ------
    GpusegError
        When ``n_seeds`` is below 2, ``n_bootstrap`` below 0, or ``k`` exceeds
        the number of users.
    """
    # Only the refits' labels are compared, and float32 finds the same partitions at a quarter
    # of float64's time (10,000 synthetic Instacart users, 133 components: 14 of the 15 ARIs
    # identical, the other 0.643 vs 0.642).
    X = X.astype(backend.xp.float32)
    n = int(X.shape[0])
    if n_seeds < 2:
        raise GpusegError(f"stability_seeds must be at least 2 (got {n_seeds})")
    if n_bootstrap < 0:
        raise GpusegError(f"bootstrap_rounds must not be negative (got {n_bootstrap})")
    refits = [fit_kmeans(X, backend, k=k, n_init=n_init, seed=(seed + i) % 2**32).labels
              for i in range(n_seeds)]
    seed_aris = tuple(backend.adjusted_rand_score(a, b)
                      for a, b in itertools.combinations(refits, 2))
    rng = np.random.default_rng(seed)
    bootstrap_aris = []
    for _ in range(n_bootstrap):
        # Drawn on the host so both backends resample the same users; only indices move.
        rows = backend.asarray(rng.integers(0, n, size=n))
        refit = fit_kmeans(X[rows], backend, k=k, n_init=n_init, seed=seed)
        bootstrap_aris.append(backend.adjusted_rand_score(labels[rows], refit.labels))
    return Stability(seed_ari_mean=_mean(seed_aris), seed_ari_min=_min(seed_aris),
                     seed_aris=seed_aris, bootstrap_ari_mean=_mean(bootstrap_aris),
                     bootstrap_ari_min=_min(bootstrap_aris), bootstrap_aris=tuple(bootstrap_aris),
                     n_seeds=n_seeds, n_bootstrap=n_bootstrap, sample_size=n)


# -- feature importance ----------------------------------------------------------------------
@dataclass(frozen=True)
class Importance:
    """Which single features differ between the segments (the families' importance through the
    saved model is :func:`gpuseg.explain.grouped_importance`).

    Attributes
    ----------
    eta_squared : dict of str to float
        Per feature, between-segment over total variance (0 to 1).
    top_overall : tuple of str
        The ``top`` features by eta squared.
    top_per_segment : dict of int to list of (str, float)
        Per segment, the ``top`` features by absolute standardised mean
        difference from the population (segment mean minus population mean,
        in population standard deviations), with its sign.
    """

    eta_squared: dict[str, float]
    top_overall: tuple[str, ...]
    top_per_segment: dict[int, list[tuple[str, float]]]

    def to_dict(self) -> dict[str, Any]:
        return {"eta_squared": dict(self.eta_squared), "top_overall": list(self.top_overall),
                "top_per_segment": {str(k): [[name, z] for name, z in v]
                                    for k, v in self.top_per_segment.items()}}


def importance_moments(backend: Backend, X_scaled: Any, labels: Any, k: int) -> np.ndarray:
    """A block's per-segment sums and counts and its column sums of squares (host).

    Shape (k + 1, n_features + 1): row j holds segment j's feature sums and its
    user count; the last row the sums of squares over every user of the block.
    """
    xp = backend.xp
    X_scaled = X_scaled.astype(xp.float64, copy=False)
    sums, counts = segment_sums(X_scaled, labels.astype(xp.int64), k, xp=xp)
    squares = (X_scaled ** 2).sum(axis=0)
    table = xp.concatenate([xp.concatenate([sums, counts[:, None]], axis=1),
                            xp.concatenate([squares, xp.zeros(1)])[None, :]])
    return backend.to_numpy(table, np.float64)


def importance_from_moments(moments: np.ndarray, *, feature_names: Sequence[str],
                            top: int = 10) -> Importance:
    """Eta squared and per-segment standout features from :func:`importance_moments` summed
    over every user.

    Parameters
    ----------
    moments : numpy.ndarray, shape (k + 1, n_features + 1)
    feature_names : sequence of str
    top : int
        How many features the top lists hold.
    """
    names = list(feature_names)
    p = moments.shape[1] - 1
    if len(names) != p:
        raise GpusegError(f"feature_names has {len(names)} names for {p} columns")
    sums, counts, squares = moments[:-1, :-1], moments[:-1, -1], moments[-1, :-1]
    used = counts > 0
    sums, counts = sums[used], counts[used]
    n = counts.sum()
    mean = sums.sum(axis=0) / n
    centroids = sums / counts[:, None]
    total = np.clip(squares - n * mean ** 2, 0.0, None)
    between = (counts[:, None] * (centroids - mean) ** 2).sum(axis=0)
    std = np.sqrt(total / n)
    eta_squared = np.where(total > 0, between / np.where(total > 0, total, 1.0), 0.0)
    standardised = np.where(std > 0, (centroids - mean) / np.where(std > 0, std, 1.0), 0.0)
    by_eta = sorted(range(p), key=lambda j: (-eta_squared[j], j))
    per_segment = {}
    for row, segment in enumerate(np.flatnonzero(used)):
        order = sorted(range(p), key=lambda j: (-abs(standardised[row, j]), j))[:top]
        per_segment[int(segment)] = [(names[j], float(standardised[row, j])) for j in order]
    return Importance(
        eta_squared={name: float(v) for name, v in zip(names, eta_squared)},
        top_overall=tuple(names[j] for j in by_eta[:top]), top_per_segment=per_segment)


def feature_importance(X_scaled: Any, labels: Any, backend: Backend, *,
                       feature_names: Sequence[str], top: int = 10) -> Importance:
    """Eta squared and per-segment standout features of users in memory.

    Parameters
    ----------
    X_scaled : backend array, shape (n_users, n_features)
        Standardised features, columns in ``feature_names`` order.
    labels : backend int array, shape (n_users,)
        Segments ``0 .. k-1``.
    backend : Backend
    feature_names : sequence of str
    top : int
        How many features the top lists hold.

    Returns
    -------
    Importance
    """
    k = int(backend.to_host(labels.max())) + 1 if int(labels.shape[0]) else 0
    return importance_from_moments(importance_moments(backend, X_scaled, labels, k),
                                   feature_names=feature_names, top=top)


# -- verdict ---------------------------------------------------------------------------------
Strength = Literal["strong", "moderate", "weak"]


@dataclass(frozen=True)
class Verdict:
    """A plain-language judgement of the segmentation.

    Attributes
    ----------
    strength : {"strong", "moderate", "weak"}
        The weaker of the separation and the stability grades.
    text : str
        What the numbers mean for someone acting on the segments.
    separation, stability : {"strong", "moderate", "weak"}
        The two grades it combines.
    """

    strength: Strength
    text: str
    separation: Strength
    stability: Strength

    def to_dict(self) -> dict[str, Any]:
        return {"strength": self.strength, "text": self.text, "separation": self.separation,
                "stability": self.stability}


_ORDER: tuple[Strength, ...] = ("weak", "moderate", "strong")


def _stability_numbers(measured: list[tuple[float, str]]) -> str:
    """The ARI a stability grade rests on (the lower one), with the other in parentheses:
    ``the lower stability ARI, 0.63 across bootstrap resamples (0.81 across seeds),``."""
    if len(measured) == 1:
        value, where = measured[0]
        return f"the stability ARI, {value:.2f} across {where},"
    (low, low_where), (high, high_where) = sorted(measured)
    return f"the lower stability ARI, {low:.2f} across {low_where} ({high:.2f} across {high_where}),"


def verdict(silhouette: float, seed_ari: float, bootstrap_ari: float) -> Verdict:
    """Grade the segmentation from its silhouette and its stability.

    Separation from the silhouette: strong at :data:`SILHOUETTE_STRONG` (0.50)
    or above, moderate from :data:`SILHOUETTE_MODERATE` (0.25), weak below or
    when undefined. Stability from the lower of the seed and bootstrap ARIs
    (either may be NaN when not measured; both missing grades weak):
    strong at :data:`ARI_STABLE` (0.90) or above, moderate from
    :data:`ARI_FAIR` (0.75), weak below or when missing. The verdict is the
    weaker grade: well-separated segments that change on every refit are as
    unusable as stable ones that overlap.

    Parameters
    ----------
    silhouette : float
        Overall silhouette (NaN if undefined).
    seed_ari, bootstrap_ari : float
        Mean ARIs from :func:`stability`.

    Returns
    -------
    Verdict
    """
    if not math.isfinite(silhouette):
        separation: Strength = "weak"
        separation_text = ("Silhouette is undefined (fewer than two segments among the scored "
                           "users), so nothing shows that the segments are separate groups.")
    elif silhouette >= SILHOUETTE_STRONG:
        separation = "strong"
        separation_text = (f"Silhouette {silhouette:.2f} (>= {SILHOUETTE_STRONG:.2f}): the "
                           "segments are well separated; most customers sit clearly inside one.")
    elif silhouette >= SILHOUETTE_MODERATE:
        separation = "moderate"
        separation_text = (f"Silhouette {silhouette:.2f} ({SILHOUETTE_MODERATE:.2f}-"
                           f"{SILHOUETTE_STRONG:.2f}): the segments are real but border on each "
                           "other; customers near a border could fit either.")
    else:
        separation = "weak"
        separation_text = (f"Silhouette {silhouette:.2f} (< {SILHOUETTE_MODERATE:.2f}): clusters "
                           "overlap; treat segments as tendencies, not distinct customer types.")
    measured = [(value, where) for value, where in ((seed_ari, "seeds"),
                                                     (bootstrap_ari, "bootstrap resamples"))
                if math.isfinite(value)]
    worst = min((value for value, _ in measured), default=math.nan)
    ari_text = _stability_numbers(measured) if measured else ""
    if not measured:
        stable: Strength = "weak"
        stability_text = "Stability was not measured, so reproducibility is unknown."
    elif worst >= ARI_STABLE:
        stable = "strong"
        stability_text = (f"The segments are reproducible: {ari_text} is {ARI_STABLE:.2f} or "
                          "more, so refits put nearly every customer in the same segment.")
    elif worst >= ARI_FAIR:
        stable = "moderate"
        stability_text = (f"The segments are mostly reproducible: {ari_text} is between "
                          f"{ARI_FAIR:.2f} and {ARI_STABLE:.2f}, so a minority of customers "
                          "change segment between refits.")
    else:
        stable = "weak"
        stability_text = (f"The segments are not reproducible: {ari_text} is below "
                          f"{ARI_FAIR:.2f}, so refits reshuffle many customers; do not act on "
                          "individual assignments.")
    strength = min(separation, stable, key=_ORDER.index)
    lead = {"strong": "Strong segmentation.", "moderate": "Moderate segmentation.",
            "weak": "Weak segmentation."}[strength]
    return Verdict(strength=strength, text=f"{lead} {separation_text} {stability_text}",
                   separation=separation, stability=stable)
