"""Dynamic batching: what arrives together is computed together, within max_batch and max_wait."""
from __future__ import annotations

import asyncio
import threading

import pytest

from gpuseg.serve.batcher import Batcher


class Recorder:
    """A batch function that answers each item with itself doubled and records every batch."""

    def __init__(self, fail_on: object = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def __call__(self, items):
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        if self.fail_on == "batch":
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"item {i} refused") if i == self.fail_on else 2 * i for i in items]


def run(coroutine):
    return asyncio.run(coroutine)


async def submit_all(batcher: Batcher, sizes: dict[int, int]) -> list:
    answers = await asyncio.gather(*(batcher.submit(item, size) for item, size in sizes.items()),
                                   return_exceptions=True)
    await batcher.close()
    return answers


def test_requests_that_arrive_together_are_one_batch_computed_off_the_event_loop():
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch=100, max_wait=0.05)
    answers = run(submit_all(batcher, {i: 1 for i in range(10)}))
    assert answers == [2 * i for i in range(10)]
    assert recorder.batches == [list(range(10))]
    assert recorder.threads and threading.main_thread().name not in recorder.threads
    assert batcher.stats.to_dict()["mean_requests_per_batch"] == 10


def test_a_batch_holds_at_most_max_batch_users_and_a_larger_request_runs_alone():
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch=7, max_wait=0.05)
    sizes = {0: 3, 1: 3, 2: 3, 3: 20, 4: 1}
    answers = run(submit_all(batcher, sizes))
    assert answers == [0, 2, 4, 6, 8]
    assert recorder.batches == [[0, 1], [2], [3], [4]]
    assert all(sum(sizes[i] for i in batch) <= 7 for batch in recorder.batches if len(batch) > 1)
    assert batcher.stats.largest_batch_users == 20


def test_a_lone_request_waits_no_longer_than_max_wait():
    async def timed() -> float:
        batcher = Batcher(Recorder(), max_batch=100, max_wait=0.02)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.submit(1, 1)
        waited = loop.time() - start
        await batcher.close()
        return waited

    assert run(timed()) < 1.0  # 20 ms plus a thread hop; a generous bound for a busy machine


def test_a_refused_item_fails_alone_and_a_failed_batch_fails_each_of_its_requests():
    answers = run(submit_all(Batcher(Recorder(fail_on=2), max_batch=10, max_wait=0.05),
                             {1: 1, 2: 1, 3: 1}))
    assert answers[0] == 2 and answers[2] == 6
    assert isinstance(answers[1], ValueError) and "item 2" in str(answers[1])

    answers = run(submit_all(Batcher(Recorder(fail_on="batch"), max_batch=10, max_wait=0.05),
                             {1: 1, 2: 1}))
    assert all(isinstance(a, RuntimeError) for a in answers)


def test_close_answers_what_is_queued_then_refuses_new_requests():
    async def scenario():
        recorder = Recorder()
        batcher = Batcher(recorder, max_batch=100, max_wait=10.0)
        queued = [asyncio.ensure_future(batcher.submit(i, 1)) for i in range(3)]
        await asyncio.sleep(0)
        await batcher.close()  # does not wait the 10 s: closing sends what is queued at once
        with pytest.raises(RuntimeError, match="shutting down"):
            await batcher.submit(9, 1)
        return [await answer for answer in queued], recorder.batches

    answers, batches = run(asyncio.wait_for(scenario(), timeout=5))
    assert answers == [0, 2, 4] and batches == [[0, 1, 2]]


@pytest.mark.parametrize("settings", [{"max_batch": 0, "max_wait": 0.01},
                                      {"max_batch": 1, "max_wait": -1}])
def test_settings_out_of_range_are_refused(settings):
    with pytest.raises(ValueError):
        Batcher(Recorder(), **settings)
