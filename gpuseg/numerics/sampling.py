"""Seeded row samples, identical on every backend for the same seed."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Backend
from ..errors import GpusegError


def seeded_sample(n: int, size: int | None, *, seed: int, backend: Backend) -> Any | None:
    """Sorted positions of a seeded sample of ``size`` of ``n`` users, or ``None`` for all.

    The positions are drawn with numpy on the host so that both backends pick the
    same users for the same seed (CPU/GPU comparisons then measure the computation,
    not the sample); only the index array travels to the device.
    """
    if size is None or size >= n:
        return None
    if size < 1:
        raise GpusegError(f"a sample needs at least 1 user (got {size})")
    rng = np.random.default_rng(seed)
    return backend.asarray(np.sort(rng.choice(n, size=size, replace=False)))
