"""A bounded queue in front of a model: run at most N jobs, queue at most M, refuse the rest.

A model on a CPU cannot serve unbounded concurrency; queueing without limit only turns
overload into timeouts for everyone. Requests over the bound get RESOURCE_EXHAUSTED at
once so a client or the gateway can go to another replica.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from typing import Any, TypeVar
from collections.abc import Callable

from parlons.services.common import metrics
from parlons.errors import ResourceExhausted, Unavailable

T = TypeVar("T")


class WorkQueue:
    """Admission control + worker threads for blocking model calls.

    A slot is held from admission until the job's thread has really returned, not until
    its caller stops waiting: a caller that is cancelled (deadline, client gone) returns
    at once, its job is told to stop (`cancel`), and the slot stays taken until the
    thread ends. Otherwise abandoned jobs would keep the model busy while the queue
    admits new ones, which then wait behind them unseen (and never get refused).

    Each job runs in its own daemon thread (at most `max_concurrent` at once): a job
    that ignores its cancel event cannot hold the process past the server's grace
    period on SIGTERM, as the joined threads of a ThreadPoolExecutor would.
    """

    def __init__(self, service: str, max_concurrent: int, max_queued: int) -> None:
        if max_concurrent < 1 or max_queued < 0:
            raise ValueError("max_concurrent must be >= 1 and max_queued >= 0")
        self.service = service
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self._admitted = 0
        self._lock = threading.Lock()
        self._semaphore: asyncio.Semaphore | None = None
        self._threads: set[threading.Thread] = set()
        self._cancels: set[threading.Event] = set()
        self._closed = False

    @property
    def admitted(self) -> int:
        """Jobs queued or running, abandoned ones included until their thread ends."""
        return self._admitted

    @property
    def running_threads(self) -> int:
        """Worker threads still running (never more than `max_concurrent`)."""
        with self._lock:
            return len(self._threads)

    def check_capacity(self) -> None:
        """Refuse now if a job could not be admitted now (an upload about to be read)."""
        with self._lock:
            if self._admitted >= self.max_concurrent + self.max_queued:
                metrics.REJECTED.labels(self.service).inc()
                raise self._busy()

    def _busy(self) -> ResourceExhausted:
        return ResourceExhausted(
            f"{self.service} is busy ({self._admitted} requests running or queued); "
            "retry shortly or use another replica",
            retry_after_s=1.0,
        )

    def _admit(self) -> None:
        with self._lock:
            if self._closed:
                raise Unavailable(f"{self.service} is shutting down; use another replica", retry_after_s=1.0)
            if self._admitted >= self.max_concurrent + self.max_queued:
                metrics.REJECTED.labels(self.service).inc()
                raise self._busy()
            self._admitted += 1

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(
        self,
        fn: Callable[..., T],
        *args: object,
        cancel: threading.Event | None = None,
        **kwargs: object,
    ) -> T:
        """Run `fn` in a worker thread once a slot is free; refuse at once when full.

        If the awaiting task is cancelled while queued, the job never starts. If it is
        running, `cancel` is set so the job stops at its next check and the caller
        returns at once; the slot is freed when the thread has really finished, so the
        model never runs more than `max_concurrent` jobs.
        """
        self._admit()
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrent)
        semaphore = self._semaphore
        gauge_queue = metrics.QUEUE_DEPTH.labels(self.service)
        gauge_queue.inc()
        try:
            await semaphore.acquire()
        except BaseException:
            self._release()
            raise
        finally:
            gauge_queue.dec()
        try:
            future = self._start(fn, args, kwargs, cancel, semaphore)
        except BaseException:
            semaphore.release()
            self._release()
            raise
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if cancel is not None:
                cancel.set()
            raise

    def _start(
        self, fn: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, object],
        cancel: threading.Event | None, semaphore: asyncio.Semaphore,
    ) -> asyncio.Future[T]:
        """Start the job's daemon thread; its slot is given back on the loop when it ends."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # A job whose caller has gone may still fail: its error is nobody's to log.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        gauge_running = metrics.IN_FLIGHT.labels(self.service)

        def settle(result: Any, error: BaseException | None) -> None:  # on the loop
            gauge_running.dec()
            semaphore.release()
            self._release()
            if future.cancelled():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def work() -> None:  # in the worker thread
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as exc:  # handed to the caller, not lost in the thread
                error = exc
            finally:
                with self._lock:
                    self._threads.discard(thread)
                    if cancel is not None:
                        self._cancels.discard(cancel)
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:  # the loop is closed (shutdown): nothing waits any more
                pass

        thread = threading.Thread(target=work, name=f"{self.service}-worker", daemon=True)
        with self._lock:
            self._threads.add(thread)
            if cancel is not None:
                self._cancels.add(cancel)
        gauge_running.inc()
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads.discard(thread)
                if cancel is not None:
                    self._cancels.discard(cancel)
            gauge_running.dec()
            raise
        return future

    def shutdown(self, wait_s: float = 0.0) -> None:
        """Refuse new jobs, tell running ones to stop, and wait for them at most `wait_s`.

        The threads are daemons: one still running after that does not hold the process
        (SIGTERM ends within the server's grace period whatever a job does)."""
        with self._lock:
            self._closed = True
            cancels = list(self._cancels)
            threads = list(self._threads)
        for event in cancels:
            event.set()
        deadline = time.monotonic() + wait_s
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
