"""The final KMeans: initialisations on a seeded sample, Lloyd iterations over every user."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import resources
from ..cluster.kmeans import fit_kmeans, nearest_block, refine_centres, totals_block
from ..numerics.arrays import size_rank
from ..rows import Column
from .base import FitRows, RunState, Stage
from .pca import Pca
from .sweep import Sweep


@dataclass(frozen=True)
class Centres:
    """KMeans centres before the segments are numbered by size."""

    centres: np.ndarray
    fit_size: int
    lloyd_iterations: int


@dataclass(frozen=True)
class Segmentation:
    """Every user's KMeans segment, numbered by size (0 the largest).

    Attributes
    ----------
    labels : Column
        int32 segment of each user, held where the rows live.
    host_labels : numpy.ndarray
        The same labels on the host.
    centroids : numpy.ndarray, shape (k, n_components)
        Segment centres in PCA space, in label order.
    inertia : float
        WCSS over every user.
    sizes : tuple of int
        Users per segment, largest first.
    total_ss : float
        WCSS of one segment holding every user (the elbow's K=1).
    fit_size : int
        Users the initialisations ran on.
    lloyd_iterations : int
        Lloyd iterations over every user after the sample's fit (0 when the
        fit covered every user).
    """

    labels: Column
    host_labels: np.ndarray
    centroids: np.ndarray
    inertia: float
    sizes: tuple[int, ...]
    total_ss: float
    fit_size: int
    lloyd_iterations: int

    @property
    def k(self) -> int:
        return len(self.sizes)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "inertia": self.inertia, "sizes": list(self.sizes),
                "total_sum_of_squares": self.total_ss,
                "wcss_reduction": 1.0 - self.inertia / self.total_ss if self.total_ss > 0
                else 0.0,
                "init_sample_size": self.fit_size, "lloyd_iterations": self.lloyd_iterations}


def relabel_block(backend: Any, labels: Any, mapping: np.ndarray) -> Any:
    """Labels renumbered through ``mapping`` (old label -> new label), as int32."""
    xp = backend.xp
    return xp.asarray(mapping)[labels].astype(xp.int32)


class KMeans(Stage[Centres, Segmentation]):
    """The best of ``n_init`` KMeans fits on the sample, refined over and assigned to every user.

    On the CPU (and across Dask workers) the initialisations run on a seeded
    sample (``kmeans_sample``) and Lloyd iterations over every user then move
    the centres to where every user puts them, so a one-process run and a
    distributed one run the same algorithm on the same users and find the
    same segments. Where the sample covers every user there is nothing to
    refine: the fit is the backend's KMeans on every user.
    """

    name = "kmeans"
    sample_field = "kmeans_sample"
    assign = staticmethod(nearest_block)
    assign_dtype = np.int32

    def fit(self, state: RunState, rows: FitRows) -> Centres:
        config, backend = state.config, state.backend
        projection = state.outputs[Pca]
        X = projection.X_pca
        start = fit_kmeans(rows.take(X), backend, k=state.outputs[Sweep].k, n_init=config.n_init,
                           seed=config.seed)
        centres = backend.to_numpy(start.centroids, np.float64)
        iterations = 0
        if rows.sampled:
            # scikit-learn's tolerance scale: the mean (ddof 0) variance of X's columns, which
            # are the kept components' variances (ddof 1).
            n = state.n_users
            variance = float(projection.pcs.explained_variance[:projection.n_components].mean()
                             * (n - 1) / n)
            centres, iterations = refine_centres(state.rows, X, centres, variance=variance)
        return Centres(centres=centres, fit_size=rows.n, lloyd_iterations=iterations)

    def assign_columns(self, state: RunState) -> tuple[Column, ...]:
        return (state.outputs[Pca].X_pca,)

    def assign_params(self, state: RunState, fitted: Centres) -> dict[str, Any]:
        return {"centres": fitted.centres}

    def on_host(self, output: Segmentation) -> Segmentation:
        return dataclasses.replace(output, labels=None)

    def finish(self, state: RunState, fitted: Centres, assigned: Column | None,
               rows: FitRows) -> Segmentation:
        projection = state.outputs[Pca]
        # Read twice below (the counts, the renumbering): computed once.
        assigned = state.rows.persist(assigned)
        totals = state.rows.sum(totals_block, projection.X_pca, assigned, centres=fitted.centres)
        counts, inertia = totals[:-1].astype(np.int64), float(totals[-1])
        order, rank = size_rank(counts, xp=np)
        sizes = tuple(int(c) for c in counts[order])
        resources.check_segments(sizes, state.n_users)
        labels = state.rows.persist(state.rows.map(relabel_block, assigned, dtype=np.int32,
                                                   mapping=rank))
        # The kept components' variances are the PCA scores' own (n - 1 normalised).
        total_ss = float(projection.pcs.explained_variance[:projection.n_components].sum()
                         * (state.n_users - 1))
        return Segmentation(labels=labels, host_labels=state.rows.host(labels, np.int32),
                            centroids=fitted.centres[order], inertia=inertia, sizes=sizes,
                            total_ss=total_ss, fit_size=fitted.fit_size,
                            lloyd_iterations=fitted.lloyd_iterations)
