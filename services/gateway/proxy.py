"""Pass-through of the single-service RPCs, so one gateway endpoint serves everything.

Handlers are built from the services' descriptors, so an RPC added to a backend's proto
is proxied without new code. What the gateway adds to each call: authentication, the
tenant's quotas and glossaries, the deadline and request id passed on, retries of
idempotent calls on another replica. Client-streamed uploads are buffered (bounded) so
that they too can be retried; live streams are relayed message by message.
"""

from __future__ import annotations

import time
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc import aio

from parlons import anonymized
from parlons.services.common.audio_request import read_upload
from parlons.errors import InvalidArgument
from parlons.services.common.streams import in_stream_order
from parlons.services.gateway.auth import Authenticator
from parlons.services.gateway.core import UPLOAD_CHUNK_BYTES, AudioCharge, Call, GatewayCore
from parlons.services.gateway.quotas import StreamAudioMeter, document_read_charge
from parlons.services.gateway.routing import CallOptions
from parlons.v1 import (
    anonymization_pb2,
    diarization_pb2,
    transcription_pb2,
    translation_pb2,
)

# The anonymisation service names formats in words, translation with its enum.
_DOCUMENT_FORMATS = {"txt": translation_pb2.TXT, "docx": translation_pb2.DOCX, "odt": translation_pb2.ODT,
                     "html": translation_pb2.HTML, "srt": translation_pb2.SRT, "vtt": translation_pb2.VTT}


def _name_for(document_format: int) -> str:
    """A file name whose extension says the format, for a request that gave only the enum."""
    extensions = {int(v): k for k, v in _DOCUMENT_FORMATS.items()} | {int(translation_pb2.PDF): "pdf"}
    extension = extensions.get(int(document_format))
    return f"document.{extension}" if extension else ""


SERVICE_DESCRIPTORS: dict[str, ServiceDescriptor] = {
    "transcription": transcription_pb2.DESCRIPTOR.services_by_name["TranscriptionService"],
    "diarization": diarization_pb2.DESCRIPTOR.services_by_name["DiarizationService"],
    "translation": translation_pb2.DESCRIPTOR.services_by_name["TranslationService"],
    "anonymization": anonymization_pb2.DESCRIPTOR.services_by_name["AnonymizationService"],
}

Invoke = Callable[[Any], Awaitable[Any]]


class Proxy:
    """Generic handlers for every RPC of a backend service."""

    def __init__(
        self,
        core: GatewayCore,
        auth: Authenticator,
        *,
        default_timeout_s: float = 0.0,
        max_upload_bytes: int = 2 << 30,
    ) -> None:
        self.core = core
        self.auth = auth
        self.default_timeout_s = default_timeout_s
        self.max_upload_bytes = max_upload_bytes

    def _call(self, context: aio.ServicerContext) -> Call:
        tenant = self.auth.from_grpc(context)
        return Call(tenant, CallOptions.from_context(context, tenant.name, self.default_timeout_s))

    def handler(self, backend_name: str) -> grpc.GenericRpcHandler:
        descriptor = SERVICE_DESCRIPTORS[backend_name]
        handlers = {m.name: self._method_handler(backend_name, m) for m in descriptor.methods}
        return grpc.method_handlers_generic_handler(descriptor.full_name, handlers)

    def _method_handler(self, backend_name: str, method: MethodDescriptor) -> grpc.RpcMethodHandler:
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        kwargs = {
            "request_deserializer": request_cls.FromString,
            "response_serializer": response_cls.SerializeToString,
        }
        name = method.name
        if not method.client_streaming and not method.server_streaming:

            async def unary(request: Any, context: aio.ServicerContext) -> Any:
                call = self._call(context)
                backend = self.core.router.get(backend_name)

                async def invoke(req: Any) -> Any:
                    return await backend.unary(getattr(backend.stub, name), req, call.options)

                return await self._around_unary(name, call, request, invoke)

            return grpc.unary_unary_rpc_method_handler(unary, **kwargs)
        if method.client_streaming and not method.server_streaming:

            async def upload(request_iterator: AsyncIterator[Any], context: aio.ServicerContext) -> Any:
                call = self._call(context)
                backend = self.core.router.get(backend_name)
                await self.core.quotas.check_audio(call.tenant)  # before any audio is held
                config, data = await read_upload(request_iterator, self.max_upload_bytes)

                def requests() -> Iterator[Any]:
                    yield request_cls(config=config)
                    for i in range(0, len(data), UPLOAD_CHUNK_BYTES):
                        yield request_cls(audio_content=data[i : i + UPLOAD_CHUNK_BYTES])

                async with AudioCharge(self.core.quotas, call.tenant, data, config.config) as charge:
                    response = await backend.stream_unary(getattr(backend.stub, name), requests, call.options)
                    await charge.settle(getattr(response, "audio_duration_s", 0.0))
                return response

            return grpc.stream_unary_rpc_method_handler(upload, **kwargs)
        if method.client_streaming and method.server_streaming:

            async def bidi(request_iterator: AsyncIterator[Any], context: aio.ServicerContext) -> AsyncIterator[Any]:
                call = self._call(context)
                backend = self.core.router.get(backend_name)
                async with self.core.quotas.stream(call.tenant):
                    requests = self._relay(name, call, request_iterator)
                    async for response in backend.relay(getattr(backend.stub, name), requests, call.options):
                        yield response

            return grpc.stream_stream_rpc_method_handler(bidi, **kwargs)

        async def server_stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            raise InvalidArgument(f"{method.full_name} is not supported through the gateway")
            yield  # pragma: no cover

        return grpc.unary_stream_rpc_method_handler(server_stream, **kwargs)

    # ------------------------------------------------------------------ per-RPC policy

    async def _around_unary(self, name: str, call: Call, request: Any, invoke: Invoke) -> Any:
        quotas = self.core.quotas
        if name in ("Transcribe", "Diarize"):
            content = request.audio.content if request.audio.WhichOneof("source") == "content" else b""
            async with AudioCharge(quotas, call.tenant, content, request.config) as charge:
                response = await invoke(request)
                await charge.settle(response.audio_duration_s)
            return response
        if name == "TranslateText":
            request.options.CopyFrom(self.core.resolve_translation_options(call.tenant, request.options))
            characters = sum(len(t) for t in request.texts)
            await quotas.charge_characters(call.tenant, characters)
            try:
                if request.options.HasField("anonymization"):
                    return await self._anonymized_translation(call, request, invoke)
                return await invoke(request)
            except BaseException:
                await quotas.adjust_characters(call.tenant, -characters)
                raise
        if name in ("AnonymizeText", "AnonymizeDocument"):
            request.options.CopyFrom(self.core.resolve_anonymization(call.tenant, request.options))
        if name == "AnonymizeDocument":
            read_charge = document_read_charge(request.content)
            await quotas.charge_characters(call.tenant, read_charge)  # admission, and the reading is paid for
            response = await invoke(request)
            await quotas.adjust_characters(call.tenant, max(response.characters - read_charge, 0))
            return response
        if name == "AnonymizeText":
            characters = sum(len(t) for t in request.texts)
            await quotas.charge_characters(call.tenant, characters)
            try:
                return await invoke(request)
            except BaseException:
                await quotas.adjust_characters(call.tenant, -characters)
                raise
        if name == "TranslateDocument":
            request.options.CopyFrom(self.core.resolve_translation_options(call.tenant, request.options))
            read_charge = document_read_charge(request.content)
            await quotas.charge_characters(call.tenant, read_charge)  # admission, and the reading is paid for
            if request.options.HasField("anonymization"):
                response = await self._anonymized_document_translation(call, request, invoke)
            else:
                response = await invoke(request)
            await quotas.adjust_characters(call.tenant, max(response.characters - read_charge, 0))
            return response
        return await invoke(request)

    async def _anonymized_translation(self, call: Call, request: Any, invoke: Invoke) -> Any:
        """TranslateText with options.anonymization: the texts anonymised first (one
        conversation), the placeholders kept through translation as do-not-translate."""
        started = time.perf_counter()
        options = request.options.anonymization
        result = await self.core.anonymize_texts(call, request.texts, options, request.options.source_language)
        placeholders = sorted({span.replacement for item in result.texts for span in item.spans})
        request.ClearField("texts")
        request.texts.extend(item.text for item in result.texts)
        request.options.ClearField("anonymization")
        request.options.glossary.CopyFrom(anonymized.keep_placeholders(request.options.glossary, placeholders))
        response = await invoke(request)
        summary = response.anonymization
        summary.names_checked = result.names_checked
        summary.spans = sum(len(item.spans) for item in result.texts)
        summary.mapping.extend(result.mapping)
        summary.duration_s = time.perf_counter() - started
        return response

    async def _anonymized_document_translation(self, call: Call, request: Any, invoke: Invoke) -> Any:
        """TranslateDocument with options.anonymization: the document anonymised first by
        the anonymisation service (same format, layout kept), then translated with its
        placeholders kept as do-not-translate terms."""
        started = time.perf_counter()
        options = anonymization_pb2.AnonymizationOptions()
        options.CopyFrom(request.options.anonymization)
        caller_wants_mapping = options.return_mapping
        options.return_mapping = True  # the placeholders, for the glossary; given back only if asked
        if not options.language:
            options.language = request.options.source_language or "fr"
        pdf_output = "txt" if request.pdf_output_format == translation_pb2.TXT else "docx"
        masked = await self.core.anonymize_document(call, anonymization_pb2.AnonymizeDocumentRequest(
            content=request.content, file_name=request.file_name or _name_for(request.format),
            mime_type=request.mime_type, options=options, pdf_output_format=pdf_output))
        await self.core.quotas.adjust_characters(call.tenant, masked.characters)  # the anonymiser read it too
        request.content = masked.content
        request.file_name = masked.file_name
        request.mime_type = masked.mime_type
        request.format = _DOCUMENT_FORMATS.get(masked.format, translation_pb2.DOCUMENT_FORMAT_UNSPECIFIED)
        request.options.ClearField("anonymization")
        placeholders = sorted({entry.replacement for entry in masked.mapping})
        request.options.glossary.CopyFrom(anonymized.keep_placeholders(request.options.glossary, placeholders))
        response = await invoke(request)
        summary = response.anonymization
        summary.spans = masked.spans
        summary.names_checked = masked.names_checked
        if caller_wants_mapping:
            summary.mapping.extend(masked.mapping)
        summary.duration_s = time.perf_counter() - started
        response.notes.extend(masked.notes)
        return response

    async def _relay(self, name: str, call: Call, request_iterator: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Client messages to the backend, with glossary resolution and quota charges.
        Audio is charged by its decoded seconds, whatever its encoding (`StreamAudioMeter`),
        each chunk before it is forwarded; the stream is open, so a quota store that is
        unreachable a moment does not stop it (`under_way`)."""
        quotas = self.core.quotas
        meter: StreamAudioMeter | None = None
        then = "texts" if name == "StreamingTranslate" else "audio chunks"
        try:
            async for request in in_stream_order(request_iterator, then):
                kind = request.WhichOneof("request")
                if kind == "config":
                    if name == "StreamingTranscribe":
                        meter = StreamAudioMeter(request.config.config)
                    elif name == "StreamingTranslate":
                        request.config.options.CopyFrom(
                            self.core.resolve_translation_options(call.tenant, request.config.options)
                        )
                elif kind == "audio_content" and meter is not None:
                    await quotas.charge_audio(call.tenant, await meter.feed(request.audio_content), under_way=True)
                elif kind == "text":
                    await quotas.charge_characters(call.tenant, len(request.text), under_way=True)
                yield request
            if meter is not None:  # the decoder's tail: audio the backend has, charged whatever the debt
                await quotas.adjust_audio(call.tenant, await meter.finish())
        finally:
            if meter is not None:
                await meter.close()
