"""Micro-batching: sentences from concurrent requests share one `translate_batch` call.

A CTranslate2 call costs nearly the same for 1 sentence as for 30 on a CPU (and far less
per sentence on a GPU), so the batcher holds each sentence a few milliseconds (counted
from the oldest waiting sentence) to let others join, then sends up to `max_batch_tokens`
source tokens in one call. While a call runs in the worker thread, new sentences queue
up and go together in the next call: the busier the service, the bigger the batches.

Asyncio-native: each sentence has an `asyncio.Future`; a caller that is cancelled (client
gone, deadline passed) cancels its futures, and cancelled sentences are dropped before
the next batch is formed. The blocking call runs in a dedicated thread so the event
loop (gRPC) stays responsive. Admission is bounded: over `max_pending` sentences waiting,
new work is refused at once with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from collections.abc import Callable, Hashable, Sequence

from parlons.services.common import metrics
from parlons.errors import ParlonsError, ResourceExhausted, Unavailable

log = logging.getLogger("parlons.translation.batcher")


@dataclass(frozen=True)
class BatchItem:
    """One sentence, already tokenized for the model."""

    tokens: list[str]
    target_prefix: list[str] | None = None
    #: Items are batched only with items of the same key (e.g. beam size).
    options: Hashable = None


#: (source tokens, target prefixes, options) -> output tokens, in order. Blocking.
RunBatch = Callable[[list[list[str]], list[list[str] | None], Hashable], list[list[str]]]


@dataclass
class _Entry:
    item: BatchItem
    future: asyncio.Future[list[str]]
    enqueued: float


@dataclass
class BatcherStats:
    batches: int = 0
    items: int = 0
    dropped_cancelled: int = 0
    largest_batch: int = 0
    sizes: list[int] = field(default_factory=list)


class MicroBatcher:
    def __init__(
        self,
        run: RunBatch,
        *,
        max_wait_ms: float = 5.0,
        max_batch_tokens: int = 4096,
        max_pending: int = 20_000,
        max_in_flight: int = 1,
        name: str = "translation",
    ) -> None:
        if max_batch_tokens < 1 or max_pending < 1 or max_in_flight < 1 or max_wait_ms < 0:
            raise ValueError("batcher limits must be positive")
        self._run = run
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_batch_tokens = max_batch_tokens
        self.max_pending = max_pending
        self.name = name
        self.stats = BatcherStats()
        self._queue: deque[_Entry] = deque()
        self._queued_tokens = 0
        self._executor = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix=f"{name}-batch")
        self._max_in_flight = max_in_flight
        self._slots: asyncio.Semaphore | None = None
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def translate(self, items: Sequence[BatchItem]) -> list[list[str]]:
        """Output tokens for each item, in order; waits for the batches they land in."""
        if not items:
            return []
        if self._closed:
            raise Unavailable("the translation model is shutting down")
        if len(self._queue) + len(items) > self.max_pending:
            metrics.REJECTED.labels(self.name).inc()
            raise ResourceExhausted(
                f"translation is busy ({len(self._queue)} sentences waiting); retry shortly or use another replica",
                retry_after_s=1.0,
            )
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        futures: list[asyncio.Future[list[str]]] = []
        for item in items:
            future: asyncio.Future[list[str]] = loop.create_future()
            self._queue.append(_Entry(item, future, now))
            self._queued_tokens += len(item.tokens)
            futures.append(future)
        metrics.QUEUE_DEPTH.labels(self.name).set(len(self._queue))
        assert self._wake is not None and self._full is not None
        self._wake.set()
        if self._queued_tokens >= self.max_batch_tokens:
            self._full.set()
        # gather cancels every future if the caller is cancelled: they are then skipped.
        return list(await asyncio.gather(*futures))

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop_ref is not loop:
            # First use, or a new event loop (tests, CLI runs): bind fresh primitives to it.
            self._loop_ref = loop
            self._slots = asyncio.Semaphore(self._max_in_flight)
            self._wake = asyncio.Event()
            self._full = asyncio.Event()
            self._worker = asyncio.create_task(self._loop(), name=f"{self.name}-batcher")

    def _drop_cancelled(self) -> None:
        while self._queue and self._queue[0].future.done():
            entry = self._queue.popleft()
            self._queued_tokens -= len(entry.item.tokens)
            self.stats.dropped_cancelled += 1

    async def _loop(self) -> None:
        assert self._slots is not None and self._wake is not None and self._full is not None
        while not self._closed:
            self._drop_cancelled()
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._slots.acquire()
            try:
                # The window counts from the oldest waiting sentence: a sentence that
                # already waited for a busy model is not held any longer.
                self._drop_cancelled()
                if self._queue:
                    remaining = self._queue[0].enqueued + self.max_wait_s - time.monotonic()
                    if remaining > 0 and self._queued_tokens < self.max_batch_tokens:
                        self._full.clear()
                        try:
                            await asyncio.wait_for(self._full.wait(), remaining)
                        except TimeoutError:
                            pass
                batch = self._take()
            except BaseException:
                self._slots.release()
                raise
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _take(self) -> list[_Entry]:
        """Up to max_batch_tokens of live sentences sharing the oldest one's options."""
        self._drop_cancelled()
        if not self._queue:
            return []
        key = self._queue[0].item.options
        batch: list[_Entry] = []
        kept: deque[_Entry] = deque()
        tokens = 0
        full = False
        for entry in self._queue:
            size = len(entry.item.tokens)
            if entry.future.done():
                self._queued_tokens -= size
                self.stats.dropped_cancelled += 1
            elif full or entry.item.options != key:
                kept.append(entry)
            elif batch and tokens + size > self.max_batch_tokens:
                full = True
                kept.append(entry)
            else:
                batch.append(entry)
                tokens += size
                self._queued_tokens -= size
        self._queue = kept
        metrics.QUEUE_DEPTH.labels(self.name).set(len(self._queue))
        return batch

    async def _execute(self, batch: list[_Entry]) -> None:
        assert self._slots is not None
        try:
            # Last chance to skip callers that left while the batch was forming.
            live = [e for e in batch if not e.future.done()]
            self.stats.dropped_cancelled += len(batch) - len(live)
            if not live:
                return
            self.stats.batches += 1
            self.stats.items += len(live)
            self.stats.largest_batch = max(self.stats.largest_batch, len(live))
            if len(self.stats.sizes) < 100_000:
                self.stats.sizes.append(len(live))
            metrics.BATCH_SIZE.labels(self.name).observe(len(live))
            loop = asyncio.get_running_loop()
            try:
                outputs = await loop.run_in_executor(
                    self._executor,
                    self._run,
                    [e.item.tokens for e in live],
                    [e.item.target_prefix for e in live],
                    live[0].item.options,
                )
            except ParlonsError as exc:
                for e in live:
                    if not e.future.done():
                        e.future.set_exception(exc)
                return
            except Exception as exc:
                log.exception("translate_batch failed")
                for e in live:
                    if not e.future.done():
                        e.future.set_exception(Unavailable(f"the translation model failed: {exc}"))
                return
            for e, out in zip(live, outputs):
                if not e.future.done():
                    e.future.set_result(out)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Stop the worker, fail what is still queued, wait for the running batch."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
        while self._queue:
            entry = self._queue.popleft()
            if not entry.future.done():
                entry.future.set_exception(Unavailable("the translation model was shut down"))
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
