"""Seeded row samples, drawn on the backend's device."""
from __future__ import annotations

from typing import Any

from .backend import Backend


def sample_rows(n: int, size: int | None, backend: Backend, seed: int) -> Any | None:
    """Sorted indices of a seeded sample of ``size`` rows out of ``n``; ``None`` means every row."""
    if size is None or size >= n:
        return None
    xp = backend.xp
    rng = xp.random.RandomState(seed)
    return xp.sort(rng.permutation(n)[:size])
