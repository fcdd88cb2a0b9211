from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from parlons.errors import ResourceExhausted, Unavailable
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


class _Counted:
    """Jobs that count how many of them run at once (now and at the most)."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def job(self, hold: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            hold()
            with self._lock:
                self.active -= 1
        return run


async def test_never_runs_more_than_max_concurrent() -> None:
    queue = WorkQueue("test", max_concurrent=2, max_queued=10)
    counted = _Counted()
    pairs = threading.Barrier(2)  # each job waits for a second one to run beside it: however
    job = counted.job(lambda: pairs.wait(timeout=30))  # slow the machine, two do run at once
    await asyncio.gather(*(queue.run(job) for _ in range(8)))
    assert counted.peak == 2
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
    assert cancel.is_set()
    await _until(lambda: queue.admitted == 0)
    assert stopped.is_set() and queue.running_threads == 0
    queue.shutdown()


async def _until(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Wait on the loop for `condition` (a thread ending gives its slot back on the loop)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.01)


async def test_a_cancelled_caller_returns_at_once_and_its_slot_counts_until_the_thread_ends() -> None:
    """Issue 25: after two timed-out requests a one-sentence request still waited 15 s,
    queued behind threads whose slots were already given back. The caller goes at once;
    the slot is held until the thread really ends, so a new job is refused (and goes to
    another replica) rather than waiting unseen behind an abandoned one."""
    queue = WorkQueue("test", max_concurrent=2, max_queued=0)
    release = threading.Event()
    counted = _Counted()
    stubborn = counted.job(lambda: release.wait(60))  # ignores cancellation, like a model call with no checkpoint
    tasks = [asyncio.create_task(queue.run(stubborn, cancel=threading.Event())) for _ in range(2)]
    await _until(lambda: counted.active == 2)
    for task in tasks:
        task.cancel()
    done, _ = await asyncio.wait(tasks, timeout=30)
    assert done == set(tasks)  # the callers returned while their threads still run
    for task in tasks:
        task.cancel()  # grpc may cancel a handler again (shutdown): nothing more is freed
    await asyncio.sleep(0)
    assert queue.admitted == 2 and queue.running_threads == 2
    with pytest.raises(ResourceExhausted, match="busy"):
        await queue.run(lambda: 1)
    release.set()
    await _until(lambda: queue.admitted == 0)
    assert queue.running_threads == 0
    assert await asyncio.gather(*(queue.run(stubborn) for _ in range(2))) == [None, None]
    assert counted.peak == 2  # never more threads than max_concurrent
    queue.shutdown()


def test_a_job_that_ignores_cancel_does_not_hold_the_process_at_exit(tmp_path: Path) -> None:
    """Issue 25: SIGTERM took 57 s, the interpreter joining worker threads still busy.
    The workers are daemon threads: the process ends once the server has drained, even
    with a job that never stops (it would never end before)."""
    script = tmp_path / "stuck.py"
    script.write_text(
        "import asyncio, threading\n"
        "from parlons.services.common.workqueue import WorkQueue\n"
        "async def main():\n"
        "    queue = WorkQueue('t', 1, 0)\n"
        "    started = threading.Event()\n"
        "    def stuck():\n"
        "        started.set()\n"
        "        threading.Event().wait()\n"
        "    task = asyncio.create_task(queue.run(stuck, cancel=threading.Event()))\n"
        "    while not started.is_set():\n"
        "        await asyncio.sleep(0.01)\n"
        "    task.cancel()\n"
        "    await asyncio.gather(task, return_exceptions=True)\n"
        "    queue.shutdown(wait_s=0.1)\n"
        "    print('closed', queue.running_threads, flush=True)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "closed 1"  # the thread still ran; the process ended anyway


async def test_a_closed_queue_tells_running_jobs_to_stop_and_refuses_new_ones() -> None:
    queue = WorkQueue("test", max_concurrent=1, max_queued=1)
    cancel = threading.Event()
    task = asyncio.create_task(queue.run(cancel.wait, 60, cancel=cancel))
    await _until(lambda: queue.running_threads == 1)
    queue.shutdown(wait_s=30)
    assert cancel.is_set() and queue.running_threads == 0
    assert await task is True
    with pytest.raises(Unavailable, match="shutting down"):
        await queue.run(lambda: 1)


async def test_an_exception_in_the_job_reaches_the_caller_and_frees_the_slot() -> None:
    queue = WorkQueue("test", max_concurrent=1, max_queued=0)

    def fails() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await queue.run(fails)
    assert queue.admitted == 0 and queue.running_threads == 0
    queue.shutdown()
