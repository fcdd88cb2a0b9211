"""Per-tenant quotas: audio seconds and characters per minute, concurrent streams.

Rates are token buckets that may go into debt: a bucket holds at most one minute of the
tenant's allowance and refills continuously. A request is admitted while the bucket is
not in debt and is charged in full, so one 2-hour recording from a tenant allowed 10
minutes a minute is served, and the tenant then waits until the debt is repaid. Refusing
any file longer than a minute's allowance would make archives impossible to transcribe;
charging only after the work would let a burst of parallel requests through for free.
Audio is charged before the work from the file's declared duration, then corrected with
the duration the service measured.

Counters live in this gateway process; N gateway replicas each enforce the quota, which
an operator accounts for when sizing them (docs/gateway.md).
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field

import av
from prometheus_client import Counter

from parlons.services.common.audio import ALLOWED_DEMUXERS
from parlons.services.common.audio_request import raw_format
from parlons.services.common.errors import ResourceExhausted
from parlons.services.gateway.tenants import Tenant
from parlons.v1 import audio_pb2


QUOTA_REFUSALS = Counter(
    "parlons_gateway_quota_refusals_total", "Calls refused for a tenant's quota", ["tenant", "quota"]
)


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


@dataclass
class _TenantState:
    audio: DebtBucket | None = None
    characters: DebtBucket | None = None
    streams: int = 0


class QuotaManager:
    """Admission and accounting for every tenant of one gateway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _TenantState] = {}

    def _state(self, tenant: Tenant) -> _TenantState:
        state = self._states.setdefault(tenant.name, _TenantState())
        q = tenant.quotas
        # Follow quota changes from a reloaded tenants file.
        if q.audio_seconds_per_minute <= 0:
            state.audio = None
        elif state.audio is None or state.audio.per_minute != q.audio_seconds_per_minute:
            state.audio = DebtBucket(q.audio_seconds_per_minute)
        if q.characters_per_minute <= 0:
            state.characters = None
        elif state.characters is None or state.characters.per_minute != q.characters_per_minute:
            state.characters = DebtBucket(float(q.characters_per_minute))
        return state

    def _admit(self, tenant: Tenant, bucket: DebtBucket | None, what: str, amount: float) -> None:
        if bucket is None:
            return
        wait = bucket.retry_after_s()
        if wait > 0:
            QUOTA_REFUSALS.labels(tenant.name, what.replace(" ", "_")).inc()
            raise ResourceExhausted(
                f"tenant {tenant.name!r} is over its quota of {bucket.per_minute:g} {what} per minute; "
                f"retry in {wait:.1f} s",
                retry_after_s=wait,
            )
        bucket.charge(amount)

    def check_audio(self, tenant: Tenant) -> None:
        """Refuse now a tenant in audio debt (an upload about to be read); charges nothing."""
        with self._lock:
            self._admit(tenant, self._state(tenant).audio, "audio seconds", 0.0)

    def charge_audio(self, tenant: Tenant, seconds: float) -> None:
        """Admit (unless in debt) and charge audio seconds."""
        with self._lock:
            self._admit(tenant, self._state(tenant).audio, "audio seconds", max(seconds, 0.0))

    def adjust_audio(self, tenant: Tenant, delta_s: float) -> None:
        """Correct an earlier charge (measured duration minus estimate); never refuses."""
        with self._lock:
            bucket = self._state(tenant).audio
            if bucket is not None and delta_s:
                bucket.charge(delta_s)

    def charge_characters(self, tenant: Tenant, characters: int) -> None:
        with self._lock:
            self._admit(tenant, self._state(tenant).characters, "characters", float(max(characters, 0)))

    def adjust_characters(self, tenant: Tenant, delta: int) -> None:
        with self._lock:
            bucket = self._state(tenant).characters
            if bucket is not None and delta:
                bucket.charge(float(delta))

    def stream(self, tenant: Tenant) -> "StreamSlot":
        return StreamSlot(self, tenant)

    def _open_stream(self, tenant: Tenant) -> None:
        with self._lock:
            state = self._state(tenant)
            limit = tenant.quotas.concurrent_streams
            if limit and state.streams >= limit:
                QUOTA_REFUSALS.labels(tenant.name, "concurrent_streams").inc()
                raise ResourceExhausted(
                    f"tenant {tenant.name!r} already has {state.streams} live stream(s) open, its limit; "
                    "close one or retry later",
                    retry_after_s=5.0,
                )
            state.streams += 1

    def _close_stream(self, tenant: Tenant) -> None:
        with self._lock:
            state = self._states.get(tenant.name)
            if state is not None and state.streams > 0:
                state.streams -= 1

    def open_streams(self, tenant_name: str) -> int:
        state = self._states.get(tenant_name)
        return state.streams if state else 0


class StreamSlot:
    """`async with quotas.stream(tenant):` holds one of the tenant's concurrent streams."""

    def __init__(self, manager: QuotaManager, tenant: Tenant) -> None:
        self._manager = manager
        self._tenant = tenant

    async def __aenter__(self) -> None:
        self._manager._open_stream(self._tenant)

    async def __aexit__(self, *exc: object) -> None:
        self._manager._close_stream(self._tenant)


def estimate_audio_seconds(data: bytes, config: audio_pb2.AudioConfig) -> float | None:
    """Duration of the audio from its format alone (no decoding); None when unknown.

    Raw PCM: bytes / (rate x channels x sample size). Containers: the header's duration,
    read with the same demuxer whitelist as the decoder (so probing opens nothing else).
    """
    try:
        fmt = raw_format(config)
    except Exception:  # noqa: BLE001 - the backend reports bad configs precisely
        return None
    if fmt is not None:
        return len(data) / fmt.frame_bytes / fmt.sample_rate
    try:
        with av.open(
            io.BytesIO(data), mode="r", metadata_errors="ignore",
            options={"format_whitelist": ",".join(ALLOWED_DEMUXERS)},
        ) as container:
            if container.duration is not None and container.duration > 0:
                return container.duration / 1_000_000
            for stream in container.streams.audio:
                if stream.duration and stream.time_base:
                    return float(stream.duration * stream.time_base)
    except Exception:  # noqa: BLE001 - not audio we can probe: charged after the work
        return None
    return None


def seconds_in_stream_chunk(data: bytes, config: audio_pb2.AudioConfig) -> float:
    """Seconds of raw PCM in a live chunk (live streams are raw: see audio_request)."""
    fmt = raw_format(config)
    return 0.0 if fmt is None else len(data) / fmt.frame_bytes / fmt.sample_rate
