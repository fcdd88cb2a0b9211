"""Streamed RPCs: the opening config message, the stream limiter, and the reader pump."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from parlons.services.common import metrics
from parlons.errors import InvalidArgument, ResourceExhausted

T = TypeVar("T")
_END = object()


async def read_config(request_iterator: AsyncIterator[Any], then: str = "audio chunks") -> Any:
    """The stream's first message's `config`; INVALID_ARGUMENT for an empty stream or
    data sent before the config. Works for every request with a `request` oneof."""
    try:
        first = await anext(request_iterator)
    except StopAsyncIteration:
        raise InvalidArgument("empty stream: send a config message first") from None
    if first.WhichOneof("request") != "config":
        raise InvalidArgument(f"the first message of a stream must be the config, then {then}")
    return first.config


async def in_stream_order(request_iterator: AsyncIterator[Any], then: str) -> AsyncIterator[Any]:
    """The stream's messages, checked for their order: one config first, then only data
    messages (`then`), none empty. The gateway checks this before relaying a stream, so a
    stream its backend would refuse is refused as itself: relayed, the backend's refusal
    can race the gateway's next write, and gRPC then reports a bare INTERNAL."""
    first = True
    async for request in request_iterator:
        kind = request.WhichOneof("request")
        if first:
            if kind != "config":
                raise InvalidArgument(f"the first message of a stream must be the config, then {then}")
            first = False
        elif kind is None:
            raise InvalidArgument(f"empty stream message: after the config, send {then}")
        elif kind == "config":
            raise InvalidArgument(f"config sent twice: a stream takes one config, then {then}")
        yield request
    if first:
        raise InvalidArgument("empty stream: send a config message first")


class StreamLimiter:
    """Count a service's open streams; refuse one over the limit at once.

    `async with limiter.slot():` around a stream. Streams hold a model for minutes, so
    queueing them would only turn overload into silent waits."""

    def __init__(self, service: str, limit: int, what: str = "live streams") -> None:
        self.service = service
        self.limit = limit
        self.what = what
        self.open = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.open >= self.limit:
            metrics.LIVE_STREAMS_REFUSED.labels(self.service).inc()
            raise ResourceExhausted(f"too many {self.what} ({self.limit} open); retry shortly", 2.0)
        self.open += 1
        metrics.ACTIVE_STREAMS.labels(self.service).inc()
        try:
            yield
        finally:
            self.open -= 1
            metrics.ACTIVE_STREAMS.labels(self.service).dec()


class StreamPump(Generic[T]):
    """Read an async iterator in a task of its own into a queue.

    Why: a servicer that reads its client's messages only between two pieces of work
    (a decode, a translation) would stall the client's sends; reading in a task keeps
    them flowing while the consumer works, and the consumer takes everything that
    arrived at once. An error raised while reading reaches the consumer after the items
    read before it. `maxsize` bounds what waits (0 = the source bounds it itself);
    `on_drop` is called on each item never consumed (to cancel work it started).

        async with StreamPump(source) as pump:
            while (batch := await pump.next_batch()) is not None:
                ...
    """

    def __init__(
        self,
        source: AsyncIterator[T],
        *,
        maxsize: int = 0,
        on_drop: Callable[[T], object] | None = None,
    ) -> None:
        self._source = source
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self._on_drop = on_drop
        self._task: asyncio.Task[None] | None = None
        self._held: Any = None  # the end or the error, kept while a batch goes out first
        self._closing = False

    async def __aenter__(self) -> StreamPump[T]:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if self._on_drop is not None and item is not _END and not isinstance(item, BaseException):
                self._on_drop(item)

    async def _read(self) -> None:
        try:
            async for item in self._source:
                try:
                    await self._queue.put(item)
                except asyncio.CancelledError:
                    if self._on_drop is not None:
                        self._on_drop(item)
                    raise
        except asyncio.CancelledError as exc:
            if not self._closing:  # the source itself was cancelled (client gone)
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait(exc)
            raise
        except Exception as exc:
            await self._queue.put(exc)
        else:
            await self._queue.put(_END)

    async def next(self) -> T | None:
        """The next item, None at the end of the source; raises the reader's error."""
        item = self._held if self._held is not None else await self._queue.get()
        self._held = None
        return self._unwrap(item)

    async def next_batch(self) -> list[T] | None:
        """Every item that has arrived (waiting for at least one); None at the end. Items
        read before an error or the end come first: the end is held for the next call."""
        batch: list[T] = []
        item = self._held if self._held is not None else await self._queue.get()
        self._held = None
        while item is not _END and not isinstance(item, BaseException):
            batch.append(item)
            if self._queue.empty():
                return batch
            item = self._queue.get_nowait()
        if batch:
            self._held = item
            return batch
        self._unwrap(item)
        return None

    def _unwrap(self, item: Any) -> T | None:
        if item is _END:
            self._held = _END  # every later call sees the end too
            return None
        if isinstance(item, BaseException):
            self._held = _END  # raised once; later calls see the end
            raise item
        return item  # type: ignore[no-any-return]
