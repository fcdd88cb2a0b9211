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
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from collections.abc import Callable

from parlons.services.common import metrics
from parlons.services.common.errors import ResourceExhausted

T = TypeVar("T")


class WorkQueue:
    """Admission control + a thread pool for blocking model calls."""

    def __init__(self, service: str, max_concurrent: int, max_queued: int) -> None:
        if max_concurrent < 1 or max_queued < 0:
            raise ValueError("max_concurrent must be >= 1 and max_queued >= 0")
        self.service = service
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self._admitted = 0
        self._lock = threading.Lock()
        self._semaphore: asyncio.Semaphore | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix=f"{service}-worker"
        )

    @property
    def admitted(self) -> int:
        return self._admitted

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

        If the awaiting task is cancelled (client gone, deadline) while queued, the job
        never starts. If it is running, `cancel` is set so the job stops at its next
        check, and the slot is held until the thread has really finished, so the model
        never runs more jobs than `max_concurrent`.
        """
        self._admit()
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrent)
        gauge_queue = metrics.QUEUE_DEPTH.labels(self.service)
        gauge_running = metrics.IN_FLIGHT.labels(self.service)
        try:
            gauge_queue.inc()
            try:
                await self._semaphore.acquire()
            finally:
                gauge_queue.dec()
            try:
                gauge_running.inc()
                loop = asyncio.get_running_loop()
                call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
                future = loop.run_in_executor(self._executor, call)
                try:
                    return await asyncio.shield(future)
                except asyncio.CancelledError:
                    if cancel is not None:
                        cancel.set()
                    await asyncio.wait([future])
                    raise
            finally:
                gauge_running.dec()
                self._semaphore.release()
        finally:
            self._release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
