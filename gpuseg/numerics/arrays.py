"""Array helpers that several stages share, written once for numpy and cupy.

Each takes the array namespace ``xp`` from its caller (``backend.xp``), never
detecting it itself, always as its last parameter and keyword-only
(``dense_codes(labels, xp=xp)``); scikit-learn's ``utils/_array_api.py`` plays
this role there.
"""
from __future__ import annotations

import math
from typing import Any

# A lookup table is used for id -> dense index while the id span is at most this
# many times the number of ids; sparser ids are found by binary search instead.
_LOOKUP_SPAN_FACTOR = 8


def dense_codes(labels: Any, *, xp: Any) -> tuple[Any, Any]:
    """Labels recoded to ``0..m-1`` (in sorted label order) and the distinct labels."""
    uniques, codes = xp.unique(labels, return_inverse=True)
    return codes.reshape(-1), uniques


def segment_sums(values: Any, codes: Any, n_segments: int, *, xp: Any) -> tuple[Any, Any]:
    """Per-segment column sums and sizes of ``values`` (users x columns).

    A one-hot matrix product: one GEMM on either backend, cheap for the few
    segments (K up to a few dozen) it is used with.
    """
    one_hot = (codes[:, None] == xp.arange(n_segments)[None, :]).astype(values.dtype)
    return one_hot.T @ values, xp.bincount(codes, minlength=n_segments)


def nearest_centre(X: Any, centres: Any, *, xp: Any) -> tuple[Any, Any]:
    """Index of each row's nearest centre, and the squared distance to it.

    Plain differences rather than the ``|x|^2 - 2x.c + |c|^2`` expansion: no
    cancellation, so labels near a boundary come out the same on every backend.
    One centre at a time keeps memory at one (n, d) block.
    """
    distances = xp.stack([((X - centres[j]) ** 2).sum(axis=1)
                          for j in range(int(centres.shape[0]))], axis=1)
    return distances.argmin(axis=1), distances.min(axis=1)


def size_rank(sizes: Any, *, xp: Any) -> tuple[Any, Any]:
    """Order of segments by size (largest first, ties to the lower label) and its inverse."""
    k = sizes.shape[0]
    # One integer key sorts by size descending and breaks ties by the lower label, so the
    # result does not depend on the sort being stable (CuPy's argsort takes no ``kind``).
    key = (int(sizes.sum()) - sizes.astype(xp.int64)) * k + xp.arange(k)
    order = xp.argsort(key)
    rank = xp.empty_like(order)
    rank[order] = xp.arange(k)
    return order, rank


def numbered_by_size(labels: Any, *, xp: Any) -> tuple[Any, int, float]:
    """Cluster labels renumbered by size (0 largest, -1 outliers kept) as int32, with the
    number of clusters and the share of outliers."""
    n = int(labels.shape[0])
    clustered = labels >= 0
    n_clusters = int(labels.max()) + 1
    if n_clusters > 0:
        safe = xp.where(clustered, labels, 0)
        _, rank = size_rank(xp.bincount(labels[clustered], minlength=n_clusters), xp=xp)
        labels = xp.where(clustered, rank[safe], -1)
        n_clusters = int(xp.unique(labels[clustered]).shape[0])
    return labels.astype(xp.int32), n_clusters, int(xp.count_nonzero(~clustered)) / n


def dense_positions(ids: Any, queries: Any, *, xp: Any) -> Any:
    """Position of each query in ``ids`` (unique, any order), -1 where absent.

    A lookup table indexed by id when the ids are dense enough (one gather per
    query), else a binary search over the sorted ids.
    """
    n_ids = int(ids.shape[0])
    if n_ids == 0:
        return xp.full(queries.shape, -1, dtype=xp.int32)
    low, high = int(ids.min()), int(ids.max())
    span = high - low + 1
    if span <= _LOOKUP_SPAN_FACTOR * n_ids + 1024:
        # Slots 0 and span + 1 hold -1, so clipping sends every out-of-range id to "absent".
        table = xp.full(span + 2, -1, dtype=xp.int32)
        table[ids.astype(xp.int64) - (low - 1)] = xp.arange(n_ids, dtype=xp.int32)
        slots = queries.astype(xp.int64)
        slots -= low - 1
        xp.clip(slots, 0, span + 1, out=slots)
        return table[slots]
    order = xp.argsort(ids)
    sorted_ids = ids[order]
    at = xp.minimum(xp.searchsorted(sorted_ids, queries), n_ids - 1)
    return xp.where(sorted_ids[at] == queries, order[at].astype(xp.int32), xp.int32(-1))


def bincount(bins: Any, length: int, weights: Any = None, *, xp: Any) -> Any:
    """Counts (or float64 weight sums) per bin 0..length-1, for bins known to be below length.

    Empty input gives zeros: cupy.bincount takes the max of its input and fails on none.
    """
    if bins.shape[0] == 0:
        return xp.zeros(length, dtype=xp.int64 if weights is None else xp.float64)
    return xp.bincount(bins, weights=weights, minlength=length)


def finite_or_none(value: float) -> float | None:
    """A metric as JSON can carry it: NaN or infinity (no defined value) becomes ``None``."""
    return float(value) if math.isfinite(value) else None
