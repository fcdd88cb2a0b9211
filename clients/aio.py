"""asyncio twins of the SDK's clients (`clients/sdk.py`), on grpc.aio: same methods,
same results and errors, awaited; streams are async iterators.

    async with AsyncTranscriptionClient(Connection("gateway:50051", api_key=KEY)) as client:
        transcript = await client.transcribe_file("guichet.wav")
        async for result in client.stream(chunks()):
            ...

Requests are built by the same functions as the sync clients'; an upload reads its file
in 1 MiB chunks as they are sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence

import grpc
from grpc import aio

from parlons.clients import sdk
from parlons.clients.connection import Connection, StubClient
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.results import Conversation, Diarization, SpeechTranslation, TextTranslation, Transcript
from parlons.clients.retry import RetryPolicy, acall_with_retries
from parlons.v1 import (
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

T = TypeVar("T")
Chunks = Iterable[bytes] | AsyncIterable[bytes]


async def _messages(first: Any, wrap: Callable[..., Any], chunks: Chunks, field: str) -> AsyncIterator[Any]:
    yield wrap(config=first)
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield wrap(**{field: chunk})
    else:
        for chunk in chunks:
            yield wrap(**{field: chunk})


class _AsyncClient(StubClient):
    """An asyncio client (StubClient) with the retry policy of idempotent calls."""

    asyncio_channel = True

    def __init__(self, target: aio.Channel | Connection, stub: Callable[[aio.Channel], Any], *,
                 metadata: Iterable[tuple[str, str]] = (), retry: RetryPolicy | None = None) -> None:
        super().__init__(target, stub, metadata=metadata)
        self.retry = retry or RetryPolicy()

    async def _idempotent(self, call: Callable[[], Awaitable[T]]) -> T:
        return await acall_with_retries(call, self.retry)

    async def _stream(self, call: Any) -> AsyncIterator[Any]:
        try:
            async for response in call:
                yield response
        except grpc.RpcError as error:
            raise ParlonsRpcError.from_grpc(error) from None
        finally:
            call.cancel()  # no-op once done; stops the call when the caller leaves early

    async def close(self) -> None:
        if self._owned:
            await self.channel.close()

    async def __aenter__(self: Any) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncTranscriptionClient(_AsyncClient):
    def __init__(self, target: aio.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, transcription_pb2_grpc.TranscriptionServiceStub, metadata=metadata, retry=retry)

    async def transcribe(self, audio: bytes, options: transcription_pb2.TranscriptionOptions | None = None,
                         config: audio_pb2.AudioConfig | None = None, *, timeout_s: float | None = None) -> Transcript:
        request = sdk.transcribe_request(audio, options, config)
        return Transcript(await self._idempotent(lambda: self.stub.Transcribe(request, timeout=timeout_s,
                                                                              metadata=self.metadata)))

    async def transcribe_file(self, path: str | Path, options: transcription_pb2.TranscriptionOptions | None = None,
                              config: audio_pb2.AudioConfig | None = None, *,
                              timeout_s: float | None = None) -> Transcript:
        first = sdk.transcribe_upload_config(options, config)
        return Transcript(await self._idempotent(lambda: self.stub.TranscribeUpload(
            sdk.file_messages(Path(path), first, transcription_pb2.TranscribeUploadRequest),
            timeout=timeout_s, metadata=self.metadata)))

    def stream(self, chunks: Chunks, options: transcription_pb2.TranscriptionOptions | None = None, *,
               interim: bool = True, timeout_s: float | None = None) -> AsyncIterator[transcription_pb2.StreamingResult]:
        """Live 16 kHz mono s16le chunks in, results out as they come."""
        config = sdk.live_streaming_config(options, interim)
        call = self.stub.StreamingTranscribe(
            _messages(config, transcription_pb2.StreamingTranscribeRequest, chunks, "audio_content"),
            timeout=timeout_s, metadata=self.metadata)
        return self._results(call)

    async def _results(self, call: Any) -> AsyncIterator[transcription_pb2.StreamingResult]:
        async for response in self._stream(call):
            for result in response.results:
                yield result

    async def list_models(self) -> transcription_pb2.ListModelsResponse:
        return await self._idempotent(lambda: self.stub.ListModels(transcription_pb2.ListModelsRequest(),
                                                                   metadata=self.metadata))


class AsyncDiarizationClient(_AsyncClient):
    def __init__(self, target: aio.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, diarization_pb2_grpc.DiarizationServiceStub, metadata=metadata, retry=retry)

    async def diarize(self, audio: bytes, options: diarization_pb2.DiarizationOptions | None = None,
                      config: audio_pb2.AudioConfig | None = None, *, num_speakers: int = 0, min_speakers: int = 0,
                      max_speakers: int = 0, uri: str = "", timeout_s: float | None = None) -> Diarization:
        request = diarization_pb2.DiarizeRequest(
            config=config or audio_pb2.AudioConfig(), audio=audio_pb2.Audio(content=audio), uri=uri,
            options=sdk.diarize_options(options, num_speakers, min_speakers, max_speakers))
        return Diarization(await self._idempotent(lambda: self.stub.Diarize(request, timeout=timeout_s,
                                                                            metadata=self.metadata)))

    async def diarize_file(self, path: str | Path, options: diarization_pb2.DiarizationOptions | None = None,
                           config: audio_pb2.AudioConfig | None = None, *, num_speakers: int = 0,
                           min_speakers: int = 0, max_speakers: int = 0, uri: str = "",
                           timeout_s: float | None = None) -> Diarization:
        first = diarization_pb2.DiarizeUploadConfig(
            config=config or audio_pb2.AudioConfig(), uri=uri or Path(path).stem,
            options=sdk.diarize_options(options, num_speakers, min_speakers, max_speakers))
        return Diarization(await self._idempotent(lambda: self.stub.DiarizeUpload(
            sdk.file_messages(Path(path), first, diarization_pb2.DiarizeUploadRequest),
            timeout=timeout_s, metadata=self.metadata)))


class AsyncTranslationClient(_AsyncClient):
    def __init__(self, target: aio.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, translation_pb2_grpc.TranslationServiceStub, metadata=metadata, retry=retry)

    async def translate(self, texts: Iterable[str], target_language: str, source_language: str = "", *,
                        glossary: translation_pb2.Glossary | None = None, model: str = "",
                        timeout_s: float | None = None) -> TextTranslation:
        request = translation_pb2.TranslateTextRequest(
            texts=list(texts), options=sdk.translation_options(target_language, source_language, glossary, model))
        return TextTranslation(await self._idempotent(lambda: self.stub.TranslateText(
            request, timeout=timeout_s, metadata=self.metadata)))

    def translate_stream(self, texts: Iterable[str] | AsyncIterable[str], target_language: str,
                         source_language: str = "", *, glossary: translation_pb2.Glossary | None = None,
                         timeout_s: float | None = None) -> AsyncIterator[translation_pb2.StreamingTranslateResponse]:
        config = translation_pb2.StreamingTranslateConfig(
            options=sdk.translation_options(target_language, source_language, glossary))
        return self._stream(self.stub.StreamingTranslate(
            _messages(config, translation_pb2.StreamingTranslateRequest, texts, "text"),  # type: ignore[arg-type]
            timeout=timeout_s, metadata=self.metadata))

    async def translate_document(self, content: bytes, file_name: str, target_language: str,
                                 source_language: str = "", *, glossary: translation_pb2.Glossary | None = None,
                                 timeout_s: float | None = None) -> translation_pb2.TranslateDocumentResponse:
        request = translation_pb2.TranslateDocumentRequest(
            content=content, file_name=file_name,
            options=sdk.translation_options(target_language, source_language, glossary))
        return await self._idempotent(lambda: self.stub.TranslateDocument(request, timeout=timeout_s,
                                                                          metadata=self.metadata))

    async def list_languages(self) -> translation_pb2.ListLanguagesResponse:
        return await self._idempotent(lambda: self.stub.ListLanguages(translation_pb2.ListLanguagesRequest(),
                                                                      metadata=self.metadata))


class AsyncGatewayClient(_AsyncClient):
    def __init__(self, target: aio.Channel | Connection, *, metadata: Iterable[tuple[str, str]] = (),
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(target, gateway_pb2_grpc.GatewayServiceStub, metadata=metadata, retry=retry)

    async def transcribe_conversation_file(
        self, path: str | Path, options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None, *, diarization: diarization_pb2.DiarizationOptions | None = None,
        target_languages: Sequence[str] = (), subtitles: bool = False, glossary: translation_pb2.Glossary | None = None,
        uri: str = "", timeout_s: float | None = None,
    ) -> Conversation:
        first = sdk.conversation_request(options, config, diarization, target_languages, subtitles, glossary,
                                         uri or Path(path).stem)
        return Conversation(await self._idempotent(lambda: self.stub.TranscribeConversationUpload(
            sdk.file_messages(Path(path), first, gateway_pb2.TranscribeConversationUploadRequest),
            timeout=timeout_s, metadata=self.metadata)))

    async def translate_speech(self, audio: bytes, target_language: str,
                               options: transcription_pb2.TranscriptionOptions | None = None,
                               config: audio_pb2.AudioConfig | None = None, *,
                               timeout_s: float | None = None) -> SpeechTranslation:
        request = gateway_pb2.TranslateSpeechRequest(
            config=config or audio_pb2.AudioConfig(), audio=audio_pb2.Audio(content=audio),
            transcription=options or transcription_pb2.TranscriptionOptions(), target_language=target_language)
        return SpeechTranslation(await self._idempotent(lambda: self.stub.TranslateSpeech(
            request, timeout=timeout_s, metadata=self.metadata)))

    def live_conversation(self, chunks: Chunks, config: gateway_pb2.LiveConversationConfig, *,
                          timeout_s: float | None = None) -> AsyncIterator[gateway_pb2.LiveConversationResponse]:
        return self._stream(self.stub.LiveConversation(
            _messages(config, gateway_pb2.LiveConversationRequest, chunks, "audio_content"),
            timeout=timeout_s, metadata=self.metadata))
