"""The anonymisation engine: Presidio's analyzer over spaCy's NER and parlons' French
rules, overlaps resolved, names followed through the text, then replaced.

No gRPC here. `AnonymizationEngine.anonymize` takes the texts of one conversation or
document (segments, paragraphs) so that a name or number keeps one placeholder across
all of them.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parlons.services.common.errors import InvalidArgument

from .entities import (
    ADDRESS,
    CAF_NUMBER,
    CUSTOM,
    EMAIL,
    ENTITY_TYPES,
    IBAN,
    ID_DOCUMENT,
    LICENSE_PLATE,
    NIR,
    PERSON,
    PHONE,
    NOTHING_RECENT,
    TAX_NUMBER,
    Finding,
    Recent,
)
from .names import extend_and_filter, find_names, repeat_mentions, trim_name
from .numbers import token_runs
from .presidio_import import import_presidio_analyzer
from .replace import PLACEHOLDER, POLICIES, Replacer
from .rules import aligned_matches, find_addresses, find_dates_of_birth, find_emails, find_in_runs

log = logging.getLogger(__name__)

DEFAULT_NER_MODELS = {"fr": "spacy-fr-core-news-md"}
SCORE_THRESHOLD = 0.5
# Characters of the previous texts the rules read for context words, and how many texts.
CONTEXT_CHARS = 400
CONTEXT_TEXTS = 2
# How many texts back a type found counts as context ("recent"): a conversation about a
# CAF file stays one for a few turns.
RECENT_TEXTS = 6
# Types whose values are followed through a conversation: a number read back in another
# form ("FT-572-NM", then "F T, 572, N M ?") is the same personal data.
NUMBER_TYPES = frozenset({NIR, IBAN, PHONE, CAF_NUMBER, TAX_NUMBER, ID_DOCUMENT, LICENSE_PLATE})
MIN_VALUE_CHARS = 6


@dataclass(frozen=True)
class AnonymizeOptions:
    policy: str = PLACEHOLDER
    entity_types: tuple[str, ...] = ()  # empty = all
    always_mask: tuple[str, ...] = ()  # a tenant's terms (names of staff, a village...)
    never_mask: tuple[str, ...] = ()  # a tenant's terms that look like data but are not
    return_mapping: bool = False
    score_threshold: float = SCORE_THRESHOLD
    seed: int = 0  # pseudonyms: the same seed gives the same made-up values


@dataclass(frozen=True)
class AnonymizeLimits:
    max_chars_per_request: int = 200_000
    max_texts: int = 10_000


@dataclass
class AnonymizedTexts:
    texts: list[str]
    findings: list[list[Finding]]  # per text, in the original text's offsets
    replacements: list[list[str]]  # per text, what replaced each finding
    names_checked: bool
    mapping: dict[str, str] = field(default_factory=dict)  # only when asked
    language: str = "fr"


def _resolve_model(name: str, kind: str) -> Path:
    from parlons.models.manager import ModelManager

    return ModelManager().resolve(name, kind=kind)


class AnonymizationEngine:
    """Loads one spaCy pipeline per language that has one (model manager, offline) and a
    Presidio analyzer over them; every language gets the rule recognisers."""

    def __init__(
        self,
        ner_models: dict[str, str] | None = None,
        resolve_model: Callable[[str, str], Path] = _resolve_model,
        limits: AnonymizeLimits | None = None,
    ) -> None:
        import_presidio_analyzer()
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        started = time.perf_counter()
        self.limits = limits or AnonymizeLimits()
        models = ner_models if ner_models is not None else DEFAULT_NER_MODELS
        self.ner_languages = tuple(sorted(models))
        paths = {lang: resolve_model(name, "ner") for lang, name in models.items()}
        self._analyzers: dict[str, Any] = {}
        for lang, path in paths.items():
            nlp_engine = SpacyNlpEngine(
                models=[{"lang_code": lang, "model_name": str(path)}],
                ner_model_configuration=NerModelConfiguration(
                    model_to_presidio_entity_mapping={"PER": PERSON, "PERSON": PERSON},
                    labels_to_ignore=["LOC", "ORG", "MISC", "GPE", "NORP", "FAC"],
                ),
            )
            nlp_engine.load()  # a path: Presidio loads it, downloads nothing
            registry = RecognizerRegistry(supported_languages=[lang])
            registry.add_recognizer(SpacyRecognizer(supported_language=lang, supported_entities=[PERSON]))
            self._analyzers[lang] = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine,
                                                   supported_languages=[lang])
        self.load_seconds = time.perf_counter() - started

    def with_limits(self, **limits: int) -> AnonymizationEngine:
        """The same loaded models under other request limits (documents have their own)."""
        other = copy.copy(self)
        other.limits = dataclasses.replace(self.limits, **limits)
        return other

    def names_checked(self, language: str) -> bool:
        return _base(language) in self._analyzers

    # ------------------------------------------------------------------ analysis

    def analyze(self, text: str, language: str = "fr", options: AnonymizeOptions | None = None,
                context: str = "", recent: Recent = NOTHING_RECENT) -> list[Finding]:
        """The personal data in `text`, non-overlapping, sorted by start.

        `context`: what was said just before (the previous turns, one per line), read
        only for the rules' context words: "mon numéro fiscal ?" then "c'est le 1 23 45
        678 901 23". `recent`: the types found in those turns."""
        options = options or AnonymizeOptions()
        findings = self._rules(text, context[-CONTEXT_CHARS:], recent)
        lang = _base(language)
        if lang in self._analyzers:
            for r in self._analyzers[lang].analyze(text=text, language=lang, entities=[PERSON]):
                trimmed = trim_name(text, Finding(r.start, r.end, PERSON, float(r.score), "spacy"))
                if trimmed is not None:
                    findings.append(trimmed)
        names = extend_and_filter(text, [f for f in findings if f.entity_type == PERSON])
        findings = [f for f in findings if f.entity_type != PERSON] + names
        findings.extend(_terms(text, options.always_mask))
        strong = [f for f in names if f.score >= options.score_threshold]
        findings.extend(extend_and_filter(text, repeat_mentions(text, [text[f.start:f.end] for f in strong])))
        kept = [f for f in findings if f.score >= options.score_threshold
                and (not options.entity_types or f.entity_type in options.entity_types or f.entity_type == CUSTOM)]
        kept = _without_allowed(text, kept, options.never_mask)
        return resolve_overlaps(_without_straddling_names(kept))

    def check(self, texts: Sequence[str], options: AnonymizeOptions) -> None:
        """Refuse what the limits do not allow, before any work."""
        if len(texts) > self.limits.max_texts:
            raise InvalidArgument(f"{len(texts)} texts in one request; the limit is {self.limits.max_texts}",
                                  field="texts")
        chars = sum(len(t) for t in texts)
        if chars > self.limits.max_chars_per_request:
            raise InvalidArgument(
                f"{chars} characters in one request; the limit is {self.limits.max_chars_per_request} "
                "(send the conversation in several requests)", field="texts")
        if options.policy not in POLICIES:
            raise InvalidArgument(f"unknown policy {options.policy!r}; one of {', '.join(POLICIES)}",
                                  field="options.policy")
        unknown = [t for t in options.entity_types if t not in ENTITY_TYPES]
        if unknown:
            raise InvalidArgument(f"unknown entity type(s) {', '.join(unknown)}; known: {', '.join(ENTITY_TYPES)}",
                                  field="options.entity_types")

    @staticmethod
    def _rules(text: str, context: str = "", recent: Recent = NOTHING_RECENT) -> list[Finding]:
        prefix = f"{context}\n" if context else ""
        whole = prefix + text
        runs = [r for r in token_runs(whole) if r.start >= len(prefix)]
        found = (find_in_runs(whole, runs, recent) + find_emails(whole) + find_dates_of_birth(whole, runs, recent)
                 + find_addresses(whole) + find_names(whole))
        shift = len(prefix)
        kept = [Finding(f.start - shift, f.end - shift, f.entity_type, f.score, f.recognizer)
                for f in found if f.start >= shift]
        if any(f.start < shift < f.end for f in found):
            # a match ran from the context into this text, so the text's own part was not
            # matched alone: the text's patterns again without the context
            kept += (find_emails(text) + find_addresses(text) + find_names(text)
                     + find_dates_of_birth(text, token_runs(text), recent))
        return kept

    def anonymize(self, texts: Sequence[str], language: str = "fr",
                  options: AnonymizeOptions | None = None) -> AnonymizedTexts:
        """Each text analysed, then replaced with one `Replacer` for all of them. A name
        found in one text is looked for in the others too (a name said once in full is
        masked when it comes back alone, later in the conversation)."""
        options = options or AnonymizeOptions()
        self.check(texts, options)
        per_text: list[list[Finding]] = []
        for i, text in enumerate(texts):
            context = "\n".join(" ".join(texts[j].split()) for j in range(max(0, i - CONTEXT_TEXTS), i))
            recent = {f.entity_type: i - j for j in range(max(0, i - RECENT_TEXTS), i) for f in per_text[j]}
            per_text.append(self.analyze(text, language, options, context=context, recent=recent))
        names = {texts[i][f.start:f.end] for i, fs in enumerate(per_text) for f in fs if f.entity_type == PERSON}
        values = _number_values(texts, per_text)
        for i, text in enumerate(texts):
            extra = extend_and_filter(text, repeat_mentions(text, names)) if names else []
            extra += _value_mentions(text, values, options)
            if extra:
                per_text[i] = resolve_overlaps(per_text[i] + _without_allowed(text, extra, options.never_mask))
        replacer = Replacer(policy=options.policy, seed=options.seed)
        applied = [replacer.apply(text, fs) for text, fs in zip(texts, per_text, strict=True)]
        return AnonymizedTexts(
            texts=[a[0] for a in applied], findings=per_text, replacements=[a[1] for a in applied],
            names_checked=self.names_checked(language),
            mapping=dict(replacer.mapping) if options.return_mapping else {}, language=_base(language),
        )


def _base(language: str) -> str:
    return (language or "fr").split("-")[0].split("_")[0].lower()


def _without_straddling_names(findings: list[Finding]) -> list[Finding]:
    """Names from NER or the name lists that straddle the edge of an address or an e-mail ("J'habite Rua" tagged
    before "Rua das Flores, 12...") are dropped: the rule's span holds the part inside,
    and the part outside is a neighbour word NER took along."""
    frames = [f for f in findings if f.entity_type in (ADDRESS, EMAIL)]

    def straddles(name: Finding) -> bool:
        return any(name.overlaps(f) and not (f.start <= name.start and name.end <= f.end) for f in frames)

    return [f for f in findings
            if not (f.entity_type == PERSON and f.recognizer in ("spacy", "gazetteer", "repeat") and straddles(f))]


def _number_values(texts: Sequence[str], per_text: Sequence[Sequence[Finding]]) -> dict[str, str]:
    """The characters of each identifier found (every reading of it: "816 37 46, non
    pardon, 64" is 816374664 and 8163764), with its type."""
    values: dict[str, str] = {}
    for text, findings in zip(texts, per_text, strict=True):
        for f in findings:
            if f.entity_type in NUMBER_TYPES:
                for run in token_runs(text[f.start:f.end]):
                    chars = run.alnum()[0]
                    if len(chars) >= MIN_VALUE_CHARS:
                        values.setdefault(chars, f.entity_type)
    return values


def _value_mentions(text: str, values: dict[str, str], options: AnonymizeOptions) -> list[Finding]:
    """Identifiers found elsewhere in the conversation, said again here in any form."""
    if not values:
        return []
    found = []
    for run in token_runs(text):
        for first, end, chars, _ in aligned_matches(run, _ANY, lambda chars: 0.85 if chars in values else None):
            kind = values[chars]
            if not options.entity_types or kind in options.entity_types:
                found.append(Finding(run.tokens[first].start, run.tokens[end - 1].end, kind, 0.85, "repeat-value"))
    return found


_ANY = re.compile(r".+")


def _terms(text: str, terms: Sequence[str]) -> list[Finding]:
    found = []
    for term in terms:
        if term.strip():
            for m in re.finditer(rf"(?<!\w){re.escape(term.strip())}(?!\w)", text, re.IGNORECASE):
                found.append(Finding(m.start(), m.end(), CUSTOM, 1.0, "always-mask"))
    return found


def _without_allowed(text: str, findings: list[Finding], allowed: Sequence[str]) -> list[Finding]:
    if not allowed:
        return findings
    keep = {a.strip().lower() for a in allowed if a.strip()}
    return [f for f in findings if text[f.start:f.end].strip().lower() not in keep]


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """One finding per stretch of text: overlapping findings merge into their union,
    typed as the strongest (then the longest) of them, so nothing of either leaks."""
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            outer = [x for x in (last, f) if x.start <= min(last.start, f.start) and x.end >= max(last.end, f.end)]
            # a stretch inside another is part of it (a phone-like run inside a NIR, a
            # name inside an address or an e-mail); otherwise the stronger one leads
            lead = outer[0] if outer else max((last, f), key=lambda x: (x.score, x.end - x.start))
            merged[-1] = Finding(last.start, max(last.end, f.end), lead.entity_type, max(last.score, f.score),
                                 lead.recognizer)
        else:
            merged.append(f)
    return merged


__all__ = ["ENTITY_TYPES", "AnonymizationEngine", "AnonymizeOptions", "AnonymizedTexts", "resolve_overlaps"]
