"""The anonymisation engine: Presidio's analyzer over spaCy's NER and parlons' French
rules, overlaps resolved, names followed through the text, then replaced.

No gRPC here. `AnonymizationEngine.anonymize` takes the texts of one conversation or
document (segments, paragraphs) so that a name or number keeps one placeholder across
all of them.

Every pass is linear in the request: a text longer than `MAX_PIECE_CHARS` is read in
pieces cut at line ends (spaCy sees them in bounded batches through `nlp.pipe`); names,
always-mask and never-mask terms are compiled once per request and each text is scanned
once for all of them. A `WorkBudget` (time, and the cancel event `WorkQueue` sets when the
caller goes away) is checked between pieces and batches, well within a second.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parlons.services.common.budget import WorkBudget
from parlons.errors import InvalidArgument
from parlons.services.common.trie_regex import trie_pattern

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
from .learned import LearnedRecognizer, union
from .lexicon import FrenchWords
from .names import NameMentions, extend_and_filter, find_names, trim_name
from .numbers import token_runs
from .presidio_import import import_presidio_analyzer
from .replace import PLACEHOLDER, POLICIES, Replacer
from .rules import (
    aligned_matches,
    continued_numbers,
    find_addresses,
    find_dates_of_birth,
    find_emails,
    find_in_runs,
    find_lower_case_identifiers,
)

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
# A text longer than this is read in pieces cut at line ends (else sentence ends, else
# spaces), each piece as one turn of the conversation: spaCy on a 1 MB text held
# gigabytes, and a cancel waited for the whole text.
MAX_PIECE_CHARS = 4_000
# Pieces given to spaCy together (`nlp.pipe`): about half a second of NER on a loaded
# 2-core machine, the longest a cancel waits.
NER_BATCH_CHARS = 8_000
# A term longer than this is refused: the terms' trie regex nests a group per branching
# character (and no name or place is that long).
MAX_TERM_CHARS = 200


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
    # Seconds one request may take once it runs (queueing aside).
    time_budget_s: float = 60.0


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


# Parts of speech of a word that is no proper noun: "Bonne journée", "Prénom ?", "Montrez-moi".
_NOT_A_NAME_POS = frozenset({"NOUN", "ADJ", "VERB", "ADV", "INTJ", "DET", "PRON", "ADP", "CCONJ", "SCONJ", "AUX"})


def _tagged_common_word(nlp_artifacts: Any, start: int, end: int, words: FrenchWords | None) -> bool:
    """spaCy's NER took one word for a name that its own tagger reads as a common word
    (a noun, an adjective, a verb...) and that is a word of the dictionary no name list
    knows ("Bonne journée", "Prénom ?"; not "le nom Ba", not a brand)."""
    if words is None:
        return False
    span = nlp_artifacts.tokens.char_span(start, end, alignment_mode="expand")
    if span is None or len(span) != 1:
        return False
    token = span[0]
    return token.pos_ in _NOT_A_NAME_POS and words.common(token.text)


class AnonymizationEngine:
    """Loads one spaCy pipeline per language that has one (model manager, offline) and a
    Presidio analyzer over them; every language gets the rule recognisers."""

    def __init__(
        self,
        ner_models: dict[str, str] | None = None,
        resolve_model: Callable[[str, str], Path] = _resolve_model,
        limits: AnonymizeLimits | None = None,
        learned_model: Path | None = None,
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
        # the French pipeline's dictionary, to tell a common word NER took for a name
        self._words = {"fr": FrenchWords(self._analyzers["fr"].nlp_engine.nlp["fr"])} if "fr" in self._analyzers else {}
        self.learned: LearnedRecognizer | None = None
        if learned_model is not None:
            if "fr" not in self._analyzers:
                raise InvalidArgument("the learned recogniser reads French and needs the French NER model "
                                      "(anonymization.ner_models: fr=...)", field="anonymization.learned_model")
            # fr_core_news_md's vocabulary and vectors, shared with the NER loaded above
            self.learned = LearnedRecognizer(learned_model, self._analyzers["fr"].nlp_engine.nlp["fr"],
                                             self._words["fr"])
        self.load_seconds = time.perf_counter() - started

    def with_limits(self, *, max_texts: int | None = None, time_budget_s: float | None = None) -> AnonymizationEngine:
        """The same loaded models under other request limits (documents have their own)."""
        other = copy.copy(self)
        other.limits = dataclasses.replace(
            self.limits, max_texts=self.limits.max_texts if max_texts is None else max_texts,
            time_budget_s=self.limits.time_budget_s if time_budget_s is None else time_budget_s)
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
        budget = WorkBudget(self.limits.time_budget_s)
        ner = self._ner([text], language, budget)[0]
        terms = compiled_terms(options.always_mask, options.never_mask)
        found = self._analyze(text, ner, options, terms, context, recent)
        return self._with_learned([text], [found], language, options, terms, budget)[0]

    def _analyze(self, text: str, ner: list[Finding], options: AnonymizeOptions, terms: Terms,
                 context: str = "", recent: Recent = NOTHING_RECENT) -> list[Finding]:
        """`analyze` with the names spaCy found in `text` and the request's terms given."""
        findings = self._rules(text, context[-CONTEXT_CHARS:], recent) + ner
        names = extend_and_filter(text, [f for f in findings if f.entity_type == PERSON])
        findings = [f for f in findings if f.entity_type != PERSON] + names
        findings.extend(terms.always(text))
        strong = [f for f in names if f.score >= options.score_threshold]
        if strong:
            mentions = NameMentions(text[f.start:f.end] for f in strong)
            findings.extend(extend_and_filter(text, mentions.find(text)))
        kept = [f for f in findings if f.score >= options.score_threshold
                and (not options.entity_types or f.entity_type in options.entity_types or f.entity_type == CUSTOM)]
        kept = terms.without_allowed(text, kept)
        return resolve_overlaps(_without_straddling_names(kept))

    def _ner(self, texts: Sequence[str], language: str, budget: WorkBudget) -> list[list[Finding]]:
        """The names spaCy finds in each text (through Presidio's analyzer), civilities
        trimmed. Texts go in pieces of at most `MAX_PIECE_CHARS`, batched through
        `nlp.pipe` up to `NER_BATCH_CHARS`; the budget is checked between batches."""
        found: list[list[Finding]] = [[] for _ in texts]
        lang = _base(language)
        analyzer = self._analyzers.get(lang)
        if analyzer is None:
            return found
        pieces = [(i, offset, piece) for i, text in enumerate(texts)
                  for offset, piece in pieces_of(text) if piece.strip()]
        for batch in _batches(pieces, NER_BATCH_CHARS):
            budget.check("names")
            artifacts = analyzer.nlp_engine.process_batch([piece for _, _, piece in batch], lang,
                                                          batch_size=len(batch))
            for (i, offset, piece), (_, nlp_artifacts) in zip(batch, artifacts, strict=True):
                for r in analyzer.analyze(text=piece, language=lang, entities=[PERSON], nlp_artifacts=nlp_artifacts):
                    if _tagged_common_word(nlp_artifacts, r.start, r.end, self._words.get(lang)):
                        continue
                    name = Finding(offset + r.start, offset + r.end, PERSON, float(r.score), "spacy")
                    trimmed = trim_name(texts[i], name)
                    if trimmed is not None:
                        found[i].append(trimmed)
        return found

    def _with_learned(self, units: Sequence[str], per_unit: list[list[Finding]], language: str,
                      options: AnonymizeOptions, terms: Terms, budget: WorkBudget) -> list[list[Finding]]:
        """Each unit's findings plus the learned recogniser's where no finding overlaps
        them (`learned.union`), French only; the request's types, threshold and
        never-mask terms apply to them as to the rules'. Batched like `_ner`."""
        if self.learned is None or _base(language) != "fr":
            return per_unit
        out = list(per_unit)
        indexed = [(u, 0, unit) for u, unit in enumerate(units) if unit.strip()]
        for batch in _batches(indexed, NER_BATCH_CHARS):
            budget.check("names")
            before = [units[u - 1] if u else "" for u, _, _ in batch]
            for (u, _, unit), learned in zip(batch, self.learned.find([unit for _, _, unit in batch], before),
                                             strict=True):
                kept = [f for f in learned if f.score >= options.score_threshold
                        and (not options.entity_types or f.entity_type in options.entity_types)]
                if kept:
                    out[u] = union(out[u], terms.without_allowed(unit, kept))
        return out

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
        for name in ("always_mask", "never_mask"):
            if any(len(term) > MAX_TERM_CHARS for term in getattr(options, name)):
                raise InvalidArgument(f"a term in options.{name} is over {MAX_TERM_CHARS} characters",
                                      field=f"options.{name}")

    def _rules(self, text: str, context: str = "", recent: Recent = NOTHING_RECENT) -> list[Finding]:
        words = self._words.get("fr")
        prefix = f"{context}\n" if context else ""
        whole = prefix + text
        runs = [r for r in token_runs(whole) if r.start >= len(prefix)]
        lower_runs = [r for r in token_runs(whole, lower_letters=True) if r.start >= len(prefix)]
        found = (find_in_runs(whole, runs, recent) + find_emails(whole) + find_dates_of_birth(whole, runs, recent)
                 + find_addresses(whole) + find_names(whole, words)
                 + find_lower_case_identifiers(whole, lower_runs, recent))
        shift = len(prefix)
        kept = [Finding(f.start - shift, f.end - shift, f.entity_type, f.score, f.recognizer)
                for f in found if f.start >= shift]
        if any(f.start < shift < f.end for f in found):
            # a match ran from the context into this text, so the text's own part was not
            # matched alone: the text's patterns again without the context
            kept += (find_emails(text) + find_addresses(text) + find_names(text, words)
                     + find_dates_of_birth(text, token_runs(text), recent))
        return kept

    def anonymize(self, texts: Sequence[str], language: str = "fr", options: AnonymizeOptions | None = None, *,
                  cancel: threading.Event | None = None, budget: WorkBudget | None = None) -> AnonymizedTexts:
        """Each text analysed, then replaced with one `Replacer` for all of them. A name
        found in one text is looked for in the others too (a name said once in full is
        masked when it comes back alone, later in the conversation).

        `cancel` set (the caller went away) or the time budget spent (`limits`, or
        `budget` when given) stops the work at its next check with Cancelled or
        INVALID_ARGUMENT."""
        options = options or AnonymizeOptions()
        self.check(texts, options)
        budget = budget or WorkBudget(self.limits.time_budget_s, cancel, what="anonymising these texts",
                                      advice="send them in several requests", field="texts")
        terms = compiled_terms(options.always_mask, options.never_mask)
        pieces = [(i, offset, piece) for i, text in enumerate(texts) for offset, piece in pieces_of(text)]
        units = [piece for _, _, piece in pieces]  # the turns of the conversation, as read
        ner = self._ner(units, language, budget)
        per_unit: list[list[Finding]] = []
        for u, unit in enumerate(units):
            budget.check()
            context = "\n".join(" ".join(units[j].split()) for j in range(max(0, u - CONTEXT_TEXTS), u))
            recent = {f.entity_type: u - j for j in range(max(0, u - RECENT_TEXTS), u) for f in per_unit[j]}
            per_unit.append(self._analyze(unit, ner[u], options, terms, context=context, recent=recent))
        for u, finding in continued_numbers(units):  # a number said over two turns
            if not options.entity_types or finding.entity_type in options.entity_types:
                per_unit[u] = resolve_overlaps(per_unit[u] + terms.without_allowed(units[u], [finding]))
        mentions = NameMentions(units[u][f.start:f.end] for u, fs in enumerate(per_unit) for f in fs
                                if f.entity_type == PERSON)
        values = _number_values(units, per_unit)
        for u, unit in enumerate(units):
            budget.check()
            extra = extend_and_filter(unit, mentions.find(unit)) + _value_mentions(unit, values, options)
            if extra:
                per_unit[u] = resolve_overlaps(per_unit[u] + terms.without_allowed(unit, extra))
        per_unit = self._with_learned(units, per_unit, language, options, terms, budget)
        per_text: list[list[Finding]] = [[] for _ in texts]
        for (i, offset, _), findings in zip(pieces, per_unit, strict=True):
            per_text[i].extend(_shifted(findings, offset))
        replacer = Replacer(policy=options.policy, seed=options.seed)
        applied = replacer.apply_all(texts, per_text)
        return AnonymizedTexts(
            texts=[a[0] for a in applied], findings=per_text, replacements=[a[1] for a in applied],
            names_checked=self.names_checked(language),
            mapping=dict(replacer.mapping) if options.return_mapping else {}, language=_base(language),
        )


def pieces_of(text: str, limit: int = MAX_PIECE_CHARS) -> list[tuple[int, str]]:
    """`text` cut into (offset, piece) of at most `limit` characters: after the last line
    end in the second half of the limit, else the last sentence end, else the last space,
    else at the limit. A text within the limit is one piece."""
    out: list[tuple[int, str]] = []
    start = 0
    while len(text) - start > limit:
        end = _cut(text, start + limit // 2, start + limit)
        out.append((start, text[start:end]))
        start = end
    out.append((start, text[start:]))
    return out


_SENTENCE_END_RE = re.compile(r"[.!?…]+[»\"]?\s")


def _cut(text: str, low: int, high: int) -> int:
    """Where to cut `text` between `low` and `high`."""
    newline = text.rfind("\n", low, high)
    if newline >= 0:
        return newline + 1
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(text, low, high)]
    if ends:
        return ends[-1]
    space = max(text.rfind(" ", low, high), text.rfind("\t", low, high))
    return space + 1 if space >= 0 else high


def _batches(pieces: list[tuple[int, int, str]], max_chars: int) -> Iterator[list[tuple[int, int, str]]]:
    """Consecutive pieces grouped up to `max_chars` characters (one piece at least)."""
    batch: list[tuple[int, int, str]] = []
    chars = 0
    for piece in pieces:
        if batch and chars + len(piece[2]) > max_chars:
            yield batch
            batch, chars = [], 0
        batch.append(piece)
        chars += len(piece[2])
    if batch:
        yield batch


def _shifted(findings: list[Finding], offset: int) -> list[Finding]:
    if not offset:
        return findings
    return [Finding(f.start + offset, f.end + offset, f.entity_type, f.score, f.recognizer) for f in findings]


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


@dataclass(frozen=True)
class Terms:
    """A request's always-mask and never-mask terms, compiled once: the always-mask terms
    as one case-insensitive trie regex (`trie_regex`), scanned once per text; the
    never-mask terms as a set of their lowercase forms."""

    always_pattern: re.Pattern[str] | None
    never: frozenset[str]

    def always(self, text: str) -> list[Finding]:
        """Every mention of an always-mask term, whole words, overlapping ones included
        ("Jean Moulin" and "Moulin Rouge" in "Jean Moulin Rouge")."""
        if self.always_pattern is None:
            return []
        return [Finding(start, end, CUSTOM, 1.0, "always-mask") for start, end in _each_start(self.always_pattern, text)]

    def without_allowed(self, text: str, findings: list[Finding]) -> list[Finding]:
        """The findings that are not a never-mask term."""
        if not self.never:
            return findings
        return [f for f in findings if text[f.start:f.end].strip().lower() not in self.never]


@functools.lru_cache(maxsize=64)
def compiled_terms(always: tuple[str, ...], never: tuple[str, ...]) -> Terms:
    """The terms compiled; a tenant's and the server's lists come back with each request,
    so the same lists are compiled once, not per request nor per text."""
    words = sorted({term.strip() for term in always if term.strip()})
    pattern = re.compile(rf"(?<!\w)(?:{trie_pattern(words)})(?!\w)", re.IGNORECASE) if words else None
    return Terms(pattern, frozenset(term.strip().lower() for term in never if term.strip()))


def _each_start(pattern: re.Pattern[str], text: str) -> Iterator[tuple[int, int]]:
    """The longest match at each position where one starts, overlapping ones included;
    linear: the text between matches is read once."""
    position = 0
    while (m := pattern.search(text, position)) is not None:
        yield m.start(), m.end()
        position = m.start() + 1


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
