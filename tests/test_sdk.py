"""The SDK (issue 11), sync and asyncio, against one real embedded server: every service
and the gateway's composed calls, typed results and their renderings, errors carrying
status, message, field and retry delay, retries while a server comes up."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import srt
import webvtt

from desk_helpers import free_port
from gateway_helpers import Tenants, gateway_config, make_tenants, start_embedded, translation_models
from parlons.clients.aio import (
    AsyncDiarizationClient,
    AsyncGatewayClient,
    AsyncTranscriptionClient,
    AsyncTranslationClient,
)
from parlons.clients.audio_source import file_chunks
from parlons.clients.connection import Connection
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.results import Conversation, Diarization, Transcript
from parlons.clients.retry import NO_RETRY, RetryPolicy
from parlons.clients.sdk import DiarizationClient, GatewayClient, TranscriptionClient, TranslationClient
from parlons.serve import build_modules
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import BackgroundServer
from speech import AUDIO, JFK_TEXT, stm_text, wer

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    return make_tenants(tmp_path_factory.mktemp("tenants") / "tenants.toml")


@pytest.fixture(scope="module")
def server(tenants: Tenants, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = gateway_config(tenants, tmp_path_factory.mktemp("models"))
    config.gateway.rest_enabled = False
    running = start_embedded(config, ["transcription", "translation", "diarization"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def connection(server: BackgroundServer, tenants: Tenants) -> Connection:
    return Connection(server.address, api_key=tenants.keys["a"])


def test_sync_clients_for_every_service(connection: Connection) -> None:
    with TranscriptionClient(connection) as transcription:
        transcript = transcription.transcribe_file(AUDIO / "jfk.flac", timeout_s=120)
        assert isinstance(transcript, Transcript) and wer(JFK_TEXT, transcript.text) <= 0.05
        assert transcript.language == "en" and 10.5 < transcript.duration_s < 11.5
        assert transcript.audio_duration_s == transcript.duration_s  # the message's own fields too
        cues = list(srt.parse(transcript.to_srt()))
        assert cues and wer(JFK_TEXT, " ".join(c.content for c in cues)) <= 0.05
        assert len(webvtt.from_string(transcript.to_vtt())) == len(cues)
        narrow = list(srt.parse(transcript.render("srt", shape=transcript_shape(20, 1))))
        assert len(narrow) > len(cues) and all(len(c.content) <= 20 for c in narrow)
        finals = [r.text for r in transcription.stream_file(AUDIO / "jfk.flac", realtime=False, timeout_s=120)
                  if r.is_final]
        assert wer(JFK_TEXT, " ".join(finals)) <= 0.2, finals
        assert transcription.list_models().default_model == "tiny.en"

    with DiarizationClient(connection) as diarization:
        who = diarization.diarize_file(AUDIO / "sample.wav", num_speakers=2, timeout_s=300)
        assert isinstance(who, Diarization) and len(who.speakers) == 2
        assert who.to_rttm().count("SPEAKER sample 1 ") == len(who.turns) > 4

    with TranslationClient(connection) as translation:
        texts = translation.translate(["Bonjour madame.", "Votre dossier est complet."], **_fr_en()).texts
        assert len(texts) == 2 and all(texts)
        streamed = list(translation.translate_stream(["Merci.", "Au revoir."], **_fr_en(), timeout_s=30))
        assert [r.index for r in streamed] == [0, 1]

    with GatewayClient(connection) as gateway:
        conversation = gateway.transcribe_conversation_file(AUDIO / "sample.wav", target_languages=["fr"],
                                                            timeout_s=600)
        assert isinstance(conversation, Conversation) and len({t.speaker for t in conversation.turns}) == 2
        assert wer(stm_text(AUDIO / "sample.stm"), conversation.text) <= 0.3
        french = conversation.translations["fr"]  # whole, from the gateway: nothing rebuilt here
        assert len(french.segments) == len(conversation.turns) and french.language == "fr"
        assert [s.speaker for s in french.segments] == [t.speaker for t in conversation.turns]
        assert conversation.to_rttm().startswith("SPEAKER sample 1 ")
        assert "SPEAKER_0" in conversation.to_srt() and conversation.to_vtt().startswith("WEBVTT")
        speech = gateway.translate_speech((AUDIO / "jfk.flac").read_bytes(), "fr", timeout_s=120)
        assert wer(JFK_TEXT, speech.text) <= 0.05 and speech.translated_text
        assert speech.translated.language == "fr" and len(speech.translated.segments) == len(speech.segments)
        assert list(srt.parse(speech.to_srt()))


def transcript_shape(line_chars: int, lines: int):  # type: ignore[no-untyped-def]
    from parlons.transcripts import SubtitleShape

    return SubtitleShape(line_chars=line_chars, lines=lines)


def _fr_en() -> dict[str, str]:
    return {"target_language": "en", "source_language": "fr"}


def test_errors_carry_status_message_field_and_retry_delay(connection: Connection, tenants: Tenants,
                                                           server: BackgroundServer) -> None:
    with TranscriptionClient(connection) as client:
        with pytest.raises(ParlonsRpcError) as bad:
            client.transcribe(b"this is not audio")
        error = bad.value
        assert error.status == grpc.StatusCode.INVALID_ARGUMENT and error.field == "audio"
        assert "not audio" in error.message and str(error).startswith("INVALID_ARGUMENT: ")
        assert isinstance(error, grpc.RpcError) and error.code() == error.status  # still a grpc.RpcError
    with TranscriptionClient(Connection(server.address, api_key="prl_000000000000_" + "x" * 43)) as stranger:
        with pytest.raises(ParlonsRpcError) as refused:
            stranger.list_models()
        assert refused.value.status == grpc.StatusCode.UNAUTHENTICATED
    with TranslationClient(Connection(server.address, api_key=tenants.keys["small"]), retry=NO_RETRY) as small:
        text = ["Bonjour madame, bienvenue à la préfecture du Rhône."]  # 50 characters, 40 a minute
        small.translate(text, **_fr_en())
        with pytest.raises(ParlonsRpcError) as limited:
            small.translate(text, **_fr_en())
        assert limited.value.status == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert limited.value.retry_after_s is not None and limited.value.retry_after_s > 1


def test_idempotent_calls_are_retried_until_the_server_is_up(tmp_path: Path) -> None:
    port = free_port()
    config = ParlonsConfig()
    config.server.host, config.server.port = "127.0.0.1", port
    config.translation.models = translation_models(tmp_path)[:1]
    started: list[BackgroundServer] = []

    def start_later() -> None:
        time.sleep(1.5)
        started.append(BackgroundServer(config.server, build_modules(config, ["translation"])).start())

    address = f"127.0.0.1:{port}"
    with TranslationClient(Connection(address), retry=NO_RETRY) as impatient:
        with pytest.raises(ParlonsRpcError) as down:
            impatient.list_languages()
        assert down.value.status == grpc.StatusCode.UNAVAILABLE
    retries: list[float] = []
    policy = RetryPolicy(attempts=12, initial_backoff_s=0.2, max_backoff_s=1.0, on_retry=lambda e, d: retries.append(d))
    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        with TranslationClient(Connection(address), retry=policy) as patient:
            assert patient.list_languages().pairs
        assert retries, "the server was down: the call should have been retried"
    finally:
        starter.join()
        for running in started:
            running.stop()


async def test_async_clients_for_every_service(connection: Connection) -> None:
    async with AsyncTranscriptionClient(connection) as transcription:
        transcript = await transcription.transcribe_file(AUDIO / "jfk.flac", timeout_s=120)
        assert wer(JFK_TEXT, transcript.text) <= 0.05 and transcript.to_srt()
        again = await transcription.transcribe((AUDIO / "jfk.flac").read_bytes(), timeout_s=120)
        assert again.text == transcript.text

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in file_chunks(AUDIO / "jfk.flac", realtime=False):
                yield chunk

        finals = [r.text async for r in transcription.stream(chunks(), timeout_s=120) if r.is_final]
        assert wer(JFK_TEXT, " ".join(finals)) <= 0.2, finals
        with pytest.raises(ParlonsRpcError) as bad:
            await transcription.transcribe(b"this is not audio")
        assert bad.value.status == grpc.StatusCode.INVALID_ARGUMENT and bad.value.field == "audio"
    async with AsyncDiarizationClient(connection) as diarization:
        who = await diarization.diarize_file(AUDIO / "sample.wav", num_speakers=2, timeout_s=300)
        assert len(who.speakers) == 2
    async with AsyncTranslationClient(connection) as translation:
        texts = (await translation.translate(["Bonjour madame."], **_fr_en())).texts
        assert len(texts) == 1 and texts[0]
        pairs = (await translation.list_languages()).pairs
        assert {(p.source_language, p.target_language) for p in pairs} >= {("fr", "en")}
    async with AsyncGatewayClient(connection) as gateway:
        conversation = await gateway.transcribe_conversation_file(AUDIO / "sample.wav", target_languages=["fr"],
                                                                  timeout_s=600)
        assert len({t.speaker for t in conversation.turns}) == 2 and "fr" in conversation.translations
        # Calls run side by side on one channel.
        results = await asyncio.gather(*(gateway.translate_speech((AUDIO / "english.wav").read_bytes(), "fr",
                                                                  timeout_s=120) for _ in range(3)))
        assert len({r.text for r in results}) == 1
