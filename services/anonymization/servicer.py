"""AnonymizationService over gRPC: proto in, engine call, proto out.

The engine finds and replaces; this layer maps the options, bounds the request before
any work (characters, texts, the work queue) and adds the server's term lists. Each job
gets a cancel event, which the work queue sets when the caller goes away (deadline,
cancel, shutdown): the engine stops at its next check and the worker is free again.
An unexpected error leaves without its message, which may quote the texts.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from grpc import aio

from parlons.services.anonymization.documents import anonymize_document
from parlons.services.anonymization.engine import AnonymizationEngine, AnonymizeLimits, AnonymizeOptions
from parlons.services.anonymization.learned import MODEL_NAME
from parlons.services.anonymization.replace import PLACEHOLDER, PSEUDONYM, REDACT
from parlons.services.common.config import AnonymizationSettings, ParlonsConfig
from parlons.models.manager import ModelManager
from parlons.errors import InvalidArgument, ParlonsError
from parlons.services.common.module import EngineModule
from parlons.services.common.workqueue import WorkQueue
from parlons.services.translation.documents import DocumentLimits
from parlons.v1 import anonymization_pb2, anonymization_pb2_grpc

log = logging.getLogger("parlons.anonymization")

SERVICE_NAME = "parlons.v1.AnonymizationService"
POLICY_NAMES = {
    anonymization_pb2.ANONYMIZATION_POLICY_PLACEHOLDER: PLACEHOLDER,
    anonymization_pb2.ANONYMIZATION_POLICY_REDACT: REDACT,
    anonymization_pb2.ANONYMIZATION_POLICY_PSEUDONYM: PSEUDONYM,
}
MAX_TERMS = 2000  # a request's own terms plus its tenant's (the gateway adds those)
T = TypeVar("T")


class AnonymizationFault(RuntimeError):
    """An unexpected error in the anonymisation engine, without its message: a KeyError
    or a ValueError may quote the text it choked on, and logs hold no content. The
    traceback (files, lines, code) is kept for the log."""


def without_content(work: Callable[[], T]) -> Callable[[], T]:
    """`work` whose unexpected errors come out as `AnonymizationFault`, naming only the
    error's type; the errors a client can act on (`ParlonsError`) pass as they are."""

    @functools.wraps(work)
    def run() -> T:
        try:
            return work()
        except ParlonsError:
            raise
        except Exception as exc:
            fault = AnonymizationFault(f"{type(exc).__name__} in the anonymisation engine (message withheld: "
                                       "it may quote the texts)")
            raise fault.with_traceback(exc.__traceback__) from None

    return run


def options_from_proto(message: anonymization_pb2.AnonymizationOptions,
                       settings: AnonymizationSettings | None = None) -> AnonymizeOptions:
    """The engine's options from the wire, with the server's term lists added."""
    if message.policy not in POLICY_NAMES:
        raise InvalidArgument(f"unknown anonymisation policy value {message.policy}", field="options.policy")
    for name in ("always_mask", "never_mask"):
        terms = getattr(message, name)
        if len(terms) > MAX_TERMS:
            raise InvalidArgument(f"{len(terms)} terms in options.{name}; the limit is {MAX_TERMS}",
                                  field=f"options.{name}")
        if any(len(t) > 200 for t in terms):
            raise InvalidArgument(f"a term in options.{name} is over 200 characters", field=f"options.{name}")
    always = tuple(message.always_mask) + tuple(settings.always_mask if settings else ())
    never = tuple(message.never_mask) + tuple(settings.never_mask if settings else ())
    return AnonymizeOptions(
        policy=POLICY_NAMES[message.policy], entity_types=tuple(message.entity_types),
        always_mask=always, never_mask=never, return_mapping=message.return_mapping, seed=message.seed,
    )


class AnonymizationServicer(anonymization_pb2_grpc.AnonymizationServiceServicer):
    def __init__(self, module: AnonymizationModule) -> None:
        self._module = module

    async def AnonymizeText(self, request: anonymization_pb2.AnonymizeTextRequest,
                            context: aio.ServicerContext) -> anonymization_pb2.AnonymizeTextResponse:
        engine = self._module.ready_engine()
        if not request.texts:
            raise InvalidArgument("texts is empty: send at least one text to anonymise", field="texts")
        options = options_from_proto(request.options, self._module.settings)
        texts = list(request.texts)
        language = request.options.language or "fr"
        engine.check(texts, options)
        cancel = threading.Event()
        work = functools.partial(engine.anonymize, texts, language, options, cancel=cancel)
        result = await self._module.queue.run(without_content(work), cancel=cancel)
        response = anonymization_pb2.AnonymizeTextResponse(names_checked=result.names_checked,
                                                            language=result.language)
        for text, findings, replacements in zip(result.texts, result.findings, result.replacements, strict=True):
            item = response.texts.add(text=text)
            for f, replacement in zip(findings, replacements, strict=True):
                item.spans.add(start=f.start, end=f.end, entity_type=f.entity_type, score=f.score,
                               replacement=replacement)
        for replacement, original in result.mapping.items():
            response.mapping.add(replacement=replacement, original=original)
        return response

    async def AnonymizeDocument(self, request: anonymization_pb2.AnonymizeDocumentRequest,
                                context: aio.ServicerContext) -> anonymization_pb2.AnonymizeDocumentResponse:
        engine = self._module.ready_engine()
        options = options_from_proto(request.options, self._module.settings)
        engine.check([], options)
        cancel = threading.Event()
        work = functools.partial(
            anonymize_document, engine, request.content, self._module.document_limits, file_name=request.file_name,
            mime_type=request.mime_type, language=request.options.language or "fr", options=options,
            pdf_output=request.pdf_output_format, cancel=cancel)
        document = await self._module.queue.run(without_content(work), cancel=cancel)
        response = anonymization_pb2.AnonymizeDocumentResponse(
            content=document.content, file_name=document.file_name, mime_type=document.mime_type,
            format=document.format, segments=document.segments, spans=document.spans,
            names_checked=document.names_checked, notes=document.notes, characters=document.characters)
        for replacement, original in document.mapping.items():
            response.mapping.add(replacement=replacement, original=original)
        return response


class AnonymizationModule(EngineModule[AnonymizationEngine]):
    """The anonymisation service as the shared server sees it: register, load, close."""

    service_names = (SERVICE_NAME,)
    kind = "anonymization"
    what_loads = "the anonymisation NER model"

    def __init__(self, settings: AnonymizationSettings, document_limits: DocumentLimits | None = None,
                 models: ModelManager | None = None) -> None:
        super().__init__(models)
        self.settings = settings
        self.document_limits = document_limits or DocumentLimits()
        self.ner_models = parse_ner_models(settings.ner_models)
        self.queue = WorkQueue("anonymization", settings.max_concurrent, settings.max_queued)
        self._servicer = AnonymizationServicer(self)

    def register(self, server: aio.Server) -> None:
        anonymization_pb2_grpc.add_AnonymizationServiceServicer_to_server(self._servicer, server)

    def model_label(self) -> str:
        return ",".join(self.ner_models.values()) or "rules"

    def learned_model(self) -> Path | None:
        """The learned recogniser's directory, as `[anonymization] learned_model` says."""
        setting = self.settings.learned_model.strip()
        if setting.lower() in ("off", ""):
            return None
        if setting.lower() == "auto":
            installed = self.models.cache_dir / MODEL_NAME
            if (installed / "ner" / "model").is_file():
                return installed
            log.info("anonymisation: rules and NER only; the learned recogniser %s is not in %s "
                     "(scripts/train_counter_ner.py installs it)", MODEL_NAME, self.models.cache_dir)
            return None
        return Path(setting).expanduser()

    def _load_engine(self) -> AnonymizationEngine:
        s = self.settings
        return AnonymizationEngine(self.ner_models, resolve_model=self._resolve, limits=AnonymizeLimits(
            max_chars_per_request=s.max_chars_per_request, max_texts=s.max_texts, time_budget_s=s.time_budget_s),
            learned_model=self.learned_model())


def parse_ner_models(entries: list[str]) -> dict[str, str]:
    """["fr=spacy-fr-core-news-md"] -> {"fr": "spacy-fr-core-news-md"}."""
    models: dict[str, str] = {}
    for entry in entries:
        lang, sep, model = entry.partition("=")
        if not sep or not lang.strip() or not model.strip():
            raise InvalidArgument(f"anonymization.ner_models: {entry!r} is not 'language=model'")
        models[lang.strip().lower()] = model.strip()
    return models


def module_from_config(config: ParlonsConfig, models: ModelManager | None = None) -> AnonymizationModule:
    """Documents get the translation service's limits and read budget (one setting each)."""
    t = config.translation
    limits = DocumentLimits(max_bytes=min(t.max_document_mb, config.server.max_message_mb) * 1024 * 1024,
                            max_pdf_pages=t.max_pdf_pages, max_chars=t.max_document_chars,
                            time_budget_s=t.document_time_budget_s)
    return AnonymizationModule(config.anonymization, limits, models=models)
