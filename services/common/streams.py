"""The opening of every streamed RPC: one config message first, then data only."""

from __future__ import annotations

from typing import Any, AsyncIterator

from parlons.services.common.errors import InvalidArgument


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
