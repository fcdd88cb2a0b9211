"""TranslationService over gRPC: proto in, engine call, proto out.

The engine (CTranslate2 behind the micro-batcher) does the work; this layer validates
requests, resolves glossaries (the request's entries over the tenant's named glossary),
keeps live streams ordered while their sentences are translated concurrently, and
shapes the responses. Errors are engine exceptions mapped by the shared interceptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from collections.abc import AsyncIterator

from grpc import aio

from parlons.services.common.module import EngineModule
from parlons.services.common.config import ParlonsConfig, TranslationSettings
from parlons.services.common.gateway_trust import current_tenant
from parlons.models.manager import ModelManager
from parlons.errors import FailedPrecondition, InvalidArgument, ParlonsError
from parlons.services.common.streams import StreamLimiter, StreamPump, read_config
from parlons.services.common.workqueue import WorkQueue
from parlons.services.translation.discovery import Refused, catalog_suggestions, log_refused, model_sources
from parlons.services.translation.documents import DocFormat, DocumentLimits
from parlons.services.translation.engine import EngineLimits, TextTranslation, TranslationEngine
from parlons.services.translation.glossary import Glossary, GlossaryEntry, GlossaryStore
from parlons.services.translation.layouts import load_layout
from parlons.services.translation.model import RuntimeOptions, TranslationModel
from parlons.v1 import translation_pb2, translation_pb2_grpc

log = logging.getLogger("parlons.translation")

SERVICE_NAME = "parlons.v1.TranslationService"


def refuse_anonymization(options: translation_pb2.TranslationOptions) -> None:
    """Anonymisation before translation is the gateway's (it calls the anonymisation
    service): asked of this service directly, it would be silently skipped, so refuse."""
    if options.HasField("anonymization"):
        raise FailedPrecondition(
            "options.anonymization is served by the gateway (it masks the texts, then translates): "
            "call TranslateText through the gateway")


class TranslationServicer(translation_pb2_grpc.TranslationServiceServicer):
    def __init__(self, module: TranslationModule) -> None:
        self._module = module

    # --- helpers --------------------------------------------------------------------------

    def _engine(self) -> TranslationEngine:
        engine = self._module.ready_engine()
        if not engine.models:
            raise FailedPrecondition(
                "no translation model is installed on this server: pull one (`parlons models pull "
                "opus-mt-en-fr`, docs/models.md) or put a converted model in the model cache; it is "
                "served at the next start")
        return engine

    async def _glossary(self, options: translation_pb2.TranslationOptions,
                        context: aio.ServicerContext) -> Glossary | None:
        """The tenant's named glossary merged with the request's entries. A request's
        entries are bounded (`max_request_glossary_entries`) and compiled in a thread:
        thousands of them take a second to compile, never on the event loop."""
        proto = options.glossary
        limit = self._module.settings.max_request_glossary_entries
        if len(proto.entries) > limit:
            raise InvalidArgument(
                f"the request's glossary has {len(proto.entries):,} entries; at most {limit:,} per request "
                "(larger glossaries are set up once as a tenant glossary, by name)")
        entries = [
            GlossaryEntry(
                source=e.source,
                target=None if e.do_not_translate or not e.target else e.target,
                case_sensitive=e.case_sensitive,
            )
            for e in proto.entries
        ]
        base: Glossary | None = None
        if proto.name:
            # The tenant as the interceptor could trust it: from the gateway only, when
            # this backend is configured to know the gateway (gateway_trust.py).
            base = self._module.glossaries.get(current_tenant(), proto.name)
        if not entries:
            return base

        def build() -> Glossary:
            request = Glossary.build(entries)
            return request if base is None else base.merged(request)

        return await asyncio.to_thread(build)

    @staticmethod
    def _translation(result: TextTranslation) -> translation_pb2.Translation:
        return translation_pb2.Translation(
            text=result.text,
            detected_source_language=result.source_language,
            detection_confidence=result.detection_confidence,
            model=result.model,
        )

    async def _translate(self, texts: list[str], options: translation_pb2.TranslationOptions,
                         glossary: Glossary | None) -> list[TextTranslation]:
        if options.beam_size < 0:
            raise InvalidArgument(f"beam_size must be >= 0 (0 = server default), got {options.beam_size}", field="options.beam_size")
        refuse_anonymization(options)
        return await self._engine().translate(
            texts, options.target_language, options.source_language,
            glossary=glossary, model=options.model, beam_size=options.beam_size)

    # --- RPCs -----------------------------------------------------------------------------

    async def TranslateText(self, request: translation_pb2.TranslateTextRequest,
                            context: aio.ServicerContext) -> translation_pb2.TranslateTextResponse:
        if not request.texts:
            raise InvalidArgument("texts is empty: send at least one text to translate", field="texts")
        glossary = await self._glossary(request.options, context)
        results = await self._translate(list(request.texts), request.options, glossary)
        return translation_pb2.TranslateTextResponse(translations=[self._translation(r) for r in results])

    async def StreamingTranslate(
        self,
        request_iterator: AsyncIterator[translation_pb2.StreamingTranslateRequest],
        context: aio.ServicerContext,
    ) -> AsyncIterator[translation_pb2.StreamingTranslateResponse]:
        options = (await read_config(request_iterator, then="texts")).options
        refuse_anonymization(options)
        if not options.target_language:
            raise InvalidArgument("target_language is required in the stream's config", field="config.target_language")
        glossary = await self._glossary(options, context)
        self._engine().registry  # fail fast when no model is loaded  # noqa: B018
        async with self._module.stream_slot():
            async for response in self._stream(request_iterator, options, glossary):
                yield response

    async def _stream(
        self,
        request_iterator: AsyncIterator[translation_pb2.StreamingTranslateRequest],
        options: translation_pb2.TranslationOptions,
        glossary: Glossary | None,
    ) -> AsyncIterator[translation_pb2.StreamingTranslateResponse]:
        """Translate sentences as they arrive (several at once, so they share batches) and
        answer in arrival order. At most `window` sentences are in flight per stream."""
        window = self._module.settings.max_stream_in_flight

        async def started() -> AsyncIterator[tuple[int, str, asyncio.Task[list[TextTranslation]]]]:
            """Each sentence's translation starts as it arrives (so they share batches)."""
            index = 0
            async for request in request_iterator:
                if request.WhichOneof("request") != "text":
                    raise InvalidArgument("config sent twice: a stream takes one config, then texts only")
                yield index, request.text, asyncio.create_task(self._translate([request.text], options, glossary))
                index += 1

        current: asyncio.Task[list[TextTranslation]] | None = None
        try:
            async with StreamPump(started(), maxsize=window, on_drop=lambda item: item[2].cancel()) as pump:
                while (item := await pump.next()) is not None:
                    index, source_text, current = item
                    result = (await current)[0]
                    current = None
                    yield translation_pb2.StreamingTranslateResponse(
                        translation=self._translation(result), source_text=source_text, index=index)
        finally:
            if current is not None:
                current.cancel()

    async def TranslateDocument(self, request: translation_pb2.TranslateDocumentRequest,
                                context: aio.ServicerContext) -> translation_pb2.TranslateDocumentResponse:
        options = request.options
        refuse_anonymization(options)
        if options.beam_size < 0:
            raise InvalidArgument(f"beam_size must be >= 0 (0 = server default), got {options.beam_size}", field="options.beam_size")
        try:
            fmt = DocFormat(request.format)
            pdf_output = DocFormat(request.pdf_output_format)
        except ValueError:
            raise InvalidArgument("unknown document format value", field="format") from None
        glossary = await self._glossary(options, context)
        engine = self._engine()
        started = time.perf_counter()
        result = await engine.translate_document(
            request.content, options.target_language, options.source_language, fmt=fmt,
            file_name=request.file_name, mime_type=request.mime_type, glossary=glossary,
            model=options.model, beam_size=options.beam_size, pdf_output=pdf_output)
        log.info("document translated", extra={"fields": {
            "format": result.format.name, "bytes_in": len(request.content), "segments": result.segments,
            "characters": result.characters, "s": round(time.perf_counter() - started, 3)}})
        return translation_pb2.TranslateDocumentResponse(
            content=result.content, format=translation_pb2.DocumentFormat.Name(int(result.format)), mime_type=result.mime_type,
            file_name=result.file_name, detected_source_language=result.source_language,
            segments_translated=result.segments, characters=result.characters, notes=result.notes)

    async def ListLanguages(self, request: translation_pb2.ListLanguagesRequest,
                            context: aio.ServicerContext) -> translation_pb2.ListLanguagesResponse:
        engine = self._module.ready_engine()
        return translation_pb2.ListLanguagesResponse(
            pairs=[translation_pb2.LanguagePair(source_language=p.source, target_language=p.target,
                                                model=p.model, pivot=p.pivot) for p in engine.pairs()],
            detectable_languages=engine.detectable_languages,
        )


class TranslationModule(EngineModule[TranslationEngine]):
    """The translation service as the shared server sees it: register, load, close."""

    service_names = (SERVICE_NAME,)
    kind = "translation"
    what_loads = "the translation models"

    def __init__(self, settings: TranslationSettings, *, max_message_mb: int = 64, models: ModelManager | None = None) -> None:
        super().__init__(models)
        self.settings = settings
        self.max_message_mb = max_message_mb
        glossary_dir = settings.glossaries_dir
        self.glossaries = GlossaryStore(Path(glossary_dir) if glossary_dir else None)
        self.streams = StreamLimiter("translation", settings.max_streams, "live translation streams")
        self._servicer = TranslationServicer(self)

    def register(self, server: aio.Server) -> None:
        translation_pb2_grpc.add_TranslationServiceServicer_to_server(self._servicer, server)

    def runtime_options(self) -> RuntimeOptions:
        s = self.settings
        return RuntimeOptions(
            device=s.device,
            compute_type=s.compute_type,
            inter_threads=s.inter_threads,
            intra_threads=s.intra_threads,
            batch_wait_ms=s.batch_wait_ms,
            max_batch_tokens=s.max_batch_tokens,
            max_pending_sentences=s.max_pending_sentences,
        )

    def _load_engine(self) -> TranslationEngine:
        runtime = self.runtime_options()
        manager = self.models
        sources, refused = model_sources(self.settings.models, manager)
        models: list[TranslationModel] = []
        for source in sources:
            try:
                layout = load_layout(source.path, name=source.name,
                                     source_languages=list(source.source_languages) or None,
                                     target_languages=list(source.target_languages) or None)
            except ParlonsError as exc:
                if source.guessed:  # something else in the cache (a converted Whisper model...)
                    log.info("not a translation model, skipped", extra={"fields": {"path": source.name}})
                else:
                    refused.append(Refused(source.name, exc.message))
                continue
            models.append(TranslationModel(layout, runtime))
        log_refused(refused)
        if models:
            log.info("translation models", extra={"fields": {
                "models": [m.name for m in models], "configured": bool(self.settings.models)}})
        else:
            log.warning("no translation model installed or configured: TranslationService answers "
                        "FAILED_PRECONDITION; `parlons models pull opus-mt-en-fr` (docs/models.md)")
        s = self.settings
        limits = EngineLimits(max_chars_per_request=s.max_chars_per_request)
        doc_limits = DocumentLimits(
            max_bytes=min(s.max_document_mb, self.max_message_mb) * 1024 * 1024,
            max_pdf_pages=s.max_pdf_pages,
            max_chars=s.max_document_chars,
            time_budget_s=s.document_time_budget_s,
        )
        return TranslationEngine(
            models, limits=limits, document_limits=doc_limits,
            detect=s.detect_language,
            default_beam_size=s.beam_size,
            pivot_language=s.pivot_language,
            document_queue=WorkQueue("translation-documents", s.max_concurrent_documents, s.max_queued_documents),
            suggest=catalog_suggestions(manager, {m.name for m in models}, s.pivot_language),
        )

    async def close(self) -> None:
        engine = self.engine
        await super().close()
        if engine is not None:
            engine.document_queue.shutdown()
            await asyncio.gather(*(m.aclose() for m in engine.models), return_exceptions=True)

    def stream_slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.streams.slot()


def module_from_config(config: ParlonsConfig, models: ModelManager | None = None) -> TranslationModule:
    return TranslationModule(config.translation, max_message_mb=config.server.max_message_mb, models=models)
