"""The gateway end to end: real servers on loopback, real models, real audio.

One embedded server (`parlons serve` layout: gateway on the public port, transcription
tiny.en, diarisation, translation test models behind it on a private socket) serves most
tests; LiveConversation gets its own with the multilingual base model.
"""

from __future__ import annotations

import asyncio

import argparse
import logging
import threading
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from gateway_helpers import (
    Tenants,
    diarization_available,
    gateway_config,
    gateway_module,
    load_mono,
    make_tenants,
    pcm16,
    realtime_chunks,
    speaker_attribution,
    start_embedded,
)
from parlons.clients.sdk import GatewayClient, TranscriptionClient, open_channel
from parlons.services.common.server import BackgroundServer
from parlons.services.transcription.servicer import TranscriptionModule
from parlons.services.gateway.tenants import TenantStore
from parlons.v1 import (
    audio_pb2,
    diarization_pb2,
    diarization_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    transcription_pb2,
    translation_pb2,
    translation_pb2_grpc,
)
from speech import AUDIO, JFK_TEXT, espeak, opus_bytes, wav_bytes, wer

pytestmark = pytest.mark.slow

needs_diarization = pytest.mark.skipif(
    not diarization_available(), reason="the diarisation service (parlons.services.diarization.servicer) is not there yet"
)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    return make_tenants(tmp_path_factory.mktemp("tenants") / "tenants.toml")


@pytest.fixture(scope="module")
def gateway(tenants: Tenants, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = gateway_config(tenants, tmp_path_factory.mktemp("translation-models"))
    services = ["transcription", "translation"] + (["diarization"] if diarization_available() else [])
    server = start_embedded(config, services)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def channel(gateway: BackgroundServer) -> Iterator[grpc.Channel]:
    channel = open_channel(gateway.address)
    yield channel
    channel.close()


def _code(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value


# -- TranscribeConversation ------------------------------------------------------------


@needs_diarization
def test_sample_wav_two_speakers_attributed_at_word_level(channel: grpc.Channel, tenants: Tenants) -> None:
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    response = client.transcribe_conversation(
        (AUDIO / "sample.wav").read_bytes(), subtitles=True, uri="sample", timeout_s=600
    )
    speakers = {t.speaker for t in response.turns}
    assert len(speakers) == 2, [(t.speaker, t.text) for t in response.turns]
    score = speaker_attribution(AUDIO / "sample.stm", [(t.speaker, t.text) for t in response.turns])
    assert score.wer <= 0.25, score
    # Attribution is judged on the sample.stm words the transcript has (hits and
    # substitutions); the words it lost are the WER's business. With the reference RTTM
    # instead of the diarisation service, tiny.en gets 74/74 aligned words right (74/81
    # of all words: 7 are lost by the transcription).
    assert score.of_aligned >= 0.90, score
    assert {s.speaker for s in response.speakers} == speakers
    rttm_speakers = {line.split()[7] for line in response.rttm.splitlines()}
    assert response.rttm.startswith("SPEAKER sample 1 ") and rttm_speakers == speakers
    for name in speakers:
        assert f"{name}: " in response.srt and f"<v {name}>" in response.vtt


@needs_diarization
def test_diarization_is_served_on_the_gateway_endpoint(channel: grpc.Channel, tenants: Tenants) -> None:
    stub = diarization_pb2_grpc.DiarizationServiceStub(channel)
    response = stub.Diarize(
        diarization_pb2.DiarizeRequest(audio=audio_pb2.Audio(content=(AUDIO / "sample.wav").read_bytes())),
        metadata=tenants.metadata("a"), timeout=300,
    )
    assert len({t.speaker for t in response.turns}) == 2 and 29 < response.audio_duration_s < 31


def test_channel_mode_turns_translated_with_subtitles(channel: grpc.Channel, tenants: Tenants) -> None:
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    response = client.transcribe_conversation(
        (AUDIO / "stereo_diarization.wav").read_bytes(),
        diarization=diarization_pb2.DiarizationOptions(
            mode=diarization_pb2.CHANNEL, channel_speaker_names=["agent", "visitor"]
        ),
        target_languages=["fr", "en"],
        subtitles=True,
        timeout_s=120,
    )
    assert {t.speaker for t in response.turns} == {"agent", "visitor"}
    assert {t.channel for t in response.turns} == {0, 1}
    for turn in response.turns:
        assert [t.language for t in turn.translations] == ["fr", "en"]
        assert turn.translations[0].text.strip()  # en -> fr by the test model
        assert turn.translations[1].text == turn.text  # already English
        assert all(w.speaker == turn.speaker for w in turn.words)
    assert "agent: " in response.srt and "<v visitor>" in response.vtt
    assert "agent" in response.rttm and "visitor" in response.rttm


def test_upload_rpc_and_the_transcribe_cli_through_the_gateway(
    gateway: BackgroundServer, channel: grpc.Channel, tenants: Tenants, tmp_path: Path
) -> None:
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    path = AUDIO / "stereo_diarization.wav"
    unary = client.transcribe_conversation(
        path.read_bytes(), diarization=diarization_pb2.DiarizationOptions(mode=diarization_pb2.CHANNEL), timeout_s=120
    )
    conversation = client.transcribe_conversation_file(
        path, diarization=diarization_pb2.DiarizationOptions(mode=diarization_pb2.CHANNEL), timeout_s=120)
    assert conversation.translations == {}
    assert [s.text for s in conversation.segments] == [t.text for t in unary.turns]
    assert [s.speaker for s in conversation.segments] == ["SPEAKER_00", "SPEAKER_01"]
    rttm = conversation.to_rttm()
    assert rttm.count("SPEAKER stereo_diarization 1 ") == 2
    assert "SPEAKER_01: " in conversation.to_srt() and conversation.to_vtt().startswith("WEBVTT")

    from parlons.clients import transcribe_cli

    parser = argparse.ArgumentParser()
    transcribe_cli.add_transcribe_command(parser.add_subparsers())
    args = parser.parse_args([
        "transcribe", str(path), "--server", gateway.address, "--api-key", tenants.keys["a"],
        "--diarize", "--per-channel", "--format", "srt,txt,rttm", "--output-dir", str(tmp_path),
    ])
    assert transcribe_cli.run_transcribe(args) == 0
    assert "SPEAKER_01: " in (tmp_path / "stereo_diarization.srt").read_text()
    assert (tmp_path / "stereo_diarization.rttm").read_text() == rttm


def test_a_conversation_without_speakers_is_the_transcript_translated(
    gateway: BackgroundServer, channel: grpc.Channel, tenants: Tenants, tmp_path: Path
) -> None:
    """Diarisation NONE: the transcription service's transcript, every field kept, one
    turn per segment without a speaker, translated as a conversation is; the batch CLI
    takes this path for translations without --diarize, and writes the same transcript."""
    audio = (AUDIO / "jfk.flac").read_bytes()
    plain = TranscriptionClient(channel, metadata=tenants.metadata("a")).transcribe(audio, timeout_s=120)
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    response = client.transcribe_conversation(
        audio, diarization=diarization_pb2.DiarizationOptions(mode=diarization_pb2.NONE),
        target_languages=["fr"], subtitles=True, timeout_s=120)
    assert [s.text for s in response.transcript.segments] == [s.text for s in plain.segments]
    assert (response.transcript.model, response.transcript.language) == (plain.model, plain.language)
    assert response.transcript.segments[0].avg_logprob == plain.segments[0].avg_logprob  # the transcript itself
    assert [t.text for t in response.turns] == [s.text.strip() for s in plain.segments]
    assert all(t.speaker == "" for t in response.turns) and not response.speakers and response.rttm == ""
    assert all(t.translations[0].language == "fr" and t.translations[0].text.strip() for t in response.turns)
    translated = response.translated_transcripts[0]
    assert translated.language == "fr" and len(translated.segments) == len(plain.segments)
    assert response.srt.count("-->") >= len(plain.segments)
    refused = _code(lambda: client.transcribe_conversation(
        audio, diarization=diarization_pb2.DiarizationOptions(mode=diarization_pb2.NONE, num_speakers=2), timeout_s=60))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT and "NONE" in (refused.details() or "")

    from parlons.clients import transcribe_cli

    def cli(*extra: str) -> Path:
        out = tmp_path / ("-".join(extra) or "plain")
        parser = argparse.ArgumentParser()
        transcribe_cli.add_transcribe_command(parser.add_subparsers())
        args = parser.parse_args(["transcribe", str(AUDIO / "jfk.flac"), "--server", gateway.address,
                                  "--api-key", tenants.keys["a"], "--format", "txt,srt", "--output-dir", str(out),
                                  *extra])
        assert transcribe_cli.run_transcribe(args) == 0
        return out

    alone, translated_dir = cli(), cli("--translate-to", "fr")
    assert (translated_dir / "jfk.txt").read_text() == (alone / "jfk.txt").read_text()
    assert (translated_dir / "jfk.srt").read_text() == (alone / "jfk.srt").read_text()
    french = (translated_dir / "jfk.fr.txt").read_text().splitlines()
    assert len(french) == len((alone / "jfk.txt").read_text().splitlines()) and all(line.strip() for line in french)


def test_translate_speech(channel: grpc.Channel, tenants: Tenants) -> None:
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    response = client.translate_speech((AUDIO / "jfk.flac").read_bytes(), "fr", timeout_s=120)
    assert response.source_language == "en" and response.target_language == "fr"
    assert wer(JFK_TEXT, response.text) <= 0.05
    assert len(response.translated_segments) == len(response.segments) > 0
    assert all(t.strip() for t in response.translated_segments)
    assert 10.5 < response.audio_duration_s < 11.5
    error = _code(lambda: client.translate_speech(b"garbage, not audio", "fr", timeout_s=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_requests_asking_too_much_are_refused_before_any_work(channel: grpc.Channel, tenants: Tenants) -> None:
    """Issue 10: 10,000 target languages once stalled the event loop (a quadratic sort),
    and a client's 10,000-entry glossary compiled on it. Now: bounded, refused at once."""
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    audio = (AUDIO / "jfk.flac").read_bytes()
    many = translation_pb2.Glossary(entries=[translation_pb2.GlossaryEntry(source=f"terme{i}", target="x")
                                             for i in range(1001)])
    cases = [
        (lambda: client.transcribe_conversation(audio, target_languages=[f"x{i}" for i in range(10_000)],
                                                timeout_s=30), "10,000 target languages; at most 8"),
        (lambda: client.transcribe_conversation(audio, target_languages=["en"], glossary=many, timeout_s=30),
         "1,001 entries; at most 1,000"),
        (lambda: client.transcribe_conversation(audio, target_languages=["e" * 40], timeout_s=30), "language tag"),
    ]
    translation = translation_pb2_grpc.TranslationServiceStub(channel)
    cases.append((lambda: translation.TranslateText(translation_pb2.TranslateTextRequest(
        texts=["Bonjour."], options=translation_pb2.TranslationOptions(target_language="en", glossary=many)),
        metadata=tenants.metadata("a"), timeout=30), "1,001 entries; at most 1,000"))
    for call, needle in cases:
        started = time.monotonic()
        error = _code(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in error.details(), error.details()
        assert time.monotonic() - started < 1.0


# -- pass-through ----------------------------------------------------------------------


def test_every_service_is_served_on_the_gateway_endpoint(channel: grpc.Channel, tenants: Tenants) -> None:
    md = tenants.metadata("a")
    transcription = TranscriptionClient(channel, metadata=md)
    assert wer(JFK_TEXT, transcription.transcribe((AUDIO / "jfk.flac").read_bytes(), timeout_s=60).text) <= 0.05
    assert transcription.list_models().default_model == "tiny.en"
    upload = transcription.transcribe_file(AUDIO / "jfk.flac", timeout_s=60)
    assert wer(JFK_TEXT, upload.text) <= 0.05
    translation = translation_pb2_grpc.TranslationServiceStub(channel)
    pairs = translation.ListLanguages(translation_pb2.ListLanguagesRequest(), metadata=md, timeout=30).pairs
    assert {(p.source_language, p.target_language) for p in pairs} >= {("fr", "en"), ("en", "fr")}
    texts = ["Bonjour, je voudrais renouveler mon titre de séjour."]
    reply = translation.TranslateText(
        translation_pb2.TranslateTextRequest(
            texts=texts, options=translation_pb2.TranslationOptions(source_language="fr", target_language="en")),
        metadata=md, timeout=30,
    )
    assert len(reply.translations) == 1 and reply.translations[0].text

    def stream() -> Iterator[translation_pb2.StreamingTranslateRequest]:
        yield translation_pb2.StreamingTranslateRequest(config=translation_pb2.StreamingTranslateConfig(
            options=translation_pb2.TranslationOptions(source_language="fr", target_language="en")))
        yield translation_pb2.StreamingTranslateRequest(text="Merci de présenter une pièce d'identité.")
        yield translation_pb2.StreamingTranslateRequest(text="Votre rendez-vous est fixé au 12 mars.")

    streamed = list(translation.StreamingTranslate(stream(), metadata=md, timeout=30))
    assert [r.index for r in streamed] == [0, 1] and all(r.translation.text for r in streamed)
    document = translation.TranslateDocument(
        translation_pb2.TranslateDocumentRequest(
            content=b"Bonjour madame.\nVotre dossier est complet.\n", format=translation_pb2.TXT,
            options=translation_pb2.TranslationOptions(source_language="fr", target_language="en")),
        metadata=md, timeout=60,
    )
    assert document.content and document.segments_translated >= 1 and document.characters > 0

    pcm = pcm16(load_mono(AUDIO / "english.wav"))
    config = transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1))
    chunks = [pcm[i:i + 3200] for i in range(0, len(pcm), 3200)] + [b"\0" * 32000]
    finals = [r for resp in transcription.streaming_transcribe(iter(chunks), config, timeout_s=60)
              for r in resp.results if r.is_final]
    assert wer("one two three", " ".join(r.text for r in finals)) <= 0.34


def test_request_id_reaches_the_backend(
    channel: grpc.Channel, tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="parlons.rpc")
    stub = translation_pb2_grpc.TranslationServiceStub(channel)
    _, call = stub.ListLanguages.with_call(
        translation_pb2.ListLanguagesRequest(),
        metadata=(*tenants.metadata("a"), ("x-request-id", "req-gateway-test-42")), timeout=30,
    )
    assert ("x-request-id", "req-gateway-test-42") in call.initial_metadata()
    time.sleep(0.2)
    logged = [getattr(r, "fields", {}) for r in caplog.records]
    seen = [fields for fields in logged if fields.get("request_id") == "req-gateway-test-42"]
    # Logged twice: by the gateway and by the translation service behind it.
    assert len([fields for fields in seen if fields["method"].endswith("ListLanguages")]) == 2


def test_deadline_is_propagated(channel: grpc.Channel, tenants: Tenants) -> None:
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    started = time.monotonic()
    error = _code(lambda: client.transcribe_conversation(
        (AUDIO / "jfk.flac").read_bytes(), target_languages=["fr"],
        diarization=diarization_pb2.DiarizationOptions(mode=diarization_pb2.CHANNEL), timeout_s=0.3,
    ))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.0
    # The backend gave up too: the queue is free for the next call at once.
    started = time.monotonic()
    TranscriptionClient(channel, metadata=tenants.metadata("a")).transcribe(
        (AUDIO / "english.wav").read_bytes(), timeout_s=60)
    assert time.monotonic() - started < 15


# -- tenants ---------------------------------------------------------------------------


def test_missing_wrong_and_revoked_keys(channel: grpc.Channel, tenants: Tenants) -> None:
    stub = translation_pb2_grpc.TranslationServiceStub(channel)
    request = translation_pb2.ListLanguagesRequest()
    error = _code(lambda: stub.ListLanguages(request, timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "missing API key" in error.details()
    wrong = tenants.keys["b"][:-4] + "AAAA"
    error = _code(lambda: stub.ListLanguages(request, metadata=(("authorization", f"Bearer {wrong}"),), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    gateway_stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    error = _code(lambda: gateway_stub.TranslateSpeech(gateway_pb2.TranslateSpeechRequest(), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    # A key created and revoked while the gateway runs: no restart.
    store = TenantStore(tenants.path)
    key, key_id = store.create_key("b", label="temporary")
    time.sleep(0.3)
    assert stub.ListLanguages(request, metadata=(("x-api-key", key),), timeout=10).pairs
    store.revoke("b", key_id)
    time.sleep(0.3)
    error = _code(lambda: stub.ListLanguages(request, metadata=(("x-api-key", key),), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in error.details()
    assert stub.ListLanguages(request, metadata=tenants.metadata("b"), timeout=10).pairs  # b's other key


def test_quotas_answer_resource_exhausted_with_retry_information(channel: grpc.Channel, tenants: Tenants) -> None:
    md = tenants.metadata("small")  # 5 audio s/min, 40 characters/min, 1 stream
    transcription = transcription_pb2.TranscribeRequest(audio=audio_pb2.Audio(
        content=(AUDIO / "jfk.flac").read_bytes()))
    stub = TranscriptionClient(channel, metadata=md).stub
    stub.Transcribe(transcription, metadata=md, timeout=60)  # 11 s: admitted, then 6 s in debt
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(transcription, metadata=md, timeout=60)
    error = info.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "quota" in error.details()
    retry_ms = int(dict(error.trailing_metadata())["retry-after-ms"])
    assert 30_000 < retry_ms <= 73_000  # the debt (about 6 s) repaid at 5 s a minute
    # An upload from the tenant in debt is refused at its first message, before its audio.
    waiting, release = threading.Event(), threading.Event()

    def config_then_wait() -> Iterator[transcription_pb2.TranscribeUploadRequest]:
        yield transcription_pb2.TranscribeUploadRequest(config=transcription_pb2.TranscribeUploadConfig())
        waiting.set()
        release.wait(30)
        yield transcription_pb2.TranscribeUploadRequest(audio_content=transcription.audio.content)

    try:
        error = _code(lambda: stub.TranscribeUpload(config_then_wait(), metadata=md, timeout=60))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "quota" in error.details()
        assert waiting.is_set() and not release.is_set()
    finally:
        release.set()

    translation = translation_pb2_grpc.TranslationServiceStub(channel)
    texts = translation_pb2.TranslateTextRequest(
        texts=["Bonjour madame, bienvenue à la préfecture du Rhône."],  # 50 characters
        options=translation_pb2.TranslationOptions(source_language="fr", target_language="en"))
    translation.TranslateText(texts, metadata=md, timeout=30)
    error = _code(lambda: translation.TranslateText(texts, metadata=md, timeout=30))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "characters" in error.details()
    # Inside a stream too: the quota error ends the stream as itself, not as a cancellation.
    def stream() -> Iterator[translation_pb2.StreamingTranslateRequest]:
        yield translation_pb2.StreamingTranslateRequest(config=translation_pb2.StreamingTranslateConfig(
            options=translation_pb2.TranslationOptions(source_language="fr", target_language="en")))
        yield translation_pb2.StreamingTranslateRequest(text="Merci beaucoup.")

    error = _code(lambda: list(translation.StreamingTranslate(stream(), metadata=md, timeout=30)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "characters" in error.details()
    # Another tenant is not affected.
    translation.TranslateText(texts, metadata=tenants.metadata("b"), timeout=30)


def test_a_document_with_no_text_still_pays_for_its_reading(channel: grpc.Channel, tenants: Tenants) -> None:
    """Issue 10: 563 KB of empty HTML elements held a CPU and was charged 0 characters.
    Every document now costs at least one character per 100 bytes, kept if it fails."""
    key = TenantStore(tenants.path).create_key("reader", quotas={"characters_per_minute": 100})[0]
    md = (("authorization", f"Bearer {key}"),)
    stub = translation_pb2_grpc.TranslationServiceStub(channel)
    empty_html = b"<html><body>" + b"<div><span></span></div>" * 360 + b"</body></html>"  # 8.7 KB: 88 characters
    request = translation_pb2.TranslateDocumentRequest(
        content=empty_html, format=translation_pb2.HTML,
        options=translation_pb2.TranslationOptions(source_language="fr", target_language="en"))
    deadline = time.monotonic() + 10
    while True:  # the new key is seen once the tenants file is reloaded
        try:
            first = stub.TranslateDocument(request, metadata=md, timeout=60)
            break
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert first.characters == 0
    stub.TranslateDocument(request, metadata=md, timeout=60)  # 12 left: admitted, now in debt
    refused = _code(lambda: stub.TranslateDocument(request, metadata=md, timeout=60))
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "characters" in refused.details(), refused.details()


def test_concurrent_stream_quota(channel: grpc.Channel, tenants: Tenants) -> None:
    md = tenants.metadata("small")
    stub = translation_pb2_grpc.TranslationServiceStub(channel)
    release = threading.Event()

    def held() -> Iterator[translation_pb2.StreamingTranslateRequest]:
        yield translation_pb2.StreamingTranslateRequest(config=translation_pb2.StreamingTranslateConfig(
            options=translation_pb2.TranslationOptions(source_language="fr", target_language="en")))
        release.wait(30)

    first = stub.StreamingTranslate(held(), metadata=md, timeout=60)
    time.sleep(0.5)
    try:
        def second() -> list[object]:
            return list(stub.StreamingTranslate(held(), metadata=md, timeout=30))
        error = _code(second)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "live stream" in error.details()
    finally:
        release.set()
        list(first)


def test_named_glossaries_are_isolated_between_tenants(channel: grpc.Channel, tenants: Tenants) -> None:
    stub = translation_pb2_grpc.TranslationServiceStub(channel)
    request = translation_pb2.TranslateTextRequest(
        texts=["La CAF vous répondra sous quinze jours."],
        options=translation_pb2.TranslationOptions(
            source_language="fr", target_language="en", glossary=translation_pb2.Glossary(name="accueil")),
    )
    reply = stub.TranslateText(request, metadata=tenants.metadata("a"), timeout=30)
    assert "CAF" in reply.translations[0].text  # do-not-translate term from a's glossary
    error = _code(lambda: stub.TranslateText(request, metadata=tenants.metadata("b"), timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "accueil" in error.details()
    # A client cannot claim another tenant's identity towards the backends.
    spoof = (*tenants.metadata("b"), ("x-parlons-tenant", "a"))
    error = _code(lambda: stub.TranslateText(request, metadata=spoof, timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# -- LiveConversation ------------------------------------------------------------------


@needs_diarization
def test_live_shared_microphone_is_split_by_voice(channel: grpc.Channel, tenants: Tenants) -> None:
    """sample.wav on one microphone, both parties speaking English: only the voices tell
    them apart. Sent faster than real time (the service keeps up as it can)."""
    config = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        parties=[gateway_pb2.Party(name="first", language="en", channel=-1),
                 gateway_pb2.Party(name="second", language="en", channel=-1)],
    )
    pcm = pcm16(load_mono(AUDIO / "sample.wav"))
    chunks = [pcm[i : i + 6400] for i in range(0, len(pcm), 6400)]
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    finals = [u for r in client.live_conversation(iter(chunks), config, timeout_s=600)
              for u in r.utterances if u.is_final and u.text]
    assert {u.party for u in finals} == {"first", "second"}
    score = speaker_attribution(AUDIO / "sample.stm", [(u.party, u.text) for u in finals])
    assert score.wer <= 0.25, score
    # Measured 0.81 with voice prints (0.96 when the utterances were diarised alone, 0.96
    # with the former 30-s diarisation at every final, at 3x the latency): the phone
    # line's two voices are alike, and a cold-start error stays in the prints. With the
    # agent enrolled, the next test asks 0.85.
    assert score.of_aligned >= 0.78, (score, [(u.party, u.text) for u in finals])
    assert all(u.translation == u.text and u.translation_language == "en" for u in finals)  # same language


@needs_diarization
def test_live_shared_microphone_enrolled_agent_is_named_from_the_first_word(
    channel: grpc.Channel, tenants: Tenants
) -> None:
    """The agent's voice enrolled (a sample of Sheila's voice): her turns are the agent's
    although Diane speaks first; without enrolment the first voice is the first party."""
    recording = load_mono(AUDIO / "sample.wav")
    sample = wav_bytes(recording[int(24.06 * 16000) : int(28.42 * 16000)])
    config = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        parties=[gateway_pb2.Party(name="agent", language="en", channel=-1, voice_sample=sample),
                 gateway_pb2.Party(name="visitor", language="en", channel=-1)],
    )
    pcm = pcm16(recording)
    chunks = [pcm[i : i + 6400] for i in range(0, len(pcm), 6400)]
    client = GatewayClient(channel, metadata=tenants.metadata("a"))
    finals = [u for r in client.live_conversation(iter(chunks), config, timeout_s=600)
              for u in r.utterances if u.is_final and u.text]
    described = [(u.party, round(u.start_s, 1), u.text) for u in finals]
    by_party = {party: " ".join(u.text for u in finals if u.party == party).lower() for party in ("agent", "visitor")}
    assert "sheila" in by_party["agent"] and "yankee" in by_party["agent"], described
    assert "diane" in by_party["visitor"] and "new jersey" in by_party["visitor"], described
    score = speaker_attribution(AUDIO / "sample.stm", [(u.party, u.text) for u in finals])
    assert score.of_aligned >= 0.85, (score, described)


@needs_diarization
def test_live_voice_sample_bad_input(channel: grpc.Channel, tenants: Tenants) -> None:
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    metadata = tenants.metadata("a")

    def run(sample: bytes, channels: int = 1, own_channels: bool = False) -> grpc.RpcError:
        config = gateway_pb2.LiveConversationConfig(
            config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=channels),
            parties=[gateway_pb2.Party(name="agent", language="en", channel=0 if own_channels else -1, voice_sample=sample),
                     gateway_pb2.Party(name="visitor", language="en", channel=1 if own_channels else -1)],
        )
        requests = iter([gateway_pb2.LiveConversationRequest(config=config),
                         gateway_pb2.LiveConversationRequest(audio_content=b"\0\0" * 1600)])
        return _code(lambda: list(stub.LiveConversation(requests, metadata=metadata, timeout=60)))

    recording = load_mono(AUDIO / "sample.wav")
    short = run(wav_bytes(recording[int(24.1 * 16000) : int(24.6 * 16000)]))
    assert short.code() == grpc.StatusCode.INVALID_ARGUMENT and "lasts 0.5 s" in short.details(), short.details()
    garbage = run(b"not a recording" * 100)
    assert garbage.code() == grpc.StatusCode.INVALID_ARGUMENT, garbage.details()
    silence = run(wav_bytes(np.zeros(16000 * 3, dtype=np.float32)))
    assert silence.code() == grpc.StatusCode.INVALID_ARGUMENT and "no voice" in silence.details(), silence.details()
    two_mics = run(wav_bytes(recording[int(24.1 * 16000) : int(28.4 * 16000)]), channels=2, own_channels=True)
    assert two_mics.code() == grpc.StatusCode.INVALID_ARGUMENT and "shared microphone" in two_mics.details()


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = gateway_config(None, tmp_path_factory.mktemp("live-models"), transcription_model="base")
    config.gateway.rest_enabled = False
    server = start_embedded(config, ["transcription", "translation"])
    yield server
    server.stop()


AGENT_GREETING = "Bonjour madame, que puis-je faire pour vous ?"


def _desk_audio(tmp_path: Path, agent_says: str = AGENT_GREETING) -> np.ndarray:
    """Two microphones: the visitor says "one two three" in English at 0.5 s; the agent
    answers in French at 6 s. (2, n) float32 at 16 kHz, 1.5 s of silence at the end."""
    visitor = load_mono(AUDIO / "english.wav")
    agent = load_mono(espeak(agent_says, "fr", tmp_path / "agent.wav"))
    n = int((6.0 + len(agent) / 16000 + 1.5) * 16000)
    audio = np.zeros((2, n), dtype=np.float32)
    audio[1, 8000 : 8000 + len(visitor)] = visitor
    audio[0, 96000 : 96000 + len(agent)] = agent
    return audio


def _live_config(**parties: tuple[str, int]) -> gateway_pb2.LiveConversationConfig:
    return gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=2),
        parties=[gateway_pb2.Party(name=name, language=lang, channel=ch) for name, (lang, ch) in parties.items()],
        interim_results=True,
    )


def test_live_conversation_two_channels_at_real_time(live_gateway: BackgroundServer, tmp_path: Path) -> None:
    channel = open_channel(live_gateway.address)
    client = GatewayClient(channel)
    audio = _desk_audio(tmp_path)
    config = _live_config(agent=("fr", 0), visitor=("detect", 1))
    utterances = [
        u for response in client.live_conversation(realtime_chunks(pcm16(audio), 2 * 2 * 16000), config, timeout_s=300)
        for u in response.utterances
    ]
    channel.close()
    interim = [u for u in utterances if not u.is_final]
    finals: dict[str, list[gateway_pb2.LiveUtterance]] = {}
    for u in utterances:
        if u.is_final and u.text:
            finals.setdefault(u.party, []).append(u)
    assert interim, "no interim result"
    assert set(finals) == {"agent", "visitor"}, [(u.party, u.text) for u in utterances]
    # "one, two, three" with pauses: one final per word or one for all, depending on the VAD.
    assert wer("one two three", " ".join(u.text for u in finals["visitor"])) <= 0.34
    for visitor in finals["visitor"]:
        assert visitor.language == "en" and visitor.channel == 1
        assert visitor.translation_language == "fr" and visitor.translation.strip()
    # The visitor's language was detected before the agent spoke: the agent is translated into it.
    for agent in finals["agent"]:
        assert agent.language == "fr" and agent.channel == 0
        assert agent.translation_language == "en" and agent.translation.strip(), agent
        assert agent.start_s > finals["visitor"][-1].end_s
    assert all(u.party in ("agent", "visitor") for u in utterances)


def test_live_conversation_shared_microphone_attributes_by_language(
    live_gateway: BackgroundServer, tmp_path: Path
) -> None:
    channel = open_channel(live_gateway.address)
    mono = _desk_audio(tmp_path).sum(axis=0)  # both parties on one microphone
    config = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        parties=[gateway_pb2.Party(name="agent", language="fr", channel=-1),
                 gateway_pb2.Party(name="visitor", language="en", channel=-1)],
    )
    chunks = [pcm16(mono)[i : i + 6400] for i in range(0, len(mono) * 2, 6400)]
    finals = [u for r in GatewayClient(channel).live_conversation(iter(chunks), config, timeout_s=300)
              for u in r.utterances if u.is_final and u.text]
    channel.close()
    described = [(u.party, u.language, u.text) for u in finals]
    assert {u.party for u in finals} == {"agent", "visitor"}, described
    # The English words are the visitor's, the French sentence the agent's (espeak's voice is
    # sometimes identified as another language: then turn taking decides, which also gives
    # the agent here).
    assert all(u.party == "visitor" for u in finals if u.start_s < 4.0), described
    assert all(u.party == "agent" for u in finals if u.start_s > 5.5), described
    for u in finals:
        assert u.channel == -1
        if u.language in ("en", "fr"):
            assert u.translation_language == {"en": "fr", "fr": "en"}[u.language] and u.translation.strip()


def test_live_interims_flow_while_a_final_is_being_translated(
    live_gateway: BackgroundServer, tmp_path: Path
) -> None:
    """A translation that takes 4 s (a loaded translation service) must not hold back the
    next utterance's interims on a shared microphone; finals still come in order."""
    core = gateway_module(live_gateway).core
    original = core.translate_texts

    async def slow_translate(*args: Any, **kwargs: Any) -> list[translation_pb2.Translation]:
        await asyncio.sleep(4.0)
        return await original(*args, **kwargs)

    # Visitor at 0.5 s, agent from 6 s for several seconds: a loaded machine that skips an
    # interim while it catches up on a final still has later ones to send.
    mono = _desk_audio(tmp_path, agent_says=(
        f"{AGENT_GREETING} Avez-vous apporté votre carte vitale, votre pièce d'identité "
        "et un justificatif de domicile de moins de trois mois ?"
    )).sum(axis=0)
    config = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        parties=[gateway_pb2.Party(name="agent", language="fr", channel=-1),
                 gateway_pb2.Party(name="visitor", language="en", channel=-1)],
        interim_results=True,
    )
    channel = open_channel(live_gateway.address)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(core, "translate_texts", slow_translate)
            arrivals = [u for r in GatewayClient(channel).live_conversation(
                realtime_chunks(pcm16(mono), 2 * 16000), config, timeout_s=300) for u in r.utterances]
    finally:
        channel.close()
    finals = [u for u in arrivals if u.is_final]
    assert len(finals) >= 2, [(u.is_final, u.text) for u in arrivals]
    # Some final arrived after interims of an utterance that started once it had ended:
    # those interims were not held back by its translation.
    overtaken = [f for f in finals
                 if any(not u.is_final and u.start_s > f.end_s for u in arrivals[: arrivals.index(f)])]
    assert overtaken, [(u.is_final, u.utterance_index, u.start_s, u.text) for u in arrivals]
    assert [u.start_s for u in finals] == sorted(u.start_s for u in finals)
    assert all(u.translation.strip() for u in finals if u.text)


def test_live_conversation_takes_what_a_browser_records(live_gateway: BackgroundServer, tmp_path: Path) -> None:
    """WebM/Opus from MediaRecorder on a shared microphone: the same parties and words
    as the raw PCM of the same audio."""
    mono = _desk_audio(tmp_path).sum(axis=0)
    webm = opus_bytes(mono, "webm")
    parties = [gateway_pb2.Party(name="agent", language="fr", channel=-1),
               gateway_pb2.Party(name="visitor", language="en", channel=-1)]
    channel = open_channel(live_gateway.address)
    client = GatewayClient(channel)
    config = gateway_pb2.LiveConversationConfig(config=audio_pb2.AudioConfig(encoding=audio_pb2.WEBM_OPUS), parties=parties)
    finals = [u for r in client.live_conversation(iter([webm[i : i + 2000] for i in range(0, len(webm), 2000)]),
                                                  config, timeout_s=300)
              for u in r.utterances if u.is_final and u.text]
    bad = gateway_pb2.LiveConversationConfig(config=audio_pb2.AudioConfig(encoding=audio_pb2.OGG_OPUS), parties=parties)
    error = _code(lambda: list(client.live_conversation(iter([b"not ogg at all " * 400]), bad, timeout_s=60)))
    channel.close()
    described = [(u.party, u.start_s, u.text) for u in finals]
    # Opus at 24 kbit/s blurs espeak's French enough that its language (so its party) is
    # not reliable; the words of the real recording and the timing are.
    visitor = " ".join(u.text.lower() for u in finals if u.start_s < 4.0)
    assert any(w in visitor for w in ("three", "3")), described
    assert any(u.start_s > 5.5 for u in finals), described  # the agent's sentence
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "ogg" in error.details()


def test_live_conversation_bad_input(live_gateway: BackgroundServer) -> None:
    channel = open_channel(live_gateway.address)
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)

    def run(*requests: gateway_pb2.LiveConversationRequest) -> grpc.RpcError:
        return _code(lambda: list(stub.LiveConversation(iter(requests), timeout=30)))

    audio = gateway_pb2.LiveConversationRequest(audio_content=b"\0\0" * 320)
    assert run(audio).code() == grpc.StatusCode.INVALID_ARGUMENT
    one_party = _live_config(agent=("fr", 0))
    assert "two parties" in run(gateway_pb2.LiveConversationRequest(config=one_party)).details()
    wrong_channel = _live_config(agent=("fr", 0), visitor=("en", 2))
    assert "channel" in run(gateway_pb2.LiveConversationRequest(config=wrong_channel)).details()
    good = gateway_pb2.LiveConversationRequest(config=_live_config(agent=("fr", 0), visitor=("en", 1)))
    error = run(good, good)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "config sent twice" in error.details()
    # Voice prints need the diarisation service, which this gateway has not.
    enrolled = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        parties=[gateway_pb2.Party(name="agent", language="fr", channel=-1,
                                   voice_sample=(AUDIO / "jfk.flac").read_bytes()),
                 gateway_pb2.Party(name="visitor", language="en", channel=-1)],
    )
    error = run(gateway_pb2.LiveConversationRequest(config=enrolled))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "diarisation" in error.details()
    channel.close()


def test_client_leaving_a_live_conversation_cancels_backend_streams(live_gateway: BackgroundServer) -> None:
    channel = open_channel(live_gateway.address)
    client = GatewayClient(channel)
    transcription = next(m for m in gateway_module(live_gateway).local_modules if isinstance(m, TranscriptionModule))
    stop = threading.Event()

    def endless() -> Iterator[bytes]:
        while not stop.is_set():
            time.sleep(0.1)
            yield b"\0\0" * 3200

    responses = client.live_conversation(endless(), _live_config(agent=("fr", 0), visitor=("detect", 1)))
    deadline = time.monotonic() + 20
    while transcription.streams.open < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert transcription.streams.open == 2  # one backend stream per party
    responses.cancel()
    stop.set()
    deadline = time.monotonic() + 10
    while transcription.streams.open and time.monotonic() < deadline:
        time.sleep(0.1)
    assert transcription.streams.open == 0
    channel.close()


# -- OpenAI-compatible REST facade ------------------------------------------------------


@pytest.fixture(scope="module")
def rest_url(gateway: BackgroundServer) -> str:
    return f"http://127.0.0.1:{gateway_module(gateway).rest_port}/v1"


def _openai(rest_url: str, key: str):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    return OpenAI(base_url=rest_url, api_key=key, max_retries=0, timeout=300)


def test_rest_facade_answers_the_openai_client(rest_url: str, tenants: Tenants) -> None:
    import srt as srt_lib

    client = _openai(rest_url, tenants.keys["a"])
    models = {m.id: m for m in client.models.list().data}
    assert list(models) == ["tiny.en"]  # one entry per served model, Albert API's way, aliases inside
    assert models["tiny.en"].model_extra["aliases"] == ["whisper-1"]  # type: ignore[index]
    assert client.models.retrieve("whisper-1").id == "tiny.en"
    jfk = AUDIO / "jfk.flac"
    with jfk.open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert wer(JFK_TEXT, result.text) <= 0.05
    with jfk.open("rb") as f:
        subtitles = client.audio.transcriptions.create(model="tiny.en", file=f, response_format="srt")
    cues = list(srt_lib.parse(subtitles))
    assert cues and cues[0].start.total_seconds() < 1.0 and wer(JFK_TEXT, " ".join(c.content for c in cues)) <= 0.05
    with jfk.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            model="tiny.en", file=f, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert verbose.language == "english" and 10.5 < verbose.duration < 11.5
    assert verbose.segments and verbose.words and len(verbose.words) >= 20
    assert all(w.start <= w.end for w in verbose.words)
    assert [w.word for w in verbose.words][:3] == ["And", "so", "my"]
    with jfk.open("rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert wer(JFK_TEXT, text) <= 0.05
    with jfk.open("rb") as f:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    assert vtt.startswith("WEBVTT")
    with jfk.open("rb") as f:
        english = client.audio.translations.create(model="whisper-1", file=f)
    assert wer(JFK_TEXT, english.text) <= 0.05  # already English: the transcript itself
    with jfk.open("rb") as f:
        french = client.audio.translations.create(
            model="whisper-1", file=f, response_format="verbose_json", extra_body={"target_language": "fr"})
    assert french.language == "french" and french.segments and french.text.strip()


def test_rest_facade_errors_have_openai_shape(rest_url: str, tenants: Tenants) -> None:
    import json
    import urllib.error
    import urllib.request

    import openai

    wav = (AUDIO / "english.wav").read_bytes()
    with pytest.raises(openai.AuthenticationError) as auth:
        _openai(rest_url, "prl_000000000000_" + "x" * 43).audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))
    assert auth.value.status_code == 401 and isinstance(auth.value.body, dict)
    assert auth.value.body["message"] == "invalid API key"
    with pytest.raises(openai.NotFoundError):
        _openai(rest_url, tenants.keys["a"]).audio.transcriptions.create(model="no-such-model", file=("a.wav", wav))
    with pytest.raises(openai.BadRequestError) as bad:
        _openai(rest_url, tenants.keys["a"]).audio.transcriptions.create(
            model="whisper-1", file=("a.wav", b"this is not audio"))
    assert bad.value.status_code == 400 and bad.value.body["param"] == "file"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as streamed:  # never a silent JSON for a stream
        _openai(rest_url, tenants.keys["a"]).audio.transcriptions.create(
            model="whisper-1", file=("a.wav", wav), stream=True)
    assert streamed.value.body["param"] == "stream" and "StreamingTranscribe" in streamed.value.body["message"]  # type: ignore[index]

    small = _openai(rest_url, tenants.keys["small"])
    jfk = (AUDIO / "jfk.flac").read_bytes()
    with pytest.raises(openai.RateLimitError) as limited:
        for _ in range(2):  # 11 s each, 5 s a minute: the second is over quota
            small.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk))
    assert int(limited.value.response.headers["retry-after"]) >= 1

    for body, content_type in [
        (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc", "multipart/form-data; boundary=xyz"),
        (b"garbage", "multipart/form-data"),
        (b'{"file": "x"}', "application/json"),
    ]:
        request = urllib.request.Request(
            f"{rest_url}/audio/transcriptions", data=body, method="POST",
            headers={"Content-Type": content_type, "Authorization": f"Bearer {tenants.keys['a']}"},
        )
        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(request, timeout=30)
        assert http.value.code == 400
        error = json.loads(http.value.read())["error"]
        assert error["type"] == "invalid_request_error" and error["message"]


@needs_diarization
def test_rest_diarized_json(rest_url: str, tenants: Tenants) -> None:
    client = _openai(rest_url, tenants.keys["a"])
    with (AUDIO / "sample.wav").open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="diarized_json")
    assert {s.speaker for s in result.segments} == {"A", "B"}
    assert all(s.type == "transcript.text.segment" and s.end >= s.start for s in result.segments)
    assert 29 < result.duration < 31
