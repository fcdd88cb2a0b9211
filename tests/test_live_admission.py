"""Live admission: a full replica refuses a stream at once with RESOURCE_EXHAUSTED and
RetryInfo; through the gateway the stream is then opened on another replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_status import rpc_status
from google.rpc import error_details_pb2
from parlons.clients.sdk import open_channel
from parlons.serve import build_modules
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import BackgroundServer
from parlons.v1 import audio_pb2, transcription_pb2, transcription_pb2_grpc

pytestmark = pytest.mark.slow


def _replica() -> BackgroundServer:
    config = ParlonsConfig()
    config.server.port = 0
    config.server.grace_s = 1.0
    config.transcription.model = "tiny.en"
    config.transcription.max_streams = 1
    return BackgroundServer(config.server, build_modules(config, ["transcription"])).start(timeout_s=600)


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[BackgroundServer]]:
    servers = [_replica(), _replica()]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def gateway(replicas: list[BackgroundServer]) -> Iterator[BackgroundServer]:
    config = ParlonsConfig()
    config.server.port = 0
    config.server.grace_s = 1.0
    config.gateway.transcription = [r.address for r in replicas]
    config.gateway.auth = "none"
    server = BackgroundServer(config.server, build_modules(config, ["gateway"])).start(timeout_s=600)
    yield server
    server.stop()


def _open_streams(replicas: list[BackgroundServer]) -> int:
    return sum(r.running.modules[0].streams.open for r in replicas)  # type: ignore[attr-defined]


def _wait_open(replicas: list[BackgroundServer], count: int) -> None:
    deadline = time.monotonic() + 120
    while _open_streams(replicas) != count:
        assert time.monotonic() < deadline, f"{_open_streams(replicas)} streams open, expected {count}"
        time.sleep(0.05)


def _config() -> transcription_pb2.StreamingTranscribeRequest:
    return transcription_pb2.StreamingTranscribeRequest(config=transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1)))


class HeldStream:
    """A live stream that sends its config and 100 ms of silence every 100 ms until
    released; `error` is how it ended (None: cleanly)."""

    def __init__(self, address: str) -> None:
        self.release = threading.Event()
        self.sent = threading.Event()
        self.error: grpc.RpcError | None = None
        self._channel = open_channel(address)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _requests(self) -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
        yield _config()
        while not self.release.is_set():
            yield transcription_pb2.StreamingTranscribeRequest(audio_content=bytes(3200))
            self.sent.set()
            self.release.wait(0.1)

    def _run(self) -> None:
        stub = transcription_pb2_grpc.TranscriptionServiceStub(self._channel)
        try:
            for _ in stub.StreamingTranscribe(self._requests(), timeout=120):
                pass
        except grpc.RpcError as exc:
            self.error = exc

    def refused(self) -> grpc.RpcError:
        """How it ended, once refused (it must be)."""
        self._thread.join(120)
        assert self.error is not None, "the stream was not refused"
        return self.error

    def close(self) -> None:
        self.release.set()
        self._thread.join(60)
        self._channel.close()


def _retry_delay(error: grpc.RpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no status details"
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    raise AssertionError("no RetryInfo")


def test_a_full_replica_refuses_with_retry_info(replicas: list[BackgroundServer]) -> None:
    first = HeldStream(replicas[0].address)
    try:
        _wait_open(replicas, 1)
        error = HeldStream(replicas[0].address).refused()
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "live streams" in (error.details() or "")
        assert _retry_delay(error) > 0
        assert first.error is None  # the open stream is not disturbed
    finally:
        first.close()
    _wait_open(replicas, 0)


def test_the_gateway_opens_a_refused_stream_on_another_replica(
    replicas: list[BackgroundServer], gateway: BackgroundServer
) -> None:
    """Two replicas of one stream each: two desks through the gateway both run (the
    round robin may send the second to the full replica first: it is then reopened on
    the other), and a third is refused with RetryInfo. Repeated, so that the round robin
    surely sends a desk to the full replica at least once."""
    for _ in range(3):
        desks = [HeldStream(gateway.address)]
        try:
            _wait_open(replicas, 1)
            desks.append(HeldStream(gateway.address))
            _wait_open(replicas, 2)
            error = HeldStream(gateway.address).refused()
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert _retry_delay(error) > 0
            assert [d.error for d in desks] == [None, None]
        finally:
            for desk in desks:
                desk.close()
        _wait_open(replicas, 0)
