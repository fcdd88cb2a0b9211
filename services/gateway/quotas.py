"""Per-tenant quotas: audio seconds and characters per minute, concurrent streams.

Rates are token buckets that may go into debt: a bucket holds at most one minute of the
tenant's allowance and refills continuously. A request is admitted while the bucket is
not in debt and is charged in full, so one 2-hour recording from a tenant allowed 10
minutes a minute is served, and the tenant then waits until the debt is repaid. Refusing
any file longer than a minute's allowance would make archives impossible to transcribe;
charging only after the work would let a burst of parallel requests through for free.
Audio is charged before the work from the file's declared duration, then corrected with
the duration the service measured. Live streams are charged as their audio arrives, by
its decoded seconds whatever its encoding (`StreamAudioMeter`).

The buckets and the concurrent-stream leases live in this gateway process, or in Redis
shared by every gateway replica (quota_store.py).
"""

from __future__ import annotations

import asyncio
import io

import av
from prometheus_client import Counter

from parlons.services.common.audio import ALLOWED_DEMUXERS
from parlons.services.common.audio_request import StreamAudioDecoder, raw_format
from parlons.errors import ResourceExhausted
from parlons.services.gateway.quota_store import STREAM_LEASE_S, MemoryStore, QuotaStore
from parlons.services.gateway.tenants import Tenant
from parlons.v1 import audio_pb2


QUOTA_REFUSALS = Counter(
    "parlons_gateway_quota_refusals_total", "Calls refused for a tenant's quota", ["tenant", "quota"]
)


class QuotaManager:
    """Admission and accounting for every tenant of one gateway; the rate buckets live
    in `store` (this process by default, Redis to share them between gateways). Every
    call is a coroutine of the event loop: a slow store delays its caller, nothing else.

    `under_way=True` marks a charge for work already admitted (an open stream's next
    chunk): an unreachable store does not stop it (quota_store.py)."""

    def __init__(self, store: QuotaStore | None = None) -> None:
        self.store: QuotaStore = store or MemoryStore()

    async def _take(self, tenant: Tenant, what: str, per_minute: float, amount: float, *, admit: bool,
                    under_way: bool = False) -> None:
        if per_minute <= 0 or (not admit and not amount):
            return
        key = f"{tenant.name}:{what.split()[0]}"
        wait = await self.store.take(key, float(per_minute), amount, admit=admit, under_way=under_way)
        if wait > 0:
            QUOTA_REFUSALS.labels(tenant.name, what.replace(" ", "_")).inc()
            raise ResourceExhausted(
                f"tenant {tenant.name!r} is over its quota of {per_minute:g} {what} per minute; "
                f"retry in {wait:.1f} s",
                retry_after_s=wait,
            )

    async def check_audio(self, tenant: Tenant) -> None:
        """Refuse now a tenant in audio debt (an upload about to be read); charges nothing."""
        await self._take(tenant, "audio seconds", tenant.quotas.audio_seconds_per_minute, 0.0, admit=True)

    async def charge_audio(self, tenant: Tenant, seconds: float, *, under_way: bool = False) -> None:
        """Admit (unless in debt) and charge audio seconds."""
        await self._take(tenant, "audio seconds", tenant.quotas.audio_seconds_per_minute, max(seconds, 0.0),
                         admit=True, under_way=under_way)

    async def adjust_audio(self, tenant: Tenant, delta_s: float) -> None:
        """Correct an earlier charge (measured duration minus estimate); never refuses."""
        await self._take(tenant, "audio seconds", tenant.quotas.audio_seconds_per_minute, delta_s, admit=False)

    async def check_characters(self, tenant: Tenant) -> None:
        """Refuse now a tenant in character debt (a text about to be read); charges nothing."""
        await self._take(tenant, "characters", tenant.quotas.characters_per_minute, 0.0, admit=True)

    async def charge_characters(self, tenant: Tenant, characters: int, *, under_way: bool = False) -> None:
        await self._take(tenant, "characters", tenant.quotas.characters_per_minute, float(max(characters, 0)),
                         admit=True, under_way=under_way)

    async def adjust_characters(self, tenant: Tenant, delta: int) -> None:
        await self._take(tenant, "characters", tenant.quotas.characters_per_minute, float(delta), admit=False)

    def stream(self, tenant: Tenant) -> StreamSlot:
        return StreamSlot(self, tenant)

    async def _open_stream(self, tenant: Tenant) -> str:
        limit = tenant.quotas.concurrent_streams
        token, held = await self.store.open_lease(_streams_key(tenant.name), limit)
        if token is None:
            QUOTA_REFUSALS.labels(tenant.name, "concurrent_streams").inc()
            raise ResourceExhausted(
                f"tenant {tenant.name!r} already has {held} live stream(s) open, its limit; "
                "close one or retry later",
                retry_after_s=5.0,
            )
        return token

    async def _renew_stream(self, tenant: Tenant, token: str) -> None:
        await self.store.renew_lease(_streams_key(tenant.name), token)

    async def _close_stream(self, tenant: Tenant, token: str) -> None:
        await self.store.close_lease(_streams_key(tenant.name), token)

    async def open_streams(self, tenant_name: str) -> int:
        """Streams the tenant holds now, on every gateway sharing the store."""
        return await self.store.held_leases(_streams_key(tenant_name))

    async def close(self) -> None:
        await self.store.close()


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
        self._token = await self._manager._open_stream(self._tenant)
        self._renewal = asyncio.create_task(self._renew(self._token))

    async def _renew(self, token: str) -> None:
        while True:
            await asyncio.sleep(STREAM_LEASE_S / 3)
            await self._manager._renew_stream(self._tenant, token)

    async def __aexit__(self, *exc: object) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
        if self._token is not None:
            await self._manager._close_stream(self._tenant, self._token)


class StreamAudioMeter:
    """The seconds of audio a live stream has delivered, as decoded, whatever its encoding.

    Why decode: a compressed stream's bytes say nothing reliable about its duration
    (container timestamps are the client's word), and Ogg/WebM Opus counted as raw PCM
    would cost nothing at all. Raw PCM is counted from its size (exactly what decoding
    it gives); Ogg/Opus and WebM/Opus go through the transcription service's own live
    decoder (`StreamAudioDecoder`) in a worker thread: 66 s of Opus in 100-ms chunks cost
    0.16-0.2 s of CPU, about 0.3 % of a core per live stream. The durations a backend
    reports come too late to refuse a stream at its quota and leave silence uncharged.
    """

    def __init__(self, config: audio_pb2.AudioConfig) -> None:
        fmt = raw_format(config)
        self._frame_bytes = fmt.frame_bytes if fmt is not None else 0
        self._rate = fmt.sample_rate if fmt is not None else 0
        self._bytes = 0
        self._counted_s = 0.0
        self._decoder = None if fmt is not None else StreamAudioDecoder(config)

    async def feed(self, data: bytes) -> float:
        """Take a chunk; the seconds decoded since the last call (what it costs now)."""
        if self._decoder is None:
            self._bytes += len(data)
            return self._since_last(self._bytes // self._frame_bytes / self._rate)
        if data:
            await asyncio.to_thread(self._decoder.decode, data)
        return self._since_last(self._decoder.decoded_seconds)

    async def finish(self) -> float:
        """End of the stream: the seconds its decoder still held."""
        if self._decoder is None:
            return 0.0
        await asyncio.to_thread(self._decoder.flush)
        return self._since_last(self._decoder.decoded_seconds)

    async def close(self) -> None:
        if self._decoder is not None:
            await asyncio.to_thread(self._decoder.close)

    def _since_last(self, total_s: float) -> float:
        seconds, self._counted_s = total_s - self._counted_s, total_s
        return seconds


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
