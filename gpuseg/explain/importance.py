"""Grouped permutation importance: how many shoppers the saved model moves when a feature family is shuffled.

Shuffling one of 147 features moves almost nobody (today's per-feature
panel showed 0 everywhere): the segments rest on many correlated features at
once. Shuffling a whole family (:mod:`~gpuseg.explain.families`: one
department's aisle shares, the cadence features, ...) with one permutation of
the users keeps the family's internal structure and breaks only its link to
the rest of the shopper, which is the question a marketer asks: which kind of
behaviour places a shopper in a segment?

Each shuffled table goes through the model that ``gpuseg assign`` uses (the
saved scaler, PCA and centroids); the importance of a family is the drop in
the share of shoppers assigned to their run's segment.

A drop says a family is *needed*. Where the segments are told apart by
several families at once (the synthetic ``strong`` personas differ in every
family), shuffling any one of them moves nobody; the second measure, how
many shoppers the family *alone* places in their segment (nearest saved
centroid on that family's features only), then shows which families are
*enough*.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GpusegError
from ..model import SegmentModel, standardise
from .families import FeatureGroup

if TYPE_CHECKING:
    from ..backend import Backend

#: A family's importance is *clear* when shuffling it moves at least this share of shoppers.
#: Every user is scored, so the drop is not a sampling estimate: with n users its spread over
#: permutations is about sqrt(drop / n) (0.002 for 5 % of 10,000 users), and 0.05 is one
#: shopper in twenty changing segment, enough to show in any count a marketer looks at.
CLEAR_DROP = 0.05
#: Permutations per family; the reported drop is their mean.
N_REPEATS = 3


@dataclass(frozen=True)
class GroupImportance:
    """The accuracy drop of one feature family.

    Attributes
    ----------
    name, kind : str
        See :class:`~gpuseg.explain.families.FeatureGroup`.
    features : tuple of str
    drop : float
        Mean over permutations of the share of shoppers who leave their segment.
    drop_std : float
        Its standard deviation over the permutations.
    alone_accuracy : float
        Share of shoppers whose nearest saved centroid, measured on this
        family's standardised features only, is their own segment's.
    """

    name: str
    kind: str
    features: tuple[str, ...]
    drop: float
    drop_std: float
    alone_accuracy: float

    @property
    def clear(self) -> bool:
        """Whether the drop reaches :data:`CLEAR_DROP`."""
        return self.drop >= CLEAR_DROP

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "features": list(self.features),
                "drop": self.drop, "drop_std": self.drop_std, "clear": self.clear,
                "alone_accuracy": self.alone_accuracy}


@dataclass(frozen=True)
class GroupedImportance:
    """Grouped permutation importance of every feature family.

    Attributes
    ----------
    groups : tuple of GroupImportance
        Largest drop first.
    base_accuracy : float
        Share of shoppers the saved model assigns to their run's segment before
        any shuffle (1 up to ties broken differently by the fit's float32).
    majority_share : float
        The largest segment's share of shoppers: what putting everyone in one
        segment would score, the yardstick of ``alone_accuracy``.
    n_users : int
        Shoppers scored (every segmented shopper).
    n_repeats : int
        Permutations per family.
    """

    groups: tuple[GroupImportance, ...]
    base_accuracy: float
    majority_share: float
    n_users: int
    n_repeats: int

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [group.to_dict() for group in self.groups],
                "base_accuracy": self.base_accuracy,
                "majority_share": self.majority_share, "n_users": self.n_users,
                "n_repeats": self.n_repeats, "clear_drop": CLEAR_DROP}


def grouped_importance(features: Any, labels: Any, backend: Backend, *, model: SegmentModel,
                       groups: Sequence[FeatureGroup], seed: int,
                       n_repeats: int = N_REPEATS) -> GroupedImportance:
    """Accuracy drop of the saved model when each feature family is shuffled.

    Parameters
    ----------
    features : backend DataFrame
        The run's per-user feature table (original units), with every
        ``model.feature_names`` column.
    labels : backend int array, shape (n_users,)
        The run's segments, in the table's row order.
    backend : Backend
    model : SegmentModel
        The saved model (scaler, PCA, centroids) that ``gpuseg assign`` uses.
    groups : sequence of FeatureGroup
        The families; a feature in no group is never shuffled.
    seed : int
        Seeds the permutations (drawn on the host, so both backends shuffle alike).
    n_repeats : int
        Permutations per family.

    Returns
    -------
    GroupedImportance

    Notes
    -----
    The model assigns ``argmin_j |p - c_j|^2`` with ``p = (z - pca_mean) @
    components.T`` and ``z`` the standardised, capped features
    (:func:`gpuseg.model.standardise`). Everything after ``z`` is linear, so with
    ``W = centroids @ components`` (segments x features) the same argmin is that
    of ``|c_j|^2 - 2 (W @ z - b)_j`` (``b = W @ pca_mean``). The cap acts on each
    feature alone, so shuffling family G shuffles ``z_G`` and changes ``W @ z``
    by ``W_G @ (z'_G - z_G)``: each shuffle costs users x |G| x K operations
    rather than a projection into the ~125 PCA dimensions (and a shuffle of
    ``W_G @ z_G`` is the same shuffle of its columns), so every user can be
    scored. A family alone compares ``z_G`` with the centroids mapped back
    through the PCA (``centroids @ components + pca_mean``, restricted to G).
    """
    xp = backend.xp
    if n_repeats < 1:
        raise GpusegError(f"n_repeats must be at least 1 (got {n_repeats})")
    names = list(model.feature_names)
    position = {name: j for j, name in enumerate(names)}
    unknown = [f for group in groups for f in group.features if f not in position]
    if unknown:
        raise GpusegError(f"feature groups name columns the model lacks: {', '.join(unknown[:5])}")
    # Standardised (and capped) features as rows: each family is then a contiguous block of
    # rows, gathered once.
    ZT = xp.ascontiguousarray(standardise(model, backend.asarray(features[names],
                                                                 dtype="float64"), backend).T)
    n = int(ZT.shape[1])

    def param(array: np.ndarray) -> Any:
        return backend.asarray(array, dtype=np.float64)

    centroids, components = param(model.centroids), param(model.pca_components)
    # (segments x features): how one standard deviation of each feature moves each centroid's score.
    weights = centroids @ components
    offset = weights @ param(model.pca_mean)
    norms = (centroids ** 2).sum(axis=1)
    centres = centroids @ components + param(model.pca_mean)

    # Scores are segments x users: a shuffle then gathers K long rows, not n short ones.
    def agreement(scores: Any) -> Any:
        return ((norms[:, None] - 2.0 * scores).argmin(axis=0) == labels).mean()

    scores = weights @ ZT - offset[:, None]
    base_accuracy = agreement(scores)
    rng = np.random.default_rng(seed)
    # Host-drawn permutations: identical shuffles on both backends; only indices move.
    permutations = [backend.asarray(rng.permutation(n)) for _ in range(n_repeats)]
    accuracy = xp.empty((n_repeats, len(groups)), dtype=xp.float64)
    alone = xp.empty(len(groups), dtype=xp.float64)
    for g, group in enumerate(groups):
        cols = backend.asarray(np.array([position[f] for f in group.features], dtype=np.int64))
        z = ZT[cols]
        # The family's share of every score; a shuffle of the family permutes its columns.
        part = weights[:, cols] @ z
        for r, permutation in enumerate(permutations):
            accuracy[r, g] = agreement(scores + xp.take(part, permutation, axis=1) - part)
        c = centres[:, cols]
        nearest = ((z ** 2).sum(axis=0)[None, :] - 2.0 * c @ z
                   + (c ** 2).sum(axis=1)[:, None]).argmin(axis=0)
        alone[g] = (nearest == labels).mean()
    segment_sizes = xp.bincount(labels.astype(xp.int64), minlength=int(centroids.shape[0]))
    # K- and family-sized results come to the host once.
    base = float(backend.to_host(base_accuracy))
    drops = base - backend.to_numpy(accuracy, np.float64)
    alone_host = backend.to_numpy(alone, np.float64)
    result = [GroupImportance(name=group.name, kind=group.kind, features=tuple(group.features),
                              drop=float(drops[:, g].mean()), drop_std=float(drops[:, g].std()),
                              alone_accuracy=float(alone_host[g]))
              for g, group in enumerate(groups)]
    result.sort(key=lambda group: (-group.drop, -group.alone_accuracy, group.name))
    return GroupedImportance(groups=tuple(result), base_accuracy=base,
                             majority_share=float(backend.to_host(segment_sizes.max())) / n,
                             n_users=n,
                             n_repeats=n_repeats)
