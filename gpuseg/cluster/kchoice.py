"""The choice of K from the K sweep, and why.

Two criteria must agree before a K counts as clearly better than its
neighbours: a sharp WCSS elbow (the K-th segment removes many times what the
next ones do, :attr:`KSweep.elbow_sharpness`) and a solution that comes back
on bootstrap resamples. Silhouette alone cannot say it: in the ~125-dimensional
PCA space it is dominated by within-segment noise, prefers fewer segments and
moves by less than 0.02 across K. Measured on synthetic shoppers (sweep
sample of 17,000-20,000 users, K 2-10, seed 42): on ``strong`` data with five
planted personas (three seeds at 20,000 and three at 50,000 users) the
sharpest elbow in 3-8 was always K=5, at 10.8-14.2, every other K at most 2.5,
and K=5 came back with ARI 1.00 on each resample, where the best silhouette
in 3-8 was at K=4; on ``realistic`` data (three seeds at 20,000, one at
50,000) the sharpest elbow in 3-8 reached 2.1-2.8 and its K came back with ARI
below 0.5. The threshold :data:`ELBOW_CLEAR` = 5 sits between the two.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import option, setting
from ..errors import GpusegError
from ..numerics.arrays import finite_or_none
from .sweep import STABILITY_ROUNDS, KSweep, sharpest_k, sharpness_for_json

#: Silhouettes closer than this to the best one count as a tie in ``choose_k``.
SILHOUETTE_TIE = 0.01
#: An elbow is sharp when the K-th segment removes at least this many times the WCSS that each
#: of the next two removes on average.
ELBOW_CLEAR = 5.0
#: The sharp K's solution must come back on bootstrap resamples with at least this mean ARI
#: (the stability stage's threshold for "nearly every user keeps its segment").
STABLE_ARI = 0.9
#: The rule, as metrics.json and the report state it.
RULE = (f"A K is clearly better than its neighbours when its WCSS elbow is sharp (the K-th "
        f"segment removes at least {ELBOW_CLEAR:g} times the WCSS that each of the next two "
        f"removes, on the sweep sample, best of a k-means++ and a Ward-started fit per K) and "
        f"its solution comes back on {STABILITY_ROUNDS} bootstrap resamples of the sweep sample "
        f"(mean ARI at least {STABLE_ARI:g}); that K is chosen. Otherwise no K is clearly better "
        f"and the best silhouette in the business range is taken, ties within {SILHOUETTE_TIE} "
        f"going to the K nearest the WCSS elbow.")


@dataclass(frozen=True)
class KChoice:
    """The number of segments and why.

    Attributes
    ----------
    k : int
    reason : str
        One sentence a reader can check against the sweep.
    wcss_reduction : float or None
        ``1 - WCSS(K) / WCSS(1)``: the share of total variance the segments
        explain; ``None`` when the sweep did not fit this K (a ``--k`` outside
        the sweep range; compute it from ``KMeansFit.inertia`` then).
    source : {"auto", "user", "default"}
        Whether the sweep chose K, ``--k`` set it, or it is the default K
        (no ``--k`` given).
    clear : bool or None
        Whether some K in the business range was clearly better than its
        neighbours (:data:`RULE`); ``None`` when ``--k`` set K.
    evidence : dict
        The numbers the rule read: the sharpest elbow in the business range,
        its sharpness, its bootstrap ARIs, the thresholds.
    """

    k: int
    reason: str
    wcss_reduction: float | None
    source: Literal["auto", "user", "default"]
    clear: bool | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "reason": self.reason, "wcss_reduction": self.wcss_reduction,
                "source": self.source, "clear": self.clear, "rule": RULE,
                "evidence": dict(self.evidence)}


def _wcss_reduction(sweep: KSweep, k: int) -> float | None:
    wcss = sweep.inertia_at(k)
    if wcss is None:
        return None
    return 0.0 if sweep.wcss_k1 == 0 else 1.0 - wcss / sweep.wcss_k1


def choose_k(sweep: KSweep, *, k: int | Literal["auto"] = "auto",
             business_range: tuple[int, int] = (3, 8), default: bool = False) -> KChoice:
    """Pick the number of segments.

    Rule for ``k="auto"`` (:data:`RULE`): the K in ``business_range`` with the
    sharpest WCSS elbow is taken when that elbow is at least
    :data:`ELBOW_CLEAR` sharp and its solution came back on the sweep's
    bootstrap resamples (mean ARI at least :data:`STABLE_ARI`; the sweep must
    have been run with ``stability_range`` covering it). Otherwise no K is
    clearly better than its neighbours, the reason says so, and the silhouette
    rule decides: among the swept K inside ``business_range``, the best
    silhouette; every K whose silhouette is within :data:`SILHOUETTE_TIE`
    (0.01) of the best counts as tied, and the tie goes to the K nearest the
    WCSS elbow (then to the smaller K). Where silhouette is undefined for every
    K in range (data without spread), the K nearest the elbow is taken.

    Parameters
    ----------
    sweep : KSweep
    k : "auto" or int
        An integer is taken as given (``--k``), provided it is at least 2 and
        below the number of users; the reason then says what the data would
        pick (the best silhouette and the sharpest WCSS elbow in ``business_range``).
    business_range : (int, int)
        Inclusive range of K the business can act on.
    default : bool
        Whether the integer ``k`` is the configuration's default (no ``--k``
        given): the reason says it is the default, not the user's choice.

    Returns
    -------
    KChoice

    Raises
    ------
    GpusegError
        For an integer K below 2 or not below the number of users, or a
        business range that shares no K with the sweep.
    """
    if k != "auto":
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise GpusegError(f"{option('k')} must be 'auto' or an integer >= 2 (got {k!r})")
        if k >= sweep.n_users:
            raise GpusegError(
                f"{setting('k', k)} is not below the number of users ({sweep.n_users}); "
                f"choose {setting('k', sweep.n_users - 1)} or fewer, or load more users")
        evidence = _evidence(sweep, business_range)
        given = (f"K={k} is the default (no {option('k')} was given; {setting('k', 'auto')} "
                 "lets the data choose)." if default
                 else f"K={k} was set with {setting('k', k)}.")
        return KChoice(k=k, reason=f"{given} {_data_would_pick(sweep, business_range, evidence)}",
                       wcss_reduction=_wcss_reduction(sweep, k),
                       source="default" if default else "user", evidence=evidence)
    lo, hi = business_range
    in_range = [(kk, s) for kk, s in zip(sweep.ks, sweep.silhouette) if lo <= kk <= hi]
    if not in_range:
        raise GpusegError(
            f"{option('k_business_range')} {lo}-{hi} shares no K with the sweep "
            f"({sweep.ks[0]}-{sweep.ks[-1]}); widen {option('k_sweep_range')} or "
            f"{option('k_business_range')}")

    evidence = _evidence(sweep, business_range)
    sharp = evidence["sharpest_k"]
    if sharp is not None and evidence["sharp"] and evidence["stable"]:
        chosen = int(sharp)
        aris = evidence["stability_aris"]
        others = ("" if evidence["runner_up"] is None else
                  f", and no other K in {lo}-{hi} exceeds {evidence['runner_up']:.1f}")
        reason = (f"K={chosen} is clearly better than its neighbours: its WCSS elbow is sharp (the "
                  f"{_ordinal(chosen)} segment removes {evidence['sharpness']:.1f} times the WCSS "
                  f"each of the next two does; {ELBOW_CLEAR:g} counts as sharp{others}) and its "
                  f"solution came back on {len(aris)} bootstrap resamples (mean ARI "
                  f"{evidence['stability_ari']:.2f}).")
        return KChoice(k=chosen, reason=reason, wcss_reduction=_wcss_reduction(sweep, chosen),
                       source="auto", clear=True, evidence=evidence)

    def nearest_elbow(candidates: list[int]) -> int:
        return min(candidates, key=lambda kk: (abs(kk - sweep.elbow_k), kk))

    scored = [(kk, s) for kk, s in in_range if math.isfinite(s)]
    if not scored:
        chosen = nearest_elbow([kk for kk, _ in in_range])
        reason = (f"K={chosen}: silhouette is undefined for every K in {lo}-{hi} (the users do not "
                  f"spread into separate groups), so the K nearest the WCSS elbow "
                  f"(K={sweep.elbow_k}) was taken.")
    else:
        best_k, best = max(scored, key=lambda item: (item[1], -item[0]))
        tied = [kk for kk, s in scored if s >= best - SILHOUETTE_TIE]
        chosen = nearest_elbow(tied)
        sample = f"a {sweep.sample_size:,}-user sample"
        if len(tied) == 1:
            reason = (f"K={chosen} has the best silhouette ({best:.3f}) in {lo}-{hi} on {sample}; "
                      f"the WCSS elbow is at K={sweep.elbow_k}.")
        else:
            listed = ", ".join(f"K={kk}" for kk in tied)
            reason = (f"{listed} score within {SILHOUETTE_TIE} of the best silhouette "
                      f"({best:.3f} at K={best_k}) in {lo}-{hi} on {sample}; K={chosen} is "
                      f"nearest the WCSS elbow (K={sweep.elbow_k}).")
    return KChoice(k=chosen, reason=f"{_why_not_clear(evidence, lo, hi)} {reason}",
                   wcss_reduction=_wcss_reduction(sweep, chosen), source="auto", clear=False,
                   evidence=evidence)


def _data_would_pick(sweep: KSweep, business_range: tuple[int, int],
                     evidence: dict[str, Any]) -> str:
    """What the sweep says beside a K the configuration set: the best silhouette and the
    sharpest WCSS elbow in the business range."""
    lo, hi = business_range
    scored = [(kk, s) for kk, s in zip(sweep.ks, sweep.silhouette)
              if lo <= kk <= hi and not math.isnan(s)]
    parts = []
    if scored:
        best_k, best = max(scored, key=lambda item: (item[1], -item[0]))
        parts.append(f"the best silhouette is at K={best_k} ({best:.3f})")
    if evidence.get("sharpest_k") is not None:
        parts.append(f"the sharpest WCSS elbow at K={evidence['sharpest_k']} (sharpness "
                     f"{evidence['sharpness']:.1f}; {ELBOW_CLEAR:g} counts as sharp)")
    if not parts:
        return ""
    return f"In {lo}-{hi} on this data {' and '.join(parts)}."


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _evidence(sweep: KSweep, business_range: tuple[int, int]) -> dict[str, Any]:
    """What the rule reads off the sweep for the K in ``business_range``."""
    lo, hi = business_range
    sharpness = dict(zip(sweep.ks, sweep.elbow_sharpness))
    sharp_k = sharpest_k(sweep, business_range)
    others = [v for k, v in sharpness.items() if lo <= k <= hi and k != sharp_k
              and not math.isnan(v)]
    value = sharpness[sharp_k] if sharp_k is not None else math.nan
    checked = sharp_k is not None and sweep.stability_k == sharp_k and bool(sweep.stability_aris)
    aris = list(sweep.stability_aris) if checked else []
    finite = [a for a in aris if not math.isnan(a)]
    # A resample that could not be refitted counts as not coming back.
    ari = sum(finite) / len(aris) if aris else math.nan
    return {"sharpest_k": sharp_k, "sharpness": sharpness_for_json(value),
            "runner_up": max(others) if others else None, "sharp": value >= ELBOW_CLEAR,
            "stability_aris": [finite_or_none(a) for a in aris],
            "stability_ari": finite_or_none(ari), "stable": bool(aris) and ari >= STABLE_ARI,
            "sharpness_threshold": ELBOW_CLEAR, "stability_threshold": STABLE_ARI}


def _why_not_clear(evidence: dict[str, Any], lo: int, hi: int) -> str:
    """The sentence that says no K is clearly better, and which criterion failed."""
    head = f"No K in {lo}-{hi} is clearly better than its neighbours:"
    sharp_k = evidence["sharpest_k"]
    if sharp_k is None:
        return f"{head} the sweep has no WCSS elbow to measure in that range."
    if not evidence["sharp"]:
        return (f"{head} the sharpest WCSS elbow, at K={sharp_k}, removes only "
                f"{evidence['sharpness']:.1f} times what each of the next two segments does "
                f"({ELBOW_CLEAR:g} counts as sharp); the segments are a business choice, not a "
                "structure the data insists on.")
    if evidence["stability_ari"] is None:
        return (f"{head} the WCSS elbow at K={sharp_k} is sharp "
                f"({evidence['sharpness']:.1f}) but its stability was not measured.")
    return (f"{head} the WCSS elbow at K={sharp_k} is sharp ({evidence['sharpness']:.1f}) but "
            f"its solution does not come back on bootstrap resamples (mean ARI "
            f"{evidence['stability_ari']:.2f}, {STABLE_ARI:g} needed).")
