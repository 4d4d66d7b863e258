"""How sure each shopper's segment is: a certainty calibrated on subsample refits, and its check.

One number per shopper, ``membership`` in every output: the probability that
the shopper stays in its segment when the shoppers are resampled and the
segmentation is fitted again, so that a membership of 0.9 means that about 9 in
10 such shoppers stay. The run measures it: KMeans is refitted on seeded 80%
subsamples (:mod:`~gpuseg.cluster.refits`), and each user's *agreement* is the
share of the refits holding it that keep it in its matched segment. The
certainty (:mod:`gpuseg.numerics.certainty`: a posterior over the centres at a
temperature ``T``, then one slope and one intercept per segment) is fitted to
those refit counts by binomial likelihood, so a segment that does not come back
lowers every member's certainty through its intercept. The saved model keeps
the K + 2 numbers, and ``gpuseg assign`` gives new shoppers their certainty by
the same arithmetic.

Why not the Gaussian mixture the run fitted before (format-2 and -3 models
still carry one, and ``gpuseg assign`` still reads it): measured on synthetic
``realistic`` shoppers (20,000 users x 5 seeds, 50,000 x 3, five held-out
refits each), the mixture's membership was calibrated in none of the 8 runs:
users above 0.95 (about a fifth) were the least stable, and with the features
capped it was 0.2 too low overall. The mixture is fitted in the K-1 directions
the centres differ along, where the segments overlap a lot; that overlap says
how typical a shopper is, not whether a refit keeps them, which depends on how
near they sit to a boundary in the full PCA space, at the scale the refits
move boundaries: what the tempered posterior measures. Calibrated on three
refits, it passed the issue's checks on the held-out refits of all 8 runs
(overall gap within 0.003; no bin holding 5% of users off by more than 0.01).

:func:`reliability_table` is the check metrics.json and the report show: per
certainty bin the share of users, their mean certainty and mean agreement.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..numerics.arrays import finite_or_none
from ..numerics.certainty import CertaintyParams, certainty_columns, own_logit, sigmoid
from .refits import REFIT_SHARE, Refits, verdict

#: Below this certainty a shopper counts as "between personas": fewer than 6 in 10 such
#: shoppers keep their segment on a refit, so no single persona's actions fit them well.
BETWEEN_PERSONAS = 0.6
#: Upper edges of the reliability table's bins (the first bin is [0, 0.5]).
BIN_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
#: The checks of a calibrated certainty: overall gap, gap in each bin holding at least
#: ``BIG_BIN`` of the users, and how far agreement may fall from one such bin to the next.
MAX_GAP = 0.05
MAX_BIN_GAP = 0.1
BIG_BIN = 0.05
FALL_TOLERANCE = 0.02
#: Ridge on the calibration's slope and intercepts: keeps a segment that every refit keeps
#: (or loses) at a large but finite intercept.
RIDGE = 1e-3
#: The temperature is searched between these multiples of the users' median gap between their
#: nearest and next-nearest centres' squared distances.
TEMPERATURE_RANGE = (1e-4, 1e4)
METHOD = ("posterior over the segment centres at a fitted temperature, then a slope and one "
          "intercept per segment, fitted by binomial likelihood to the subsample refits")


# -- the fit ----------------------------------------------------------------------------------
def binomial_nll(p: np.ndarray, kept: np.ndarray, seen: np.ndarray) -> float:
    """Mean negative log-likelihood per refit of ``kept`` of ``seen`` under probabilities ``p``."""
    p = np.clip(p, 1e-12, 1.0 - 1e-12)
    return float(-(kept * np.log(p) + (seen - kept) * np.log1p(-p)).sum() / max(seen.sum(), 1.0))


def fit_temperature(d2: np.ndarray, labels: np.ndarray, kept: np.ndarray,
                    seen: np.ndarray) -> float:
    """The temperature whose own-segment posterior best predicts the refit counts."""
    from scipy.optimize import minimize_scalar

    ordered = np.sort(d2, axis=1)
    gaps = ordered[:, 1] - ordered[:, 0] if d2.shape[1] > 1 else np.ones(len(d2))
    positive = gaps[gaps > 0]
    scale = float(np.median(positive)) if positive.size else 1.0
    low, high = (np.log(scale * bound) for bound in TEMPERATURE_RANGE)

    def loss(log_t: float) -> float:
        logit, _, _ = own_logit(d2, labels, float(np.exp(log_t)), xp=np)
        return binomial_nll(sigmoid(logit, xp=np), kept, seen)

    best = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(best.x))


def fit_platt(logit: np.ndarray, groups: np.ndarray, kept: np.ndarray, seen: np.ndarray,
              n_groups: int) -> tuple[float, np.ndarray]:
    """``sigmoid(slope * logit + intercept[group])`` fitted to the refit counts (slope >= 0)."""
    from scipy.optimize import minimize

    total = max(float(seen.sum()), 1.0)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * logit + theta[1:][groups]
        p = np.clip(sigmoid(z, xp=np), 1e-12, 1.0 - 1e-12)
        # d/dz of -[kept log p + (seen - kept) log(1 - p)] is seen * p - kept.
        residual = seen * p - kept
        value = -(kept * np.log(p) + (seen - kept) * np.log1p(-p)).sum() / total
        gradient = np.concatenate([[residual @ logit],
                                   np.bincount(groups, weights=residual, minlength=n_groups)])
        return (float(value + RIDGE * (theta ** 2).sum()),
                gradient / total + 2.0 * RIDGE * theta)

    start = np.r_[1.0, np.zeros(n_groups)]
    best = minimize(loss, start, jac=True, method="L-BFGS-B",
                    bounds=[(0.0, None)] + [(None, None)] * n_groups)
    return float(best.x[0]), np.asarray(best.x[1:], dtype=np.float64)


def fit_certainty(d2: np.ndarray, labels: np.ndarray, kept: np.ndarray,
                  seen: np.ndarray) -> CertaintyParams:
    """The temperature, slope and per-segment intercepts that fit the refit counts.

    Parameters
    ----------
    d2 : numpy.ndarray, shape (n, k)
        The fitted users' squared distances to the run's centres.
    labels : numpy int array, shape (n,)
        Their segments.
    kept, seen : numpy.ndarray, shape (n,)
        Refits that kept each user in its matched segment, refits that held it.
    """
    k = int(d2.shape[1])
    use = seen > 0
    d2, labels, kept, seen = d2[use], labels[use].astype(np.int64), kept[use], seen[use]
    temperature = fit_temperature(d2, labels, kept, seen)
    logit, _, _ = own_logit(d2, labels, temperature, xp=np)
    slope, intercepts = fit_platt(logit, labels, kept, seen, k)
    return CertaintyParams(temperature=temperature, slope=slope, intercepts=intercepts)


# -- the check --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReliabilityBin:
    """The users whose certainty falls in ``(low, high]`` (``[0, high]`` for the first bin)."""

    low: float
    high: float
    users: int
    share: float
    mean_certainty: float
    mean_agreement: float

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "users": self.users, "share": self.share,
                "mean_certainty": finite_or_none(self.mean_certainty),
                "mean_agreement": finite_or_none(self.mean_agreement)}


@dataclass(frozen=True)
class Reliability:
    """Certainty against refit agreement: is a certainty of 0.9 kept by about 9 in 10?

    Attributes
    ----------
    bins : tuple of ReliabilityBin
    mean_certainty, mean_agreement : float
        Over every user the refits held.
    gap : float
        ``mean_certainty - mean_agreement``.
    max_bin_gap : float
        The largest absolute gap over the bins holding at least :data:`BIG_BIN` of the users.
    rising : bool
        Whether agreement never falls by more than :data:`FALL_TOLERANCE` from one such bin
        to the next.
    calibrated : bool
        ``|gap| <= MAX_GAP``, every such bin within ``MAX_BIN_GAP``, and rising.
    n_users : int
    """

    bins: tuple[ReliabilityBin, ...]
    mean_certainty: float
    mean_agreement: float
    gap: float
    max_bin_gap: float
    rising: bool
    calibrated: bool
    n_users: int

    def to_dict(self) -> dict[str, Any]:
        return {"bins": [b.to_dict() for b in self.bins],
                "mean_certainty": finite_or_none(self.mean_certainty),
                "mean_agreement": finite_or_none(self.mean_agreement),
                "gap": finite_or_none(self.gap), "max_bin_gap": finite_or_none(self.max_bin_gap),
                "rising": self.rising, "calibrated": self.calibrated, "n_users": self.n_users,
                "checks": {"max_gap": MAX_GAP, "max_bin_gap": MAX_BIN_GAP, "big_bin": BIG_BIN,
                           "fall_tolerance": FALL_TOLERANCE}}


def reliability_table(certainty: np.ndarray, agreement: np.ndarray) -> Reliability:
    """Bin users by certainty and compare each bin's mean certainty with its mean agreement.

    Users whose agreement is NaN (no refit held them) are left out.
    """
    held = np.isfinite(agreement)
    c, a = np.asarray(certainty, dtype=np.float64)[held], np.asarray(agreement)[held]
    n = int(c.shape[0])
    upper = np.asarray(BIN_EDGES[1:])
    which = np.clip(np.searchsorted(upper, c, side="left"), 0, len(upper) - 1)
    bins = []
    for i in range(len(upper)):
        inside = which == i
        users = int(inside.sum())
        bins.append(ReliabilityBin(
            low=BIN_EDGES[i], high=BIN_EDGES[i + 1], users=users, share=users / max(n, 1),
            mean_certainty=float(c[inside].mean()) if users else float("nan"),
            mean_agreement=float(a[inside].mean()) if users else float("nan")))
    big = [b for b in bins if b.share >= BIG_BIN]
    gaps = [abs(b.mean_certainty - b.mean_agreement) for b in big]
    rising = all(later.mean_agreement >= earlier.mean_agreement - FALL_TOLERANCE
                 for earlier, later in zip(big, big[1:]))
    gap = float(c.mean() - a.mean()) if n else float("nan")
    max_bin_gap = max(gaps) if gaps else float("nan")
    return Reliability(bins=tuple(bins), mean_certainty=float(c.mean()) if n else float("nan"),
                       mean_agreement=float(a.mean()) if n else float("nan"), gap=gap,
                       max_bin_gap=max_bin_gap, rising=rising,
                       calibrated=bool(n and abs(gap) <= MAX_GAP and rising
                                       and all(g <= MAX_BIN_GAP for g in gaps)),
                       n_users=n)


# -- the stage's output -----------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentReproducibility:
    """How far one segment comes back on the refits."""

    segment: int
    reproducibility: float
    jaccard: tuple[float, ...]
    mean_certainty: float

    @property
    def verdict(self) -> str:
        return verdict(self.reproducibility)

    @property
    def comes_back(self) -> bool:
        return self.verdict != "dissolves"

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "reproducibility": self.reproducibility,
                "verdict": self.verdict, "refit_jaccard": list(self.jaccard),
                "mean_certainty": finite_or_none(self.mean_certainty)}


@dataclass(frozen=True)
class Certainty:
    """Every user's certainty, its calibration, and what the refits found.

    Attributes
    ----------
    membership : array, shape (n_users,)
        Each user's certainty of its segment (host float64 once finished).
    second_segment : array, shape (n_users,)
        The segment each user leans to next (int32).
    second_membership : array, shape (n_users,)
        Its share of ``1 - membership``.
    params : CertaintyParams
        What the saved model stores.
    reliability : Reliability
        Certainty against agreement on the refits the calibration was fitted on.
    segments : tuple of SegmentReproducibility
        By segment number.
    refits : Refits
        The refits (positions among the fitted users, their clusters, matches).
    fit_positions : numpy.ndarray or None
        The fitted users among every user (``None``: every user).
    between_share : float
        Share of users below :data:`BETWEEN_PERSONAS`.
    n_fit, n_users : int
    """

    membership: Any
    second_segment: Any
    second_membership: Any
    params: CertaintyParams
    reliability: Reliability
    segments: tuple[SegmentReproducibility, ...]
    refits: Refits
    fit_positions: np.ndarray | None
    between_share: float
    n_fit: int
    n_users: int

    @property
    def mean_membership(self) -> dict[int, float]:
        return {s.segment: s.mean_certainty for s in self.segments}

    @property
    def reproducibility(self) -> tuple[float, ...]:
        return tuple(s.reproducibility for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """Host summary; per-user arrays and the refits' labels stay out."""
        return {"method": METHOD, **self.params.to_dict(),
                "refits": len(self.refits.seeds), "refit_share": REFIT_SHARE,
                "refit_seeds": list(self.refits.seeds),
                "fit_sample": None if self.n_fit == self.n_users else self.n_fit,
                "reliability": self.reliability.to_dict(),
                "segments": [s.to_dict() for s in self.segments],
                "between_threshold": BETWEEN_PERSONAS, "between_share": self.between_share}


def segment_reproducibility(refits: Refits, membership: np.ndarray, labels: np.ndarray,
                            k: int) -> tuple[SegmentReproducibility, ...]:
    """Each segment's reproducibility on ``refits`` and its users' mean certainty (every user)."""
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=membership, minlength=k)
    return tuple(SegmentReproducibility(
        segment=j, reproducibility=float(refits.reproducibility[j]),
        jaccard=tuple(float(v) for v in refits.jaccard[:, j]),
        mean_certainty=float(sums[j] / counts[j]) if counts[j] else float("nan"))
        for j in range(k))


def certainty_summary(membership: np.ndarray, labels: np.ndarray, refits: Refits,
                      sample_certainty: np.ndarray, k: int) -> dict[str, Any]:
    """The :class:`Certainty` fields that summarise every user's certainty and the refits."""
    return {"reliability": reliability_table(sample_certainty, refits.agreement),
            "segments": segment_reproducibility(refits, membership, labels, k),
            "between_share": float(np.mean(membership < BETWEEN_PERSONAS))
            if membership.size else 0.0}



def certainty_block(backend: Any, X: Any, labels: Any, centres: np.ndarray,
                    params: CertaintyParams) -> Any:
    """A block's (n, 3) certainty, next segment and its certainty, as ``gpuseg assign``
    computes them (:func:`gpuseg.numerics.certainty.certainty_columns`)."""
    xp = backend.xp
    own, second, second_p = certainty_columns(X, labels, xp.asarray(centres), params, xp=xp)
    return xp.stack([own, second.astype(xp.float64), second_p], axis=1)
