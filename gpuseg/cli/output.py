"""What the commands print and how they write files: progress, summaries, atomic writes."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..result import SegmentationResult

from ..config import PipelineConfig

log = logging.getLogger("gpuseg")


def write_run(result: SegmentationResult, out: str | Path, *, force: bool,
              progress: Callable[[str], None] | None) -> Path:
    from ..rundir import write_run

    tell(progress, "writing run directory and report")
    with timed("write run directory"):
        return write_run(result, out, force=force)


def check_cluster(config: PipelineConfig) -> None:
    """Before the first stage: the ``--scheduler`` address is a scheduler that answers."""
    if config.scheduler is not None:
        from ..distributed.client import check_scheduler

        check_scheduler(config.scheduler)


def tell(progress: Callable[[str], None] | None, stage: str) -> None:
    if progress is not None:
        progress(stage)


@contextmanager


def timed(what: str) -> Iterator[None]:
    """Log the wall time of a step outside the pipeline's own stage timer (shown with -v)."""
    start = time.perf_counter()
    yield
    log.info("stage %s: %.2f s", what, time.perf_counter() - start)


def print_summary(result: SegmentationResult, out: Path) -> None:
    m = result.metrics
    print(f"{m.users.segmented:,} users -> {result.k} segments on {result.device} "
          f"(silhouette {m.silhouette.overall:.3f}; {m.verdict.strength} structure)")
    for persona, size in zip(result.model.persona_names, m.kmeans.sizes):
        print(f"  {persona:<40} {size:>9,}")
    print(f"run directory: {out} (open {out / 'report.html'})")


class Progress:
    """Stage progress on stderr when it is a terminal; silent otherwise or with --quiet."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.enabled = not args.quiet and sys.stderr.isatty()
        self._status: Any = None

    def __enter__(self) -> Callable[[str], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console

        self._status = Console(stderr=True).status("starting")
        self._status.start()
        return lambda stage: self._status.update(f"gpuseg: {stage.replace('_', ' ')}")

    def __exit__(self, *exc_info) -> None:
        if self._status is not None:
            self._status.stop()
