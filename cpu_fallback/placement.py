"""umap-learn's layout optimiser for new users placed on a fixed layout, one user at a time.

When a transform refines new users' positions, the fitted users do not move
(``move_other=False``) and each new user draws its negative samples from a
random state of its own (umap-learn 0.5 keeps one per head vertex). Each new
user's path is then independent of every other's: umap-learn's epoch-major
loop over all edges and a user-major loop over each user's epochs perform the
same floating-point operations on each user, in the same order. This module
runs the user-major loop, split over threads by users, so the result is
umap-learn's serial result whatever the number of threads, where umap-learn's
own ``parallel=True`` races on users whose edges straddle two threads.

The kernel is :func:`umap.layouts._optimize_layout_euclidean_single_epoch`
without densMAP, with the epoch loop moved inside the loop over users; it
calls umap-learn's own ``clip``, ``rdist`` and ``tau_rand_int``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .numba_cache import decorated_into_cache, umap_import_cache

with umap_import_cache():
    from umap.layouts import clip, rdist
    from umap.utils import tau_rand_int

#: Fewer new users than this are placed on one thread (a thread's start costs more).
USERS_PER_THREAD = 2_000


def _place_users(first: int, last: int, positions: np.ndarray, anchors: np.ndarray,
                 indptr: np.ndarray, tail: np.ndarray, epochs_per_sample: np.ndarray,
                 rng_states: np.ndarray, n_epochs: int, a: float, b: float, gamma: float,
                 initial_alpha: float, negative_sample_rate: float) -> None:  # pragma: no cover
    # numba-compiled below (coverage cannot trace it; tests compare it with umap-learn's).
    dim = positions.shape[1]
    n_vertices = anchors.shape[0]
    for j in range(first, last):
        lo, hi = indptr[j], indptr[j + 1]
        per_sample = epochs_per_sample[lo:hi]
        per_negative = per_sample / negative_sample_rate
        next_sample = per_sample.copy()
        next_negative = per_negative.copy()
        current = positions[j]
        state = rng_states[j]
        alpha = initial_alpha
        for n in range(n_epochs):
            for e in range(hi - lo):
                if next_sample[e] <= n:
                    other = anchors[tail[lo + e]]
                    dist_squared = rdist(current, other)
                    if dist_squared > 0.0:
                        grad_coeff = -2.0 * a * b * pow(dist_squared, b - 1.0)
                        grad_coeff /= a * pow(dist_squared, b) + 1.0
                    else:
                        grad_coeff = 0.0
                    for d in range(dim):
                        grad_d = clip(grad_coeff * (current[d] - other[d]))
                        current[d] += grad_d * alpha
                    next_sample[e] += per_sample[e]
                    n_neg_samples = int((n - next_negative[e]) / per_negative[e])
                    for _ in range(n_neg_samples):
                        k = tau_rand_int(state) % n_vertices
                        other = anchors[k]
                        dist_squared = rdist(current, other)
                        if dist_squared > 0.0:
                            grad_coeff = 2.0 * gamma * b
                            grad_coeff /= (0.001 + dist_squared) * (a * pow(dist_squared, b) + 1)
                        elif j == k:
                            continue
                        else:
                            grad_coeff = 0.0
                        for d in range(dim):
                            if grad_coeff > 0.0:
                                grad_d = clip(grad_coeff * (current[d] - other[d]))
                            else:
                                grad_d = 0
                            current[d] += grad_d * alpha
                    next_negative[e] += n_neg_samples * per_negative[e]
            alpha = initial_alpha * (1.0 - (float(n) / float(n_epochs)))


# Compiled on a run's first placement, then loaded from gpuseg's cache folder (about a second
# of compiling, which the background warm-up leaves out: most runs place no one).
with decorated_into_cache():
    _place_users = numba.njit(nogil=True, fastmath=True, cache=True)(_place_users)


def placement_threads(n_users: int) -> int:
    """Threads for placing ``n_users``: what the process's OpenMP and BLAS limits allow (a Dask
    worker's ``OMP_NUM_THREADS``, a ``threadpool_limits`` block), at most one per
    :data:`USERS_PER_THREAD` users."""
    from threadpoolctl import threadpool_info

    limits = [pool["num_threads"] for pool in threadpool_info()
              if pool["user_api"] in ("openmp", "blas")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(min(limits, default=cores or 1), n_users // USERS_PER_THREAD))


def optimise_placement(start: np.ndarray, anchors: np.ndarray, head: np.ndarray,
                       tail: np.ndarray, n_epochs: int, epochs_per_sample: np.ndarray,
                       a: float, b: float, rng_state: np.ndarray, gamma: float,
                       initial_alpha: float, negative_sample_rate: float,
                       threads: int | None = None) -> np.ndarray:
    """``umap.layouts.optimize_layout_euclidean(start, anchors, head, tail, n_epochs,
    len(anchors), epochs_per_sample, a, b, rng_state, gamma, initial_alpha,
    negative_sample_rate, parallel=False, move_other=False)``, over threads.

    ``head`` must be sorted (each new user's edges together, as a transform
    builds them). ``start`` is refined in place and returned.
    """
    n = start.shape[0]
    if head.size and np.any(head[1:] < head[:-1]):
        raise ValueError("the edges must be sorted by new user")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(head, minlength=n), out=indptr[1:])
    # umap-learn's per-vertex random states: the seed plus the bits of the start's first coordinate.
    rng_states = (np.full((n, len(rng_state)), rng_state, dtype=np.int64)
                  + start[:, 0].astype(np.float64).view(np.int64).reshape(-1, 1))
    tail = np.ascontiguousarray(tail)
    epochs_per_sample = np.ascontiguousarray(epochs_per_sample, dtype=np.float64)
    args = (start, anchors, indptr, tail, epochs_per_sample, rng_states, int(n_epochs),
            float(a), float(b), float(gamma), float(initial_alpha), float(negative_sample_rate))
    threads = placement_threads(n) if threads is None else max(1, min(threads, n))
    if threads == 1:
        _place_users(0, n, *args)
        return start
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    with ThreadPoolExecutor(threads) as pool:  # the kernel releases the GIL
        for done in [pool.submit(_place_users, int(lo), int(hi), *args)
                     for lo, hi in zip(bounds[:-1], bounds[1:])]:
            done.result()
    return start
