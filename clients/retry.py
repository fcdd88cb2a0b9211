"""Retries with backoff for idempotent calls (a transcription, a translation, a listing):
a server restarting or a replica gone answers UNAVAILABLE, and the same request sent
again a little later is served. Streams are never retried (their audio is gone).

gRPC's own retry policy cannot serve uploads read from a file (it replays from a small
buffer), so one small loop serves every idempotent call, sync and asyncio alike, and
waits what the server asked (google.rpc.RetryInfo) when it said.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TypeVar
from collections.abc import Awaitable, Callable

import grpc

from parlons.clients.errors import ParlonsRpcError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # 1 = no retry
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    multiplier: float = 2.0
    retry_on: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})
    # Told of each retry (the error, the wait): a batch run counts and shows them.
    on_retry: Callable[[ParlonsRpcError, float], None] | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay_s(self, attempt: int, error: ParlonsRpcError) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up."""
        if error.status not in self.retry_on or attempt >= self.attempts:
            return None
        backoff = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        backoff *= random.uniform(0.8, 1.2)  # replicas restarted together are not hit together
        return max(backoff, error.retry_after_s or 0.0)


NO_RETRY = RetryPolicy(attempts=1)


def call_with_retries(call: Callable[[], T], policy: RetryPolicy) -> T:
    attempt = 1
    while True:
        try:
            return call()
        except grpc.RpcError as raw:
            delay = _retry_delay(raw, attempt, policy)
        time.sleep(delay)
        attempt += 1


async def acall_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    attempt = 1
    while True:
        try:
            return await call()
        except grpc.RpcError as raw:
            delay = _retry_delay(raw, attempt, policy)
        await asyncio.sleep(delay)
        attempt += 1


def _retry_delay(raw: grpc.RpcError, attempt: int, policy: RetryPolicy) -> float:
    """How long to wait before the next attempt (the sync and asyncio loops share it),
    after telling `on_retry`; raises the call's error when it is not to be retried."""
    error = ParlonsRpcError.from_grpc(raw)
    delay = policy.delay_s(attempt, error)
    if delay is None:
        raise error from None
    if policy.on_retry is not None:
        policy.on_retry(error, delay)
    return delay
