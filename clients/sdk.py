"""Python SDK: a small client class per service wrapping the generated stubs.

Modelled on NVIDIA Riva's python-clients: request generators for streaming, every
server option reachable as a keyword argument, and channels configured once.
"""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Iterable, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from parlons.v1 import (
    audio_pb2,
    transcription_pb2,
    transcription_pb2_grpc,
    translation_pb2,
    translation_pb2_grpc,
)

UPLOAD_CHUNK_BYTES = 1 << 20


def open_channel(
    address: str,
    *,
    root_certificates: bytes | None = None,
    client_key: bytes | None = None,
    client_certificate: bytes | None = None,
    tls: bool = False,
    max_message_mb: int = 64,
) -> grpc.Channel:
    """A channel with message limits that match the server's defaults."""
    size = max_message_mb * 1024 * 1024
    options = [("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size)]
    if tls or root_certificates or client_certificate:
        credentials = grpc.ssl_channel_credentials(root_certificates, client_key, client_certificate)
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=options)


def wait_until_serving(channel: grpc.Channel, service: str = "", timeout_s: float = 300.0) -> None:
    """Block until the server's health check says SERVING (models loaded)."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last_error = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as exc:
            last_error = exc.details() or str(exc.code())
        time.sleep(0.2)
    raise TimeoutError(f"server not serving after {timeout_s:.0f} s: {last_error}")


class TranscriptionClient:
    def __init__(self, channel: grpc.Channel, *, metadata: Iterable[tuple[str, str]] = ()) -> None:
        self.stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        self.metadata = tuple(metadata)

    def transcribe(
        self,
        audio: bytes,
        options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None,
        *,
        timeout_s: float | None = None,
    ) -> transcription_pb2.TranscribeResponse:
        request = transcription_pb2.TranscribeRequest(
            config=config or audio_pb2.AudioConfig(),
            options=options or transcription_pb2.TranscriptionOptions(),
            audio=audio_pb2.Audio(content=audio),
        )
        return self.stub.Transcribe(request, timeout=timeout_s, metadata=self.metadata)

    def transcribe_file(
        self,
        path: str | Path,
        options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None,
        *,
        timeout_s: float | None = None,
    ) -> transcription_pb2.TranscribeResponse:
        """Upload in chunks (no message-size limit on the file)."""
        return self.stub.TranscribeUpload(
            upload_requests(Path(path), options, config), timeout=timeout_s, metadata=self.metadata
        )

    def streaming_transcribe(
        self,
        chunks: Iterable[bytes],
        config: transcription_pb2.StreamingConfig,
        *,
        timeout_s: float | None = None,
    ) -> Iterator[transcription_pb2.StreamingTranscribeResponse]:
        def requests() -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
            yield transcription_pb2.StreamingTranscribeRequest(config=config)
            for chunk in chunks:
                yield transcription_pb2.StreamingTranscribeRequest(audio_content=chunk)

        return self.stub.StreamingTranscribe(requests(), timeout=timeout_s, metadata=self.metadata)

    def list_models(self) -> transcription_pb2.ListModelsResponse:
        return self.stub.ListModels(transcription_pb2.ListModelsRequest(), metadata=self.metadata)


def upload_requests(
    path: Path,
    options: transcription_pb2.TranscriptionOptions | None,
    config: audio_pb2.AudioConfig | None,
) -> Iterator[transcription_pb2.TranscribeUploadRequest]:
    yield transcription_pb2.TranscribeUploadRequest(
        config=transcription_pb2.TranscribeUploadConfig(
            config=config or audio_pb2.AudioConfig(),
            options=options or transcription_pb2.TranscriptionOptions(),
        )
    )
    with path.open("rb") as handle:
        while chunk := handle.read(UPLOAD_CHUNK_BYTES):
            yield transcription_pb2.TranscribeUploadRequest(audio_content=chunk)


class TranslationClient:
    def __init__(self, channel: grpc.Channel, *, metadata: Iterable[tuple[str, str]] = ()) -> None:
        self.stub = translation_pb2_grpc.TranslationServiceStub(channel)
        self.metadata = tuple(metadata)

    def translate(
        self,
        texts: Iterable[str],
        target_language: str,
        source_language: str = "",
        *,
        glossary: translation_pb2.Glossary | None = None,
        model: str = "",
        timeout_s: float | None = None,
    ) -> translation_pb2.TranslateTextResponse:
        options = translation_pb2.TranslationOptions(
            source_language=source_language, target_language=target_language, model=model, glossary=glossary
        )
        request = translation_pb2.TranslateTextRequest(texts=list(texts), options=options)
        return self.stub.TranslateText(request, timeout=timeout_s, metadata=self.metadata)

    def translate_document(
        self,
        content: bytes,
        file_name: str,
        target_language: str,
        source_language: str = "",
        *,
        glossary: translation_pb2.Glossary | None = None,
        pdf_output_format: translation_pb2.DocumentFormat = translation_pb2.DOCUMENT_FORMAT_UNSPECIFIED,
        timeout_s: float | None = None,
    ) -> translation_pb2.TranslateDocumentResponse:
        options = translation_pb2.TranslationOptions(
            source_language=source_language, target_language=target_language, glossary=glossary
        )
        request = translation_pb2.TranslateDocumentRequest(
            content=content, file_name=file_name, options=options, pdf_output_format=pdf_output_format
        )
        return self.stub.TranslateDocument(request, timeout=timeout_s, metadata=self.metadata)

    def list_languages(self) -> translation_pb2.ListLanguagesResponse:
        return self.stub.ListLanguages(translation_pb2.ListLanguagesRequest(), metadata=self.metadata)
