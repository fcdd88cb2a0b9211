"""Quotas shared by gateway replicas through a real Redis (issue 10): two gateways on one
Redis enforce one tenant's quota together; Redis down gives the configured answer."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterator

import grpc
import pytest

from gateway_helpers import gateway_config, make_tenants, start_embedded
from parlons.services.common.errors import Unavailable
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


def test_redis_down_fails_closed_by_default_or_open_when_configured(redis_server: RedisServer) -> None:
    tenant = Tenant("t", quotas=Quotas(characters_per_minute=100))
    closed = QuotaManager(RedisStore(redis_server.url, timeout_s=0.2))
    opened = QuotaManager(RedisStore(redis_server.url, failure="open", timeout_s=0.2))
    closed.charge_characters(tenant, 10)
    redis_server.stop()
    with pytest.raises(Unavailable, match="quota store is unreachable"):
        closed.charge_characters(tenant, 10)
    opened.charge_characters(tenant, 10)  # served, uncharged, logged
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
        redis_server.stop()  # fail closed: a clear, retryable status
        with pytest.raises(grpc.RpcError) as info:
            second.TranslateText(request, metadata=tenants.metadata("small"), timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "quota store" in info.value.details()
    finally:
        for channel in channels:
            channel.close()
        for gateway in gateways:
            gateway.stop()
