"""The translation engine: texts and documents in, translations out (no gRPC here).

Flow for a text: detect the source language if none was given (lingua), find the route
(one model, or two through English), cut the text into sentences (keeping line breaks and
spacing), protect spans (numbers, URLs, case references, placeholders, glossary terms),
send the sentences of all texts of the request to the model's micro-batcher at once,
and put the text back together.

How protected spans and glossary terms are guaranteed to come out verbatim
---------------------------------------------------------------------------
A sentence with spans is a list of parts: text for the model and fixed strings (the
protected text itself, or the glossary's forced target term).

1. Inline: the sentence goes to the model whole, with each fixed string written in place
   (a real NMT model copies numbers, URLs and inserted target terms, and the sentence
   keeps its context). The output is accepted only if every fixed string is found in it,
   as a whole token, as often as it was given.
2. Otherwise, split: each text part between fixed strings is translated on its own and
   the fixed strings are put back between them, in source order.

Both paths yield fixed strings verbatim, whatever the model does: the guarantee does not
depend on the model copying anything (random test models never do; they always take
path 2). The split path loses some context, so it is only the fallback. Sentinel tokens
were rejected: each model family's vocabulary would need its own, and a model that drops
or duplicates one forces the same fallback anyway. Through a pivot, the located fixed
strings stay fixed for the second hop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence

from parlons.errors import InvalidArgument, NotFound
from parlons.services.common.workqueue import WorkQueue
from parlons.services.translation import documents, languages, text as textmod
from parlons.services.translation.detect import Detection, LanguageDetector
from parlons.services.translation.documents import DocFormat, DocumentLimits
from parlons.services.translation.glossary import Glossary
from parlons.services.translation.model import RuntimeOptions, TranslationModel
from parlons.services.translation.registry import Hop, ModelRegistry, PairInfo, Route, Suggest
from parlons.services.translation.text import Part

log = logging.getLogger("parlons.translation")


@dataclass(frozen=True)
class EngineLimits:
    max_chars_per_request: int = 100_000
    max_texts_per_request: int = 1_000
    max_sentence_chars: int = 400
    #: Sentences of one request handed to the batcher at a time.
    wave_sentences: int = 256


@dataclass(frozen=True)
class TextTranslation:
    text: str
    #: Source language used (BCP-47): the caller's, or the detected one; "" if unknown.
    source_language: str
    #: lingua's confidence when detected; 1.0 when the caller named the language.
    detection_confidence: float
    #: Model name, "a>b" through a pivot, "" when nothing needed translating.
    model: str
    detected: bool = False


@dataclass(frozen=True)
class DocumentTranslation:
    content: bytes
    format: DocFormat
    mime_type: str
    file_name: str
    source_language: str
    detection_confidence: float
    detected: bool
    segments: int
    characters: int
    notes: list[str]
    model: str


@dataclass
class _SentenceJob:
    """Sentences of one route, deduplicated, and where each text's chunks go."""

    route: Route
    sentences: dict[str, int] = field(default_factory=dict)

    def add(self, sentence: str) -> int:
        return self.sentences.setdefault(sentence, len(self.sentences))


class TranslationEngine:
    def __init__(
        self,
        models: Sequence[TranslationModel],
        *,
        limits: EngineLimits | None = None,
        document_limits: DocumentLimits | None = None,
        detector: LanguageDetector | None = None,
        detect: bool = True,
        protect_spans: bool = True,
        inline_spans: bool = True,
        pivot_language: str = "en",
        default_beam_size: int = 2,
        document_queue: WorkQueue | None = None,
        suggest: Suggest | None = None,
    ) -> None:
        self.models = list(models)
        # Reading and rebuilding documents: bounded, cancellable, off the default pool.
        self.document_queue = document_queue or WorkQueue("translation-documents", 2, 8)
        self.registry = ModelRegistry(self.models, pivot_language, suggest)
        self.limits = limits or EngineLimits()
        self.document_limits = document_limits or DocumentLimits()
        self.protect_spans = protect_spans
        self.inline_spans = inline_spans
        self.default_beam_size = default_beam_size
        if detector is None and detect and self.models:
            detector = LanguageDetector(self.registry.source_languages)
        self.detector = detector

    @classmethod
    def load(cls, paths: Sequence[str | Path], runtime: RuntimeOptions | None = None,
             **kwargs: object) -> TranslationEngine:
        """Load models from directories or .argosmodel files (blocking: call in a thread)."""
        models = [TranslationModel.load(p, runtime) for p in paths]
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"two translation models share a name: {names}")
        return cls(models, **kwargs)  # type: ignore[arg-type]

    # --- discovery ---------------------------------------------------------------------

    def pairs(self) -> list[PairInfo]:
        return self.registry.pairs()

    @property
    def detectable_languages(self) -> list[str]:
        return list(self.detector.languages) if self.detector else []

    # --- text ----------------------------------------------------------------------------

    def _check_request(self, texts: Sequence[str]) -> None:
        if len(texts) > self.limits.max_texts_per_request:
            raise InvalidArgument(
                f"{len(texts)} texts in one request; at most {self.limits.max_texts_per_request}")
        total = sum(len(t) for t in texts)
        if total > self.limits.max_chars_per_request:
            raise InvalidArgument(
                f"the request holds {total:,} characters; the limit is {self.limits.max_chars_per_request:,} "
                "per request: split the text over several requests, or send it as a document")

    async def detect(self, text: str) -> Detection:
        if self.detector is None:
            raise InvalidArgument("language detection is off on this server: give the source language")
        if len(text) < 200:
            return self.detector.detect(text)
        return await asyncio.to_thread(self.detector.detect, text)

    async def _resolve_source(self, text: str, source: str) -> tuple[str, float, bool]:
        if source:
            return languages.normalize(source), 1.0, False
        found = await self.detect(text)
        return found.language or "", found.confidence, True

    async def translate(
        self,
        texts: Sequence[str],
        target: str,
        source: str = "",
        *,
        glossary: Glossary | None = None,
        model: str = "",
        beam_size: int = 0,
    ) -> list[TextTranslation]:
        """Translate each text; sentences of all texts are batched together."""
        if not target.strip():
            raise InvalidArgument("target_language is required (BCP-47, e.g. en, fr, uk)")
        target = languages.normalize(target)
        if model:
            self.registry.by_name(model)
        self._check_request(texts)
        beam = beam_size if beam_size > 0 else self.default_beam_size
        if beam > 16:
            raise InvalidArgument(f"beam_size {beam} is too large; use 1 to 16")
        resolved = [await self._resolve_source(t, source) for t in texts]
        return await self._translate_resolved(texts, resolved, target, glossary, model, beam)

    async def _translate_resolved(self, texts: Sequence[str], resolved: list[tuple[str, float, bool]],
                                  target: str, glossary: Glossary | None, model: str,
                                  beam: int) -> list[TextTranslation]:
        routes: dict[str, Route] = {}
        for (src, confidence, detected), t in zip(resolved, texts):
            if not src or src in routes or not textmod.needs_model(t):
                continue
            try:
                routes[src] = self.registry.route(src, target, model)
            except NotFound as exc:
                if detected:
                    raise NotFound(f"the text looks like {src!r} (confidence {confidence:.2f}), "
                                   f"which cannot be translated here: {exc.message}") from None
                raise
        jobs: dict[str, _SentenceJob] = {}
        layouts: list[list[tuple[str, int | None]]] = []
        for (src, _, _), t in zip(resolved, texts):
            route = routes.get(src)
            plan: list[tuple[str, int | None]] = []
            for chunk in textmod.segment(t, self.limits.max_sentence_chars, src):
                if chunk.translate and route is not None and route.hops:
                    job = jobs.setdefault(src, _SentenceJob(route))
                    plan.append((src, job.add(chunk.text)))
                else:
                    plan.append((chunk.text, None))
            layouts.append(plan)
        applicable = {src: glossary if glossary is not None and _applies(glossary, src, target) else None
                      for src in jobs}
        translated = dict(zip(jobs, await asyncio.gather(*(
            self._translate_sentences(job.route, list(job.sentences), applicable[src], beam)
            for src, job in jobs.items()))))
        out: list[TextTranslation] = []
        for (src, confidence, detected), plan in zip(resolved, layouts):
            pieces = [translated[key][index] if index is not None else key for key, index in plan]
            route = routes.get(src)
            out.append(TextTranslation("".join(pieces), src, confidence,
                                       route.model_name if route else "", detected))
        return out

    # --- documents -----------------------------------------------------------------------

    async def translate_document(
        self,
        data: bytes,
        target: str,
        source: str = "",
        *,
        fmt: DocFormat = DocFormat.UNSPECIFIED,
        file_name: str = "",
        mime_type: str = "",
        glossary: Glossary | None = None,
        model: str = "",
        beam_size: int = 0,
        pdf_output: DocFormat = DocFormat.DOCX,
    ) -> DocumentTranslation:
        """Translate a whole document; layout, styles and timings are kept (PDF: see doc_pdf)."""
        if not target.strip():
            raise InvalidArgument("target_language is required (BCP-47, e.g. en, fr, uk)")
        target = languages.normalize(target)
        if model:
            self.registry.by_name(model)
        beam = beam_size if beam_size > 0 else self.default_beam_size
        fmt = documents.detect_format(data, fmt, file_name, mime_type)
        out_fmt = documents.output_format(fmt, pdf_output)
        cancel = threading.Event()
        read = functools.partial(documents.extract, data, fmt, self.document_limits, mime_type=mime_type,
                                 pdf_output=pdf_output, target_language=target, cancel=cancel)
        extracted = await self.document_queue.run(read, cancel=cancel)
        segments = extracted.segments
        if source:
            src, confidence, detected = languages.normalize(source), 1.0, False
        else:
            sample = "\n".join(segments)[: 4000]
            found = await self.detect(sample)
            src, confidence, detected = found.language or "", found.confidence, True
            if not src and any(textmod.needs_model(s) for s in segments):
                raise InvalidArgument("cannot detect the document's language; give source_language")
        results = await self._translate_resolved(segments, [(src, confidence, detected)] * len(segments),
                                                 target, glossary, model, beam)
        content = await self.document_queue.run(extracted.rebuild, [r.text for r in results])
        notes: list[str] = []
        if fmt == DocFormat.PDF:
            notes.append(f"PDF input returned as {out_fmt.name}: the text is translated, the page layout is not kept")
        if fmt in (DocFormat.TXT, DocFormat.SRT, DocFormat.VTT) and documents.charset_of(mime_type):
            notes.append("text returned in UTF-8")
        model_name = next((r.model for r in results if r.model), "")
        return DocumentTranslation(
            content=content, format=out_fmt, mime_type=documents.MIME_TYPES[out_fmt],
            file_name=documents.output_name(file_name, out_fmt, target), source_language=src,
            detection_confidence=confidence, detected=detected, segments=len(segments),
            characters=sum(len(s) for s in segments), notes=notes, model=model_name)

    # --- sentences, spans and hops ------------------------------------------------------

    def _parts(self, sentence: str, glossary: Glossary | None) -> list[Part]:
        spans = textmod.merge_spans(
            glossary.spans(sentence) if glossary is not None else [],
            textmod.protected_spans(sentence) if self.protect_spans else [],
        )
        return textmod.to_parts(sentence, spans)

    async def _translate_sentences(self, route: Route, sentences: list[str], glossary: Glossary | None,
                                   beam: int) -> list[str]:
        """Sentences go to the batcher in waves, so a long document does not hold the
        queue: a visitor's sentence sent meanwhile joins the next batch, not the end."""
        out: list[str] = []
        wave = self.limits.wave_sentences
        for start in range(0, len(sentences), wave):
            parts_lists = [self._parts(s, glossary) for s in sentences[start:start + wave]]
            for hop in route.hops:
                parts_lists = await self._hop(hop, parts_lists, beam)
            out.extend("".join(p.text for p in parts) for parts in parts_lists)
        return out

    async def _hop(self, hop: Hop, parts_lists: list[list[Part]], beam: int) -> list[list[Part]]:
        model: TranslationModel = hop.model  # type: ignore[assignment]
        result: list[list[Part] | None] = [None] * len(parts_lists)
        whole: list[int] = []
        for i, parts in enumerate(parts_lists):
            if not textmod.needs_model("".join(p.text for p in parts if not p.fixed)):
                result[i] = parts  # only spans and punctuation: nothing for the model
            elif not any(p.fixed for p in parts) or self.inline_spans:
                whole.append(i)
        outputs = await model.translate_strings(
            ["".join(p.text for p in parts_lists[i]) for i in whole], hop.source, hop.target, beam)
        for i, output in zip(whole, outputs):
            fixed = [p.text for p in parts_lists[i] if p.fixed]
            result[i] = locate_fixed(output, fixed) if fixed else [Part(output, False)]
        # Fallback: translate the text between fixed strings piece by piece.
        split = [i for i, r in enumerate(result) if r is None]
        pieces: list[str] = []
        for i in split:
            pieces.extend(p.text.strip() for p in parts_lists[i] if not p.fixed and textmod.needs_model(p.text))
        translated = iter(await model.translate_strings(pieces, hop.source, hop.target, beam))
        for i in split:
            rebuilt: list[Part] = []
            for p in parts_lists[i]:
                if p.fixed or not textmod.needs_model(p.text):
                    rebuilt.append(p)
                else:
                    lead = p.text[: len(p.text) - len(p.text.lstrip())]
                    trail = p.text[len(p.text.rstrip()):]
                    rebuilt.append(Part(lead + next(translated) + trail, False))
            result[i] = rebuilt
        return [r for r in result if r is not None]


def _applies(glossary: Glossary, source: str, target: str) -> bool:
    def same(a: str | None, b: str) -> bool:
        return a is None or languages.primary(languages.normalize(a)) == languages.primary(b)
    return same(glossary.source_language, source) and same(glossary.target_language, target)


def locate_fixed(output: str, fixed: list[str]) -> list[Part] | None:
    """Find every fixed string in the model output as a whole token; None if one is missing.

    Longest strings are placed first so "2024/12345" is not claimed by "2024".
    """
    claimed: list[tuple[int, int, str]] = []
    for value in sorted(fixed, key=len, reverse=True):
        pattern = re.compile(
            (r"(?<!\w)" if value[:1].isalnum() else "") + re.escape(value) + (r"(?!\w)" if value[-1:].isalnum() else ""))
        for m in pattern.finditer(output):
            if all(m.end() <= s or m.start() >= e for s, e, _ in claimed):
                claimed.append((m.start(), m.end(), value))
                break
        else:
            return None
    claimed.sort()
    parts: list[Part] = []
    pos = 0
    for start, end, value in claimed:
        if start > pos:
            parts.append(Part(output[pos:start], False))
        parts.append(Part(value, True))
        pos = end
    if pos < len(output):
        parts.append(Part(output[pos:], False))
    return parts


async def close_models(models: Sequence[TranslationModel]) -> None:
    started = time.perf_counter()
    await asyncio.gather(*(m.aclose() for m in models), return_exceptions=True)
    log.info("translation models closed", extra={"fields": {"s": round(time.perf_counter() - started, 2)}})
