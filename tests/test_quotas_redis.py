"""Quotas shared by gateway replicas through a real Redis (issue 10): two gateways on one
Redis enforce one tenant's quota together; Redis down gives the configured answer."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from collections.abc import Iterator

import grpc
import pytest

from gateway_helpers import gateway_config, make_tenants, start_embedded
from parlons.services.common.errors import Unavailable
from parlons.services.gateway import quota_store
from parlons.services.gateway import quotas as quotas_module
from parlons.services.gateway.quota_store import RedisStore
from parlons.services.gateway.quotas import QuotaManager
from parlons.services.gateway.tenants import Quotas, Tenant
from parlons.services.common.errors import ResourceExhausted
from parlons.v1 import translation_pb2, translation_pb2_grpc
from redis_helpers import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def test_two_managers_on_one_redis_charge_the_same_bucket(redis_server: RedisServer) -> None:
    tenant = Tenant("t", quotas=Quotas(audio_seconds_per_minute=60))
    first, second = QuotaManager(RedisStore(redis_server.url)), QuotaManager(RedisStore(redis_server.url))
    first.charge_audio(tenant, 50)  # admitted: 10 s left
    second.charge_audio(tenant, 20)  # admitted (not in debt yet): now 10 s in debt
    with pytest.raises(ResourceExhausted) as info:
        first.charge_audio(tenant, 1)
    assert info.value.retry_after_s == pytest.approx(10, abs=0.5)  # 10 s of debt at 1 s a second
    with pytest.raises(ResourceExhausted):
        second.check_audio(tenant)
    second.adjust_audio(tenant, -15)  # a refund reaches the other gateway too
    first.charge_audio(tenant, 1)
    # Another tenant has its own bucket.
    QuotaManager(RedisStore(redis_server.url)).charge_audio(Tenant("u", quotas=Quotas(audio_seconds_per_minute=60)), 1)


async def test_two_managers_on_one_redis_share_a_tenants_stream_limit(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = Tenant("t", quotas=Quotas(concurrent_streams=2))
    first, second = QuotaManager(RedisStore(redis_server.url)), QuotaManager(RedisStore(redis_server.url))
    async with first.stream(tenant), second.stream(tenant):
        assert first.open_streams("t") == second.open_streams("t") == 2
        for manager in (first, second):
            with pytest.raises(ResourceExhausted, match="2 live stream"):
                async with manager.stream(tenant):
                    pass
    assert second.open_streams("t") == 0
    # A gateway that dies holding a stream (no close) holds it for one lease, not for ever.
    monkeypatch.setattr(quota_store, "STREAM_LEASE_S", 0.5)
    first._open_stream(tenant)
    first._open_stream(tenant)  # never closed: the gateway "crashed"
    with pytest.raises(ResourceExhausted):
        second._open_stream(tenant)
    time.sleep(0.6)
    assert second.open_streams("t") == 0
    second._open_stream(tenant)


async def test_a_live_stream_renews_its_lease(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quota_store, "STREAM_LEASE_S", 0.6)
    monkeypatch.setattr(quotas_module, "STREAM_LEASE_S", 0.6)
    tenant = Tenant("t", quotas=Quotas(concurrent_streams=1))
    manager, other = QuotaManager(RedisStore(redis_server.url)), QuotaManager(RedisStore(redis_server.url))
    async with manager.stream(tenant):
        await asyncio.sleep(1.5)  # 2.5 leases: alive because renewed
        with pytest.raises(ResourceExhausted):
            async with other.stream(tenant):
                pass
    async with other.stream(tenant):
        pass


def test_redis_down_fails_closed_by_default_or_open_when_configured(redis_server: RedisServer) -> None:
    tenant = Tenant("t", quotas=Quotas(characters_per_minute=100))
    closed = QuotaManager(RedisStore(redis_server.url, timeout_s=0.2))
    opened = QuotaManager(RedisStore(redis_server.url, failure="open", timeout_s=0.2))
    closed.charge_characters(tenant, 10)
    redis_server.stop()
    with pytest.raises(Unavailable, match="quota store is unreachable"):
        closed.charge_characters(tenant, 10)
    opened.charge_characters(tenant, 10)  # served, uncharged, logged
    streaming = Tenant("s", quotas=Quotas(concurrent_streams=1))
    with pytest.raises(Unavailable, match="quota store is unreachable"):
        closed._open_stream(streaming)
    for _ in range(3):
        assert opened._open_stream(streaming)  # served, not counted
    # Unlimited tenants never touch the store.
    closed.charge_characters(Tenant("free"), 10)


def test_two_gateway_processes_share_a_tenants_quota(redis_server: RedisServer, tmp_path: Path) -> None:
    tenants = make_tenants(tmp_path / "tenants.toml")  # "small": 40 characters a minute
    gateways = []
    for i in range(2):
        config = gateway_config(tenants, tmp_path / f"models{i}")
        config.gateway.rest_enabled = False
        config.gateway.quota_redis_url = redis_server.url
        gateways.append(start_embedded(config, ["translation"]))
    request = translation_pb2.TranslateTextRequest(
        texts=["Bonjour madame, bienvenue à la préfecture du Rhône."],  # 50 characters
        options=translation_pb2.TranslationOptions(source_language="fr", target_language="en"))
    channels = [grpc.insecure_channel(g.address) for g in gateways]
    try:
        first, second = (translation_pb2_grpc.TranslationServiceStub(c) for c in channels)
        first.TranslateText(request, metadata=tenants.metadata("small"), timeout=30)  # 10 characters in debt
        with pytest.raises(grpc.RpcError) as info:
            second.TranslateText(request, metadata=tenants.metadata("small"), timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "characters" in info.value.details()
        second.TranslateText(request, metadata=tenants.metadata("b"), timeout=30)  # others unaffected
        # "small" may hold one live stream: held on the first gateway, refused on the second.
        release = threading.Event()

        def held() -> Iterator[translation_pb2.StreamingTranslateRequest]:
            yield translation_pb2.StreamingTranslateRequest(config=translation_pb2.StreamingTranslateConfig(
                options=translation_pb2.TranslationOptions(source_language="fr", target_language="en")))
            release.wait(30)

        open_stream = first.StreamingTranslate(held(), metadata=tenants.metadata("small"), timeout=60)
        try:
            deadline = time.monotonic() + 10
            while QuotaManager(RedisStore(redis_server.url)).open_streams("small") == 0:
                assert time.monotonic() < deadline, "the first gateway never took the stream's lease"
                time.sleep(0.05)
            with pytest.raises(grpc.RpcError) as info:
                list(second.StreamingTranslate(held(), metadata=tenants.metadata("small"), timeout=30))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "live stream" in info.value.details()
        finally:
            release.set()
            list(open_stream)
        redis_server.stop()  # fail closed: a clear, retryable status
        with pytest.raises(grpc.RpcError) as info:
            second.TranslateText(request, metadata=tenants.metadata("small"), timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "quota store" in info.value.details()
    finally:
        for channel in channels:
            channel.close()
        for gateway in gateways:
            gateway.stop()
