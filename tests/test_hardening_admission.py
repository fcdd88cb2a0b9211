"""Admission before the body, bounded forms, and what errors disclose (issue 25).

A gateway with no model behind it: its transcription backend is a stub servicer, so
these tests measure the gateway itself (what it reads, parses and answers) in seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
import requests
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from parlons.services.common import interceptors
from parlons.services.common.config import ParlonsConfig, ServerSettings, TranscriptionSettings
from parlons.errors import NotFound, ResourceExhausted
from parlons.services.common.server import BackgroundServer, reflection_enabled
from parlons.services.gateway.servicer import GatewayModule
from parlons.services.gateway.tenants import TenantStore
from parlons.services.transcription.servicer import TranscriptionModule, TranscriptionServicer
from parlons.v1 import transcription_pb2, transcription_pb2_grpc

TRANSCRIBE = "/parlons.v1.TranscriptionService/Transcribe"
UPLOAD = "/parlons.v1.TranscriptionService/TranscribeUpload"
MB = 1 << 20


class StubTranscription(transcription_pb2_grpc.TranscriptionServiceServicer):
    """A transcription backend that answers at once, whatever the audio."""

    def ListModels(self, request: Any, context: Any) -> transcription_pb2.ListModelsResponse:
        return transcription_pb2.ListModelsResponse(default_model="tiny", models=[
            transcription_pb2.ModelDescription(name="tiny", kind="whisper", languages=["fr", "en"], loaded=True)])

    def Transcribe(self, request: Any, context: Any) -> transcription_pb2.TranscribeResponse:
        return transcription_pb2.TranscribeResponse(text="bonjour", language="fr", audio_duration_s=1.0)


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 64 * MB)])
    transcription_pb2_grpc.add_TranscriptionServiceServicer_to_server(StubTranscription(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set("parlons.v1.TranscriptionService", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


class Gateway:
    def __init__(self, server: BackgroundServer, keys: dict[str, str]) -> None:
        self.server = server
        self.keys = keys

    @property
    def module(self) -> GatewayModule:
        module = self.server.running.modules[0]
        assert isinstance(module, GatewayModule)
        return module

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.module.rest_port}"

    def put_in_debt(self, key: str) -> None:
        """A minute of audio owed (once is enough: the debt lasts the module's tests)."""
        module = self.module
        tenant = module.auth.from_key(self.keys[key])
        charge = module.quotas.charge_audio(tenant, 60.0)
        try:
            asyncio.run_coroutine_threadsafe(charge, self.server._loop).result(30)
        except ResourceExhausted:
            pass  # already in debt


@pytest.fixture(scope="module")
def gateway(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path = tmp_path_factory.mktemp("tenants") / "tenants.toml"
    store = TenantStore(path)
    keys = {"a": store.create_key("a")[0],
            "poor": store.create_key("poor", quotas={"audio_seconds_per_minute": 5})[0]}
    config = ParlonsConfig()
    config.server.port = 0
    config.server.grace_s = 1.0
    config.gateway.tenants_path = str(path)
    config.gateway.transcription = [backend]
    config.gateway.rest_port = 0
    server = BackgroundServer(config.server, [GatewayModule(config)]).start(timeout_s=60)
    try:
        yield Gateway(server, keys)
    finally:
        server.stop(1.0)


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many requests the gateway's interceptor deserialised, and their bytes."""
    counts = {"requests": 0, "bytes": 0}
    lenient = interceptors._lenient

    def spying(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
        inner = lenient(parse)
        if inner is None:
            return None

        def deserialize(data: bytes) -> Any:
            counts["requests"] += 1
            counts["bytes"] += len(data)
            return inner(data)

        return deserialize

    monkeypatch.setattr(interceptors, "_lenient", spying)
    return counts


def _health(address: str, timeout_s: float) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError:
            return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING


def _health_during(attack: Callable[[], None], address: str, attackers: int) -> list[bool]:
    """Health checks (2 s deadline each) made while `attackers` threads run `attack`."""
    threads = [threading.Thread(target=attack) for _ in range(attackers)]
    for thread in threads:
        thread.start()
    answers: list[bool] = []
    while any(thread.is_alive() for thread in threads) or not answers:
        answers.append(_health(address, 2.0))
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    return answers


def _raw_transcribe(address: str, payload: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError | None:
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 * MB)]) as channel:
        try:
            channel.unary_unary(TRANSCRIBE)(payload, metadata=metadata, timeout=60)
        except grpc.RpcError as exc:
            return exc
    return None


def _transcribe_request(audio_bytes: int) -> bytes:
    request = transcription_pb2.TranscribeRequest()
    request.audio.content = b"\0" * audio_bytes
    return request.SerializeToString()


def test_unauthenticated_calls_are_refused_before_their_body_is_read(gateway: Gateway, parsed: dict[str, int]) -> None:
    """Issue 25: 8 unauthenticated 60 MB calls held +927 MB on the gateway and its health
    checks failed: grpc.aio received and parsed each request before the handler looked
    at the key. Now the interceptor refuses on the metadata: nothing is parsed."""
    payload = _transcribe_request(16 * MB)
    codes: list[grpc.StatusCode] = []

    def attack() -> None:
        for _ in range(2):
            error = _raw_transcribe(gateway.server.address, payload)
            assert error is not None
            codes.append(error.code())

    answers = _health_during(attack, gateway.server.address, attackers=8)
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 16
    assert all(answers), answers  # every health check answered while the calls came in
    assert parsed == {"requests": 0, "bytes": 0}  # was 16 requests, 256 MiB


def test_a_wrong_key_is_refused_before_the_body_and_a_good_one_goes_through(
        gateway: Gateway, parsed: dict[str, int]) -> None:
    payload = _transcribe_request(1 * MB)
    error = _raw_transcribe(gateway.server.address, payload, (("authorization", "Bearer not-a-key"),))
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED, error
    error = _raw_transcribe(gateway.server.address, payload, (("authorization", "Basic abc"),))
    assert error is not None and "Bearer" in str(error.details())
    assert parsed["requests"] == 0
    good = (("authorization", f"Bearer {gateway.keys['a']}"),)
    assert _raw_transcribe(gateway.server.address, _transcribe_request(1000), good) is None
    assert parsed["requests"] == 1


def test_an_unauthenticated_upload_is_refused_before_any_message_is_read(
        gateway: Gateway, parsed: dict[str, int]) -> None:
    chunks = [transcription_pb2.TranscribeUploadRequest(audio_content=b"\0" * MB).SerializeToString()
              for _ in range(4)]
    with grpc.insecure_channel(gateway.server.address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            channel.stream_unary(UPLOAD)(iter(chunks), timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert parsed["requests"] == 0  # the handler's drain read up to 10,000 messages before


def test_a_tenant_in_debt_is_refused_a_unary_call_before_its_body_is_read(
        gateway: Gateway, parsed: dict[str, int]) -> None:
    gateway.put_in_debt("poor")  # a minute owed on 5 s a minute
    error = _raw_transcribe(gateway.server.address, _transcribe_request(8 * MB),
                            (("authorization", f"Bearer {gateway.keys['poor']}"),))
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert "quota" in str(error.details())
    assert parsed["requests"] == 0


def _multipart(fields: list[tuple[str, bytes]], boundary: str = "parlons-test") -> tuple[bytes, dict[str, str]]:
    parts = []
    for name, value in fields:
        filename = '; filename="a.wav"' if name == "file" else ""
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'.encode()
                     + value + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _post(gateway: Gateway, body: bytes, headers: dict[str, str], key: str = "a") -> requests.Response:
    return requests.post(f"{gateway.rest}/v1/audio/transcriptions", data=body, timeout=60,
                         headers={**headers, "Authorization": f"Bearer {gateway.keys[key]}"})


@pytest.fixture
def parts_read(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many multipart parts aiohttp parsed on the gateway's event loop."""
    from aiohttp import multipart

    counts = {"parts": 0}
    original = multipart.MultipartReader.next

    async def counting(self: Any) -> Any:
        part = await original(self)
        counts["parts"] += part is not None
        return part

    monkeypatch.setattr(multipart.MultipartReader, "next", counting)
    return counts


def test_a_form_of_400000_empty_fields_is_refused_after_64_parts(gateway: Gateway, parts_read: dict[str, int]) -> None:
    """Issue 25: 400,000 empty fields (22 MB) with a valid key took 34 s of gateway CPU,
    parsed on its event loop, and its health checks failed for 58 s."""
    body, headers = _multipart([("a", b"")] * 400_000 + [("file", b"RIFF")])
    assert 20 * MB < len(body) < 30 * MB
    statuses: list[tuple[int, str]] = []

    def attack() -> None:
        response = _post(gateway, body, headers)
        statuses.append((response.status_code, response.json()["error"]["message"]))

    answers = _health_during(attack, gateway.server.address, attackers=4)
    assert all(answers), answers
    assert len(statuses) == 4
    for status, message in statuses:
        assert status == 400 and "more than 64 parts" in message, (status, message)
    assert parts_read["parts"] <= 4 * 65  # was 4 x 400,001


def test_a_preamble_of_empty_lines_is_refused_after_a_bounded_number(
        gateway: Gateway, parts_read: dict[str, int]) -> None:
    body, headers = _multipart([("file", b"RIFF")])
    response = _post(gateway, b"\r\n" * 2_000_000 + body, headers)
    assert response.status_code == 400
    assert "lines of preamble" in response.json()["error"]["message"]
    assert parts_read["parts"] == 0


def test_a_field_other_than_the_file_is_bounded_with_a_413_naming_it(gateway: Gateway) -> None:
    body, headers = _multipart([("prompt", b"x" * (64 * 1024 + 1)), ("file", b"RIFF")])
    response = _post(gateway, body, headers)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["param"] == "prompt" and "64 KiB" in error["message"]


@pytest.mark.parametrize("value", ["99999999999", "²", "-1", "101", "1e3", "0" * 5000])
def test_speaker_counts_out_of_range_or_not_ascii_digits_are_a_400_naming_the_field(
        gateway: Gateway, value: str) -> None:
    """Issue 25: num_speakers=99999999999 or "²" was an HTTP 500 with a traceback."""
    for name in ("num_speakers", "min_speakers", "max_speakers"):
        body, headers = _multipart([("response_format", b"diarized_json"), (name, value.encode()),
                                    ("file", b"RIFF")])
        response = _post(gateway, body, headers)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == name and "whole number from 0 to 100" in error["message"]


def test_a_rest_upload_from_a_tenant_in_debt_is_refused_before_its_form_is_read(
        gateway: Gateway, parts_read: dict[str, int]) -> None:
    gateway.put_in_debt("poor")
    body, headers = _multipart([("model", b"tiny"), ("file", b"RIFF" * 1000)])
    response = _post(gateway, body, headers, key="poor")
    assert response.status_code == 429, response.text
    assert parts_read["parts"] == 0


def test_model_not_served_names_models_never_server_paths() -> None:
    """Issue 25: the NOT_FOUND for an unknown model listed the model's absolute path."""
    module = TranscriptionModule(TranscriptionSettings(model="/srv/parlons/models/whisper-base"))
    module.served_names = {"/srv/parlons/models/whisper-base", "whisper-base", "base"}
    module.engine = object()  # type: ignore[assignment]  # loaded, as far as the check goes
    servicer = TranscriptionServicer(module)
    with pytest.raises(NotFound) as info:
        servicer._engine_for("large-v3")
    message = info.value.message
    assert "/srv" not in message and "parlons/models" not in message, message
    assert "whisper-base" in message and "base" in message
    assert servicer._engine_for("/srv/parlons/models/whisper-base") is module.engine  # still accepted
    module.live_pool.shutdown(wait=False)
    module.queue.shutdown()


def _services_listed(address: str) -> list[str] | grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        try:
            answers = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                     timeout=10))
        except grpc.RpcError as exc:
            return exc.code()
    return [s.name for s in answers[0].list_services_response.service]


@pytest.mark.parametrize(("host", "setting", "expected"), [
    ("127.0.0.1", None, True), ("0.0.0.0", None, False), ("0.0.0.0", True, True), ("127.0.0.1", False, False),
])
def test_reflection_is_on_for_loopback_only_unless_set(host: str, setting: bool | None, expected: bool) -> None:
    """Issue 25: reflection answered without a key on every listener."""
    settings = ServerSettings(host=host, port=0, reflection=setting)
    assert reflection_enabled(settings) is expected
    server = BackgroundServer(settings, []).start(timeout_s=30)
    try:
        listed = _services_listed(f"127.0.0.1:{server.running.port}")
        assert _health(f"127.0.0.1:{server.running.port}", 5.0)  # health answers either way
    finally:
        server.stop(0.5)
    if expected:
        assert isinstance(listed, list) and "grpc.health.v1.Health" in listed
    else:
        assert listed == grpc.StatusCode.UNIMPLEMENTED
