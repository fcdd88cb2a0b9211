"""Where the quota buckets live: in this process, or in Redis shared by every gateway.

A bucket holds at most one minute of a tenant's allowance, refills continuously and may
go into debt (quotas.py says why). With N gateway replicas each keeping its own buckets,
a tenant gets N times its quota; with `[gateway] quota_redis_url` they all charge the
same buckets, atomically (one Lua script per charge, timed by Redis' own clock, so the
gateways' clocks do not matter).

Redis is asked with its asyncio client, each call bounded by `timeout_s` and never
retried: a slow Redis delays only the calls that charge it, never the event loop (health
checks, tenants without quotas, other streams).

Redis unreachable: a new call gets the configured answer (`quota_redis_failure =
"closed"`, the default: UNAVAILABLE, retry shortly; `"open"`: served as work under way).
Work already under way (an open stream's next chunk, a correction after the work) is
never stopped by it: it is admitted against this gateway's copy of the bucket (the level
Redis last reported, refilled and charged here) and what it costs is kept as owed, then
replayed in Redis when it answers again (`Owed`), so a blip costs the tenant nothing it
should not pay and gives it nothing for free. What is owed lives in this process: a
gateway that stops during an outage loses it. Concurrent streams are leases: a stream holds one for `STREAM_LEASE_S`
and renews it while it lives, so a gateway that crashes (no close) leaves its streams
counted for at most one lease, never for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from collections.abc import Awaitable, Callable

from parlons.errors import Unavailable

log = logging.getLogger("parlons.gateway.quotas")

T = TypeVar("T")


class QuotaStore(Protocol):
    async def take(self, key: str, per_minute: float, amount: float, *, admit: bool,
                   under_way: bool = False) -> float:
        """Charge `amount`; with `admit`, first refuse a bucket in debt and return the
        seconds until it is out of it (nothing charged). 0.0 when charged. `under_way`:
        the work was admitted already (an open stream), an unreachable store must not stop it."""
        ...

    async def open_lease(self, key: str, limit: int) -> tuple[str | None, int]:
        """Hold one of `limit` leases (0: no limit): (token, held now), or (None, held
        now) when all are held. A lease lasts STREAM_LEASE_S unless renewed."""
        ...

    async def renew_lease(self, key: str, token: str) -> None: ...

    async def close_lease(self, key: str, token: str) -> None: ...

    async def held_leases(self, key: str) -> int: ...

    async def close(self) -> None: ...


#: How long a stream's slot lasts without renewal; streams renew every third of it.
STREAM_LEASE_S = 30.0


@dataclass
class DebtBucket:
    """Holds up to `per_minute` units, refills at per_minute/60 a second, may go negative."""

    per_minute: float
    level: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.per_minute

    def _refill(self, now: float) -> None:
        rate = self.per_minute / 60.0
        self.level = min(self.per_minute, self.level + (now - self.stamp) * rate)
        self.stamp = now

    def retry_after_s(self, now: float | None = None) -> float:
        """Seconds until the bucket is out of debt (0 when it is not)."""
        self._refill(time.monotonic() if now is None else now)
        if self.level > 0:
            return 0.0
        return (-self.level + 1e-6) / (self.per_minute / 60.0)

    def charge(self, amount: float) -> None:
        self._refill(time.monotonic())
        self.level -= amount


class MemoryStore:
    """Buckets in this process, charged on the event loop (no await inside a charge, so
    each is atomic without a lock)."""

    def __init__(self) -> None:
        self.buckets: dict[str, DebtBucket] = {}
        self.leases: dict[str, dict[str, float]] = {}

    def bucket(self, key: str, per_minute: float) -> DebtBucket:
        bucket = self.buckets.get(key)
        if bucket is None or bucket.per_minute != per_minute:  # a reloaded tenants file
            bucket = self.buckets[key] = DebtBucket(per_minute)
        return bucket

    def take_now(self, key: str, per_minute: float, amount: float, *, admit: bool) -> float:
        bucket = self.bucket(key, per_minute)
        if admit:
            wait = bucket.retry_after_s()
            if wait > 0:
                return wait
        bucket.charge(amount)
        return 0.0

    async def take(self, key: str, per_minute: float, amount: float, *, admit: bool,
                   under_way: bool = False) -> float:
        return self.take_now(key, per_minute, amount, admit=admit)

    def _live(self, key: str) -> dict[str, float]:
        now = time.monotonic()
        held = self.leases.setdefault(key, {})
        for token in [t for t, expiry in held.items() if expiry <= now]:
            del held[token]
        return held

    async def open_lease(self, key: str, limit: int) -> tuple[str | None, int]:
        held = self._live(key)
        if limit and len(held) >= limit:
            return None, len(held)
        token = uuid.uuid4().hex
        held[token] = time.monotonic() + STREAM_LEASE_S
        return token, len(held)

    async def renew_lease(self, key: str, token: str) -> None:
        self._live(key)[token] = time.monotonic() + STREAM_LEASE_S

    async def close_lease(self, key: str, token: str) -> None:
        self.leases.get(key, {}).pop(token, None)

    async def held_leases(self, key: str) -> int:
        return len(self._live(key))

    async def close(self) -> None:
        pass


# KEYS[1]: the bucket; ARGV: per_minute, amount, admit (1/0), expiry (Redis time after
# which the gateway has given up on this call, 0: none), then what is owed (used while
# Redis was unreachable) as pairs (seconds ago, amount), oldest first: replayed in order,
# refilling between them as the time went, and charged whatever the admission. Returns
# {wait, level, now}, or {'expired', '', now} without a change: a call Redis runs after
# the gateway gave up on it (Redis stopped, then resumed) must not be charged twice, nor
# move the bucket's clock past the owed charges. Numbers travel as strings: Redis turns
# a Lua number it returns into an integer.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expiry = tonumber(ARGV[4])
if expiry > 0 and now > expiry then
  return {'expired', '', tostring(now)}
end
local per = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local rate = per / 60
local h = redis.call('HMGET', KEYS[1], 'level', 'stamp', 'per')
local level = tonumber(h[1])
local stamp = tonumber(h[2])
if level == nil or tonumber(h[3]) ~= per then
  level = per
  stamp = now
  if #ARGV >= 6 then
    stamp = now - tonumber(ARGV[5])
  end
end
for i = 5, #ARGV - 1, 2 do
  local at = now - tonumber(ARGV[i])
  if at > stamp then
    level = math.min(per, level + (at - stamp) * rate)
    stamp = at
  end
  level = level - tonumber(ARGV[i + 1])
end
level = math.min(per, level + math.max(0, now - stamp) * rate)
local wait = 0
if ARGV[3] == '1' and level <= 0 then
  wait = (-level + 0.000001) / rate
else
  level = level - amount
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'stamp', tostring(now), 'per', ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(60 + math.max(0, -level) / rate) + 60)
return {tostring(wait), tostring(level), tostring(now)}
"""


# KEYS[1]: the tenant's leases (a sorted set, expiry as score); ARGV: limit, lease
# seconds, token. Expired leases (a crashed gateway's) are dropped before counting.
_OPEN_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[1])
if limit > 0 and held >= limit then
  return {0, held}
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(lease) + 60)
return {1, held + 1}
"""

_RENEW_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(lease) + 60)
return 1
"""

_HELD_LEASES = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""

RETRY_AFTER_FAILURE_S = 5.0
#: At most this many seconds of owed charges are kept apart; older ones are merged into
#: the next (charged a little later: never less).
MAX_OWED_SECONDS = 600


class StoreDown(Exception):
    """Redis did not answer (refused, timed out, broke): the caller falls back."""


@dataclass
class Owed:
    """What one bucket was charged here while Redis was unreachable, by the second it was
    used in. Replayed in order when Redis is back, so that the bucket refills between the
    charges as it would have: charged all at once, a long outage would put a tenant that
    kept to its rate deep in debt (the refill meanwhile lost to the bucket's cap)."""

    per_minute: float
    by_second: dict[int, float] = field(default_factory=dict)

    def add(self, amount: float, at: float) -> None:
        second = int(at)
        self.by_second[second] = self.by_second.get(second, 0.0) + amount
        if len(self.by_second) > MAX_OWED_SECONDS:
            oldest, next_one = sorted(self.by_second)[:2]
            self.by_second[next_one] += self.by_second.pop(oldest)

    def merge(self, other: Owed) -> None:
        for second, amount in sorted(other.by_second.items()):
            self.add(amount, second)

    @property
    def total(self) -> float:
        return sum(self.by_second.values())

    def args(self, now: float) -> list[str]:
        """(seconds ago, amount) pairs, oldest first, each at the end of its second."""
        return [value for second in sorted(self.by_second)
                for value in (repr(max(now - (second + 1), 0.0)), repr(self.by_second[second]))]


class RedisStore:
    """Buckets in Redis, shared by every gateway configured with the same URL."""

    def __init__(self, url: str, *, failure: str = "closed", timeout_s: float = 0.5,
                 prefix: str = "parlons:quota:") -> None:
        from redis import asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError
        from redis.retry import Retry

        if failure not in ("closed", "open"):
            raise ValueError('quota_redis_failure must be "closed" or "open"')
        # No retry: a call that fails falls back at once (a retry would double the wait).
        # No CLIENT SETINFO: two round trips less for each new connection.
        self.client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                              retry=Retry(NoBackoff(), 0), lib_name=None, lib_version=None)
        self.script = self.client.register_script(_TAKE)
        self.open_script = self.client.register_script(_OPEN_LEASE)
        self.renew_script = self.client.register_script(_RENEW_LEASE)
        self.held_script = self.client.register_script(_HELD_LEASES)
        self.failure = failure
        self.timeout_s = timeout_s
        self.prefix = prefix
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._warned = 0.0
        # After a failure Redis is not asked again for a few seconds: a live stream charges
        # every 100 ms and must not wait for a timeout each time.
        self._down_until = 0.0
        # This gateway's copy of each bucket: the level Redis last reported, refilled and
        # charged here while Redis is unreachable; and what is owed to Redis meanwhile.
        self._local = MemoryStore()
        self._owed: dict[str, Owed] = {}
        self._settling: asyncio.Task[None] | None = None
        self._redis_clock: float | None = None  # Redis' TIME minus time.monotonic(), once known

    @property
    def owed(self) -> dict[str, float]:
        """Amounts charged here while Redis was unreachable, not yet charged there."""
        return {key: owed.total for key, owed in self._owed.items()}

    async def take(self, key: str, per_minute: float, amount: float, *, admit: bool,
                   under_way: bool = False) -> float:
        if self._reachable():
            owed = self._owed.pop(key, None)
            try:
                wait, level = await self._charge(key, per_minute, amount, admit, owed)
            except StoreDown:
                self._owe_again(key, owed)
            else:
                self._mirror(key, per_minute, level)
                self._settle_owed_soon()
                return wait
        return self._take_here(key, per_minute, amount, admit=admit, under_way=under_way)

    async def _charge(self, key: str, per_minute: float, amount: float, admit: bool,
                      owed: Owed | None) -> tuple[float, float]:
        """The charge script: (wait, level). A call Redis would run after this gateway
        gave up on it is void there (its expiry), so that failing it here is the truth."""
        now = time.monotonic()
        expiry = 0.0 if self._redis_clock is None else now + self._redis_clock + self.timeout_s
        pending = owed.args(now) if owed is not None else []
        wait, level, redis_now = await self._ask(self.script(
            keys=[self.prefix + key], args=[repr(per_minute), repr(amount), int(admit), repr(expiry), *pending]))
        self._redis_clock = float(redis_now) - time.monotonic()
        if wait == b"expired":  # Redis ran it after our timeout: as slow as a timeout
            self._down("late")
            raise StoreDown("late")
        return float(wait), float(level)

    def _take_here(self, key: str, per_minute: float, amount: float, *, admit: bool, under_way: bool) -> float:
        """Redis unreachable: a new call gets the configured answer; work under way (and
        corrections) is charged to this gateway's copy of the bucket and owed to Redis."""
        if admit and not under_way:
            self._unreachable()
        wait = self._local.take_now(key, per_minute, amount, admit=admit)
        if wait == 0.0 and amount:
            self._owed.setdefault(key, Owed(per_minute)).add(amount, time.monotonic())
        return wait

    def _mirror(self, key: str, per_minute: float, level: float) -> None:
        bucket = self._local.bucket(key, per_minute)
        bucket.level, bucket.stamp = level, time.monotonic()

    def _owe_again(self, key: str, owed: Owed | None) -> None:
        """A settlement that failed: what it carried is owed again."""
        if owed is not None:
            self._owed.setdefault(key, Owed(owed.per_minute)).merge(owed)

    def _settle_owed_soon(self) -> None:
        """Redis answers again: charge what is owed, in the background (one call per
        bucket), so that no caller waits for another tenant's debts."""
        if self._owed and (self._settling is None or self._settling.done()):
            self._settling = asyncio.create_task(self._settle_owed())

    async def _settle_owed(self) -> None:
        for key in list(self._owed):
            if not self._reachable() or key not in self._owed:
                continue
            owed = self._owed.pop(key)
            try:
                await self._charge(key, owed.per_minute, 0.0, False, owed)
            except StoreDown:
                self._owe_again(key, owed)

    async def open_lease(self, key: str, limit: int) -> tuple[str | None, int]:
        token = uuid.uuid4().hex
        if self._reachable():
            try:
                granted, held = await self._ask(self.open_script(
                    keys=[self.prefix + key], args=[limit, repr(STREAM_LEASE_S), token]))
            except StoreDown:
                pass
            else:
                return (token if int(granted) else None), int(held)
        self._unreachable()
        return token, 0  # "open": served, not counted

    async def renew_lease(self, key: str, token: str) -> None:
        await self._quietly(lambda: self.renew_script(keys=[self.prefix + key], args=[repr(STREAM_LEASE_S), token]))
        self._settle_owed_soon()

    async def close_lease(self, key: str, token: str) -> None:
        await self._quietly(lambda: self.client.zrem(self.prefix + key, token))

    async def held_leases(self, key: str) -> int:
        if self._reachable():
            try:
                return int(await self._ask(self.held_script(keys=[self.prefix + key])))
            except StoreDown:
                pass
        raise Unavailable("the quota store is unreachable; retry shortly")

    async def close(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
            await asyncio.gather(self._settling, return_exceptions=True)
        await self.client.aclose()

    def _reachable(self) -> bool:
        return time.monotonic() >= self._down_until

    async def _ask(self, command: Awaitable[T]) -> T:
        """One Redis call, bounded by `timeout_s` whatever Redis does; any failure marks
        Redis down for RETRY_AFTER_FAILURE_S and is StoreDown."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await command
        except self._errors as exc:
            self._down(type(exc).__name__)
            raise StoreDown(type(exc).__name__) from exc

    def _down(self, why: str) -> None:
        self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_S
        self._warn(why)

    async def _quietly(self, command: Callable[[], Awaitable[Any]]) -> None:
        """Renewals and closes never fail a stream: a lost one expires with its lease."""
        if self._reachable():
            try:
                await self._ask(command())
            except StoreDown:
                pass

    def _warn(self, why: str) -> None:
        now = time.monotonic()
        if now - self._warned > 60:
            self._warned = now
            log.warning("quota store unreachable (%s): open streams carry on, charged when it is back; "
                        "new calls are %s", why, "served" if self.failure == "open" else "refused")

    def _unreachable(self) -> None:
        """The configured answer to a new call while Redis is unreachable."""
        if self.failure == "closed":
            raise Unavailable("the quota store is unreachable; retry shortly")
