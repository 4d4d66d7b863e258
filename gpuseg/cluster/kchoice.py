"""The choice of K from the K sweep, and why."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from ..config import option, setting
from ..errors import GpusegError
from .sweep import KSweep

#: Silhouettes closer than this to the best one count as a tie in ``choose_k``.
SILHOUETTE_TIE = 0.01


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
    source : {"auto", "user"}
        Whether the sweep chose K or ``--k`` set it.
    """

    k: int
    reason: str
    wcss_reduction: float | None
    source: Literal["auto", "user"]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "reason": self.reason, "wcss_reduction": self.wcss_reduction,
                "source": self.source}


def _wcss_reduction(sweep: KSweep, k: int) -> float | None:
    wcss = sweep.inertia_at(k)
    if wcss is None:
        return None
    return 0.0 if sweep.wcss_k1 == 0 else 1.0 - wcss / sweep.wcss_k1


def choose_k(sweep: KSweep, *, k: int | Literal["auto"] = "auto",
             business_range: tuple[int, int] = (3, 8)) -> KChoice:
    """Pick the number of segments.

    Rule for ``k="auto"``: among the swept K inside ``business_range``, take
    the best silhouette; every K whose silhouette is within
    :data:`SILHOUETTE_TIE` (0.01) of the best counts as tied, and the tie goes
    to the K nearest the WCSS elbow (then to the smaller K). Silhouette leads
    because it measures separation directly; the elbow only settles
    differences too small to mean anything. Where silhouette is undefined for
    every K in range (data without spread), the K nearest the elbow is taken.

    Parameters
    ----------
    sweep : KSweep
    k : "auto" or int
        An integer is taken as given (``--k``), provided it is at least 2 and
        below the number of users.
    business_range : (int, int)
        Inclusive range of K the business can act on.

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
        return KChoice(k=k, reason=f"K={k} was fixed by the configuration ({setting('k', k)}).",
                       wcss_reduction=_wcss_reduction(sweep, k), source="user")
    lo, hi = business_range
    in_range = [(kk, s) for kk, s in zip(sweep.ks, sweep.silhouette) if lo <= kk <= hi]
    if not in_range:
        raise GpusegError(
            f"{option('k_business_range')} {lo}-{hi} shares no K with the sweep "
            f"({sweep.ks[0]}-{sweep.ks[-1]}); widen {option('k_sweep_range')} or "
            f"{option('k_business_range')}")

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
    return KChoice(k=chosen, reason=reason, wcss_reduction=_wcss_reduction(sweep, chosen),
                   source="auto")
