"""How a service batches and what it accepts (the defaults of ``gpuseg serve``'s flags)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    """Batching and request limits of the service.

    Attributes
    ----------
    max_batch : int
        Shoppers computed together at most (a larger request runs alone).
    max_wait_ms : float
        How long the oldest queued request waits for others.
    max_body_bytes : int
        Larger request bodies are refused with 413.
    """

    max_batch: int = 256
    max_wait_ms: float = 5.0
    max_body_bytes: int = 32 << 20
