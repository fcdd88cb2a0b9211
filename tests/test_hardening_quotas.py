"""Quota accounting that a crafted file, a well-timed cancel or a compressed live stream
cannot cheat (issues 10 and 25)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from parlons.services.common.audio import decode_audio
from parlons.errors import ResourceExhausted
from parlons.services.gateway.auth import Authenticator
from parlons.services.gateway.core import AudioCharge, Call, GatewayCore
from parlons.services.gateway.proxy import Proxy
from parlons.services.gateway.quota_store import MemoryStore
from parlons.services.gateway.quotas import QuotaManager, estimate_audio_seconds
from parlons.services.gateway.routing import CallOptions
from parlons.services.gateway.tenants import DEFAULT_TENANT_STREAMS, Quotas, Tenant, TenantSet
from parlons.v1 import audio_pb2, transcription_pb2
from speech import AUDIO, opus_bytes


def _lying_flac(seconds_claimed: int) -> bytes:
    """jfk.flac (11 s) whose STREAMINFO claims `seconds_claimed` s of audio."""
    data = bytearray((AUDIO / "jfk.flac").read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    packed = int.from_bytes(data[18:26], "big")  # rate 20 bits, channels 3, bps 5, samples 36
    rate = packed >> 44
    packed = (packed & ~((1 << 36) - 1)) | (seconds_claimed * rate)
    data[18:26] = packed.to_bytes(8, "big")
    return bytes(data)


def _level(quotas: QuotaManager, tenant: Tenant) -> float:
    assert isinstance(quotas.store, MemoryStore)
    return quotas.store.bucket(f"{tenant.name}:audio", tenant.quotas.audio_seconds_per_minute).level


async def test_audio_is_charged_on_its_decoded_duration_not_on_what_its_header_claims() -> None:
    flac = _lying_flac(1)
    config = audio_pb2.AudioConfig()
    assert estimate_audio_seconds(flac, config) == pytest.approx(1.0, abs=0.05)
    decoded = decode_audio(flac)
    assert decoded.duration_s == pytest.approx(11.0, abs=0.1)  # FLAC frames decode past the claim
    quotas, tenant = QuotaManager(), Tenant("t", quotas=Quotas(audio_seconds_per_minute=600))
    async with AudioCharge(quotas, tenant, flac, config) as charge:
        assert _level(quotas, tenant) == pytest.approx(599.0, abs=0.1)  # admitted on the claim
        await charge.settle(decoded.duration_s)  # what the backend reports: the decoded audio
    assert _level(quotas, tenant) == pytest.approx(600 - 11.0, abs=0.2)


async def test_a_call_cancelled_late_keeps_its_charge_and_a_refused_one_is_refunded() -> None:
    wav = (AUDIO / "jfk.flac").read_bytes()
    quotas, tenant = QuotaManager(), Tenant("t", quotas=Quotas(audio_seconds_per_minute=600))
    with pytest.raises(asyncio.CancelledError):
        async with AudioCharge(quotas, tenant, wav, audio_pb2.AudioConfig()):
            raise asyncio.CancelledError  # the client cancels while the work runs
    assert _level(quotas, tenant) == pytest.approx(600 - 11.0, abs=0.2)
    with pytest.raises(ValueError):
        async with AudioCharge(quotas, tenant, wav, audio_pb2.AudioConfig()):
            raise ValueError("refused by the backend")
    assert _level(quotas, tenant) == pytest.approx(600 - 11.0, abs=0.3)


def test_tenants_of_a_file_get_a_concurrent_stream_limit_by_default() -> None:
    tenants = TenantSet.from_documents([("t.toml", {"tenants": {"a": {}, "b": {"quotas": {"concurrent_streams": 0}}}})])
    assert tenants.tenants["a"].quotas.concurrent_streams == DEFAULT_TENANT_STREAMS  # type: ignore[attr-defined]
    assert tenants.tenants["b"].quotas.concurrent_streams == 0  # unlimited, said explicitly
    with_defaults = TenantSet.from_documents([("t.toml", {"defaults": {"quotas": {"audio_seconds_per_minute": 60}},
                                                          "tenants": {"a": {}}})])
    assert with_defaults.tenants["a"].quotas.concurrent_streams == DEFAULT_TENANT_STREAMS  # type: ignore[attr-defined]


# -- live streams through the pass-through StreamingTranscribe (issue 25) --------------

_SPEECH_S = 45.0
_OPUS_CHUNK_BYTES = 300  # 100 ms at 24 kbit/s, MediaRecorder's pace


@pytest.fixture(scope="module")
def speech_45s() -> np.ndarray:
    jfk = decode_audio((AUDIO / "jfk.flac").read_bytes()).mono()
    return np.tile(jfk, 5)[: int(_SPEECH_S * 16000)]


class _Counting(QuotaManager):
    """In-memory quotas that also count the audio seconds charged (and adjusted)."""

    def __init__(self) -> None:
        super().__init__()
        self.charged_s = 0.0

    async def charge_audio(self, tenant: Tenant, seconds: float, *, under_way: bool = False) -> None:
        self.charged_s += seconds
        await super().charge_audio(tenant, seconds, under_way=under_way)

    async def adjust_audio(self, tenant: Tenant, delta_s: float) -> None:
        self.charged_s += delta_s
        await super().adjust_audio(tenant, delta_s)


async def _stream(config: audio_pb2.AudioConfig, data: bytes, chunk: int) -> AsyncIterator[Any]:
    yield transcription_pb2.StreamingTranscribeRequest(config=transcription_pb2.StreamingConfig(config=config))
    for i in range(0, len(data), chunk):
        yield transcription_pb2.StreamingTranscribeRequest(audio_content=data[i : i + chunk])


async def _relay(quotas: QuotaManager, tenant: Tenant, requests: AsyncIterator[Any]) -> tuple[int, Exception | None]:
    """The gateway's pass-through StreamingTranscribe (its charging side): the audio
    bytes it forwards to the backend, and the error that ended the stream (None)."""
    proxy = Proxy(cast(GatewayCore, SimpleNamespace(quotas=quotas)), cast(Authenticator, None))
    forwarded = 0
    try:
        async for request in proxy._relay("StreamingTranscribe", Call(tenant, cast(CallOptions, None)), requests):
            forwarded += len(request.audio_content)
    except Exception as exc:
        return forwarded, exc
    return forwarded, None


@pytest.mark.parametrize("container, config", [("ogg", audio_pb2.AudioConfig(encoding=audio_pb2.OGG_OPUS)),
                                               ("webm", audio_pb2.AudioConfig(encoding=audio_pb2.WEBM_OPUS))])
async def test_live_opus_through_the_pass_through_is_charged_by_its_decoded_seconds(
    speech_45s: np.ndarray, container: str, config: audio_pb2.AudioConfig
) -> None:
    """45 s of Ogg/WebM Opus through StreamingTranscribe: charged 45 s (it was charged
    nothing: a container's bytes are no PCM), and a tenant allowed 20 s a minute is cut
    off at its 20 s instead of getting the 45 s transcribed."""
    data = opus_bytes(speech_45s, container)
    quotas = _Counting()
    roomy = Tenant("roomy", quotas=Quotas(audio_seconds_per_minute=600))
    assert await _relay(quotas, roomy, _stream(config, data, _OPUS_CHUNK_BYTES)) == (len(data), None)
    assert quotas.charged_s == pytest.approx(_SPEECH_S, abs=0.05)  # its decoded seconds

    tight = Tenant("tight", quotas=Quotas(audio_seconds_per_minute=20))
    forwarded, error = await _relay(quotas, tight, _stream(config, data, _OPUS_CHUNK_BYTES))
    assert isinstance(error, ResourceExhausted) and "20 audio seconds per minute" in error.message, error
    forwarded_s = forwarded / len(data) * _SPEECH_S
    assert 19.0 <= forwarded_s <= 22.5, forwarded_s  # its quota (+ an Ogg page, the refill meanwhile), not 45 s


async def test_raw_pcm_through_the_pass_through_is_charged_by_its_size(speech_45s: np.ndarray) -> None:
    """LINEAR16 is counted from its size, without decoding, frames cut across chunks."""
    data = (speech_45s * 32767).astype("<i2").tobytes()
    config = audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1)
    quotas, tenant = _Counting(), Tenant("t", quotas=Quotas(audio_seconds_per_minute=600))
    assert await _relay(quotas, tenant, _stream(config, data, 3201)) == (len(data), None)  # odd: frames cut in two
    assert quotas.charged_s == pytest.approx(_SPEECH_S, abs=1e-6)
