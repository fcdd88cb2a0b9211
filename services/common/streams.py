"""The opening of every streamed RPC: one config message first, then data only."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from parlons.services.common import metrics
from parlons.services.common.errors import InvalidArgument, ResourceExhausted


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
            raise ResourceExhausted(f"too many {self.what} ({self.limit} open); retry shortly", 2.0)
        self.open += 1
        metrics.ACTIVE_STREAMS.labels(self.service).inc()
        try:
            yield
        finally:
            self.open -= 1
            metrics.ACTIVE_STREAMS.labels(self.service).dec()
