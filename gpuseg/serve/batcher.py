"""Dynamic batching: requests that arrive together are computed together.

As in Triton's dynamic batcher, a request waits in a queue until either the
queue holds ``max_batch`` users or its oldest request has waited
``max_wait`` seconds; then everything queued, up to ``max_batch`` users, is
handed to one call of the batch function. A request larger than
``max_batch`` on its own is computed alone. Batches run one at a time in one
worker thread, so the event loop keeps reading (and queueing) requests while a
batch computes: the busier the service, the larger its batches, and a GPU sees
batches rather than single shoppers.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


@dataclass(frozen=True)
class _Queued(Generic[Item]):
    item: Item
    size: int
    arrival: float
    answer: asyncio.Future


@dataclass
class BatchStats:
    """Counts since the start, for ``GET /health`` and the load test."""

    batches: int = 0
    requests: int = 0
    users: int = 0
    largest_batch_users: int = 0

    def to_dict(self) -> dict[str, Any]:
        mean = self.requests / self.batches if self.batches else 0.0
        return {"batches": self.batches, "requests": self.requests, "users": self.users,
                "mean_requests_per_batch": round(mean, 2),
                "largest_batch_users": self.largest_batch_users}


class Batcher(Generic[Item]):
    """Gathers submitted items into batches for ``run_batch``.

    Parameters
    ----------
    run_batch : callable
        ``run_batch(items) -> answers``, one answer per item in order (an
        exception instance is raised to that item's caller); an exception it
        raises is raised to every caller of the batch. Called in the
        batcher's worker thread.
    max_batch : int
        Users (item sizes) gathered into one batch at most.
    max_wait : float
        Seconds the oldest queued item waits for others at most.
    """

    def __init__(self, run_batch: Callable[[Sequence[Item]], Sequence[Any]], *, max_batch: int,
                 max_wait: float) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be >= 1 and max_wait >= 0")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.stats = BatchStats()
        self._queue: deque[_Queued[Item]] = deque()
        self._queued_size = 0
        # An Event binds to the loop that first waits on it; the pool starts its thread on first use.
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpuseg-batch")
        self._worker: asyncio.Task | None = None
        self._closing = False

    async def submit(self, item: Item, size: int) -> Any:
        """The answer for ``item`` (``size`` users), once its batch has run.

        Raises whatever ``run_batch`` raised for the batch, and RuntimeError
        once the batcher is closing.
        """
        if self._closing:
            raise RuntimeError("the service is shutting down")
        loop = asyncio.get_running_loop()
        if self._worker is None:
            # Started on first use, in the loop that serves: an app needs no startup hook for it.
            self._worker = loop.create_task(self._work())
        queued = _Queued(item, size, loop.time(), loop.create_future())
        self._queue.append(queued)
        self._queued_size += size
        self._arrived.set()
        return await queued.answer

    async def close(self) -> None:
        """Compute what is queued, then stop the worker (the service's shutdown)."""
        self._closing = True
        if self._worker is not None:
            self._arrived.set()
            await self._worker
        self._executor.shutdown(wait=True)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            # Triton's rule: go when max_batch users wait, or when the oldest has waited max_wait.
            deadline = self._queue[0].arrival + self.max_wait
            while self._queued_size < self.max_batch and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            try:
                answers = await loop.run_in_executor(self._executor, self._run_batch,
                                                     [queued.item for queued in batch])
            except Exception as exc:  # the batch's failure is each of its requests' answer
                log.exception("a batch of %d requests failed", len(batch))
                for queued in batch:
                    if not queued.answer.done():
                        queued.answer.set_exception(exc)
                continue
            for queued, answer in zip(batch, answers):
                if queued.answer.done():  # its client has gone
                    continue
                if isinstance(answer, BaseException):
                    queued.answer.set_exception(answer)
                else:
                    queued.answer.set_result(answer)

    def _take(self) -> list[_Queued[Item]]:
        """The oldest items, up to ``max_batch`` users (at least one item)."""
        batch = [self._queue.popleft()]
        size = batch[0].size
        while self._queue and size + self._queue[0].size <= self.max_batch:
            queued = self._queue.popleft()
            batch.append(queued)
            size += queued.size
        self._queued_size -= size
        stats = self.stats
        stats.batches += 1
        stats.requests += len(batch)
        stats.users += size
        stats.largest_batch_users = max(stats.largest_batch_users, size)
        return batch
