"""mTLS: a client certificate identifies a tenant, on the gRPC port and the REST facade.

Certificates are made for the test with the openssl command (a CA, a server certificate
for localhost, and two client certificates).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from collections.abc import Iterator

import grpc
import pytest

from gateway_helpers import gateway_config, gateway_module, start_embedded
from parlons.services.common.server import BackgroundServer
from parlons.services.gateway.tenants import TenantStore
from parlons.v1 import translation_pb2, translation_pb2_grpc

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is needed to make certificates"),
]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificate(cwd: Path, name: str, subject: str, extensions: str) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=parlons test CA", cwd=cwd)
    _certificate(cwd, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _certificate(cwd, "desk", "/CN=desk-01.example", "extendedKeyUsage=clientAuth\n")
    _certificate(cwd, "stranger", "/CN=stranger.example", "extendedKeyUsage=clientAuth\n")
    return cwd


@pytest.fixture(scope="module")
def tls_gateway(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, str]]:
    tenants = tmp_path_factory.mktemp("tenants") / "tenants.toml"
    TenantStore(tenants).create_key("desk", mtls_identities=["desk-01.example"], quotas={"characters_per_minute": 20})
    key, _ = TenantStore(tenants).create_key("other")
    config = gateway_config(None, tmp_path_factory.mktemp("models"))
    config.gateway.tenants_path = str(tenants)
    config.server.tls_cert = str(pki / "server.pem")
    config.server.tls_key = str(pki / "server.key")
    config.server.tls_client_ca = str(pki / "ca.pem")
    server = start_embedded(config, ["translation"])
    yield server, key
    server.stop()


def _channel(pki: Path, server: BackgroundServer, client: str) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        (pki / "ca.pem").read_bytes(), (pki / f"{client}.key").read_bytes(), (pki / f"{client}.pem").read_bytes()
    )
    return grpc.secure_channel(f"localhost:{server.running.port}", credentials)


REQUEST = translation_pb2.TranslateTextRequest(
    texts=["Bonjour, je voudrais renouveler mon titre."],  # 42 characters
    options=translation_pb2.TranslationOptions(source_language="fr", target_language="en"),
)


def test_client_certificate_identifies_the_tenant(pki: Path, tls_gateway: tuple[BackgroundServer, str]) -> None:
    server, other_key = tls_gateway
    with _channel(pki, server, "desk") as channel:
        stub = translation_pb2_grpc.TranslationServiceStub(channel)
        assert stub.TranslateText(REQUEST, timeout=30).translations[0].text  # no key: the certificate
        with pytest.raises(grpc.RpcError) as info:
            stub.TranslateText(REQUEST, timeout=30)
        # The quota that answers is desk's: the certificate was mapped to that tenant.
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "'desk'" in info.value.details()
    with _channel(pki, server, "stranger") as channel:
        stub = translation_pb2_grpc.TranslationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.TranslateText(REQUEST, timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A key still works over any client certificate.
        reply = stub.TranslateText(REQUEST, metadata=(("authorization", f"Bearer {other_key}"),), timeout=30)
        assert reply.translations[0].text


def test_rest_facade_maps_client_certificates_too(pki: Path, tls_gateway: tuple[BackgroundServer, str]) -> None:
    server, _ = tls_gateway
    port = gateway_module(server).rest_port

    def get(client: str) -> int:
        context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        context.load_cert_chain(str(pki / f"{client}.pem"), str(pki / f"{client}.key"))
        request = urllib.request.Request(f"https://localhost:{port}/v1/audio/translations", data=b"x",
                                         headers={"Content-Type": "text/plain"}, method="POST")
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
            assert set(body["error"]) == {"message", "type", "param", "code"}
            return exc.code

    assert get("desk") == 400  # authenticated by certificate; then the body is refused
    assert get("stranger") == 401


# -- backends trust only the gateway (issue 10) ----------------------------------------------

GLOSSARY_REQUEST = translation_pb2.TranslateTextRequest(
    texts=["La CAF verse l'allocation."],
    options=translation_pb2.TranslationOptions(source_language="fr", target_language="en",
                                               glossary=translation_pb2.Glossary(name="interne")),
)


def _glossaries(root: Path) -> Path:
    (root / "a").mkdir(parents=True)
    (root / "a" / "interne.json").write_text(json.dumps({"entries": [{"source": "CAF", "do_not_translate": True}]}))
    return root


def _backend(models: Path, glossaries: Path, **server: object) -> BackgroundServer:
    from parlons.serve import build_modules

    config = gateway_config(None, models)
    config.translation.glossaries_dir = str(glossaries)
    for key, value in server.items():
        setattr(config.server, key, value)
    return BackgroundServer(config.server, build_modules(config, ["translation"])).start(timeout_s=300)


def test_a_backend_honours_the_tenant_only_from_the_gateway_certificate(pki: Path, tmp_path: Path) -> None:
    """The split layout's hole: a backend took x-parlons-tenant from anyone, so anyone who
    reached its port read any tenant's glossaries. Now only the gateway's identity counts."""
    backend = _backend(tmp_path / "models", _glossaries(tmp_path / "glossaries"),
                       tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key"),
                       tls_client_ca=str(pki / "ca.pem"), trusted_gateway_identities=["desk-01.example"])
    tenant_a = (("x-parlons-tenant", "a"),)
    try:
        with _channel(pki, backend, "desk") as gateway_like:
            reply = translation_pb2_grpc.TranslationServiceStub(gateway_like).TranslateText(
                GLOSSARY_REQUEST, metadata=tenant_a, timeout=60)
            assert "CAF" in reply.translations[0].text
        with _channel(pki, backend, "stranger") as stranger:
            with pytest.raises(grpc.RpcError) as info:
                translation_pb2_grpc.TranslationServiceStub(stranger).TranslateText(
                    GLOSSARY_REQUEST, metadata=tenant_a, timeout=60)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND  # tenant a is not this caller
        # `parlons health`, the probe of such a backend: with a certificate it is served,
        # without one the TLS handshake fails (exit 1).
        from parlons.cli import main

        address = ["--address", f"localhost:{backend.running.port}", "--service", "parlons.v1.TranslationService",
                   "--ca", str(pki / "ca.pem")]
        assert main(["health", *address, "--cert", str(pki / "desk.pem"), "--key", str(pki / "desk.key")]) == 0
        assert main(["health", *address, "--timeout", "2"]) == 1
    finally:
        backend.stop()


def test_a_backend_requiring_the_gateway_refuses_others_and_a_split_gateway_gets_through(tmp_path: Path) -> None:
    secret = "s3cr3t-shared-with-the-gateway"
    backend = _backend(tmp_path / "models", _glossaries(tmp_path / "glossaries"),
                       gateway_secret=secret, require_gateway=True)
    gateway = None
    try:
        with grpc.insecure_channel(f"127.0.0.1:{backend.running.port}") as direct:
            stub = translation_pb2_grpc.TranslationServiceStub(direct)
            for metadata in ((("x-parlons-tenant", "a"),), (("x-parlons-gateway-secret", "wrong-secret-of-some-length"),)):
                with pytest.raises(grpc.RpcError) as info:
                    stub.TranslateText(GLOSSARY_REQUEST, metadata=metadata, timeout=30)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, info.value.details()
                assert "gateway only" in info.value.details()
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            health = health_pb2_grpc.HealthStub(direct).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes still answered
        # A gateway holding the secret, tenant "a" authenticated by its key.
        tenants = tmp_path / "tenants.toml"
        key, _ = TenantStore(tenants).create_key("a")
        config = gateway_config(None, None)
        config.gateway.tenants_path = str(tenants)
        config.gateway.translation = [f"127.0.0.1:{backend.running.port}"]
        config.gateway.backend_secret = secret
        gateway = start_embedded(config, [])
        with grpc.insecure_channel(f"127.0.0.1:{gateway.running.port}") as channel:
            reply = translation_pb2_grpc.TranslationServiceStub(channel).TranslateText(
                GLOSSARY_REQUEST, metadata=(("authorization", f"Bearer {key}"),), timeout=60)
            assert "CAF" in reply.translations[0].text
    finally:
        if gateway is not None:
            gateway.stop()
        backend.stop()


def test_trust_settings_that_cannot_work_stop_the_server() -> None:
    from parlons.services.common.config import ServerSettings
    from parlons.errors import InvalidArgument
    from parlons.services.common.gateway_trust import GatewayTrust

    with pytest.raises(InvalidArgument, match="needs tls_client_ca"):
        GatewayTrust.from_settings(ServerSettings(trusted_gateway_identities=["gateway"]))
    with pytest.raises(InvalidArgument, match="require_gateway needs"):
        GatewayTrust.from_settings(ServerSettings(require_gateway=True))
    with pytest.raises(InvalidArgument, match="shorter than 16"):
        GatewayTrust.from_settings(ServerSettings(gateway_secret="short"))


@pytest.fixture(scope="module")
def tls_speech_gateway(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, str]]:
    """Transcription and translation behind a gateway that speaks TLS only, with a key."""
    tenants = tmp_path_factory.mktemp("tenants") / "tenants.toml"
    key, _ = TenantStore(tenants).create_key("archives")
    config = gateway_config(None, tmp_path_factory.mktemp("speech-models"))
    config.gateway.tenants_path = str(tenants)
    config.gateway.rest_enabled = False
    config.server.tls_cert = str(pki / "server.pem")
    config.server.tls_key = str(pki / "server.key")
    server = start_embedded(config, ["transcription", "translation"])
    yield server, key
    server.stop()


def test_every_client_command_reaches_a_tls_gateway(pki: Path, tls_speech_gateway: tuple[BackgroundServer, str],
                                                    tmp_path: Path) -> None:
    """Issue 11: `transcribe`, `translate`, `listen` and `desk` take --server, --api-key (or
    PARLONS_API_KEY), --tls, --ca (and --cert/--key): each reaches a gateway on TLS with a key."""
    import os
    import sys

    from speech import AUDIO, JFK_TEXT, wer

    server, key = tls_speech_gateway
    remote = ["--server", f"localhost:{server.running.port}", "--tls", "--ca", str(pki / "ca.pem")]
    env = {**os.environ, "PARLONS_API_KEY": key}

    def parlons(*args: str, with_env: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "parlons.cli", *args], capture_output=True, text=True,
                              timeout=300, env=env if with_env else {**os.environ, "PARLONS_API_KEY": ""})

    out = tmp_path / "out"
    done = parlons("transcribe", str(AUDIO / "jfk.flac"), *remote, "--output-dir", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert wer(JFK_TEXT, (out / "jfk.txt").read_text()) <= 0.05
    translated = parlons("translate", "--from", "fr", "--to", "en", "Bonjour madame.", *remote)
    assert translated.returncode == 0 and translated.stdout.strip(), translated.stderr
    listened = parlons("listen", str(AUDIO / "jfk.flac"), "--fast", "--no-interim", *remote)
    assert listened.returncode == 0, listened.stderr
    assert wer(JFK_TEXT, " ".join(line.split("] ", 1)[-1] for line in listened.stdout.splitlines())) <= 0.2
    # The key is what lets them in, and the CA what makes TLS work.
    refused = parlons("translate", "--to", "en", "Bonjour.", *remote, with_env=False)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    no_ca = parlons("translate", "--to", "en", "Bonjour.", "--server", f"localhost:{server.running.port}",
                    "--tls", "--api-key", key)
    assert no_ca.returncode != 0

    # The desk: its command's connection (the same options) opens the gateway's channel.
    import argparse
    import asyncio

    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from rich.console import Console

    from parlons.clients.desk.bridge import GatewayConnection
    from parlons.clients.desk.cli import add_desk_command
    from parlons.clients.inprocess import connect

    parser = argparse.ArgumentParser()
    add_desk_command(parser.add_subparsers())
    args = parser.parse_args(["desk", *remote, "--api-key", key])

    async def health() -> int:
        with connect(args, [], Console(stderr=True)) as connection:
            gateway = GatewayConnection(connection)
            try:
                reply = await health_pb2_grpc.HealthStub(gateway.channel).Check(
                    health_pb2.HealthCheckRequest(), metadata=gateway.metadata, timeout=30)
                return reply.status
            finally:
                await gateway.close()

    assert asyncio.run(health()) == health_pb2.HealthCheckResponse.SERVING
