"""The stages of a distributed run that touch every user: features, scaling, PCA, KMeans, maps.

Each stage keeps the per-user data on the workers (dask arrays whose blocks
are the partitions' users) and brings to the client only what is feature-,
component- or K-sized, or one value per user (labels, coordinates). Stages
that work on seeded samples take their rows with :meth:`Workers.rows` and run
the single-process code of :mod:`gpuseg.cluster`, :mod:`gpuseg.quality` and
:mod:`gpuseg.embed` on the client; the users outside a sample are then
assigned in a map over the blocks.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..features import no_users_selected
from ..numerics.arrays import size_rank
from ..preprocess import (
    check_users,
    components_for_variance,
    components_to_fit,
    constant_features,
)
from . import tasks

if TYPE_CHECKING:
    from ..backend import Backend
    from ..data.partitions.source import PartitionedSource
    from .engine import DaskEngine


@dataclass(frozen=True)
class Workers:
    """The client, the client's backend and the workers' engine, as every stage uses them."""

    client: Any
    backend: Backend
    engine: DaskEngine

    @property
    def name(self) -> str:
        """The backend's name, which the workers build their own backend from."""
        return self.backend.name

    def meta(self) -> Any:
        """An empty block of the backend's array library (dask's ``meta``)."""
        return self.backend.xp.empty((0, 0), dtype=self.backend.xp.float64)

    def rows(self, X: Any, positions: Any | None) -> Any:
        """Rows ``positions`` (sorted; ``None``: every row) of a dask array, on the client."""
        if positions is not None:
            X = X[self.backend.to_numpy(positions)]
        return self.backend.asarray(X.compute())

    def persist(self, collection: Any) -> Any:
        """``collection`` computed and held on the workers (waits, for honest stage times)."""
        from distributed import wait

        persisted = self.client.persist(collection)
        wait(persisted)
        return persisted


@dataclass(frozen=True)
class Features:
    """The feature matrix of every user, in partition blocks on the workers.

    Attributes
    ----------
    parts : list of Future
        One :class:`~gpuseg.distributed.tasks.PartitionFeatures` per partition.
    summaries : list of PartitionSummary
    X : dask array, shape (n_users, n_features)
        The feature tables of the partitions with users, as float64 blocks.
    blocks : tuple of int
        The partition of each block of ``X``.
    user_ids : numpy.ndarray
        User id of each row of ``X``.
    feature_names : tuple of str
    """

    parts: list[Any]
    summaries: list[tasks.PartitionSummary]
    X: Any
    blocks: tuple[int, ...]
    user_ids: np.ndarray
    feature_names: tuple[str, ...]


def compute_features(workers: Workers, source: PartitionedSource, catalog: Any, *,
                     min_orders: int, feature_names: Sequence[str]) -> Features:
    """Map :func:`~gpuseg.distributed.tasks.partition_features` over the partitions.

    Raises
    ------
    GpusegError
        No user of any partition has ``min_orders`` orders with products.
    DataValidationError
        A bad partition file, or a user in two partitions.
    """
    import dask.array as da

    from ..data.partitions.source import check_users_disjoint

    client = workers.client
    parts = client.map(tasks.partition_features, range(source.n_partitions), source=source,
                       catalog=catalog, backend_name=workers.name, min_orders=min_orders)
    summaries = client.gather(client.map(tasks.summary_of, parts))
    check_users_disjoint([s.user_ids for s in summaries], source)
    blocks = tuple(i for i, s in enumerate(summaries) if s.n_users)
    if not blocks:
        raise no_users_selected(min_orders, sum(s.n_with_history for s in summaries))
    used = [parts[i] for i in blocks]
    matrices = client.map(tasks.matrix_of, used, backend_name=workers.name)
    n_features = len(feature_names)
    X = da.concatenate([da.from_delayed(m, shape=(summaries[i].n_users, n_features),
                                        dtype=np.float64, meta=workers.meta())
                        for m, i in zip(matrices, blocks)])
    user_ids = np.concatenate(client.gather(client.map(tasks.user_ids_of, used,
                                                       backend_name=workers.name)))
    return Features(parts=parts, summaries=summaries, X=workers.persist(X), blocks=blocks,
                    user_ids=user_ids, feature_names=tuple(feature_names))


@dataclass(frozen=True)
class Scaling:
    """What standardising found, and the standardised matrix (lazy, from the features)."""

    mean: np.ndarray
    variance: np.ndarray
    scale: np.ndarray
    constant: np.ndarray
    X_scaled: Any


def standardise(workers: Workers, X: Any) -> Scaling:
    """Column means and variances summed over the blocks; constant features as one process finds.

    The scale is the standard deviation, 1 where scikit-learn's scaler would
    divide by (near) zero and for the constant features, whose scaled values
    are set to 0 (:func:`gpuseg.preprocess.standardise`).
    """
    import dask

    n_users = int(X.shape[0])
    check_users(n_users)
    mean, variance = (workers.backend.to_numpy(v, np.float64)
                      for v in dask.compute(X.mean(axis=0), X.var(axis=0)))
    constant = constant_features(variance, mean, n_users)
    scale = np.sqrt(variance)
    scale[(scale < 10 * np.finfo(np.float64).eps) | constant] = 1.0
    X_scaled = X.map_blocks(tasks.standardise_block, mean=mean, scale=scale, constant=constant,
                            backend_name=workers.name, dtype=np.float64, meta=workers.meta())
    return Scaling(mean=mean, variance=variance, scale=scale, constant=constant,
                   X_scaled=X_scaled)


@dataclass(frozen=True)
class Projection:
    """PCA from the exact covariance summed over blocks, and the projected matrix (persisted)."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    n_components: int
    X_pca: Any

    @property
    def retained_variance(self) -> float:
        return float(self.explained_variance_ratio[:self.n_components].sum())


def project(workers: Workers, X_scaled: Any, *, pca_variance: float,
            pca_components: int | None) -> Projection:
    """PCA of the standardised matrix: the eigendecomposition of its covariance.

    ``X.T @ X`` and the column sums are summed over the blocks (one p x p
    matrix per block); the eigendecomposition of the p x p covariance is
    scikit-learn's ``covariance_eigh`` solver and cuML's ``full`` one, and
    signs follow scikit-learn (the largest loading of each component positive).
    """
    import dask

    n_users, n_features = (int(v) for v in X_scaled.shape)
    n_fit = components_to_fit(n_users, n_features, pca_components)
    gram, sums = (workers.backend.to_numpy(v, np.float64)
                  for v in dask.compute(X_scaled.T @ X_scaled, X_scaled.sum(axis=0)))
    mean = sums / n_users
    covariance = (gram - n_users * np.outer(mean, mean)) / max(n_users - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:n_fit]
    components = vectors[:, order].T
    largest = np.abs(components).argmax(axis=1)
    components *= np.sign(components[np.arange(n_fit), largest])[:, None]
    variance = np.clip(values[order], 0.0, None)
    total = float(np.clip(values, 0.0, None).sum())
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    n_keep = pca_components or components_for_variance(ratio, pca_variance)
    kept = components[:n_keep]
    X_pca = X_scaled.map_blocks(tasks.project_block, mean=mean, components=kept,
                                backend_name=workers.name, dtype=np.float64,
                                chunks=(X_scaled.chunks[0], (n_keep,)), meta=workers.meta())
    return Projection(mean=mean, components=components, explained_variance=variance,
                      explained_variance_ratio=ratio, n_components=n_keep,
                      X_pca=workers.persist(X_pca))


@dataclass(frozen=True)
class Assignment:
    """Every user's KMeans segment (numbered by size), on the workers and on the client."""

    labels: Any  # dask int32 array, blocks as X
    host_labels: np.ndarray
    centroids: np.ndarray
    inertia: float
    sizes: tuple[int, ...]


def kmeans(workers: Workers, X_pca: Any, init: np.ndarray, *, seed: int,
           variance: float) -> Assignment:
    """Distributed Lloyd iterations from ``init``, then every user to the nearest centre.

    Segments are numbered by size (0 the largest) over every user, as in
    :func:`gpuseg.cluster.fit_kmeans`.
    """
    import dask
    import dask.array as da

    centres = workers.engine.kmeans_centres(workers.client, X_pca, init, seed=seed,
                                             variance=variance)
    k = int(centres.shape[0])
    # Held on the workers: the counts and the relabelling below read the same assignment.
    raw = workers.persist(X_pca.map_blocks(tasks.nearest_centre, centres=centres,
                                           backend_name=workers.name, drop_axis=1,
                                           dtype=np.int32))
    pieces = [dask.delayed(tasks.label_counts)(block, k, workers.name)
              for block in raw.to_delayed().ravel()]
    # Each user's distance to its own centre does not depend on the centres' order, so the
    # inertia comes in the same pass as the counts. The labels as a column line up with X's
    # rows (map_blocks aligns trailing axes).
    distances = da.map_blocks(tasks.assigned_squared_distance, X_pca, raw[:, None],
                              centres=centres, backend_name=workers.name, drop_axis=1,
                              dtype=np.float64)
    total, inertia_sum = dask.compute(dask.delayed(sum)(pieces), distances.sum())
    counts, inertia = np.asarray(total, dtype=np.int64), float(inertia_sum)
    order, rank = size_rank(counts, xp=np)
    labels = workers.persist(raw.map_blocks(tasks.relabel_block, mapping=rank,
                                            backend_name=workers.name, dtype=np.int32))
    centroids = centres[order]
    host_labels = workers.backend.to_numpy(labels.compute(), np.int32)
    return Assignment(labels=labels, host_labels=host_labels, centroids=centroids,
                      inertia=inertia, sizes=tuple(int(c) for c in counts[order]))


def nearest_labels(workers: Workers, X_pca: Any, points: Any, point_labels: Any,
                   eps: float) -> np.ndarray:
    """Each user's label of the nearest of ``points`` within ``eps`` (else -1), on the host."""
    import dask

    to_numpy = workers.backend.to_numpy
    points = dask.delayed(to_numpy(points, np.float64), pure=True)
    labels = X_pca.map_blocks(tasks.nearest_point_label, points,
                              point_labels=to_numpy(point_labels, np.int64),
                              eps=eps, backend_name=workers.name, drop_axis=1,
                              dtype=np.int64)
    return to_numpy(labels.compute(), np.int64)


def _summed(pieces: list[Any], dtype: Any) -> np.ndarray:
    """The sum of delayed per-partition host arrays, computed, as a ``dtype`` array."""
    import dask

    return np.asarray(dask.compute(dask.delayed(sum)(pieces))[0], dtype=dtype)


def segment_moments(workers: Workers, features: Features, labels: Any, k: int) -> np.ndarray:
    """Per-segment feature sums and user counts over every user: shape (k, n_features + 1)."""
    import dask

    pieces = [dask.delayed(tasks.segment_moments)(block, label_block, k, workers.name)
              for block, label_block in zip(features.X.to_delayed().ravel(),
                                            labels.to_delayed().ravel())]
    return _summed(pieces, np.float64)


def activity(workers: Workers, features: Features, labels: Any, k: int) -> np.ndarray:
    """Orders per segment x weekday x hour, summed over the partitions: shape (k, 7, 24)."""
    import dask

    pieces = [dask.delayed(tasks.partition_activity)(features.parts[i], label_block, k,
                                                     workers.name)
              for i, label_block in zip(features.blocks, labels.to_delayed().ravel())]
    return _summed(pieces, np.int64)


def memberships(workers: Workers, X_pca: Any, labels: Any, mixture: Any) -> np.ndarray:
    """Every user's E-step under ``mixture``: (n_users, 4) host array (see
    :func:`~gpuseg.distributed.tasks.block_memberships`)."""
    import dask.array as da

    to_numpy = workers.backend.to_numpy
    # A column, so that its blocks line up with X's rows (map_blocks aligns trailing axes).
    label_blocks = da.from_array(to_numpy(labels, np.int64)[:, None],
                                 chunks=(X_pca.chunks[0], (1,)))
    # Whole rows per block: the E-step needs every component of a user at once.
    X_pca = X_pca.rechunk({1: -1})
    columns = X_pca.map_blocks(tasks.block_memberships, label_blocks, mixture=mixture,
                               backend_name=workers.name, chunks=(X_pca.chunks[0], (4,)),
                               dtype=np.float64)
    return to_numpy(columns.compute(), np.float64)


def hdbscan_labels(workers: Workers, X_pca: Any, fitted: Any, core: Any, fit_labels: Any,
                   scale: Any, min_samples: int) -> np.ndarray:
    """Every user's cluster by HDBSCAN's sample-then-assign rule, on the host."""
    import dask

    to_numpy = workers.backend.to_numpy
    fitted = dask.delayed(to_numpy(fitted, np.float64), pure=True)
    labels = X_pca.map_blocks(tasks.hdbscan_join, fitted, core=to_numpy(core, np.float64),
                              fit_labels=to_numpy(fit_labels, np.int64),
                              scale=to_numpy(scale, np.float64), min_samples=min_samples,
                              backend_name=workers.name, drop_axis=1, dtype=np.int64)
    return to_numpy(labels.compute(), np.int64)
