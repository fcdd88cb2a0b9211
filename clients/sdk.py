"""Python SDK: one client per service and one for the gateway's composed RPCs.

    from parlons.clients.connection import Connection
    from parlons.clients.sdk import GatewayClient, TranscriptionClient

    connection = Connection("parlons.example.gouv.fr:443", api_key="prl_…", tls=True)
    with TranscriptionClient(connection) as client:
        transcript = client.transcribe_file("guichet.wav")
        print(transcript.text, transcript.to_srt())
        for result in client.stream_file("guichet.wav"):        # at real-time pace
            print("final" if result.is_final else "…", result.text)

Modelled on NVIDIA Riva's python-clients: every server option reachable, channels
configured once. Results are `clients.results` types; failures raise
`clients.errors.ParlonsRpcError` (status, message, retry delay, field at fault).
Idempotent calls are retried on UNAVAILABLE with backoff (`retry=`); streams are not.
The asyncio twins of these clients are in `clients/aio.py`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Generic, TypeVar
from collections.abc import Callable, Iterable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from parlons.clients.audio_source import LIVE_AUDIO_CONFIG, file_chunks, microphone_chunks
from parlons.clients.connection import Connection, StubClient
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.results import Conversation, Diarization, SpeechTranslation, TextTranslation, Transcript
from parlons.clients.retry import RetryPolicy, call_with_retries
from parlons.v1 import (
    anonymization_pb2,
    anonymization_pb2_grpc,
    audio_pb2,
    diarization_pb2,
    diarization_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
    translation_pb2,
    translation_pb2_grpc,
)

UPLOAD_CHUNK_BYTES = 1 << 20
T = TypeVar("T")


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
    return Connection(address, tls=tls, ca=root_certificates, cert=client_certificate, key=client_key,
                      max_message_mb=max_message_mb).channel()


def wait_until_serving(channel: grpc.Channel, service: str = "", timeout_s: float = 300.0,
                       metadata: Sequence[tuple[str, str]] = ()) -> None:
    """Block until the server's health check says SERVING (models loaded). A server that
    is down or loading is waited for; one whose TLS cannot work (a certificate the CA
    does not vouch for, a plaintext port) is not: that does not mend by waiting."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    tls_failures = 0
    while time.monotonic() < deadline:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5, metadata=tuple(metadata))
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last_error = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as exc:
            last_error = exc.details() or str(exc.code())  # type: ignore[attr-defined]
            tls_failures = tls_failures + 1 if _TLS_FAILURE.search(last_error) else 0
            if tls_failures >= 3:
                raise TimeoutError(f"TLS to the server fails: {last_error} (check --tls, --ca, --cert)") from None
        time.sleep(0.2)
    raise TimeoutError(f"server not serving after {timeout_s:.0f} s: {last_error}")


_TLS_FAILURE = re.compile(r"handshake|certificate|ssl|wrong version number", re.IGNORECASE)


# -- requests, shared with the asyncio clients ------------------------------------------


def file_messages(path: Path, first: Any, wrap: Callable[..., Any]) -> Iterator[Any]:
    """An upload: the config message, then the file in chunks (read as they are sent)."""
    yield wrap(config=first)
    with path.open("rb") as handle:
        while chunk := handle.read(UPLOAD_CHUNK_BYTES):
            yield wrap(audio_content=chunk)


def transcribe_request(audio: bytes, options: transcription_pb2.TranscriptionOptions | None,
                       config: audio_pb2.AudioConfig | None) -> transcription_pb2.TranscribeRequest:
    return transcription_pb2.TranscribeRequest(
        config=config or audio_pb2.AudioConfig(), options=options or transcription_pb2.TranscriptionOptions(),
        audio=audio_pb2.Audio(content=audio))


def transcribe_upload_config(options: transcription_pb2.TranscriptionOptions | None,
                             config: audio_pb2.AudioConfig | None) -> transcription_pb2.TranscribeUploadConfig:
    return transcription_pb2.TranscribeUploadConfig(
        config=config or audio_pb2.AudioConfig(), options=options or transcription_pb2.TranscriptionOptions())


def streaming_messages(chunks: Iterable[bytes], config: transcription_pb2.StreamingConfig,
                       ) -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
    yield transcription_pb2.StreamingTranscribeRequest(config=config)
    for chunk in chunks:
        yield transcription_pb2.StreamingTranscribeRequest(audio_content=chunk)


def live_streaming_config(options: transcription_pb2.TranscriptionOptions | None, interim: bool,
                          ) -> transcription_pb2.StreamingConfig:
    return transcription_pb2.StreamingConfig(
        config=LIVE_AUDIO_CONFIG, options=options or transcription_pb2.TranscriptionOptions(),
        interim_results=interim)


def translation_options(target_language: str, source_language: str, glossary: translation_pb2.Glossary | None,
                        model: str = "") -> translation_pb2.TranslationOptions:
    return translation_pb2.TranslationOptions(
        source_language=source_language, target_language=target_language, model=model, glossary=glossary)


def diarize_options(options: diarization_pb2.DiarizationOptions | None, num_speakers: int, min_speakers: int,
                    max_speakers: int) -> diarization_pb2.DiarizationOptions:
    if options is not None:
        return options
    return diarization_pb2.DiarizationOptions(num_speakers=num_speakers, min_speakers=min_speakers,
                                              max_speakers=max_speakers)


def conversation_request(
    options: transcription_pb2.TranscriptionOptions | None, config: audio_pb2.AudioConfig | None,
    diarization: diarization_pb2.DiarizationOptions | None, target_languages: Sequence[str], subtitles: bool,
    glossary: translation_pb2.Glossary | None, uri: str,
    anonymization: anonymization_pb2.AnonymizationOptions | None = None,
) -> gateway_pb2.TranscribeConversationRequest:
    request = gateway_pb2.TranscribeConversationRequest(
        config=config or audio_pb2.AudioConfig(),
        transcription=options or transcription_pb2.TranscriptionOptions(),
        diarization=diarization or diarization_pb2.DiarizationOptions(),
        target_languages=list(target_languages), subtitles=subtitles, uri=uri,
    )
    if glossary is not None:
        request.glossary.CopyFrom(glossary)
    if anonymization is not None:
        request.anonymization.CopyFrom(anonymization)
    return request


# -- clients ---------------------------------------------------------------------------


class ResponseStream(Generic[T]):
    """A stream's responses as an iterator whose errors are ParlonsRpcError; `cancel()`
    ends the call (the server's side is cancelled too)."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        try:
            return next(self._call)
        except grpc.RpcError as error:
            raise ParlonsRpcError.from_grpc(error) from None

    def cancel(self) -> bool:
        return bool(self._call.cancel())


class _Client(StubClient):
    """A blocking client (StubClient) with the retry policy of idempotent calls."""

    def __init__(self, target: grpc.Channel | Connection, stub: Callable[[grpc.Channel], Any], *,
                 metadata: Iterable[tuple[str, str]] = (), retry: RetryPolicy | None = None) -> None:
        super().__init__(target, stub, metadata=metadata)
        self.retry = retry or RetryPolicy()

    def _idempotent(self, call: Callable[[], T]) -> T:
        return call_with_retries(call, self.retry)

    def _stream(self, call: Any) -> ResponseStream[Any]:
        return ResponseStream(call)

    def close(self) -> None:
        if self._owned:
            self.channel.close()

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TranscriptionClient(_Client):
    def __init__(self, target: grpc.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, transcription_pb2_grpc.TranscriptionServiceStub, metadata=metadata, retry=retry)

    def transcribe(self, audio: bytes, options: transcription_pb2.TranscriptionOptions | None = None,
                   config: audio_pb2.AudioConfig | None = None, *, timeout_s: float | None = None) -> Transcript:
        request = transcribe_request(audio, options, config)
        return Transcript(self._idempotent(lambda: self.stub.Transcribe(request, timeout=timeout_s, metadata=self.metadata)))

    def transcribe_file(self, path: str | Path, options: transcription_pb2.TranscriptionOptions | None = None,
                        config: audio_pb2.AudioConfig | None = None, *, timeout_s: float | None = None) -> Transcript:
        """Upload in chunks (no message-size limit on the file); retried from the start."""
        first = transcribe_upload_config(options, config)
        return Transcript(self._idempotent(lambda: self.stub.TranscribeUpload(
            file_messages(Path(path), first, transcription_pb2.TranscribeUploadRequest),
            timeout=timeout_s, metadata=self.metadata)))

    def streaming_transcribe(self, chunks: Iterable[bytes], config: transcription_pb2.StreamingConfig, *,
                             timeout_s: float | None = None) -> ResponseStream[transcription_pb2.StreamingTranscribeResponse]:
        return self._stream(self.stub.StreamingTranscribe(streaming_messages(chunks, config), timeout=timeout_s,
                                                          metadata=self.metadata))

    def stream(self, chunks: Iterable[bytes], options: transcription_pb2.TranscriptionOptions | None = None, *,
               interim: bool = True, timeout_s: float | None = None) -> Iterator[transcription_pb2.StreamingResult]:
        """Live 16 kHz mono s16le chunks in (`audio_source`), results out as they come."""
        config = live_streaming_config(options, interim)
        for response in self.streaming_transcribe(chunks, config, timeout_s=timeout_s):
            yield from response.results

    def stream_file(self, path: str | Path, options: transcription_pb2.TranscriptionOptions | None = None, *,
                    realtime: bool = True, interim: bool = True, timeout_s: float | None = None,
                    ) -> Iterator[transcription_pb2.StreamingResult]:
        """A recording played as if spoken now (`realtime`), results as an iterator."""
        return self.stream(file_chunks(path, realtime=realtime), options, interim=interim, timeout_s=timeout_s)

    def stream_microphone(self, options: transcription_pb2.TranscriptionOptions | None = None, *,
                          interim: bool = True, device: str | int | None = None,
                          ) -> Iterator[transcription_pb2.StreamingResult]:
        """The microphone (optional `sounddevice` package) until the caller stops iterating."""
        return self.stream(microphone_chunks(device=device), options, interim=interim)

    def list_models(self) -> transcription_pb2.ListModelsResponse:
        return self._idempotent(lambda: self.stub.ListModels(transcription_pb2.ListModelsRequest(), metadata=self.metadata))


class DiarizationClient(_Client):
    def __init__(self, target: grpc.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, diarization_pb2_grpc.DiarizationServiceStub, metadata=metadata, retry=retry)

    def diarize(self, audio: bytes, options: diarization_pb2.DiarizationOptions | None = None,
                config: audio_pb2.AudioConfig | None = None, *, num_speakers: int = 0, min_speakers: int = 0,
                max_speakers: int = 0, uri: str = "", timeout_s: float | None = None) -> Diarization:
        request = diarization_pb2.DiarizeRequest(
            config=config or audio_pb2.AudioConfig(), audio=audio_pb2.Audio(content=audio), uri=uri,
            options=diarize_options(options, num_speakers, min_speakers, max_speakers))
        return Diarization(self._idempotent(lambda: self.stub.Diarize(request, timeout=timeout_s, metadata=self.metadata)))

    def diarize_file(self, path: str | Path, options: diarization_pb2.DiarizationOptions | None = None,
                     config: audio_pb2.AudioConfig | None = None, *, num_speakers: int = 0, min_speakers: int = 0,
                     max_speakers: int = 0, uri: str = "", timeout_s: float | None = None) -> Diarization:
        first = diarization_pb2.DiarizeUploadConfig(
            config=config or audio_pb2.AudioConfig(), uri=uri or Path(path).stem,
            options=diarize_options(options, num_speakers, min_speakers, max_speakers))
        return Diarization(self._idempotent(lambda: self.stub.DiarizeUpload(
            file_messages(Path(path), first, diarization_pb2.DiarizeUploadRequest),
            timeout=timeout_s, metadata=self.metadata)))


class TranslationClient(_Client):
    def __init__(self, target: grpc.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, translation_pb2_grpc.TranslationServiceStub, metadata=metadata, retry=retry)

    def translate(self, texts: Iterable[str], target_language: str, source_language: str = "", *,
                  glossary: translation_pb2.Glossary | None = None, model: str = "",
                  timeout_s: float | None = None) -> TextTranslation:
        request = translation_pb2.TranslateTextRequest(
            texts=list(texts), options=translation_options(target_language, source_language, glossary, model))
        return TextTranslation(self._idempotent(lambda: self.stub.TranslateText(request, timeout=timeout_s,
                                                                                metadata=self.metadata)))

    def translate_stream(self, texts: Iterable[str], target_language: str, source_language: str = "", *,
                         glossary: translation_pb2.Glossary | None = None, timeout_s: float | None = None,
                         ) -> ResponseStream[translation_pb2.StreamingTranslateResponse]:
        """Texts as they come (a live transcript), each translation as soon as it is done."""
        def messages() -> Iterator[translation_pb2.StreamingTranslateRequest]:
            yield translation_pb2.StreamingTranslateRequest(config=translation_pb2.StreamingTranslateConfig(
                options=translation_options(target_language, source_language, glossary)))
            for text in texts:
                yield translation_pb2.StreamingTranslateRequest(text=text)
        return self._stream(self.stub.StreamingTranslate(messages(), timeout=timeout_s, metadata=self.metadata))

    def translate_document(self, content: bytes, file_name: str, target_language: str, source_language: str = "", *,
                           glossary: translation_pb2.Glossary | None = None,
                           pdf_output_format: translation_pb2.DocumentFormat = translation_pb2.DOCUMENT_FORMAT_UNSPECIFIED,
                           timeout_s: float | None = None) -> translation_pb2.TranslateDocumentResponse:
        request = translation_pb2.TranslateDocumentRequest(
            content=content, file_name=file_name, pdf_output_format=pdf_output_format,
            options=translation_options(target_language, source_language, glossary))
        return self._idempotent(lambda: self.stub.TranslateDocument(request, timeout=timeout_s, metadata=self.metadata))

    def list_languages(self) -> translation_pb2.ListLanguagesResponse:
        return self._idempotent(lambda: self.stub.ListLanguages(translation_pb2.ListLanguagesRequest(),
                                                                metadata=self.metadata))


class AnonymizationClient(_Client):
    """Personal data out of texts: one request is one conversation or document, so a
    name keeps one placeholder across its texts."""

    def __init__(self, target: grpc.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, anonymization_pb2_grpc.AnonymizationServiceStub, metadata=metadata, retry=retry)

    def anonymize(self, texts: Iterable[str], options: anonymization_pb2.AnonymizationOptions | None = None, *,
                  timeout_s: float | None = None) -> anonymization_pb2.AnonymizeTextResponse:
        request = anonymization_pb2.AnonymizeTextRequest(texts=list(texts), options=options)
        return self._idempotent(lambda: self.stub.AnonymizeText(request, timeout=timeout_s, metadata=self.metadata))

    def anonymize_document(self, content: bytes, file_name: str,
                           options: anonymization_pb2.AnonymizationOptions | None = None, *, pdf_output_format: str = "",
                           timeout_s: float | None = None) -> anonymization_pb2.AnonymizeDocumentResponse:
        """A document with its layout kept (docx, odt, html, srt, vtt, txt; a PDF as DOCX or TXT)."""
        request = anonymization_pb2.AnonymizeDocumentRequest(content=content, file_name=file_name, options=options,
                                                             pdf_output_format=pdf_output_format)
        return self._idempotent(lambda: self.stub.AnonymizeDocument(request, timeout=timeout_s, metadata=self.metadata))


class GatewayClient(_Client):
    """The gateway's composed RPCs: a speaker-attributed, translated transcript in one call,
    speech translation, the live two-way conversation."""

    def __init__(self, target: grpc.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, gateway_pb2_grpc.GatewayServiceStub, metadata=metadata, retry=retry)

    def transcribe_conversation(
        self, audio: bytes, options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None, *, diarization: diarization_pb2.DiarizationOptions | None = None,
        target_languages: Sequence[str] = (), subtitles: bool = False, glossary: translation_pb2.Glossary | None = None,
        uri: str = "", timeout_s: float | None = None,
        anonymization: anonymization_pb2.AnonymizationOptions | None = None,
    ) -> Conversation:
        """`anonymization`: personal data masked in the turns, words and subtitles
        (Conversation.proto.anonymization says what and where)."""
        request = conversation_request(options, config, diarization, target_languages, subtitles, glossary, uri,
                                       anonymization)
        request.audio.content = audio
        return Conversation(self._idempotent(lambda: self.stub.TranscribeConversation(
            request, timeout=timeout_s, metadata=self.metadata)))

    def transcribe_conversation_file(
        self, path: str | Path, options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None, *, diarization: diarization_pb2.DiarizationOptions | None = None,
        target_languages: Sequence[str] = (), subtitles: bool = False, glossary: translation_pb2.Glossary | None = None,
        uri: str = "", timeout_s: float | None = None,
        anonymization: anonymization_pb2.AnonymizationOptions | None = None,
    ) -> Conversation:
        """Upload in chunks; `uri` names the file in the RTTM (default: the file's stem)."""
        first = conversation_request(options, config, diarization, target_languages, subtitles, glossary,
                                     uri or Path(path).stem, anonymization)
        return Conversation(self._idempotent(lambda: self.stub.TranscribeConversationUpload(
            file_messages(Path(path), first, gateway_pb2.TranscribeConversationUploadRequest),
            timeout=timeout_s, metadata=self.metadata)))

    def translate_speech(self, audio: bytes, target_language: str,
                         options: transcription_pb2.TranscriptionOptions | None = None,
                         config: audio_pb2.AudioConfig | None = None, *,
                         glossary: translation_pb2.Glossary | None = None,
                         timeout_s: float | None = None) -> SpeechTranslation:
        request = gateway_pb2.TranslateSpeechRequest(
            config=config or audio_pb2.AudioConfig(), audio=audio_pb2.Audio(content=audio),
            transcription=options or transcription_pb2.TranscriptionOptions(), target_language=target_language)
        if glossary is not None:
            request.glossary.CopyFrom(glossary)
        return SpeechTranslation(self._idempotent(lambda: self.stub.TranslateSpeech(
            request, timeout=timeout_s, metadata=self.metadata)))

    def live_conversation(self, chunks: Iterable[bytes], config: gateway_pb2.LiveConversationConfig, *,
                          timeout_s: float | None = None) -> ResponseStream[gateway_pb2.LiveConversationResponse]:
        """Bidirectional: raw audio chunks in (as declared in config.config), results out."""
        def messages() -> Iterator[gateway_pb2.LiveConversationRequest]:
            yield gateway_pb2.LiveConversationRequest(config=config)
            for chunk in chunks:
                yield gateway_pb2.LiveConversationRequest(audio_content=chunk)
        return self._stream(self.stub.LiveConversation(messages(), timeout=timeout_s, metadata=self.metadata))
