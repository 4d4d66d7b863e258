"""Per-stage wall-clock timings that wait for the device before stopping the clock."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from .backend import Backend

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]


class StageTimer:
    """Times named stages; ``progress`` (if given) is told when each stage starts."""

    def __init__(self, backend: Backend, progress: ProgressCallback | None = None) -> None:
        self.backend = backend
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(name)
        start = time.perf_counter()
        yield
        self.backend.synchronize()  # GPU kernels run asynchronously; count them in their stage
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        log.info("stage %s: %.2f s", name, elapsed)
