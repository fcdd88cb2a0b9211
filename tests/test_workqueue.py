from __future__ import annotations

import asyncio
import threading
import time

import pytest

from parlons.services.common.errors import ResourceExhausted
from parlons.services.common.workqueue import WorkQueue


async def test_refuses_at_once_when_running_and_queued_are_full() -> None:
    queue = WorkQueue("test", max_concurrent=1, max_queued=1)
    release = threading.Event()
    running = [asyncio.create_task(queue.run(release.wait, 5)) for _ in range(2)]
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    with pytest.raises(ResourceExhausted, match="busy"):
        await queue.run(time.sleep, 0)
    assert time.perf_counter() - started < 0.1  # refused, not queued
    release.set()
    assert await asyncio.gather(*running) == [True, True]
    assert queue.admitted == 0
    assert await queue.run(lambda: 42) == 42
    queue.shutdown()


async def test_never_runs_more_than_max_concurrent() -> None:
    queue = WorkQueue("test", max_concurrent=2, max_queued=10)
    active = 0
    peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1

    await asyncio.gather(*(queue.run(job) for _ in range(8)))
    assert peak == 2
    queue.shutdown()


async def test_cancelled_caller_signals_the_job_and_frees_the_slot_after_it_stops() -> None:
    queue = WorkQueue("test", max_concurrent=1, max_queued=0)
    cancel = threading.Event()
    stopped = threading.Event()

    def job(cancel: threading.Event) -> None:
        while not cancel.wait(0.01):
            pass
        stopped.set()

    task = asyncio.create_task(queue.run(job, cancel, cancel=cancel))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancel.is_set() and stopped.is_set()
    assert queue.admitted == 0
    queue.shutdown()
