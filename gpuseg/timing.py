"""Per-stage wall-clock timings that wait for the device before stopping the clock."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .backend import Backend
from .errors import ResourceLimitError
from .resources import out_of_memory

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
        """Time the block as stage ``name``.

        A ``MemoryError`` inside it (numpy's, or CuPy's and RMM's out-of-memory
        errors, which subclass it) becomes a :class:`ResourceLimitError` naming
        the stage and the option that shrinks it, so the CLI reports one line
        instead of an allocator's traceback.
        """
        if self.progress is not None:
            self.progress(name)
        start = time.perf_counter()
        try:
            yield
            self.backend.synchronize()  # GPU kernels run asynchronously; count them in their stage
        except ResourceLimitError:
            raise
        except MemoryError as exc:
            raise out_of_memory(name, self.backend, exc) from exc
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        log.info("stage %s: %.2f s", name, elapsed)
