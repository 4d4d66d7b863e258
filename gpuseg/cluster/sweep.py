"""The K sweep: KMeans across K and its validity indices (the choice of K is in ``kchoice``)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import option
from ..errors import GpusegError
from ..numerics.arrays import dense_codes, finite_or_none, segment_sums
from ..numerics.knee import find_knee
from ..numerics.sampling import seeded_sample
from .checks import check_matrix, n_labels_ok
from .ward import ward_starts

if TYPE_CHECKING:
    from ..backend import Backend

#: Micro-clusters the sweep's Ward starts are merged from: groups of about 25 of a 5,000-user
#: seeded fit sample, fine enough to place ten centres, cheap to merge on the host.
SWEEP_MICRO_CLUSTERS = 200
#: Bootstrap resamples of the sweep sample on which the sharpest elbow's K is refitted.
STABILITY_ROUNDS = 3
#: Later K whose WCSS gains an elbow's gain is compared with (their mean).
SHARPNESS_SPAN = 2


# -- internal validity indices (cuML has neither) -------------------------------------------
def _segment_centroids(X: Any, labels: Any, backend: Backend, what: str,
                       index_name: str) -> tuple[int, int, Any, Any, Any]:
    """Rows, segment count, dense codes, sizes and centroids that both validity indices start from."""
    xp = backend.xp
    n = check_matrix(X, what)
    codes, uniques = dense_codes(labels, xp=xp)
    k = int(uniques.shape[0])
    if not n_labels_ok(k, n):
        raise GpusegError(f"{index_name} needs 2 to {n - 1} segments (got {k})")
    sums, counts = segment_sums(X, codes, k, xp=xp)
    return n, k, codes, counts, sums / counts[:, None]


def calinski_harabasz(X: Any, labels: Any, backend: Backend) -> float:
    """Calinski-Harabasz index, computed with ``backend.xp`` (scikit-learn's definition).

    Between-segment dispersion over within-segment dispersion, each divided by
    its degrees of freedom; higher is better. 1.0 when every segment is a
    single point, as in scikit-learn.
    """
    n, k, codes, counts, centroids = _segment_centroids(X, labels, backend, "calinski_harabasz",
                                                        "Calinski-Harabasz")
    spread = counts * ((centroids - X.mean(axis=0)) ** 2).sum(axis=1)
    between = float(backend.to_host(spread.sum()))
    within = float(backend.to_host(((X - centroids[codes]) ** 2).sum()))
    if within == 0.0:
        return 1.0
    return between * (n - k) / (within * (k - 1.0))


def davies_bouldin(X: Any, labels: Any, backend: Backend) -> float:
    """Davies-Bouldin index, computed with ``backend.xp`` (scikit-learn's definition).

    The mean over segments of the worst ratio (spread_i + spread_j) / distance
    between centroids i and j, with spread the mean distance to the centroid;
    lower is better, 0 for point-like segments.
    """
    xp = backend.xp
    n, k, codes, counts, centroids = _segment_centroids(X, labels, backend, "davies_bouldin",
                                                        "Davies-Bouldin")
    to_centroid = xp.sqrt(((X - centroids[codes]) ** 2).sum(axis=1))
    spread = xp.bincount(codes, weights=to_centroid, minlength=k) / counts
    between = xp.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2))
    if bool(xp.allclose(spread, 0)) or bool(xp.allclose(between, 0)):
        return 0.0
    between[between == 0] = xp.inf
    ratios = (spread[:, None] + spread[None, :]) / between
    return float(backend.to_host(ratios.max(axis=1).mean()))


# -- K sweep --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KSweep:
    """KMeans quality across K.

    Attributes
    ----------
    ks : tuple of int
        The K evaluated (the sweep range, less any K not below the user count).
    inertia : tuple of float
        Within-cluster sum of squares (WCSS) of the KMeans fit on the sweep sample, per K:
        the better of a k-means++ fit and a fit started from Ward's tree (see ``starts``).
    silhouette, calinski_harabasz, davies_bouldin : tuple of float
        The three indices on the seeded sample, per K; NaN (``null`` in
        ``to_dict``) where undefined (fewer than two segments in the sample).
    elbow_k : int
        The knee of the WCSS curve over K = 1 and the swept K (see
        :func:`gpuseg.numerics.knee.find_knee`); a curve without a bend reports the
        smallest swept K.
    wcss_k1 : float
        WCSS of a single segment: the total sum of squares around the mean.
    sample_size : int
        Users the three indices were computed on.
    n_users : int
        Users in the segmentation.
    fit_size : int
        Users the sweep's KMeans fits (and WCSS) ran on.
    starts : tuple of str
        Per K, which start gave the kept fit: ``"k-means++"`` or ``"ward"``
        (empty for a hand-built sweep).
    stability_k : int or None
        The K whose solution was refitted on bootstrap resamples (the sharpest
        elbow in the range asked for), or ``None`` when none was.
    stability_aris : tuple of float
        ARI between each refit and the sweep's solution at ``stability_k``, on
        the sweep sample.
    """

    ks: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    calinski_harabasz: tuple[float, ...]
    davies_bouldin: tuple[float, ...]
    elbow_k: int
    wcss_k1: float
    sample_size: int
    n_users: int
    fit_size: int
    starts: tuple[str, ...] = ()
    stability_k: int | None = None
    stability_aris: tuple[float, ...] = ()

    @property
    def elbow_sharpness(self) -> tuple[float, ...]:
        """Per K, the WCSS the K-th segment removes over what each of the next two removes.

        ``(W(K-1) - W(K)) / mean(W(K) - W(K+1), W(K+1) - W(K+2))`` on the
        running minimum of the WCSS curve (a K+1 fit that lands above K's is a
        local optimum, and never better than splitting one of K's segments).
        Planted groups give a sharp break: the K-th segment separates two of
        them, the next ones only split a group. NaN where K-1 or K+1 was not
        swept, or nothing changes; infinite where the curve is flat after K.
        """
        curve_k = (1,) + self.ks
        best = np.minimum.accumulate(np.asarray((self.wcss_k1,) + self.inertia, dtype=float))
        gain = {k: best[i - 1] - best[i] for i, k in enumerate(curve_k)
                if i > 0 and curve_k[i - 1] == k - 1}
        sharpness = []
        for k in self.ks:
            later = [gain[k + j] for j in range(1, SHARPNESS_SPAN + 1) if k + j in gain]
            if k not in gain or not later or gain[k] <= 0:
                sharpness.append(math.nan)
            else:
                after = float(np.mean(later))
                sharpness.append(float(gain[k]) / after if after > 0 else math.inf)
        return tuple(sharpness)

    def inertia_at(self, k: int) -> float | None:
        """WCSS at ``k``: ``wcss_k1`` for K=1, ``None`` for a K the sweep did not fit."""
        if k == 1:
            return self.wcss_k1
        return self.inertia[self.ks.index(k)] if k in self.ks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ks": list(self.ks),
            "inertia": [finite_or_none(v) for v in self.inertia],
            "silhouette": [finite_or_none(v) for v in self.silhouette],
            "calinski_harabasz": [finite_or_none(v) for v in self.calinski_harabasz],
            "davies_bouldin": [finite_or_none(v) for v in self.davies_bouldin],
            "elbow_k": self.elbow_k,
            "wcss_k1": self.wcss_k1,
            "sample_size": self.sample_size,
            "n_users": self.n_users,
            "fit_size": self.fit_size,
            "starts": list(self.starts),
            "elbow_sharpness": [sharpness_for_json(v) for v in self.elbow_sharpness],
            "stability_k": self.stability_k,
            "stability_aris": [finite_or_none(v) for v in self.stability_aris],
        }


def total_sum_of_squares(X: Any, backend: Backend) -> float:
    """WCSS of one segment holding every row (the K=1 point of the elbow curve)."""
    return float(backend.to_host(((X - X.mean(axis=0)) ** 2).sum()))


def k_sweep(X: Any, backend: Backend, *, k_range: tuple[int, int] = (2, 10), seed: int,
            n_init: int, score_sample: int | None = None,
            stability_range: tuple[int, int] | None = None) -> KSweep:
    """Fit KMeans for every K in ``k_range`` on the users ``X`` holds, and score each fit.

    The K sweep stage hands it a seeded sample (20,000 users on a CPU): the
    sweep's 9 x ``n_init`` fits then stay within the CPU budget at Instacart
    scale, and the elbow and the indices are ratios that change little with
    the sample.

    Each K is fitted twice, with k-means++ (``n_init`` times) and once from
    the centroids of Ward's tree over micro-clusters cut at K
    (:func:`~gpuseg.cluster.ward.ward_starts`), and the fit with the lower
    WCSS is kept: on synthetic shoppers k-means++ alone merges two planted
    personas in about a quarter of its 3-initialisation runs, which bends the
    WCSS curve at the wrong K.

    Parameters
    ----------
    X : backend array, shape (n_users, n_components)
        Users in PCA space.
    backend : Backend
        Where to compute.
    k_range : (int, int)
        Inclusive range of K. K values not below the number of users are left
        out (a segmentation needs fewer segments than users).
    seed : int
        Seed of every KMeans fit and of the scoring sample.
    n_init : int
        KMeans initialisations per K (the best inertia is kept).
    score_sample : int or None
        Users of the fit sample (a seeded sub-sample) the silhouette,
        Calinski-Harabasz and Davies-Bouldin indices are computed on;
        ``None`` is the whole fit sample. Silhouette is quadratic: nine of them
        on 20,000 users cost a CPU run about 45 s, on 5,000 about 3 s.
    stability_range : (int, int) or None
        When given, the K in this range with the sharpest elbow
        (:attr:`KSweep.elbow_sharpness`) is refitted, Ward-started, on
        :data:`STABILITY_ROUNDS` bootstrap resamples of the sweep sample, and
        each refit's partition of the sweep sample is compared with the kept
        one (ARI): does that K's solution come back when other customers are
        drawn? ``None`` skips it.

    Returns
    -------
    KSweep

    Raises
    ------
    GpusegError
        When the range is invalid or no K in it is below the number of users.
    """
    xp = backend.xp
    n = check_matrix(X, "the K sweep")
    lo, hi = k_range
    ks = tuple(k for k in range(lo, hi + 1) if k < n)
    if lo >= 2 and n <= lo:
        raise GpusegError(
            f"the K sweep needs more users than its smallest K ({lo}); "
            f"got {n} user{'s' if n != 1 else ''}")
    if lo < 2 or not ks:
        raise GpusegError(
            f"{option('k_sweep_range')} must be (low, high) with 2 <= low <= high (got {k_range!r})")
    X_fit = X
    scored = seeded_sample(int(X_fit.shape[0]), score_sample, seed=seed + 1, backend=backend)
    X_sample = X_fit if scored is None else X_fit[scored]
    n_sample = int(X_sample.shape[0])
    wcss_k1 = total_sum_of_squares(X_fit, backend)
    starts = (ward_starts(X_fit, backend, ks=ks, n_micro=SWEEP_MICRO_CLUSTERS, seed=seed)
              if wcss_k1 > 0.0 else {})
    inertia, silhouette, ch, db, start_used = [], [], [], [], []
    labels_by_k = {}
    for k in ks:
        if wcss_k1 == 0.0:
            # Identical users: every K has zero WCSS and no index is defined. No fit is asked
            # for, since what KMeans does with zero spread differs between libraries (cuML's
            # initialisation falls back to random and may split identical points).
            inertia.append(0.0)
            silhouette.append(math.nan)
            ch.append(math.nan)
            db.append(math.nan)
            start_used.append("none")
            continue
        model = backend.KMeans(k, n_init=n_init, random_state=seed).fit(X_fit)
        wcss, start = float(backend.to_host(model.inertia_)), "k-means++"
        if k in starts:
            from_ward = backend.KMeans(k, n_init=1, random_state=seed, init=starts[k]).fit(X_fit)
            ward_wcss = float(backend.to_host(from_ward.inertia_))
            if ward_wcss < wcss:
                model, start, wcss = from_ward, "ward", ward_wcss
        inertia.append(wcss)
        start_used.append(start)
        labels = backend.asarray(model.labels_)
        labels_by_k[k] = labels
        labels_sample = labels if scored is None else labels[scored]
        if n_labels_ok(int(xp.unique(labels_sample).shape[0]), n_sample):
            silhouette.append(backend.silhouette_score(X_sample, labels_sample))
            ch.append(calinski_harabasz(X_sample, labels_sample, backend))
            db.append(davies_bouldin(X_sample, labels_sample, backend))
        else:
            silhouette.append(math.nan)
            ch.append(math.nan)
            db.append(math.nan)
    curve_k = (1,) + ks
    knee = find_knee(curve_k, (wcss_k1,) + tuple(inertia), curve="convex", direction="decreasing")
    sweep = KSweep(ks=ks, inertia=tuple(inertia), silhouette=tuple(silhouette),
                   calinski_harabasz=tuple(ch), davies_bouldin=tuple(db),
                   elbow_k=max(curve_k[knee], ks[0]), wcss_k1=wcss_k1,
                   sample_size=n_sample, n_users=n, fit_size=int(X_fit.shape[0]),
                   starts=tuple(start_used))
    if stability_range is None or not labels_by_k:
        return sweep
    candidate = sharpest_k(sweep, stability_range)
    if candidate is None:
        return sweep
    aris = _bootstrap_aris(X_fit, labels_by_k[candidate], backend, k=candidate, seed=seed)
    return dataclasses.replace(sweep, stability_k=candidate, stability_aris=aris)


def sharpness_for_json(value: float) -> float | None:
    """An elbow sharpness as metrics.json holds it: ``null`` for NaN and, since JSON has no
    infinity, a very large number for a curve flat after K."""
    return None if math.isnan(value) else min(value, 1e12)


def sharpest_k(sweep: KSweep, k_range: tuple[int, int]) -> int | None:
    """The K in ``k_range`` with the sharpest elbow (the smaller K on a tie), or ``None``."""
    lo, hi = k_range
    scored = [(s, -k) for k, s in zip(sweep.ks, sweep.elbow_sharpness)
              if lo <= k <= hi and not math.isnan(s)]
    return -max(scored)[1] if scored else None


def _bootstrap_aris(X_fit: Any, labels: Any, backend: Backend, *, k: int,
                    seed: int) -> tuple[float, ...]:
    """ARI of Ward-started refits on bootstrap resamples against ``labels``, on ``X_fit``."""
    n_fit = int(X_fit.shape[0])
    # Drawn on the host so both backends resample the same users; only indices move.
    rng = np.random.default_rng(seed)
    aris = []
    for _ in range(STABILITY_ROUNDS):
        resample = X_fit[backend.asarray(rng.integers(0, n_fit, size=n_fit))]
        start = ward_starts(resample, backend, ks=(k,), n_micro=SWEEP_MICRO_CLUSTERS, seed=seed)
        if k not in start:
            aris.append(math.nan)
            continue
        refit = backend.KMeans(k, n_init=1, random_state=seed, init=start[k]).fit(resample)
        aris.append(backend.adjusted_rand_score(labels, backend.asarray(refit.predict(X_fit))))
    return tuple(aris)
