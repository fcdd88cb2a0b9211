"""The gateway's work, shared by its gRPC servicer and its REST facade.

Every operation takes a `Call` (the authenticated tenant, the deadline and request id to
pass on) and talks to the backends through the `Router`. Quotas are charged here, once
per operation, whatever door the request came through.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, TypeVar
from collections.abc import Awaitable, Callable, Iterator, Sequence

from google.protobuf.message import Message

from parlons.languages import parse_tag, same_language
from parlons import anonymized
from parlons.errors import InvalidArgument, ParlonsError
from parlons.services.gateway import compose
from parlons.services.gateway.quotas import QuotaManager, estimate_audio_seconds
from parlons.services.gateway.routing import CallOptions, Router
from parlons.services.gateway.tenants import Tenant
from parlons.v1 import (
    anonymization_pb2,
    audio_pb2,
    diarization_pb2,
    gateway_pb2,
    transcription_pb2,
    translation_pb2,
)

T = TypeVar("T")

UPLOAD_CHUNK_BYTES = 1 << 20


@dataclass
class Call:
    """One authenticated call through the gateway."""

    tenant: Tenant
    options: CallOptions


async def first_failure(*awaitables: Awaitable[Any]) -> list[Any]:
    """Run concurrently; on the first failure cancel the others and raise that failure."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks: list[asyncio.Task[Any]] = [group.create_task(a) for a in awaitables]  # type: ignore[arg-type]
    except BaseExceptionGroup as eg:
        parlons = [e for e in eg.exceptions if isinstance(e, ParlonsError)]
        raise (parlons[0] if parlons else eg.exceptions[0]) from None
    return [t.result() for t in tasks]


class AudioCharge:
    """Charge a tenant for audio before the work; correct or refund after it.

    `async with AudioCharge(...) as charge:` around the work, `await charge.settle(s)`
    with the measured duration once it is known."""

    def __init__(self, quotas: QuotaManager, tenant: Tenant, data: bytes, config: audio_pb2.AudioConfig) -> None:
        self._quotas = quotas
        self._tenant = tenant
        self.estimate = estimate_audio_seconds(data, config) or 0.0
        self._settled = False

    async def __aenter__(self) -> AudioCharge:
        await self._quotas.charge_audio(self._tenant, self.estimate)
        return self

    async def settle(self, measured_s: float) -> None:
        if not self._settled:
            self._settled = True
            await self._quotas.adjust_audio(self._tenant, measured_s - self.estimate)

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if not self._settled:
            self._settled = True
            # Refused work is not charged. A call cancelled by its client (or its
            # deadline) had work under way: it keeps the estimate, so cancelling just
            # before the answer is not a way to get work for free.
            if not (isinstance(exc_type, type) and issubclass(exc_type, asyncio.CancelledError)):
                await self._quotas.adjust_audio(self._tenant, -self.estimate)


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), UPLOAD_CHUNK_BYTES):
        yield data[i : i + UPLOAD_CHUNK_BYTES]


# Bounds on what one client request may ask of the gateway (GatewaySettings overrides).
MAX_TARGET_LANGUAGES = 8
MAX_CLIENT_GLOSSARY_ENTRIES = 1000


class GatewayCore:
    def __init__(self, router: Router, quotas: QuotaManager, *, max_message_mb: int = 64,
                 max_target_languages: int = MAX_TARGET_LANGUAGES,
                 max_glossary_entries: int = MAX_CLIENT_GLOSSARY_ENTRIES) -> None:
        self.router = router
        self.quotas = quotas
        self.max_target_languages = max_target_languages
        self.max_glossary_entries = max_glossary_entries
        # Above this, audio goes to a backend by its Upload RPC (no message-size limit).
        self.unary_limit = max(max_message_mb - 1, 1) * 1024 * 1024

    # ------------------------------------------------------------------ building blocks

    def resolve_glossary(self, tenant: Tenant, glossary: translation_pb2.Glossary) -> translation_pb2.Glossary:
        """A request glossary with the tenant's named glossary (tenants file) merged in.

        A name the tenants file does not define is left for the translation service's
        own glossary store, which the gateway queries as the authenticated tenant (the
        x-parlons-tenant header is set by the gateway, never taken from the client), so
        a tenant still only ever reaches its own glossaries.
        """
        self.check_glossary(glossary)
        if not glossary.name or glossary.name not in tenant.glossaries:
            return glossary
        resolved = translation_pb2.Glossary()
        resolved.entries.extend(tenant.glossary(glossary.name))
        resolved.entries.extend(glossary.entries)
        return resolved

    def check_glossary(self, glossary: translation_pb2.Glossary) -> None:
        """The client's own entries are bounded (`max_glossary_entries`); the tenant's,
        set by an operator, are not."""
        if len(glossary.entries) > self.max_glossary_entries:
            raise InvalidArgument(
                f"the request's glossary has {len(glossary.entries):,} entries; at most "
                f"{self.max_glossary_entries:,} per request (larger glossaries are set up once as a "
                "tenant glossary and named)", field="glossary.entries")

    def resolve_translation_options(
        self, tenant: Tenant, options: translation_pb2.TranslationOptions
    ) -> translation_pb2.TranslationOptions:
        if not options.HasField("glossary"):
            return options
        if options.glossary.name not in tenant.glossaries:
            self.check_glossary(options.glossary)
            return options
        resolved = translation_pb2.TranslationOptions()
        resolved.CopyFrom(options)
        resolved.glossary.CopyFrom(self.resolve_glossary(tenant, options.glossary))
        return resolved

    async def transcribe_raw(
        self,
        call: Call,
        data: bytes,
        config: audio_pb2.AudioConfig,
        options: transcription_pb2.TranscriptionOptions,
    ) -> transcription_pb2.TranscribeResponse:
        """Transcription without quota accounting (the caller charges once)."""
        response: transcription_pb2.TranscribeResponse = await self._send_audio(
            call, "transcription", data, unary="Transcribe", upload="TranscribeUpload",
            single=lambda audio: transcription_pb2.TranscribeRequest(config=config, options=options, audio=audio),
            opening=transcription_pb2.TranscribeUploadRequest(
                config=transcription_pb2.TranscribeUploadConfig(config=config, options=options)),
            chunk=lambda piece: transcription_pb2.TranscribeUploadRequest(audio_content=piece),
        )
        return response

    async def diarize_raw(
        self,
        call: Call,
        data: bytes,
        config: audio_pb2.AudioConfig,
        options: diarization_pb2.DiarizationOptions,
        *,
        uri: str = "",
    ) -> diarization_pb2.DiarizeResponse:
        response: diarization_pb2.DiarizeResponse = await self._send_audio(
            call, "diarization", data, unary="Diarize", upload="DiarizeUpload",
            single=lambda audio: diarization_pb2.DiarizeRequest(config=config, options=options, audio=audio, uri=uri),
            opening=diarization_pb2.DiarizeUploadRequest(
                config=diarization_pb2.DiarizeUploadConfig(config=config, options=options, uri=uri)),
            chunk=lambda piece: diarization_pb2.DiarizeUploadRequest(audio_content=piece),
        )
        return response

    async def _send_audio(
        self,
        call: Call,
        service: str,
        data: bytes,
        *,
        unary: str,
        upload: str,
        single: Callable[[audio_pb2.Audio], Message],
        opening: Message,
        chunk: Callable[[bytes], Message],
    ) -> Any:
        """Audio to a backend: one request (`unary`) when it fits a message, else the
        client-streamed `upload`, its opening message then the audio in chunks."""
        backend = self.router.get(service)
        if len(data) <= self.unary_limit:
            return await backend.unary(getattr(backend.stub, unary), single(audio_pb2.Audio(content=data)), call.options)

        def requests() -> Iterator[Message]:
            yield opening
            for piece in _chunks(data):
                yield chunk(piece)

        return await backend.stream_unary(getattr(backend.stub, upload), requests, call.options)

    async def embed_voices(
        self,
        call: Call,
        data: bytes,
        config: audio_pb2.AudioConfig,
        spans: Sequence[tuple[float, float]] = (),
    ) -> diarization_pb2.EmbedVoicesResponse:
        """Voice prints of spans of a short clip (no quota: the caller charges the audio)."""
        backend = self.router.get("diarization")
        request = diarization_pb2.EmbedVoicesRequest(
            config=config,
            audio=audio_pb2.Audio(content=data),
            spans=[diarization_pb2.TimeSpan(start_s=a, end_s=b) for a, b in spans],
        )
        return await backend.unary(backend.stub.EmbedVoices, request, call.options)

    async def transcribe(
        self,
        call: Call,
        data: bytes,
        config: audio_pb2.AudioConfig,
        options: transcription_pb2.TranscriptionOptions,
    ) -> transcription_pb2.TranscribeResponse:
        async with AudioCharge(self.quotas, call.tenant, data, config) as charge:
            response = await self.transcribe_raw(call, data, config, options)
            await charge.settle(response.audio_duration_s)
        return response

    async def translate_texts(
        self,
        call: Call,
        texts: Sequence[str],
        source_language: str,
        target_language: str,
        glossary: translation_pb2.Glossary | None = None,
        *,
        under_way: bool = False,
    ) -> list[translation_pb2.Translation]:
        """Translate with the tenant's glossary and characters quota; empty texts stay empty.
        `under_way`: for a stream already open (its quota store may be unreachable a moment)."""
        wanted = [(i, t) for i, t in enumerate(texts) if t.strip()]
        out = [translation_pb2.Translation(text="") for _ in texts]
        if not wanted:
            return out
        options = translation_pb2.TranslationOptions(
            source_language=source_language, target_language=target_language
        )
        if glossary is not None and (glossary.entries or glossary.name):
            options.glossary.CopyFrom(self.resolve_glossary(call.tenant, glossary))
        characters = sum(len(t) for _, t in wanted)
        await self.quotas.charge_characters(call.tenant, characters, under_way=under_way)
        try:
            backend = self.router.get("translation")
            response = await backend.unary(
                backend.stub.TranslateText,
                translation_pb2.TranslateTextRequest(texts=[t for _, t in wanted], options=options),
                call.options,
            )
        except BaseException:
            await self.quotas.adjust_characters(call.tenant, -characters)
            raise
        for (i, _), translation in zip(wanted, response.translations):
            out[i] = translation
        return out

    # ------------------------------------------------------------------ composed RPCs

    async def transcribe_conversation(
        self, call: Call, request: gateway_pb2.TranscribeConversationRequest, data: bytes
    ) -> gateway_pb2.TranscribeConversationResponse:
        started = time.perf_counter()
        self.check_target_languages(request.target_languages)
        self.check_glossary(request.glossary)  # before any work
        if request.diarization.mode == diarization_pb2.NONE:
            return await self._conversation_without_speakers(call, request, data, started)
        options = transcription_pb2.TranscriptionOptions()
        options.CopyFrom(request.transcription)
        options.word_timestamps = True
        channel_mode = request.diarization.mode == diarization_pb2.CHANNEL
        async with AudioCharge(self.quotas, call.tenant, data, request.config) as charge:
            if channel_mode:
                options.per_channel = True
                transcript = await self.transcribe_raw(call, data, request.config, options)
                turns = compose.turns_from_channels(transcript, request.diarization.channel_speaker_names)
                rttm = compose.rttm_from_turns(turns, request.uri or "audio")
                similarity: dict[str, float] = {}
            else:
                transcript, diarization = await first_failure(
                    self.transcribe_raw(call, data, request.config, options),
                    self.diarize_raw(call, data, request.config, request.diarization, uri=request.uri),
                )
                turns = compose.merge_words_with_speakers(
                    transcript, compose.dominant_spans_from_diarization(diarization),
                    compose.spans_from_diarization(diarization))
                rttm = diarization.rttm
                similarity = {s.speaker: s.reference_similarity for s in diarization.speakers
                              if s.reference_similarity}
            await charge.settle(transcript.audio_duration_s)
        response = gateway_pb2.TranscribeConversationResponse(
            language=transcript.language,
            audio_duration_s=transcript.audio_duration_s,
            rttm=rttm,
            transcription_model=transcript.model,
        )
        response.turns.extend(turns)
        response.speakers.extend(compose.speaker_summaries(turns, similarity))
        glossary = request.glossary
        if request.HasField("anonymization"):
            summary, placeholders = await self.anonymize_timed(
                call, response.turns, request.anonymization, response.language)
            response.anonymization.CopyFrom(summary)
            glossary = anonymized.keep_placeholders(glossary, placeholders)
        return await self._translate_and_render(call, request, response, glossary, started)

    async def _conversation_without_speakers(
        self, call: Call, request: gateway_pb2.TranscribeConversationRequest, data: bytes, started: float,
    ) -> gateway_pb2.TranscribeConversationResponse:
        """Diarisation NONE: the transcript as the transcription service gives it (the
        client's options, every field kept), anonymised and translated as a conversation
        is, one turn per segment (the batch CLI's path when it wants no speakers)."""
        wanted = request.diarization
        if wanted.num_speakers or wanted.min_speakers or wanted.max_speakers or wanted.speaker_references:
            raise InvalidArgument("diarization.mode NONE attributes no speakers: leave out the speaker counts "
                                  "and references, or choose NEURAL or CHANNEL", field="diarization.mode")
        async with AudioCharge(self.quotas, call.tenant, data, request.config) as charge:
            transcript = await self.transcribe_raw(call, data, request.config, request.transcription)
            await charge.settle(transcript.audio_duration_s)
        response = gateway_pb2.TranscribeConversationResponse(
            language=transcript.language, audio_duration_s=transcript.audio_duration_s,
            transcription_model=transcript.model)
        glossary = request.glossary
        if request.HasField("anonymization"):
            summary, placeholders = await self.anonymize_timed(
                call, transcript.segments, request.anonymization, transcript.language)
            transcript.text = anonymized.joined_text(transcript.segments)
            response.anonymization.CopyFrom(summary)
            glossary = anonymized.keep_placeholders(glossary, placeholders)
        response.turns.extend(compose.turns_from_segments(transcript))
        return await self._translate_and_render(call, request, response, glossary, started, transcript)

    async def _translate_and_render(
        self, call: Call, request: gateway_pb2.TranscribeConversationRequest,
        response: gateway_pb2.TranscribeConversationResponse, glossary: translation_pb2.Glossary, started: float,
        transcript: transcription_pb2.TranscribeResponse | None = None,
    ) -> gateway_pb2.TranscribeConversationResponse:
        """What every conversation ends with: its turns translated, the transcripts the
        clients render (`transcript`, when given, is the conversation's own), subtitles."""
        targets = list(request.target_languages)
        if targets:
            await self._translate_turns(call, response, targets, glossary)
        response.processing_duration_s = time.perf_counter() - started
        compose.complete_transcripts(response, targets, transcript)
        if request.subtitles:
            response.srt, response.vtt = compose.subtitles(response)
        return response

    async def anonymize_timed(
        self, call: Call, messages: Sequence[Any], options: anonymization_pb2.AnonymizationOptions, language: str,
    ) -> tuple[anonymization_pb2.AnonymizationSummary, list[str]]:
        """Turns or segments (text and timed words) through the anonymisation service as
        one conversation (a name keeps its placeholder from one to the next), in place;
        returns what was masked and the placeholders used (to keep through translation)."""
        started = time.perf_counter()
        result = await self.anonymize_texts(call, [m.text for m in messages], options, language)
        summary = anonymization_pb2.AnonymizationSummary(names_checked=result.names_checked)
        masked = []
        for message, item in zip(messages, result.texts, strict=True):
            masked.extend(anonymized.apply_to_timed_text(message, item))
        for start_s, end_s, kind in sorted(masked):
            summary.masked.add(start_s=start_s, end_s=end_s, entity_type=kind)
        summary.spans = sum(len(item.spans) for item in result.texts)
        summary.mapping.extend(result.mapping)
        summary.duration_s = time.perf_counter() - started
        return summary, sorted({span.replacement for item in result.texts for span in item.spans})

    async def anonymize_texts(
        self, call: Call, texts: Sequence[str], options: anonymization_pb2.AnonymizationOptions, language: str,
    ) -> anonymization_pb2.AnonymizeTextResponse:
        wanted = self.resolve_anonymization(call.tenant, options)
        if not wanted.language:
            wanted.language = language or "fr"
        backend = self.router.get("anonymization")
        return await backend.unary(
            backend.stub.AnonymizeText, anonymization_pb2.AnonymizeTextRequest(texts=list(texts), options=wanted),
            call.options)

    async def anonymize_document(
        self, call: Call, request: anonymization_pb2.AnonymizeDocumentRequest,
    ) -> anonymization_pb2.AnonymizeDocumentResponse:
        """A document through the anonymisation service, with the tenant's term lists."""
        request.options.CopyFrom(self.resolve_anonymization(call.tenant, request.options))
        backend = self.router.get("anonymization")
        return await backend.unary(backend.stub.AnonymizeDocument, request, call.options)

    @staticmethod
    def resolve_anonymization(tenant: Tenant, options: anonymization_pb2.AnonymizationOptions,
                              ) -> anonymization_pb2.AnonymizationOptions:
        """The request's options with the tenant's always/never-mask terms added."""
        resolved = anonymization_pb2.AnonymizationOptions()
        resolved.CopyFrom(options)
        resolved.always_mask.extend(t for t in tenant.always_mask if t not in resolved.always_mask)
        resolved.never_mask.extend(t for t in tenant.never_mask if t not in resolved.never_mask)
        return resolved

    def check_target_languages(self, targets: Sequence[str]) -> None:
        """Before any work: how many, and that each is a plausible language tag."""
        if len(targets) > self.max_target_languages:
            raise InvalidArgument(
                f"{len(targets):,} target languages; at most {self.max_target_languages} per request",
                field="target_languages")
        for target in targets:
            if not target.strip():
                raise InvalidArgument("target_languages contains an empty language code", field="target_languages")
            parse_tag(target, field="target_languages")

    async def translate_grouped(
        self,
        call: Call,
        texts: Sequence[str],
        languages: Sequence[str],
        targets: Sequence[str],
        glossary: translation_pb2.Glossary,
    ) -> dict[str, list[str]]:
        """Texts, each in its own language, into every target: one batched request per
        (source, target) pair, all at once; a text already in a target is kept as it is.
        Returns target -> the texts' translations, in the texts' order."""
        by_source: dict[str, list[int]] = {}
        for i, language in enumerate(languages):
            if texts[i].strip():  # an empty text stays empty: nothing to send
                by_source.setdefault(language, []).append(i)
        out = {target: list(texts) for target in dict.fromkeys(targets)}
        jobs = [
            (target, indices, self.translate_texts(call, [texts[i] for i in indices], source, target, glossary))
            for target in out
            for source, indices in by_source.items()
            if not same_language(source, target)
        ]
        results = await first_failure(*(job for _, _, job in jobs))
        for (target, indices, _), translations in zip(jobs, results):
            for i, translation in zip(indices, translations):
                out[target][i] = translation.text
        return out

    async def _translate_turns(
        self,
        call: Call,
        response: gateway_pb2.TranscribeConversationResponse,
        targets: list[str],
        glossary: translation_pb2.Glossary,
    ) -> None:
        """Each turn into each target, in the order of target_languages."""
        turns = response.turns
        translated = await self.translate_grouped(
            call, [t.text for t in turns], [t.language or response.language for t in turns], targets, glossary)
        for i, turn in enumerate(turns):
            for target, texts in translated.items():
                turn.translations.add(language=target, text=texts[i])

    async def translate_speech(
        self, call: Call, request: gateway_pb2.TranslateSpeechRequest, data: bytes
    ) -> gateway_pb2.TranslateSpeechResponse:
        started = time.perf_counter()
        target = request.target_language.strip()
        if not target:
            raise InvalidArgument("target_language is required (BCP-47, e.g. 'fr' or 'en')", field="target_language")
        self.check_target_languages([target])
        self.check_glossary(request.glossary)  # before any work
        transcript = await self.transcribe(call, data, request.config, request.transcription)
        source = transcript.language
        segments = list(transcript.segments)
        glossary = request.glossary
        summary = None
        if request.HasField("anonymization"):
            summary, placeholders = await self.anonymize_timed(call, segments, request.anonymization, source)
            transcript.text = anonymized.joined_text(segments)
            glossary = anonymized.keep_placeholders(glossary, placeholders)
        texts = [s.text.strip() for s in segments]
        if same_language(source, target):
            translated = texts
        else:
            grouped = await self.translate_grouped(
                call, texts, [s.language or source for s in segments], [target], glossary)
            translated = grouped[target]
        response = gateway_pb2.TranslateSpeechResponse(
            text=transcript.text.strip(),
            translated_text=" ".join(t for t in translated if t),
            source_language=source,
            target_language=target,
            audio_duration_s=transcript.audio_duration_s,
        )
        response.segments.extend(segments)
        response.translated_segments.extend(translated)
        if summary is not None:
            response.anonymization.CopyFrom(summary)
        response.processing_duration_s = time.perf_counter() - started
        return response
