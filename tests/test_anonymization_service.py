"""AnonymizationService and TranscribeConversation with `anonymization`, through the
embedded gateway on loopback: real Whisper, real diarisation, real spaCy, real speech."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from gateway_helpers import gateway_config, gateway_module, start_embedded
from parlons.clients.sdk import open_channel
from parlons.services.common.server import BackgroundServer
from parlons.v1 import anonymization_pb2 as apb
from parlons.v1 import anonymization_pb2_grpc, gateway_pb2, gateway_pb2_grpc, transcription_pb2
from speech import espeak

SPEECH = ("Bonjour. Je m'appelle Fatima Benali. Mon numéro de téléphone est le 06 12 34 56 78. "
          "Je suis née le 3 mars 1985.")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = gateway_config(None, tmp_path_factory.mktemp("anon-models"), transcription_model="base")
    config.gateway.rest_port = 0
    config.anonymization.max_chars_per_request = 2000
    running = start_embedded(config, ["transcription", "diarization", "translation", "anonymization"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(server: BackgroundServer) -> Iterator[grpc.Channel]:
    ch = open_channel(server.address)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak(SPEECH, "fr+f2", tmp_path_factory.mktemp("speech") / "fatima.wav").read_bytes()


def test_anonymize_text_through_the_gateway(channel: grpc.Channel) -> None:
    stub = anonymization_pb2_grpc.AnonymizationServiceStub(channel)
    response = stub.AnonymizeText(apb.AnonymizeTextRequest(
        texts=["Je suis Madame Benali, au 06 12 34 56 78.", "Benali, B-E-N-A-L-I."],
        options=apb.AnonymizationOptions(return_mapping=True)), timeout=60)
    assert [t.text for t in response.texts] == ["Je suis Madame [PERSONNE_1], au [TELEPHONE_1].",
                                                "[PERSONNE_1], [PERSONNE_1]."]
    assert response.names_checked and response.language == "fr"
    first = response.texts[0].spans[0]
    assert (first.start, first.end, first.entity_type, first.replacement) == (15, 21, "PERSON", "[PERSONNE_1]")
    assert {m.replacement: m.original for m in response.mapping}["[TELEPHONE_1]"] == "06 12 34 56 78"
    plain = stub.AnonymizeText(apb.AnonymizeTextRequest(texts=["Madame Benali"]), timeout=60)
    assert not plain.mapping  # only when asked


def test_bad_input_is_refused_with_the_reason(channel: grpc.Channel) -> None:
    stub = anonymization_pb2_grpc.AnonymizationServiceStub(channel)
    cases = [
        (apb.AnonymizeTextRequest(texts=["a" * 2001]), "2000"),
        (apb.AnonymizeTextRequest(), "texts is empty"),
        (apb.AnonymizeTextRequest(texts=["x"], options=apb.AnonymizationOptions(entity_types=["SSN"])), "SSN"),
        (apb.AnonymizeTextRequest(texts=["x"], options=apb.AnonymizationOptions(policy=7)), "policy"),  # type: ignore[arg-type]
    ]
    for request, needle in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.AnonymizeText(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, needle
        assert needle in (info.value.details() or "")


def test_a_language_without_ner_says_names_were_not_checked(channel: grpc.Channel) -> None:
    stub = anonymization_pb2_grpc.AnonymizationServiceStub(channel)
    response = stub.AnonymizeText(apb.AnonymizeTextRequest(
        texts=["My name is John Smith, phone 06 12 34 56 78"], options=apb.AnonymizationOptions(language="en")),
        timeout=30)
    assert response.names_checked is False
    assert "[TELEPHONE_1]" in response.texts[0].text and "06 12" not in response.texts[0].text


def _conversation(channel: grpc.Channel, audio: bytes, **kwargs: Any) -> gateway_pb2.TranscribeConversationResponse:
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    request = gateway_pb2.TranscribeConversationRequest(
        transcription=transcription_pb2.TranscriptionOptions(language="fr"), subtitles=True, **kwargs)
    request.audio.content = audio
    return stub.TranscribeConversation(request, timeout=600)


def _everything(response: gateway_pb2.TranscribeConversationResponse) -> str:
    """Every text of the response a caller could keep."""
    parts = [response.srt, response.vtt, response.transcript.text]
    for turn in response.turns:
        parts.append(turn.text)
        parts.extend(w.word for w in turn.words)
        parts.extend(t.text for t in turn.translations)
    for transcript in response.translated_transcripts:
        parts.append(transcript.text)
    parts.extend(s.text for s in response.transcript.segments)
    return " ".join(parts)


@pytest.mark.slow
def test_transcribe_conversation_with_anonymization_leaves_no_name(channel: grpc.Channel, speech: bytes) -> None:
    raw = _conversation(channel, speech)
    assert "Fatima" in _everything(raw)  # what would leak without the option
    masked = _conversation(channel, speech, target_languages=["en"],
                           anonymization=apb.AnonymizationOptions(return_mapping=True))
    everything = _everything(masked)
    assert "Fatima" not in everything
    for turn_raw, turn in zip(raw.turns, masked.turns, strict=True):
        assert turn.speaker == turn_raw.speaker and turn.start_s == turn_raw.start_s
    words = [w for t in masked.turns for w in t.words if "[PERSONNE_" in w.word]
    assert words and all(0 <= w.start_s < w.end_s <= masked.audio_duration_s + 0.5 for w in words)
    assert "[PERSONNE_1]" in masked.srt
    # the placeholder survives translation (kept as a do-not-translate term)
    assert any("[PERSONNE_1]" in t.text for turn in masked.turns for t in turn.translations)
    assert masked.anonymization.spans >= 1 and masked.anonymization.names_checked
    assert any(m.original.startswith("Fatima") for m in masked.anonymization.mapping)
    assert 0 < masked.anonymization.duration_s < masked.processing_duration_s


def test_translate_text_through_the_gateway_anonymizes_first(channel: grpc.Channel) -> None:
    from parlons.v1 import translation_pb2, translation_pb2_grpc

    stub = translation_pb2_grpc.TranslationServiceStub(channel)
    request = translation_pb2.TranslateTextRequest(
        texts=["Bonjour, je suis Madame Benali.", "Benali, au 06 12 34 56 78."],
        options=translation_pb2.TranslationOptions(
            source_language="fr", target_language="en",
            anonymization=apb.AnonymizationOptions(return_mapping=True)))
    response = stub.TranslateText(request, timeout=120)
    texts = [t.text for t in response.translations]
    assert "Benali" not in " ".join(texts) and "06 12" not in " ".join(texts)
    # random test weights translate nonsense, but the placeholders come through untouched
    assert "[PERSONNE_1]" in texts[0] and "[PERSONNE_1]" in texts[1] and "[TELEPHONE_1]" in texts[1]
    assert response.anonymization.spans == 3 and response.anonymization.names_checked
    assert {m.replacement: m.original for m in response.anonymization.mapping}["[PERSONNE_1]"] == "Benali"


def test_translate_speech_anonymizes_before_translating(channel: grpc.Channel, speech: bytes) -> None:
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    request = gateway_pb2.TranslateSpeechRequest(
        transcription=transcription_pb2.TranscriptionOptions(language="fr", word_timestamps=True), target_language="en",
        anonymization=apb.AnonymizationOptions())
    request.audio.content = speech
    response = stub.TranslateSpeech(request, timeout=600)
    everything = " ".join([response.text, response.translated_text, *response.translated_segments,
                           *(s.text for s in response.segments), *(w.word for s in response.segments for w in s.words)])
    assert "Fatima" not in everything and "[PERSONNE_1]" in response.translated_text
    assert response.anonymization.masked and response.anonymization.spans >= 1


def test_the_translation_service_alone_refuses_anonymization(server: BackgroundServer) -> None:
    from parlons.services.translation.servicer import refuse_anonymization
    from parlons.errors import FailedPrecondition
    from parlons.v1 import translation_pb2

    with pytest.raises(FailedPrecondition, match="gateway"):
        refuse_anonymization(translation_pb2.TranslationOptions(anonymization=apb.AnonymizationOptions()))
    refuse_anonymization(translation_pb2.TranslationOptions())  # without it: nothing to refuse


def test_rest_facade_anonymizes_on_request(server: BackgroundServer, speech: bytes) -> None:
    import httpx

    url = f"http://127.0.0.1:{gateway_module(server).rest_port}/v1/audio/transcriptions"
    files = {"file": ("accueil.wav", speech, "audio/wav")}
    plain = httpx.post(url, files=files, data={"model": "whisper-1", "language": "fr"}, timeout=300)
    assert plain.status_code == 200 and "Fatima" in plain.json()["text"]
    masked = httpx.post(url, files=files, data={"model": "whisper-1", "language": "fr", "anonymize": "true",
                                                "response_format": "srt"}, timeout=300)
    assert masked.status_code == 200, masked.text
    assert "Fatima" not in masked.text and "[PERSONNE_1]" in masked.text
    bad = httpx.post(url, files=files, data={"model": "whisper-1", "anonymize": "peut-être"}, timeout=60)
    assert bad.status_code == 400 and "anonymize" in bad.text


def test_translate_document_through_the_gateway_anonymizes_first(channel: grpc.Channel) -> None:
    import io

    import docx

    from parlons.v1 import translation_pb2, translation_pb2_grpc

    stub = translation_pb2_grpc.TranslationServiceStub(channel)
    srt = ("1\n00:00:01,000 --> 00:00:03,000\nBonjour Madame Benali.\n\n"
           "2\n00:00:03,500 --> 00:00:06,000\nVotre numéro : 06 12 34 56 78 ?\n\n").encode()
    options = translation_pb2.TranslationOptions(source_language="fr", target_language="en",
                                                 anonymization=apb.AnonymizationOptions())
    response = stub.TranslateDocument(translation_pb2.TranslateDocumentRequest(
        content=srt, file_name="rdv.srt", options=options), timeout=120)
    text = response.content.decode()
    # random test weights translate nonsense, but timings and placeholders come through
    assert "00:00:03,500 --> 00:00:06,000" in text and "[PERSONNE_1]" in text and "[TELEPHONE_1]" in text
    assert "Benali" not in text and "06 12" not in text
    assert response.anonymization.spans == 2 and not response.anonymization.mapping  # not asked for

    document = docx.Document()
    document.add_heading("Compte rendu", level=1)
    document.add_paragraph("Reçu Monsieur Karim Haddad, né le 11 juin 1986.")
    buffer = io.BytesIO()
    document.save(buffer)
    options.anonymization.return_mapping = True
    response = stub.TranslateDocument(translation_pb2.TranslateDocumentRequest(
        content=buffer.getvalue(), format=translation_pb2.DOCX, options=options), timeout=120)
    out = docx.Document(io.BytesIO(response.content))
    body = "\n".join(p.text for p in out.paragraphs)
    assert "Haddad" not in body and "11 juin 1986" not in body and "[PERSONNE_1]" in body
    style = out.paragraphs[0].style
    assert style is not None and style.name.startswith("Heading")  # layout kept
    originals = {m.original for m in response.anonymization.mapping}
    assert {"Karim Haddad", "11 juin 1986"} <= originals, originals


def test_anonymize_document_keeps_subtitle_timings_and_refuses_bad_documents(channel: grpc.Channel) -> None:
    stub = anonymization_pb2_grpc.AnonymizationServiceStub(channel)
    srt = ("1\n00:00:01,000 --> 00:00:03,000\nBonjour Madame Benali.\n\n"
           "2\n00:00:03,500 --> 00:00:06,000\nVotre numéro : 06 12 34 56 78 ?\n\n").encode()
    response = stub.AnonymizeDocument(apb.AnonymizeDocumentRequest(content=srt, file_name="rdv.srt"), timeout=60)
    text = response.content.decode()
    assert "00:00:03,500 --> 00:00:06,000" in text and "[PERSONNE_1]" in text and "[TELEPHONE_1]" in text
    assert "Benali" not in text and response.file_name == "rdv.anonymise.srt" and response.format == "srt"
    for request, needle in [
        (apb.AnonymizeDocumentRequest(content=b"", file_name="vide.txt"), "empty"),
        (apb.AnonymizeDocumentRequest(content=b"\xd0\xcf\x11\xe0" + b"\0" * 100, file_name="old.doc"), ".doc"),
        (apb.AnonymizeDocumentRequest(content=b"%PDF-1.4", file_name="a.pdf", pdf_output_format="odt"), "docx or txt"),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            stub.AnonymizeDocument(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, needle
        assert needle in (info.value.details() or ""), info.value.details()
