"""TranslationService through a real gRPC server on loopback, with tiny random models."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Iterator

import docx
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from parlons.clients.sdk import open_channel
from parlons.serve import build_modules
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import BackgroundServer
from parlons.v1 import translation_pb2 as pb
from parlons.v1 import translation_pb2_grpc
from translation_models import make_docx, make_pdf, translation_model_dirs  # noqa: F401

SERVICE = "parlons.v1.TranslationService"


@pytest.fixture(scope="module")
def glossary_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("glossaries")
    (root / "mairie-75").mkdir()
    (root / "mairie-75" / "accueil.json").write_text(json.dumps({
        "source_language": "fr", "target_language": "en",
        "entries": [{"source": "état civil", "target": "civil registry"}, {"source": "Pacs", "do_not_translate": True}],
    }))
    return root


@pytest.fixture(scope="module")
def server(translation_model_dirs, glossary_dir) -> Iterator[BackgroundServer]:  # noqa: F811
    config = ParlonsConfig()
    config.server.port = 0
    config.server.max_message_mb = 8
    config.translation.models = [str(translation_model_dirs[k]) for k in ("fr-en", "en-uk", "nllb")]
    config.translation.device = "cpu"
    config.translation.max_pdf_pages = 50
    if hasattr(config.translation, "glossaries_dir"):
        config.translation.glossaries_dir = str(glossary_dir)
    running = BackgroundServer(config.server, build_modules(config, ["translation"])).start()
    if not hasattr(config.translation, "glossaries_dir"):
        running._modules[0].glossaries.load_directory(glossary_dir)  # type: ignore[attr-defined]
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(server: BackgroundServer) -> Iterator[grpc.Channel]:
    ch = open_channel(server.address, max_message_mb=8)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> translation_pb2_grpc.TranslationServiceStub:
    return translation_pb2_grpc.TranslationServiceStub(channel)


def _options(target: str = "en", source: str = "fr", **kwargs: object) -> pb.TranslationOptions:
    return pb.TranslationOptions(target_language=target, source_language=source, **kwargs)  # type: ignore[arg-type]


def _code(call) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_health_is_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_translate_text_keeps_structure_and_reports_languages(stub) -> None:  # type: ignore[no-untyped-def]
    texts = ["Bonjour.\n\nLe dossier n° 2024/12345 est prêt.", "Merci de patienter à l'accueil."]
    response, call = stub.TranslateText.with_call(pb.TranslateTextRequest(texts=texts, options=_options()),
                                                  timeout=30, metadata=(("x-request-id", "t-123"),))
    assert len(response.translations) == 2
    first = response.translations[0]
    assert first.text.count("\n") == 2 and "n° 2024/12345" in first.text
    assert first.detected_source_language == "fr" and first.model == "opus-mt-fr-en"
    assert dict(call.initial_metadata())["x-request-id"] == "t-123"


def test_detection_and_pivot(stub) -> None:  # type: ignore[no-untyped-def]
    response = stub.TranslateText(pb.TranslateTextRequest(
        texts=["Bonjour, je voudrais renouveler mon titre de séjour à la préfecture."],
        options=pb.TranslationOptions(target_language="uk")), timeout=30)
    t = response.translations[0]
    assert t.detected_source_language == "fr" and t.detection_confidence > 0.5
    assert t.model == "opus-mt-fr-en>opus-mt-en-uk" or t.model == "nllb-tiny"


def test_request_and_tenant_glossaries(stub) -> None:  # type: ignore[no-untyped-def]
    glossary = pb.Glossary(name="accueil", entries=[pb.GlossaryEntry(source="mairie", target="town hall")])
    response = stub.TranslateText(
        pb.TranslateTextRequest(texts=["Le service état civil de la mairie enregistre le Pacs."],
                                options=_options(glossary=glossary)),
        metadata=(("x-parlons-tenant", "mairie-75"),), timeout=30)
    text = response.translations[0].text
    assert "civil registry" in text and "town hall" in text and "Pacs" in text
    code, details = _code(lambda: stub.TranslateText(
        pb.TranslateTextRequest(texts=["Bonjour"], options=_options(glossary=glossary)),
        metadata=(("x-parlons-tenant", "another-tenant"),), timeout=30))
    assert code == grpc.StatusCode.NOT_FOUND and "accueil" in details


def test_bad_text_requests_get_precise_statuses(stub) -> None:  # type: ignore[no-untyped-def]
    cases = [
        (pb.TranslateTextRequest(options=_options()), grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        (pb.TranslateTextRequest(texts=["x" * (1024 * 1024)], options=_options()),
         grpc.StatusCode.INVALID_ARGUMENT, "100,000"),
        (pb.TranslateTextRequest(texts=["Bonjour"], options=_options("de")), grpc.StatusCode.NOT_FOUND, "available"),
        (pb.TranslateTextRequest(texts=["Bonjour"], options=_options("")), grpc.StatusCode.INVALID_ARGUMENT,
         "target_language"),
        (pb.TranslateTextRequest(texts=["Bonjour"], options=_options("en", "french!")),
         grpc.StatusCode.INVALID_ARGUMENT, "BCP-47"),
        (pb.TranslateTextRequest(texts=["Bonjour"], options=_options(model="nope")), grpc.StatusCode.NOT_FOUND, "nope"),
        (pb.TranslateTextRequest(texts=["Bonjour"], options=_options(beam_size=-1)),
         grpc.StatusCode.INVALID_ARGUMENT, "beam_size"),
    ]
    for request, expected, fragment in cases:
        code, details = _code(lambda: stub.TranslateText(request, timeout=30))
        assert code == expected and fragment in details, (code, details)
    # Empty strings inside the list are fine: they come back empty.
    response = stub.TranslateText(pb.TranslateTextRequest(texts=["", "Bonjour."], options=_options()), timeout=30)
    assert response.translations[0].text == "" and response.translations[1].text


def test_invalid_utf8_in_a_string_field_is_refused(channel: grpc.Channel, stub) -> None:  # type: ignore[no-untyped-def]
    # Field 1 (texts), length-delimited, with bytes that are not UTF-8.
    raw = b"\x0a\x03\xff\xfe\xfd" + pb.TranslateTextRequest(options=_options()).SerializeToString()
    call = channel.unary_unary(f"/{SERVICE}/TranslateText", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(raw, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in info.value.details()
    assert stub.TranslateText(pb.TranslateTextRequest(texts=["Bonjour."], options=_options()), timeout=30)
    stream = channel.stream_stream(f"/{SERVICE}/StreamingTranslate", request_serializer=None,
                                   response_deserializer=None)
    config = pb.StreamingTranslateRequest(config=pb.StreamingTranslateConfig(options=_options())).SerializeToString()
    with pytest.raises(grpc.RpcError) as info:
        list(stream(iter([config, b"\x12\x02\xc3\x28"]), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_streaming_keeps_order_and_indexes(stub) -> None:  # type: ignore[no-untyped-def]
    sentences = [f"Phrase numéro {i} au guichet." for i in range(20)] + [""]

    def requests() -> Iterator[pb.StreamingTranslateRequest]:
        yield pb.StreamingTranslateRequest(config=pb.StreamingTranslateConfig(options=_options()))
        for s in sentences:
            yield pb.StreamingTranslateRequest(text=s)

    responses = list(stub.StreamingTranslate(requests(), timeout=60))
    assert [r.index for r in responses] == list(range(len(sentences)))
    assert [r.source_text for r in responses] == sentences
    assert all(str(i) in r.translation.text for i, r in enumerate(responses[:-1]))
    assert responses[-1].translation.text == ""


def test_streaming_protocol_errors(stub) -> None:  # type: ignore[no-untyped-def]
    def text_first() -> Iterator[pb.StreamingTranslateRequest]:
        yield pb.StreamingTranslateRequest(text="Bonjour")

    def config_twice() -> Iterator[pb.StreamingTranslateRequest]:
        config = pb.StreamingTranslateRequest(config=pb.StreamingTranslateConfig(options=_options()))
        yield config
        yield config

    for gen, fragment in ((text_first, "first message"), (config_twice, "config sent twice")):
        code, details = _code(lambda: list(stub.StreamingTranslate(gen(), timeout=30)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and fragment in details


def test_document_round_trip(stub) -> None:  # type: ignore[no-untyped-def]
    original = make_docx()
    response = stub.TranslateDocument(pb.TranslateDocumentRequest(
        content=original, file_name="convocation.docx", options=_options()), timeout=60)
    assert response.format == pb.DOCX and response.file_name == "convocation.en.docx"
    assert response.segments_translated >= 10 and response.detected_source_language == "fr"
    out = docx.Document(io.BytesIO(response.content))
    assert len(out.paragraphs) == len(docx.Document(io.BytesIO(original)).paragraphs)
    pdf = make_pdf([["Bonjour madame, votre dossier est complet."]])
    response = stub.TranslateDocument(pb.TranslateDocumentRequest(
        content=pdf, format=pb.PDF, pdf_output_format=pb.TXT, options=_options()), timeout=60)
    assert response.format == pb.TXT and response.notes and "PDF" in response.notes[0]


def test_bad_documents_leave_the_server_unharmed(stub, channel) -> None:  # type: ignore[no-untyped-def]
    bomb = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", b"<" + b" " * (60 * 1024 * 1024) + b">")
    big_pdf = make_pdf([[f"Page {i}"] for i in range(500)])
    cases = [
        (pb.TranslateDocumentRequest(content=bomb.getvalue(), file_name="a.docx", options=_options()), "zip bomb"),
        (pb.TranslateDocumentRequest(content=make_docx()[:3000], file_name="a.docx", options=_options()), "corrupt"),
        (pb.TranslateDocumentRequest(content=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000), file_name="a.docx",
                                     options=_options()), "password"),
        (pb.TranslateDocumentRequest(content=make_pdf([["x"]], user_password="pw"), format=pb.PDF,
                                     options=_options()), "password"),
        (pb.TranslateDocumentRequest(content=big_pdf, file_name="a.pdf", options=_options()), "500 pages"),
        (pb.TranslateDocumentRequest(content="Café".encode("latin-1"), format=pb.TXT, options=_options()), "UTF-8"),
        (pb.TranslateDocumentRequest(content=b"", format=pb.TXT, options=_options()), "empty"),
    ]
    for request, fragment in cases:
        started = time.perf_counter()
        code, details = _code(lambda: stub.TranslateDocument(request, timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and fragment in details, (code, details)
        assert time.perf_counter() - started < 10
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert stub.TranslateText(pb.TranslateTextRequest(texts=["Bonjour."], options=_options()), timeout=30)


def test_list_languages(stub) -> None:  # type: ignore[no-untyped-def]
    response = stub.ListLanguages(pb.ListLanguagesRequest(), timeout=10)
    pairs = {(p.source_language, p.target_language): p for p in response.pairs}
    assert pairs[("fr", "en")].model == "opus-mt-fr-en" and not pairs[("fr", "en")].pivot
    assert pairs[("es", "uk")].model == "nllb-tiny"
    assert set(response.detectable_languages) >= {"fr", "en", "es", "uk"}


def test_concurrent_clients_and_a_cancelled_call(stub) -> None:  # type: ignore[no-untyped-def]
    def one(i: int) -> str:
        r = stub.TranslateText(pb.TranslateTextRequest(texts=[f"Demande {i} reçue."], options=_options()), timeout=60)
        return r.translations[0].text

    with ThreadPoolExecutor(16) as pool:
        outputs = list(pool.map(one, range(48)))
    assert all(str(i) in out for i, out in enumerate(outputs))
    future = stub.TranslateText.future(pb.TranslateTextRequest(
        texts=[f"Phrase {i} d'un long texte." for i in range(300)], options=_options()), timeout=60)
    time.sleep(0.05)
    future.cancel()
    assert one(7)  # the server keeps serving


def test_deadline_is_honoured(stub) -> None:  # type: ignore[no-untyped-def]
    code, _ = _code(lambda: stub.TranslateText(pb.TranslateTextRequest(
        texts=[f"Phrase {i} d'un long texte à traduire." for i in range(800)], options=_options()), timeout=0.2))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_server_without_models_says_what_to_configure() -> None:
    config = ParlonsConfig()
    config.server.port = 0
    running = BackgroundServer(config.server, build_modules(config, ["translation"])).start()
    try:
        ch = open_channel(running.address)
        stub = translation_pb2_grpc.TranslationServiceStub(ch)
        code, details = _code(lambda: stub.TranslateText(
            pb.TranslateTextRequest(texts=["Bonjour"], options=_options()), timeout=10))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "models" in details
        assert list(stub.ListLanguages(pb.ListLanguagesRequest(), timeout=10).pairs) == []
        ch.close()
    finally:
        running.stop()
