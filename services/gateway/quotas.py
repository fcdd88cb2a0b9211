"""Per-tenant quotas: audio seconds and characters per minute, concurrent streams.

Rates are token buckets that may go into debt: a bucket holds at most one minute of the
tenant's allowance and refills continuously. A request is admitted while the bucket is
not in debt and is charged in full, so one 2-hour recording from a tenant allowed 10
minutes a minute is served, and the tenant then waits until the debt is repaid. Refusing
any file longer than a minute's allowance would make archives impossible to transcribe;
charging only after the work would let a burst of parallel requests through for free.
Audio is charged before the work from the file's declared duration, then corrected with
the duration the service measured.

The buckets and the concurrent-stream leases live in this gateway process, or in Redis
shared by every gateway replica (quota_store.py).
"""

from __future__ import annotations

import asyncio
import io
import threading

import av
from prometheus_client import Counter

from parlons.services.common.audio import ALLOWED_DEMUXERS
from parlons.services.common.audio_request import raw_format
from parlons.services.common.errors import ResourceExhausted
from parlons.services.gateway.quota_store import STREAM_LEASE_S, MemoryStore, QuotaStore
from parlons.services.gateway.tenants import Tenant
from parlons.v1 import audio_pb2


QUOTA_REFUSALS = Counter(
    "parlons_gateway_quota_refusals_total", "Calls refused for a tenant's quota", ["tenant", "quota"]
)


class QuotaManager:
    """Admission and accounting for every tenant of one gateway; the rate buckets live
    in `store` (this process by default, Redis to share them between gateways)."""

    def __init__(self, store: QuotaStore | None = None) -> None:
        self._lock = threading.Lock()
        self.store: QuotaStore = store or MemoryStore()

    def _take(self, tenant: Tenant, what: str, per_minute: float, amount: float, *, admit: bool) -> None:
        if per_minute <= 0 or (not admit and not amount):
            return
        key = f"{tenant.name}:{what.split()[0]}"
        with self._lock:
            wait = self.store.take(key, float(per_minute), amount, admit=admit)
        if wait > 0:
            QUOTA_REFUSALS.labels(tenant.name, what.replace(" ", "_")).inc()
            raise ResourceExhausted(
                f"tenant {tenant.name!r} is over its quota of {per_minute:g} {what} per minute; "
                f"retry in {wait:.1f} s",
                retry_after_s=wait,
            )

    def check_audio(self, tenant: Tenant) -> None:
        """Refuse now a tenant in audio debt (an upload about to be read); charges nothing."""
        self._take(tenant, "audio seconds", tenant.quotas.audio_seconds_per_minute, 0.0, admit=True)

    def charge_audio(self, tenant: Tenant, seconds: float) -> None:
        """Admit (unless in debt) and charge audio seconds."""
        self._take(tenant, "audio seconds", tenant.quotas.audio_seconds_per_minute, max(seconds, 0.0), admit=True)

    def adjust_audio(self, tenant: Tenant, delta_s: float) -> None:
        """Correct an earlier charge (measured duration minus estimate); never refuses."""
        self._take(tenant, "audio seconds", tenant.quotas.audio_seconds_per_minute, delta_s, admit=False)

    def charge_characters(self, tenant: Tenant, characters: int) -> None:
        self._take(tenant, "characters", tenant.quotas.characters_per_minute, float(max(characters, 0)), admit=True)

    def adjust_characters(self, tenant: Tenant, delta: int) -> None:
        self._take(tenant, "characters", tenant.quotas.characters_per_minute, float(delta), admit=False)

    def stream(self, tenant: Tenant) -> StreamSlot:
        return StreamSlot(self, tenant)

    def _open_stream(self, tenant: Tenant) -> str:
        limit = tenant.quotas.concurrent_streams
        with self._lock:
            token, held = self.store.open_lease(_streams_key(tenant.name), limit)
        if token is None:
            QUOTA_REFUSALS.labels(tenant.name, "concurrent_streams").inc()
            raise ResourceExhausted(
                f"tenant {tenant.name!r} already has {held} live stream(s) open, its limit; "
                "close one or retry later",
                retry_after_s=5.0,
            )
        return token

    def _renew_stream(self, tenant: Tenant, token: str) -> None:
        with self._lock:
            self.store.renew_lease(_streams_key(tenant.name), token)

    def _close_stream(self, tenant: Tenant, token: str) -> None:
        with self._lock:
            self.store.close_lease(_streams_key(tenant.name), token)

    def open_streams(self, tenant_name: str) -> int:
        """Streams the tenant holds now, on every gateway sharing the store."""
        with self._lock:
            return self.store.held_leases(_streams_key(tenant_name))


def _streams_key(tenant_name: str) -> str:
    return f"{tenant_name}:streams"


class StreamSlot:
    """`async with quotas.stream(tenant):` holds one of the tenant's concurrent streams,
    a lease renewed while the stream lives (gone with a crashed gateway, after a lease)."""

    def __init__(self, manager: QuotaManager, tenant: Tenant) -> None:
        self._manager = manager
        self._tenant = tenant
        self._token: str | None = None
        self._renewal: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self._token = self._manager._open_stream(self._tenant)
        self._renewal = asyncio.create_task(self._renew(self._token))

    async def _renew(self, token: str) -> None:
        while True:
            await asyncio.sleep(STREAM_LEASE_S / 3)
            self._manager._renew_stream(self._tenant, token)

    async def __aexit__(self, *exc: object) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
        if self._token is not None:
            self._manager._close_stream(self._tenant, self._token)


#: Reading a document costs work even when it holds no text (563 KB of empty HTML
#: elements once held a CPU 37 s): every document is charged at least one character
#: per this many bytes, whatever it turns out to hold, and keeps that charge if it fails.
DOCUMENT_BYTES_PER_CHARACTER = 100


def document_read_charge(content: bytes) -> int:
    """The characters a document costs for being read: its size, in units of markup."""
    return -(-len(content) // DOCUMENT_BYTES_PER_CHARACTER)


def estimate_audio_seconds(data: bytes, config: audio_pb2.AudioConfig) -> float | None:
    """Duration of the audio from its format alone (no decoding); None when unknown.

    Raw PCM: bytes / (rate x channels x sample size). Containers: the header's duration,
    read with the same demuxer whitelist as the decoder (so probing opens nothing else).
    """
    try:
        fmt = raw_format(config)
    except Exception:
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
    except Exception:
        return None
    return None


def seconds_in_stream_chunk(data: bytes, config: audio_pb2.AudioConfig) -> float:
    """Seconds of raw PCM in a live chunk (live streams are raw: see audio_request)."""
    fmt = raw_format(config)
    return 0.0 if fmt is None else len(data) / fmt.frame_bytes / fmt.sample_rate
