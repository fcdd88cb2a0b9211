"""Routing: round robin over replicas, failover when one dies, UNAVAILABLE when none is up.

Replicas are real `parlons serve transcription` processes (tiny.en) so that one can be
killed with SIGKILL mid-load, as a crashed pod would be.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Iterator

import grpc
import pytest

from gateway_helpers import gateway_config, start_embedded
from desk_helpers import free_port
from replicas import Replica
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.retry import NO_RETRY, RetryPolicy
from parlons.clients.sdk import GatewayClient, TranscriptionClient, open_channel
from parlons.services.common.server import BackgroundServer
from speech import AUDIO, wer

pytestmark = pytest.mark.slow

@pytest.fixture()
def replicas(tmp_path: Path) -> Iterator[list[Replica]]:
    started = [Replica(tmp_path, "a"), Replica(tmp_path, "b")]
    try:
        for replica in started:
            replica.wait()
        yield started
    finally:
        for replica in started:
            replica.stop()


def _split_gateway(**backends: list[str]) -> BackgroundServer:
    config = gateway_config(None, None)
    config.gateway.rest_enabled = False
    for name, addresses in backends.items():
        setattr(config.gateway, name, addresses)
    return start_embedded(config, [])


def test_killing_one_of_two_replicas_under_load_loses_no_request(
    replicas: list[Replica], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="parlons.gateway.routing")
    a, b = replicas
    gateway = _split_gateway(transcription=[a.address, b.address])
    channel = open_channel(gateway.address)
    client = TranscriptionClient(channel)
    audio = (AUDIO / "english.wav").read_bytes()

    def transcribe(_: int) -> str:
        return client.transcribe(audio, timeout_s=120).text

    try:
        with ThreadPoolExecutor(4) as pool:
            warm = list(pool.map(transcribe, range(8)))
        assert all(wer("one two three", t) <= 0.34 for t in warm), warm
        served_a, served_b = a.served(), b.served()
        assert served_a >= 2 and served_b >= 2, (served_a, served_b)  # round robin over both

        with ThreadPoolExecutor(16) as pool:  # 16 clients at once
            futures = [pool.submit(transcribe, i) for i in range(48)]
            while sum(f.done() for f in futures) < 2:
                time.sleep(0.02)
            a.kill()  # mid-load: calls queued or running on it fail with UNAVAILABLE
            texts = [f.result() for f in futures]  # raises if any request was lost
        assert all(wer("one two three", t) <= 0.34 for t in texts), texts
        assert b.served() >= served_b + 24  # the survivor took the killed replica's share
        # Calls that were on the killed replica were retried on the other one.
        assert any(r.getMessage() == "retrying on another replica" for r in caplog.records)
    finally:
        channel.close()
        gateway.stop()


def test_backend_down_is_unavailable_quickly_naming_the_service() -> None:
    gateway = _split_gateway(transcription=[f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"])
    channel = open_channel(gateway.address)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            TranscriptionClient(channel, retry=NO_RETRY).transcribe((AUDIO / "english.wav").read_bytes(), timeout_s=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "transcription service is unavailable" in info.value.details()
        assert time.monotonic() - started < 3.0
        # The SDK's default retries it with backoff, then gives up with the same status.
        started = time.monotonic()
        with pytest.raises(ParlonsRpcError) as retried:
            TranscriptionClient(channel, retry=RetryPolicy(attempts=3, initial_backoff_s=0.2)).transcribe(
                (AUDIO / "english.wav").read_bytes(), timeout_s=30)
        assert retried.value.status == grpc.StatusCode.UNAVAILABLE and "transcription" in retried.value.message
        assert 0.4 < time.monotonic() - started < 6.0  # waited 0.2 s, then 0.4 s (±20 %)
        # A composed call names the backend it lacks.
        with pytest.raises(grpc.RpcError) as info:
            GatewayClient(channel, retry=NO_RETRY).transcribe_conversation((AUDIO / "english.wav").read_bytes(), timeout_s=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "diarization service is not configured" in info.value.details() or "transcription" in info.value.details()
        # A service the gateway has no backend for at all is not served.
        from parlons.v1 import translation_pb2, translation_pb2_grpc

        with pytest.raises(grpc.RpcError) as info:
            translation_pb2_grpc.TranslationServiceStub(channel).ListLanguages(
                translation_pb2.ListLanguagesRequest(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        channel.close()
        gateway.stop()


def test_half_set_backend_tls_is_a_start_up_error(tmp_path: Path) -> None:
    """Issue 10: `backend_cert` without `backend_ca` was silently ignored (plaintext)."""
    from parlons.errors import InvalidArgument
    from parlons.services.gateway.routing import BackendTls

    cert, key, ca = (tmp_path / n for n in ("c.pem", "k.pem", "ca.pem"))
    for f in (cert, key, ca):
        f.write_text("-")
    with pytest.raises(InvalidArgument, match="backend_ca is not"):
        BackendTls(cert=str(cert), key=str(key))
    with pytest.raises(InvalidArgument, match="go together"):
        BackendTls(ca=str(ca), cert=str(cert))
    with pytest.raises(InvalidArgument, match="no such file"):
        BackendTls(ca=str(tmp_path / "missing.pem"))
    assert BackendTls(ca=str(ca), cert=str(cert), key=str(key)).ca == str(ca)
    assert BackendTls().credentials() is None
