"""Ward clustering through KMeans micro-clusters fitted on a seeded sample, every user mapped."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cluster.checks import check_matrix
from ..cluster.ward import (
    MICRO_FIT_USERS_PER_CLUSTER,
    HierarchicalFit,
    WardTree,
    fit_micro_centres,
    hierarchical_fit,
    hierarchy_block,
    micro_sums_block,
    ward_tree,
)
from ..config import setting
from ..errors import GpusegError
from ..rows import Column
from .base import FitRows, RunState, Stage
from .kmeans import KMeans
from .pca import Pca
from .sweep import Sweep


@dataclass(frozen=True)
class MicroTree:
    """The micro-cluster centres (host) and Ward's tree over their users' exact means."""

    centres: np.ndarray
    tree: WardTree
    n_fit: int


class Hierarchical(Stage[MicroTree, HierarchicalFit]):
    """Ward linkage over size-weighted micro-clusters, cut at K, beside KMeans."""

    name = "hierarchical"
    assign = staticmethod(hierarchy_block)
    assign_width = 2
    assign_dtype = np.int64

    def sample_size(self, state: RunState) -> int | None:
        # The micro-clusters quantise the space: 25 users each shape them as well as everyone.
        return MICRO_FIT_USERS_PER_CLUSTER * self._micro_clusters(state)

    def _micro_clusters(self, state: RunState) -> int:
        return min(state.config.hierarchical_micro_clusters, state.n_users)

    def fit(self, state: RunState, rows: FitRows) -> MicroTree:
        k, n = state.outputs[Sweep].k, state.n_users
        if k > n:
            raise GpusegError(f"cannot form {k} segments from {n} users; "
                              f"choose {setting('k', n)} or fewer")
        X = state.outputs[Pca].X_pca
        X_fit = rows.take(X)
        check_matrix(X_fit, "hierarchical clustering")
        centres = state.backend.to_numpy(
            fit_micro_centres(X_fit, state.backend, m=self._micro_clusters(state),
                              seed=state.config.seed), np.float64)
        sums = state.rows.sum(micro_sums_block, X, centres=centres)
        return MicroTree(centres=centres, tree=ward_tree(sums, k), n_fit=rows.n)

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.outputs[Pca].X_pca,)

    def assign_params(self, state: RunState, fitted: MicroTree) -> dict[str, Any]:
        return {"centres": fitted.centres, "leaf_of_micro": fitted.tree.leaf_of_micro,
                "segment_of_micro": fitted.tree.segment_of_micro}

    def finish(self, state: RunState, fitted: MicroTree, assigned: Column | None,
               rows: FitRows) -> HierarchicalFit:
        return hierarchical_fit(state.rows.host(assigned, np.int64),
                                state.outputs[KMeans].host_labels, fitted.tree, state.backend,
                                n_fit=fitted.n_fit)
