"""Streams cannot be held forever (issue 10): a client that opens a stream and goes
silent, or keeps one open past its maximum duration, gets OUT_OF_RANGE promptly, its slot
is freed, and the server keeps answering. Real servers on loopback, real models."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from collections.abc import Iterator

import grpc
import pytest

from gateway_helpers import gateway_config
from speech import AUDIO
from parlons.clients.sdk import TranscriptionClient, open_channel
from parlons.serve import build_modules
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import BackgroundServer
from parlons.v1 import (
    audio_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    transcription_pb2,
    translation_pb2,
    translation_pb2_grpc,
)

pytestmark = pytest.mark.slow

IDLE_S = 1.5
MAX_S = 4.0


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    config = ParlonsConfig()
    config.server.port = 0
    config.server.stream_idle_timeout_s = IDLE_S
    config.server.stream_max_duration_s = MAX_S
    config.transcription.model = "tiny.en"
    config.transcription.max_streams = 1
    running = BackgroundServer(config.server, build_modules(config, ["transcription"])).start()
    yield running
    running.stop()


def _config_request() -> transcription_pb2.StreamingTranscribeRequest:
    return transcription_pb2.StreamingTranscribeRequest(config=transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1)))


def _stream_until_refused(stub, requests: Iterator[object]) -> tuple[grpc.StatusCode, str, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        for _ in stub.StreamingTranscribe(requests, timeout=60):
            pass
    return info.value.code(), info.value.details(), time.monotonic() - started


def test_empty_audio_messages_do_not_keep_a_stream_open(server: BackgroundServer) -> None:
    """A client that sends empty audio messages every 100 ms holds nothing: the stream is
    closed at the idle bound as if it sent nothing, and its slot is free again."""
    channel = open_channel(server.address)
    stub = TranscriptionClient(channel).stub
    stop = threading.Event()

    def config_then_empty() -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
        yield _config_request()
        while not stop.wait(0.1):
            yield transcription_pb2.StreamingTranscribeRequest(audio_content=b"")

    try:
        code, details, _ = _stream_until_refused(stub, config_then_empty())
        assert code == grpc.StatusCode.OUT_OF_RANGE, details
        assert f"no message on the stream for {IDLE_S:g} s" in details  # not the maximum duration
    finally:
        stop.set()
        channel.close()


def test_a_config_only_stream_is_closed_after_the_idle_timeout(server: BackgroundServer) -> None:
    channel = open_channel(server.address)
    stub = TranscriptionClient(channel).stub
    hold = threading.Event()

    def config_then_nothing() -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
        yield _config_request()
        hold.wait(30)  # the client keeps the stream open and sends nothing

    try:
        code, details, seconds = _stream_until_refused(stub, config_then_nothing())
        assert code == grpc.StatusCode.OUT_OF_RANGE, details
        assert f"no message on the stream for {IDLE_S:g} s" in details
        assert IDLE_S - 0.2 <= seconds <= IDLE_S + 2.0, seconds
        # Its slot (max_streams = 1) is free again: a new stream is served.
        def one_second() -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
            yield _config_request()
            for _ in range(10):
                yield transcription_pb2.StreamingTranscribeRequest(audio_content=b"\0\0" * 1600)
        assert list(stub.StreamingTranscribe(one_second(), timeout=60)) is not None
    finally:
        hold.set()
        channel.close()


def test_a_stream_is_closed_at_its_maximum_duration_even_while_audio_flows(server: BackgroundServer) -> None:
    channel = open_channel(server.address)
    stub = TranscriptionClient(channel).stub
    stop = threading.Event()

    def audio_forever() -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
        yield _config_request()
        while not stop.is_set():
            yield transcription_pb2.StreamingTranscribeRequest(audio_content=b"\0\0" * 1600)
            time.sleep(0.1)

    try:
        code, details, seconds = _stream_until_refused(stub, audio_forever())
        assert code == grpc.StatusCode.OUT_OF_RANGE, details
        assert f"maximum duration of {MAX_S:g} s" in details
        assert MAX_S - 0.2 <= seconds <= MAX_S + 2.0, seconds
    finally:
        stop.set()
        channel.close()


def test_gateway_live_conversation_and_translation_streams_are_bounded_too(tmp_path: Path) -> None:
    """The same bounds on the gateway's LiveConversation and on StreamingTranslate (the
    interceptor every server installs)."""
    config = gateway_config(None, tmp_path / "models", transcription_model="base")
    config.server.port = 0
    config.server.stream_idle_timeout_s = IDLE_S
    config.gateway.rest_enabled = False
    running = BackgroundServer(config.server, build_modules(config, ["transcription", "translation", "gateway"])).start()
    channel = open_channel(running.address)
    hold = threading.Event()
    try:
        live = gateway_pb2_grpc.GatewayServiceStub(channel)

        def live_config_only() -> Iterator[gateway_pb2.LiveConversationRequest]:
            yield gateway_pb2.LiveConversationRequest(config=gateway_pb2.LiveConversationConfig(
                config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=2),
                parties=[gateway_pb2.Party(name="agent", language="fr", channel=0),
                         gateway_pb2.Party(name="visitor", language="en", channel=1)]))
            hold.wait(30)

        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            for _ in live.LiveConversation(live_config_only(), timeout=60):
                pass
        assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE, info.value.details()
        assert time.monotonic() - started <= IDLE_S + 2.0

        translation = translation_pb2_grpc.TranslationServiceStub(channel)

        def texts_then_silence() -> Iterator[translation_pb2.StreamingTranslateRequest]:
            yield translation_pb2.StreamingTranslateRequest(config=translation_pb2.StreamingTranslateConfig(
                options=translation_pb2.TranslationOptions(target_language="en", source_language="fr")))
            hold.wait(30)

        with pytest.raises(grpc.RpcError) as info:
            for _ in translation.StreamingTranslate(texts_then_silence(), timeout=60):
                pass
        assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE, info.value.details()
    finally:
        hold.set()
        channel.close()
        running.stop()


def test_an_upload_is_refused_at_its_first_message_when_the_queue_is_full() -> None:
    """Issue 10: an upload was read whole (up to 4 GiB, hard-coded) before the work queue
    said no. Now the queue answers as soon as the config arrives, before any audio."""
    config = ParlonsConfig()
    config.server.port = 0
    config.transcription.model = "tiny.en"
    config.transcription.max_concurrent = 1
    config.transcription.max_queued = 0
    modules = build_modules(config, ["transcription"])
    running = BackgroundServer(config.server, modules).start()
    channel = open_channel(running.address, max_message_mb=32)
    client = TranscriptionClient(channel)
    long_audio = (AUDIO / "sample.wav").read_bytes()
    busy = threading.Thread(target=lambda: client.transcribe(long_audio, timeout_s=120))
    waiting = threading.Event()
    release = threading.Event()

    def config_then_wait() -> Iterator[transcription_pb2.TranscribeUploadRequest]:
        yield transcription_pb2.TranscribeUploadRequest(config=transcription_pb2.TranscribeUploadConfig())
        waiting.set()
        release.wait(30)  # the audio would come now: it is never needed
        yield transcription_pb2.TranscribeUploadRequest(audio_content=long_audio)

    try:
        busy.start()
        deadline = time.monotonic() + 10
        while modules[0].queue.admitted == 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            client.stub.TranscribeUpload(config_then_wait(), timeout=60)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
        assert waiting.is_set() and not release.is_set()  # refused while the client still held its audio
        assert time.monotonic() - started < 2.0
    finally:
        release.set()
        busy.join(120)
        channel.close()
        running.stop()


def test_a_refused_stream_reaches_the_client_as_itself_through_the_gateway(tmp_path: Path) -> None:
    """Found by the fuzz run: a backend refusing a stream while the gateway was still
    writing to it reached the client as INTERNAL (grpc.aio's own race, grpc/grpc#36066),
    in about half of the calls. Now the backend reads the rest of the stream first."""
    config = gateway_config(None, tmp_path / "models")
    config.gateway.rest_enabled = False
    running = BackgroundServer(config.server, build_modules(config, ["translation", "gateway"])).start()
    bad = translation_pb2.StreamingTranslateRequest(config=translation_pb2.StreamingTranslateConfig(
        options=translation_pb2.TranslationOptions(target_language="")))
    texts = [translation_pb2.StreamingTranslateRequest(text="Bonjour madame.") for _ in range(20)]
    codes = []
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = translation_pb2_grpc.TranslationServiceStub(channel)
            for _ in range(40):
                with pytest.raises(grpc.RpcError) as info:
                    list(stub.StreamingTranslate(iter([bad, *texts]), timeout=30))
                codes.append((info.value.code(), info.value.details()))
    finally:
        running.stop()
    assert all(code == grpc.StatusCode.INVALID_ARGUMENT and "target_language is required" in details
               for code, details in codes), [c for c in codes if c[0] != grpc.StatusCode.INVALID_ARGUMENT][:3]


async def test_a_gateway_still_starting_answers_unavailable_rather_than_hanging() -> None:
    """Its port opens before its services are loaded (a restart, a rolling update): a
    live conversation arriving then gets UNAVAILABLE at once, which the desk retries.
    It used to hang for ever: the error was lost in a background task."""
    from grpc import aio

    from parlons.services.common.server import start_server

    config = gateway_config(None, None, transcription_model="tiny.en")
    running = await start_server(config.server, build_modules(config, ["transcription", "gateway"]), load=False)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            live = gateway_pb2.LiveConversationConfig(
                config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
                parties=[gateway_pb2.Party(name="agent", language="fr", channel=-1),
                         gateway_pb2.Party(name="visitor", language="en", channel=-1)])

            async def requests():  # type: ignore[no-untyped-def]
                yield gateway_pb2.LiveConversationRequest(config=live)
                for _ in range(100):
                    yield gateway_pb2.LiveConversationRequest(audio_content=b"\0\0" * 1600)
                    await asyncio.sleep(0.1)

            started = time.monotonic()
            with pytest.raises(aio.AioRpcError) as info:
                async for _ in stub.LiveConversation(requests(), timeout=30):
                    pass
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
            assert "still starting" in (info.value.details() or "")
            assert time.monotonic() - started < 5
            # A unary call of the gateway, and one it relays, say the same.
            with pytest.raises(aio.AioRpcError) as info:
                await stub.TranscribeConversation(gateway_pb2.TranscribeConversationRequest(
                    config=live.config, audio=audio_pb2.Audio(content=b"\0\0" * 16000)), timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0)


def test_an_upload_is_held_once_in_memory_not_twice() -> None:
    """Issue 10: uploads were held as a list of chunks and then joined, twice the upload at
    the join. One buffer grows in place and is handed over without a copy; past the
    limit it refuses before growing."""
    from crafted import measured
    from parlons.services.common.audio_request import read_upload
    from parlons.errors import InvalidAudio

    chunk = b"\x01" * (1 << 16)
    size_mib = 64

    async def upload() -> int:
        async def messages():  # type: ignore[no-untyped-def]
            yield transcription_pb2.TranscribeUploadRequest(config=transcription_pb2.TranscribeUploadConfig())
            for _ in range(size_mib * 16):
                yield transcription_pb2.TranscribeUploadRequest(audio_content=chunk)
        _, data = await read_upload(messages(), max_bytes=size_mib << 20)
        return len(data)  # not the bytes: asyncio's task repr (3.11) would copy them fourfold

    outcome, _, peak = measured(lambda: asyncio.run(upload()))
    assert outcome == size_mib << 20, outcome
    assert peak < size_mib * 1.35, f"peak {peak:.0f} MiB for a {size_mib} MiB upload"

    async def too_large() -> None:
        async def messages():  # type: ignore[no-untyped-def]
            yield transcription_pb2.TranscribeUploadRequest(config=transcription_pb2.TranscribeUploadConfig())
            while True:
                yield transcription_pb2.TranscribeUploadRequest(audio_content=chunk)
        await read_upload(messages(), max_bytes=4 << 20)

    refused, _, peak = measured(lambda: asyncio.run(too_large()))
    assert isinstance(refused, InvalidAudio) and "4 MiB" in str(refused), refused
    assert peak < 8, peak
