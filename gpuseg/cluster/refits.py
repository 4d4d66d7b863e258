"""Subsample refits: does each user, and each segment, come back when the shoppers are resampled?

KMeans (the run's K and ``n_init``) is fitted again on seeded 80% subsamples
of a set of users; each refit's clusters are matched to the run's segments by
the Hungarian algorithm on their contingency table (the one-to-one matching
that keeps the most users together). Two numbers follow:

- per user, *kept* of *seen*: in how many of the refits that held the user it
  sits in the cluster matched to its segment (its agreement is kept / seen);
- per segment, its *reproducibility*: the mean over the refits of its
  best-match Jaccard index, the overlap of the segment with the refit cluster
  most like it (Hennig's clusterboot reading: below 0.5 a segment dissolves,
  from 0.75 it is stable).

The refits run in float32, as the stability stage's do: only their labels are
compared. Subsamples are drawn on the host, so every backend refits the same users.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..numerics.sampling import seeded_sample
from .kmeans import fit_kmeans

if TYPE_CHECKING:
    from ..backend import Backend

#: Share of the users each refit draws.
REFIT_SHARE = 0.8
#: Mean best-match Jaccard below which a segment does not come back, and below which it is
#: weak (Hennig 2007, "Cluster-wise assessment of cluster stability").
DISSOLVES_BELOW = 0.5
WEAK_BELOW = 0.75

Verdict = Literal["dissolves", "weak", "stable"]


def contingency(labels: np.ndarray, other: np.ndarray, k: int, k_other: int) -> np.ndarray:
    """Users per (segment, other cluster): shape (k, k_other)."""
    cells = labels.astype(np.int64) * k_other + other.astype(np.int64)
    return np.bincount(cells, minlength=k * k_other).reshape(k, k_other)


def hungarian_match(table: np.ndarray) -> np.ndarray:
    """The other cluster matched to each segment (-1 where there are fewer clusters)."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-table)
    match = np.full(table.shape[0], -1, dtype=np.int64)
    match[rows] = cols
    return match


def jaccard_matrix(table: np.ndarray) -> np.ndarray:
    """Jaccard index of every (segment, other cluster) pair, from their contingency table."""
    union = table.sum(axis=1, keepdims=True) + table.sum(axis=0, keepdims=True) - table
    return np.where(union > 0, table / np.maximum(union, 1), 0.0)


def verdict(reproducibility: float) -> Verdict:
    """``dissolves`` (below 0.5), ``weak`` (below 0.75) or ``stable``."""
    if reproducibility < DISSOLVES_BELOW:
        return "dissolves"
    return "weak" if reproducibility < WEAK_BELOW else "stable"


@dataclass(frozen=True)
class Refits:
    """KMeans refits on subsamples of the fitted users, matched to the run's segments.

    Attributes
    ----------
    positions : tuple of numpy.ndarray
        Per refit, the sorted positions (among the fitted users) it drew.
    labels : tuple of numpy.ndarray
        Per refit, its cluster of each drawn user (numbered by size).
    matches : numpy.ndarray, shape (n_refits, k)
        The refit cluster matched to each segment.
    jaccard : numpy.ndarray, shape (n_refits, k)
        Each segment's best-match Jaccard in each refit.
    kept, seen : numpy.ndarray, shape (n_fit,)
        Per fitted user: refits keeping it in its matched cluster, refits holding it.
    seeds : tuple of int
        Each refit's seed (its subsample and its KMeans).
    """

    positions: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    matches: np.ndarray
    jaccard: np.ndarray
    kept: np.ndarray
    seen: np.ndarray
    seeds: tuple[int, ...]

    @property
    def reproducibility(self) -> np.ndarray:
        """Each segment's mean best-match Jaccard over the refits."""
        return self.jaccard.mean(axis=0)

    @property
    def agreement(self) -> np.ndarray:
        """Per fitted user, kept / seen (NaN for a user no refit drew)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.seen > 0, self.kept / np.maximum(self.seen, 1), np.nan)


def refit_seed(seed: int, index: int) -> int:
    """The seed of refit ``index`` of a run seeded ``seed`` (its subsample and its KMeans)."""
    return (seed + 1_000 * (index + 1)) % 2**32


def subsample_refits(X: Any, labels: np.ndarray, backend: Backend, *, k: int, n_init: int,
                     seed: int, n_refits: int, share: float = REFIT_SHARE) -> Refits:
    """Refit KMeans on ``n_refits`` seeded subsamples of the users ``X`` holds.

    Parameters
    ----------
    X : backend array, shape (n_fit, n_components)
        The users in the run's PCA space.
    labels : numpy int array, shape (n_fit,)
        Their segments in the run.
    backend : Backend
    k, n_init : int
        The run's K and initialisations.
    seed : int
        The run's seed (each refit derives its own, :func:`refit_seed`).
    n_refits : int
    share : float
        Share of the users each refit draws.

    Returns
    -------
    Refits
    """
    n = int(X.shape[0])
    X32 = X.astype(backend.xp.float32)
    kept, seen = np.zeros(n), np.zeros(n)
    positions, refit_labels, matches, jaccard, seeds = [], [], [], [], []
    for index in range(n_refits):
        refit = refit_seed(seed, index)
        drawn = seeded_sample(n, max(k, int(round(share * n))), seed=refit, backend=backend)
        rows = np.arange(n) if drawn is None else backend.to_numpy(drawn, np.int64)
        fit = fit_kmeans(X32 if drawn is None else X32[drawn], backend, k=k, n_init=n_init,
                         seed=refit)
        other = backend.to_numpy(fit.labels, np.int64)
        table = contingency(labels[rows], other, k, k)
        match = hungarian_match(table)
        kept[rows] += match[labels[rows]] == other
        seen[rows] += 1
        positions.append(rows)
        refit_labels.append(other)
        matches.append(match)
        jaccard.append(jaccard_matrix(table).max(axis=1))
        seeds.append(refit)
    return Refits(positions=tuple(positions), labels=tuple(refit_labels),
                  matches=np.asarray(matches, dtype=np.int64).reshape(n_refits, k),
                  jaccard=np.asarray(jaccard, dtype=np.float64).reshape(n_refits, k),
                  kept=kept, seen=seen, seeds=tuple(seeds))
