"""Where the quota buckets live: in this process, or in Redis shared by every gateway.

A bucket holds at most one minute of a tenant's allowance, refills continuously and may
go into debt (quotas.py says why). With N gateway replicas each keeping its own buckets,
a tenant gets N times its quota; with `[gateway] quota_redis_url` they all charge the
same buckets, atomically (one Lua script per charge, timed by Redis' own clock, so the
gateways' clocks do not matter).

Redis unreachable: `quota_redis_failure = "closed"` (the default) refuses the call with
UNAVAILABLE (retry shortly), `"open"` serves it uncharged and logs once a minute.
Concurrent streams are leases: a stream holds one for `STREAM_LEASE_S` and renews it
while it lives, so a gateway that crashes (no close) leaves its streams counted for at
most one lease, never for ever.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol
from collections.abc import Callable

from parlons.services.common.errors import Unavailable

log = logging.getLogger("parlons.gateway.quotas")


class QuotaStore(Protocol):
    def take(self, key: str, per_minute: float, amount: float, *, admit: bool) -> float:
        """Charge `amount`; with `admit`, first refuse a bucket in debt and return the
        seconds until it is out of it (nothing charged). 0.0 when charged."""
        ...

    def open_lease(self, key: str, limit: int) -> tuple[str | None, int]:
        """Hold one of `limit` leases (0: no limit): (token, held now), or (None, held
        now) when all are held. A lease lasts STREAM_LEASE_S unless renewed."""
        ...

    def renew_lease(self, key: str, token: str) -> None: ...

    def close_lease(self, key: str, token: str) -> None: ...

    def held_leases(self, key: str) -> int: ...


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
    """Buckets in this process (the caller holds its lock)."""

    def __init__(self) -> None:
        self.buckets: dict[str, DebtBucket] = {}
        self.leases: dict[str, dict[str, float]] = {}

    def bucket(self, key: str, per_minute: float) -> DebtBucket:
        bucket = self.buckets.get(key)
        if bucket is None or bucket.per_minute != per_minute:  # a reloaded tenants file
            bucket = self.buckets[key] = DebtBucket(per_minute)
        return bucket

    def take(self, key: str, per_minute: float, amount: float, *, admit: bool) -> float:
        bucket = self.bucket(key, per_minute)
        if admit:
            wait = bucket.retry_after_s()
            if wait > 0:
                return wait
        bucket.charge(amount)
        return 0.0

    def _live(self, key: str) -> dict[str, float]:
        now = time.monotonic()
        held = self.leases.setdefault(key, {})
        for token in [t for t, expiry in held.items() if expiry <= now]:
            del held[token]
        return held

    def open_lease(self, key: str, limit: int) -> tuple[str | None, int]:
        held = self._live(key)
        if limit and len(held) >= limit:
            return None, len(held)
        token = uuid.uuid4().hex
        held[token] = time.monotonic() + STREAM_LEASE_S
        return token, len(held)

    def renew_lease(self, key: str, token: str) -> None:
        self._live(key)[token] = time.monotonic() + STREAM_LEASE_S

    def close_lease(self, key: str, token: str) -> None:
        self.leases.get(key, {}).pop(token, None)

    def held_leases(self, key: str) -> int:
        return len(self._live(key))


# KEYS[1]: the bucket; ARGV: per_minute, amount, admit (1/0). Numbers travel as strings:
# Redis turns a Lua number it returns into an integer.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local per = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local rate = per / 60
local h = redis.call('HMGET', KEYS[1], 'level', 'stamp', 'per')
local level = tonumber(h[1])
local stamp = tonumber(h[2])
if level == nil or tonumber(h[3]) ~= per then
  level = per
  stamp = now
end
level = math.min(per, level + (now - stamp) * rate)
local wait = 0
if ARGV[3] == '1' and level <= 0 then
  wait = (-level + 0.000001) / rate
else
  level = level - amount
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'stamp', tostring(now), 'per', ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(60 + math.max(0, -level) / rate) + 60)
return tostring(wait)
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


class RedisStore:
    """Buckets in Redis, shared by every gateway configured with the same URL."""

    def __init__(self, url: str, *, failure: str = "closed", timeout_s: float = 0.5,
                 prefix: str = "parlons:quota:") -> None:
        import redis

        if failure not in ("closed", "open"):
            raise ValueError('quota_redis_failure must be "closed" or "open"')
        self.client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.script = self.client.register_script(_TAKE)
        self.open_script = self.client.register_script(_OPEN_LEASE)
        self.renew_script = self.client.register_script(_RENEW_LEASE)
        self.held_script = self.client.register_script(_HELD_LEASES)
        self.failure = failure
        self.prefix = prefix
        self._errors = redis.exceptions.RedisError
        self._warned = 0.0
        # After a failure Redis is not asked again for a few seconds: a live stream charges
        # every 100 ms and must not wait for a timeout each time.
        self._down_until = 0.0

    def take(self, key: str, per_minute: float, amount: float, *, admit: bool) -> float:
        if time.monotonic() < self._down_until:
            return self._unreachable("still down")
        try:
            return float(self.script(keys=[self.prefix + key], args=[repr(per_minute), repr(amount), int(admit)]))
        except self._errors as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_S
            return self._unreachable(type(exc).__name__)

    def open_lease(self, key: str, limit: int) -> tuple[str | None, int]:
        token = uuid.uuid4().hex
        if time.monotonic() < self._down_until:
            self._unreachable("still down")
            return token, 0  # fail open: served, not counted
        try:
            granted, held = self.open_script(keys=[self.prefix + key], args=[limit, repr(STREAM_LEASE_S), token])
        except self._errors as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_S
            self._unreachable(type(exc).__name__)
            return token, 0
        return (token if int(granted) else None), int(held)

    def renew_lease(self, key: str, token: str) -> None:
        self._quietly(lambda: self.renew_script(keys=[self.prefix + key], args=[repr(STREAM_LEASE_S), token]))

    def close_lease(self, key: str, token: str) -> None:
        self._quietly(lambda: self.client.zrem(self.prefix + key, token))

    def held_leases(self, key: str) -> int:
        return int(self.held_script(keys=[self.prefix + key]))

    def _quietly(self, action: Callable[[], object]) -> None:
        """Renewals and closes never fail a stream: a lost one expires with its lease."""
        if time.monotonic() < self._down_until:
            return
        try:
            action()
        except self._errors as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_S
            log.warning("quota store unreachable (%s): a stream lease will expire on its own", type(exc).__name__)

    def _unreachable(self, why: str) -> float:
        if self.failure == "open":
            now = time.monotonic()
            if now - self._warned > 60:
                self._warned = now
                log.warning("quota store unreachable (%s): calls are served without quota", why)
            return 0.0
        raise Unavailable("the quota store is unreachable; retry shortly")
