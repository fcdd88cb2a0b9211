"""Quota accounting that a crafted file or a well-timed cancel cannot cheat (issue 10)."""

from __future__ import annotations

import asyncio

import pytest

from parlons.services.common.audio import decode_audio
from parlons.services.gateway.core import AudioCharge
from parlons.services.gateway.quota_store import MemoryStore
from parlons.services.gateway.quotas import QuotaManager, estimate_audio_seconds
from parlons.services.gateway.tenants import DEFAULT_TENANT_STREAMS, Quotas, Tenant, TenantSet
from parlons.v1 import audio_pb2
from speech import AUDIO


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


def test_audio_is_charged_on_its_decoded_duration_not_on_what_its_header_claims() -> None:
    flac = _lying_flac(1)
    config = audio_pb2.AudioConfig()
    assert estimate_audio_seconds(flac, config) == pytest.approx(1.0, abs=0.05)
    decoded = decode_audio(flac)
    assert decoded.duration_s == pytest.approx(11.0, abs=0.1)  # FLAC frames decode past the claim
    quotas, tenant = QuotaManager(), Tenant("t", quotas=Quotas(audio_seconds_per_minute=600))
    with AudioCharge(quotas, tenant, flac, config) as charge:
        assert _level(quotas, tenant) == pytest.approx(599.0, abs=0.1)  # admitted on the claim
        charge.settle(decoded.duration_s)  # what the backend reports: the decoded audio
    assert _level(quotas, tenant) == pytest.approx(600 - 11.0, abs=0.2)


def test_a_call_cancelled_late_keeps_its_charge_and_a_refused_one_is_refunded() -> None:
    wav = (AUDIO / "jfk.flac").read_bytes()
    quotas, tenant = QuotaManager(), Tenant("t", quotas=Quotas(audio_seconds_per_minute=600))
    with pytest.raises(asyncio.CancelledError):
        with AudioCharge(quotas, tenant, wav, audio_pb2.AudioConfig()):
            raise asyncio.CancelledError  # the client cancels while the work runs
    assert _level(quotas, tenant) == pytest.approx(600 - 11.0, abs=0.2)
    with pytest.raises(ValueError):
        with AudioCharge(quotas, tenant, wav, audio_pb2.AudioConfig()):
            raise ValueError("refused by the backend")
    assert _level(quotas, tenant) == pytest.approx(600 - 11.0, abs=0.3)


def test_tenants_of_a_file_get_a_concurrent_stream_limit_by_default() -> None:
    tenants = TenantSet.from_documents([("t.toml", {"tenants": {"a": {}, "b": {"quotas": {"concurrent_streams": 0}}}})])
    assert tenants.tenants["a"].quotas.concurrent_streams == DEFAULT_TENANT_STREAMS  # type: ignore[attr-defined]
    assert tenants.tenants["b"].quotas.concurrent_streams == 0  # unlimited, said explicitly
    with_defaults = TenantSet.from_documents([("t.toml", {"defaults": {"quotas": {"audio_seconds_per_minute": 60}},
                                                          "tenants": {"a": {}}})])
    assert with_defaults.tenants["a"].quotas.concurrent_streams == DEFAULT_TENANT_STREAMS  # type: ignore[attr-defined]
