"""Tenants, keys, quotas and the admin command, without servers (see test_gateway_service
for the same through gRPC and REST)."""

from __future__ import annotations

import argparse
import io
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from parlons.errors import NotFound, PermissionDenied, ResourceExhausted, Status, Unauthenticated
from parlons.services.gateway import cli
from parlons.services.gateway.auth import Authenticator, resolve_mode
from parlons.services.gateway.quota_store import DebtBucket
from parlons.services.gateway.quotas import QuotaManager, estimate_audio_seconds
from parlons.services.gateway.tenants import Quotas, Tenant, TenantRegistry, TenantStore, hash_key
from parlons.v1 import audio_pb2


def _registry(path: Path) -> TenantRegistry:
    return TenantRegistry(path, reload_interval_s=0.0)


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_keys_are_hashed_reloaded_and_revocable(tmp_path: Path, layout: str) -> None:
    path = tmp_path / ("tenants.toml" if layout == "file" else "tenants.d")
    if layout == "directory":
        path.mkdir()
    store = TenantStore(path)
    key, key_id = store.create_key("prefecture-69", quotas={"audio_seconds_per_minute": 60})
    stored = "".join(f.read_text() for f in ([path] if path.is_file() else sorted(path.glob("*.toml"))))
    assert key not in stored and hash_key(key) in stored  # only the hash is written
    registry = _registry(path)
    assert registry.current().authenticate_key(key).name == "prefecture-69"

    # A second tenant and key appear without a new registry (no restart).
    other_key, _ = store.create_key("mairie-lyon")
    assert registry.current().authenticate_key(other_key).name == "mairie-lyon"
    if layout == "directory":
        assert sorted(p.name for p in path.glob("*.toml")) == ["mairie-lyon.toml", "prefecture-69.toml"]

    with pytest.raises(Unauthenticated, match="invalid API key"):
        registry.current().authenticate_key(key[:-2] + "xx")
    with pytest.raises(Unauthenticated, match="invalid API key"):
        registry.current().authenticate_key("not-a-parlons-key")

    store.revoke("prefecture-69", key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        registry.current().authenticate_key(key)
    assert registry.current().authenticate_key(other_key).name == "mairie-lyon"

    # Revoking a whole tenant disables it, including keys created later by hand.
    store.revoke("mairie-lyon")
    with pytest.raises(Unauthenticated, match="revoked"):
        registry.current().authenticate_key(other_key)
    with pytest.raises(NotFound):
        store.revoke("nobody")


def test_a_broken_edit_keeps_the_previous_tenants(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    key, _ = TenantStore(path).create_key("a")
    registry = _registry(path)
    path.write_text(path.read_text() + "\n[tenants.a\n")  # broken TOML
    assert registry.current().authenticate_key(key).name == "a"
    path.write_text('[tenants.a]\nquotas = { audio_seconds_per_minute = -1 }\n')  # invalid value
    assert registry.current().authenticate_key(key).name == "a"


def test_glossaries_belong_to_their_tenant(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(
        '[tenants.a.glossaries.accueil]\n'
        'entries = [{ source = "titre de séjour", target = "residence permit" }, '
        '{ source = "CAF", do_not_translate = true }]\n'
        '[tenants.b]\ndisplay_name = "B"\n'
    )
    tenants = _registry(path).current().tenants
    entries = tenants["a"].glossary("accueil")
    assert [(e.source, e.target, e.do_not_translate) for e in entries] == [
        ("titre de séjour", "residence permit", False), ("CAF", "", True)]
    with pytest.raises(NotFound, match="tenant 'b' has no glossary named 'accueil'"):
        tenants["b"].glossary("accueil")


def test_anonymization_terms_belong_to_their_tenant_and_join_each_request(tmp_path: Path) -> None:
    from parlons.services.gateway.core import GatewayCore
    from parlons.v1 import anonymization_pb2

    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.a.anonymization]\nalways_mask = ["Saint-Genis-les-Ollières"]\n'
                    'never_mask = ["Jean Moulin"]\n[tenants.b]\n')
    tenants = _registry(path).current().tenants
    assert tenants["a"].always_mask == ("Saint-Genis-les-Ollières",) and tenants["b"].always_mask == ()
    asked = anonymization_pb2.AnonymizationOptions(always_mask=["Dupont"], return_mapping=True)
    resolved = GatewayCore.resolve_anonymization(tenants["a"], asked)
    assert list(resolved.always_mask) == ["Dupont", "Saint-Genis-les-Ollières"]
    assert list(resolved.never_mask) == ["Jean Moulin"] and resolved.return_mapping
    assert list(asked.always_mask) == ["Dupont"]  # the request itself is left as it was
    path.write_text('[tenants.a.anonymization]\nalways_mask = "not a list"\n')
    with pytest.raises(Exception, match="always_mask must be a list"):
        TenantRegistry(str(path), 0.0).current()


def test_mtls_identities_map_to_tenants(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    TenantStore(path).create_key("desk", mtls_identities=["desk-01.example"])
    tenants = _registry(path).current()
    desk = tenants.authenticate_identity(["unknown", "desk-01.example"])
    assert desk is not None and desk.name == "desk"
    assert tenants.authenticate_identity(["unknown"]) is None


def test_authenticator_headers_and_modes(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    key, _ = TenantStore(path).create_key("a")
    auth = Authenticator("api_key", _registry(path))
    assert auth.from_headers({"Authorization": f"Bearer {key}"}).name == "a"
    assert auth.from_headers({"X-Api-Key": key}).name == "a"
    with pytest.raises(Unauthenticated, match="missing API key"):
        auth.from_headers({})
    with pytest.raises(Unauthenticated, match="Bearer"):
        auth.from_headers({"Authorization": f"Basic {key}"})
    assert Authenticator("none", None).from_headers({}).name == "anonymous"
    # "auto": keys with a tenants file; no auth only on loopback; refused otherwise.
    assert resolve_mode("auto", str(path), ["0.0.0.0"]) == "api_key"
    assert resolve_mode("auto", "", ["127.0.0.1", "::1", "localhost"]) == "none"
    with pytest.raises(Exception, match="without tenants"):
        resolve_mode("auto", "", ["0.0.0.0"])
    assert resolve_mode("none", "", ["0.0.0.0"]) == "none"


def test_disabled_tenant_is_denied(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    key, _ = TenantStore(path).create_key("a")
    path.write_text("[tenants.a]\nenabled = false\n" + path.read_text())
    with pytest.raises(PermissionDenied):
        _registry(path).current().authenticate_key(key)


def test_debt_bucket_admits_then_waits_for_the_debt() -> None:
    bucket = DebtBucket(60.0)  # one unit a second
    assert bucket.retry_after_s() == 0.0
    bucket.charge(150.0)  # a long file is served at once...
    wait = bucket.retry_after_s()
    assert 89.0 < wait <= 90.1  # ...then the tenant waits until the debt is repaid


async def test_quota_manager_refuses_with_retry_information() -> None:
    tenant = Tenant("t", quotas=Quotas(audio_seconds_per_minute=30, characters_per_minute=100, concurrent_streams=1))
    quotas = QuotaManager()
    await quotas.charge_audio(tenant, 40.0)
    with pytest.raises(ResourceExhausted) as info:
        await quotas.charge_audio(tenant, 1.0)
    assert info.value.code is Status.RESOURCE_EXHAUSTED
    retry_after_s = info.value.retry_after_s
    assert retry_after_s is not None and 19.0 < retry_after_s <= 20.1
    await quotas.adjust_audio(tenant, -40.0)  # refund (failed work): admitted again
    await quotas.charge_audio(tenant, 1.0)
    await quotas.charge_characters(tenant, 150)
    with pytest.raises(ResourceExhausted, match="characters"):
        await quotas.charge_characters(tenant, 1)
    unlimited = Tenant("u")
    for _ in range(100):
        await quotas.charge_audio(unlimited, 3600.0)


async def test_concurrent_stream_limit() -> None:
    tenant = Tenant("t", quotas=Quotas(concurrent_streams=1))
    quotas = QuotaManager()
    async with quotas.stream(tenant):
        with pytest.raises(ResourceExhausted, match="live stream"):
            async with quotas.stream(tenant):
                pass
    async with quotas.stream(tenant):
        assert await quotas.open_streams("t") == 1
    assert await quotas.open_streams("t") == 0


def test_audio_duration_is_estimated_without_decoding() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(np.zeros(2 * 8000 * 3, dtype="<i2").tobytes())
    assert estimate_audio_seconds(buffer.getvalue(), audio_pb2.AudioConfig()) == pytest.approx(3.0, abs=0.01)
    raw = audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1)
    assert estimate_audio_seconds(b"\0" * 32000, raw) == pytest.approx(1.0)
    assert estimate_audio_seconds(b"not audio at all", audio_pb2.AudioConfig()) is None


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="parlons")
    cli.add_tenants_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


def test_admin_command_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tenants.toml"
    code, out = _run_cli(["tenants", "create", "prefecture-69", "--tenants", str(path),
                          "--audio-seconds-per-minute", "600", "--concurrent-streams", "2",
                          "--label", "accueil"], capsys)
    key = out.strip()
    assert code == 0 and key.startswith("prl_")
    registry = _registry(path)
    tenant = registry.current().authenticate_key(key)
    assert tenant.quotas.audio_seconds_per_minute == 600 and tenant.quotas.concurrent_streams == 2

    code, out = _run_cli(["tenants", "list", "--tenants", str(path), "--json"], capsys)
    listing = json.loads(out)
    assert code == 0 and listing[0]["name"] == "prefecture-69"
    assert key not in out and listing[0]["keys"][0]["label"] == "accueil"

    key_id = listing[0]["keys"][0]["id"]
    code, _ = _run_cli(["tenants", "revoke", "prefecture-69", "--key-id", key_id, "--tenants", str(path)], capsys)
    assert code == 0
    time.sleep(0.01)
    with pytest.raises(Unauthenticated, match="revoked"):
        registry.current().authenticate_key(key)
    code, _ = _run_cli(["tenants", "revoke", "nobody", "--tenants", str(path)], capsys)
    assert code == 2
    code, _ = _run_cli(["tenants", "create", "Bad Name!", "--tenants", str(path)], capsys)
    assert code == 2


def test_api_keys_over_plaintext_off_loopback_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from parlons.services.common.config import ParlonsConfig
    from parlons.services.gateway.servicer import module_from_config

    store = TenantStore(tmp_path / "tenants.toml")
    store.create_key("a")
    config = ParlonsConfig()
    config.server.host = "0.0.0.0"
    config.gateway.tenants_path = str(tmp_path / "tenants.toml")
    config.gateway.rest_enabled = False
    config.gateway.transcription = ["127.0.0.1:1"]
    with caplog.at_level("WARNING", logger="parlons.gateway"):
        module_from_config(config)
    assert any("plaintext" in r.getMessage() for r in caplog.records)
    caplog.clear()
    config.server.host = "127.0.0.1"
    with caplog.at_level("WARNING", logger="parlons.gateway"):
        module_from_config(config)
    assert not any("plaintext" in r.getMessage() for r in caplog.records)
