"""Cut text into what a translation model should see, and mark what it must not touch.

* `segment` cuts a text into sentences without losing a character: line breaks,
  paragraph breaks and the spaces around sentences are kept as untranslated chunks, so
  joining the chunks gives the input back and the translation keeps the layout.
* `protected_spans` finds numbers, dates, times, e-mail addresses, URLs, phone numbers,
  case references ("n° 2024/12345", "RG 21/01234") and placeholders (`{name}`, `%s`,
  `{{ x }}`, `${x}`) that must come out verbatim. Sentences are never cut inside one.
* `to_parts` splits a sentence around spans (protected or glossary) into `Part`s: text to
  translate and fixed strings to put back as they are (see engine.py for how the fixed
  strings are guaranteed to survive).

A small rule-based splitter rather than a library: it has to respect protected spans
(a URL or "3.5" must not end a sentence) and French abbreviations, which general
splitters do not know about.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import sentencex


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of a sentence, to be replaced by `replacement` verbatim."""

    start: int
    end: int
    replacement: str
    kind: str


@dataclass(frozen=True)
class Chunk:
    """A piece of the original text: a sentence to translate, or text kept as it is."""

    text: str
    translate: bool


@dataclass(frozen=True)
class Part:
    """A piece of a sentence: text for the model, or a fixed string kept verbatim."""

    text: str
    fixed: bool


_URL = r"(?:(?:https?|ftp)://|www\.)[^\s<>\"«»“”]+"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_CASE_REF = (r"(?:\b(?:n|N|no|No|NO|nº|Nº)\s?[°ºo.]?\s?|\bRG\s?|\bN°\s?)"
             r"\d[\w]*(?:[/.\-]\w+)*")
_CODE = r"\b(?=[A-Z0-9]*\d)[A-Z0-9]+(?:[/\-][A-Z0-9]+)+\b"
_DATE = (r"\b\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b|\b\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?\b")
_TIME = r"\b\d{1,2}\s?(?::|h)\s?\d{2}\b"
_PHONE = r"(?<![\w+])(?:\+\d{2,3}[\s.\-]?\(?0?\)?\d(?:[\s.\-]?\d{2}){4}|0\d(?:[\s.\-]?\d{2}){4})(?!\d)"
_NUMBER = r"(?<![\w.,])[-+]?\d+(?:[\u00a0\u202f ]\d{3}(?!\d))*(?:[.,]\d+)*(?:\s?%)?"
_PLACEHOLDER = (r"\{\{\s*[\w.]+\s*\}\}|\$\{[\w.]+\}|\{[A-Za-z_][\w.]*\}|\{\d+\}"
                r"|%(?:\([\w]+\))?[-+ #0]*\d*(?:\.\d+)?[sdifuxXeEgGr]|%\d+\$[sd]|:[a-z_]+:")

#: Kinds in priority order: an earlier kind wins an overlap with a later one.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx))
    for kind, rx in (
        ("url", _URL), ("email", _EMAIL), ("placeholder", _PLACEHOLDER), ("case", _CASE_REF),
        ("date", _DATE), ("phone", _PHONE), ("time", _TIME), ("code", _CODE), ("number", _NUMBER),
    )
)
_TRAILING = ".,;:!?)»”’'\""


def protected_spans(text: str, kinds: frozenset[str] | None = None) -> list[Span]:
    """Non-overlapping spans to keep verbatim, in text order."""
    found: list[Span] = []
    for kind, rx in PATTERNS:
        if kinds is not None and kind not in kinds:
            continue
        for m in rx.finditer(text):
            start, end = m.start(), m.end()
            if kind == "url":
                while end > start and text[end - 1] in _TRAILING:
                    if text[end - 1] == ")" and text[start:end].count("(") >= text[start:end].count(")"):
                        break
                    end -= 1
            elif kind in ("number", "case") and end > start and text[end - 1] in ".,":
                end -= 1
            if end > start:
                found.append(Span(start, end, text[start:end], kind))
    return merge_spans(found)


def merge_spans(*groups: list[Span]) -> list[Span]:
    """Resolve overlaps: earlier groups and, within a group, earlier/longer spans win."""
    chosen: list[Span] = []
    for group in groups:
        for span in sorted(group, key=lambda s: (-(s.end - s.start), s.start)):
            if all(span.end <= c.start or span.start >= c.end for c in chosen):
                chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


# --- sentences --------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    """m mm mme mmes mlle mlles dr pr me mgr st ste cf etc ex art al av bd bld ch chap p pp
    vol no n nos tél tel fax env min max sq r ref réf dép dept mr mrs ms prof sr jr vs e.g i.e
    approx jan fév fev févr avr juil sept oct nov déc dec feb mar apr jun jul aug sep hon gen
    lt col capt sgt inc ltd co corp dir adj suiv cad c.-à-d p.ex ss""".split()
)
_END = re.compile(r"([.!?…‼⁇⁈⁉]+|[。！？؟।۔])([\"'»”’)\]]*)")
_LINE = re.compile(r"\r\n|\r|\n|\u2028|\u2029")
_CJK_END = "。！？"
# Scripts whose sentences need no space after the full stop.
_NO_SPACE_ENDS = "。！？"


def _is_boundary(text: str, end_match: re.Match[str], spans: list[Span]) -> int | None:
    """Index where the next sentence starts, or None when this is not a boundary."""
    punct_start, stop = end_match.start(), end_match.end()
    if any(s.start < stop and punct_start < s.end for s in spans):
        return None  # inside a URL, number, e-mail ...
    mark = end_match.group(1)
    if stop >= len(text):
        return None
    if mark[-1] in _CJK_END:
        return stop
    if not text[stop].isspace():
        return None
    nxt = stop
    while nxt < len(text) and text[nxt].isspace():
        nxt += 1
    if nxt >= len(text):
        return None
    if mark == ".":
        word = re.search(r"([\w.\-]+)$", text[:punct_start])
        raw = word.group(1) if word else ""
        if raw.lower() in _ABBREVIATIONS or (len(raw) == 1 and raw.isupper()):
            return None  # "M. Dupont", "J. Martin"
        follower = text[nxt]
        if follower.islower():
            return None
    return stop


def _sentences(line: str, max_chars: int, language: str = "") -> list[str]:
    """A line cut into sentences: the cuts of `sentencex` (rules for ~300 languages and
    their scripts: Ethiopic ።, Armenian ։, Burmese ။, Devanagari ।...) and of the rules
    above, each vetoed inside a protected span and after an abbreviation or an initial."""
    spans = protected_spans(line)
    cuts = {0, len(line)}
    for m in _END.finditer(line):
        boundary = _is_boundary(line, m, spans)
        if boundary is not None:
            cuts.add(boundary)
    position = 0
    for piece in sentencex.segment(_sentencex_language(language), line):
        found = line.find(piece.strip(), position) if piece.strip() else -1
        if found < 0:
            continue
        position = found + len(piece.strip())
        if position < len(line) and _accepts_cut(line, position, spans):
            cuts.add(position)
    ordered = sorted(cuts)
    pieces = [line[a:b] for a, b in itertools.pairwise(ordered) if b > a]
    out: list[str] = []
    for piece in pieces:
        out.extend(_hard_wrap(piece, max_chars))
    return out


def _sentencex_language(language: str) -> str:
    """sentencex's code for a BCP-47 tag (its rules fall back by language family);
    French rules when the language is not known: the counters' language."""
    return (language or "fr").replace("_", "-").split("-")[0].lower()


def _accepts_cut(line: str, position: int, spans: list[Span]) -> bool:
    """Whether a sentence may end at `position` (just after its punctuation): not inside
    a protected span, not after "M." or "n." or an initial, not before lower case."""
    if any(s.start < position < s.end for s in spans):
        return False
    before = line[:position]
    if not before or not (line[position:position + 1].isspace() or before[-1] in _NO_SPACE_ENDS):
        return False
    if before.endswith("."):
        word = re.search(r"([\w.\-]+)\.$", before)
        raw = word.group(1) if word else ""
        if raw.lower() in _ABBREVIATIONS or (len(raw) == 1 and raw.isupper()):
            return False
        follower = line[position:].lstrip()[:1]
        if follower.islower():
            return False
    return True


def _hard_wrap(sentence: str, max_chars: int) -> list[str]:
    """Cut an over-long sentence at a comma or space, never inside a protected span."""
    if len(sentence) <= max_chars:
        return [sentence]
    spans = protected_spans(sentence)
    out: list[str] = []
    start = 0
    while len(sentence) - start > max_chars:
        window = sentence[start:start + max_chars]
        cut = -1
        for rx in (r"[,;:]\s", r"\s"):
            for m in re.finditer(rx, window):
                pos = start + m.end()
                if pos > start + max_chars // 3 and not any(s.start < pos < s.end for s in spans):
                    cut = pos
        if cut <= start:
            cut = start + max_chars
            for s in spans:  # never inside a span, even without spaces
                if s.start < cut < s.end:
                    cut = s.end if s.start <= start else s.start
        out.append(sentence[start:cut])
        start = cut
    out.append(sentence[start:])
    return [p for p in out if p]


def _has_words(text: str) -> bool:
    """Worth sending to a model: it contains letters outside protected spans."""
    rest = text
    for span in reversed(protected_spans(text)):
        rest = rest[: span.start] + rest[span.end:]
    return any(ch.isalpha() for ch in rest)


def segment(text: str, max_sentence_chars: int = 400, language: str = "") -> list[Chunk]:
    """Sentences to translate and everything else kept verbatim; joined, they give `text`."""
    chunks: list[Chunk] = []
    pos = 0
    for m in [*_LINE.finditer(text), None]:
        end = m.start() if m else len(text)
        line = text[pos:end]
        for sentence in _sentences(line, max_sentence_chars, language) if line else []:
            stripped = sentence.strip()
            if not stripped:
                chunks.append(Chunk(sentence, False))
                continue
            lead = sentence[: len(sentence) - len(sentence.lstrip())]
            trail = sentence[len(sentence.rstrip()):]
            if lead:
                chunks.append(Chunk(lead, False))
            chunks.append(Chunk(stripped, _has_words(stripped)))
            if trail:
                chunks.append(Chunk(trail, False))
        if m:
            chunks.append(Chunk(m.group(), False))
            pos = m.end()
    return _coalesce(chunks)


def _coalesce(chunks: list[Chunk]) -> list[Chunk]:
    out: list[Chunk] = []
    for chunk in chunks:
        if out and not chunk.translate and not out[-1].translate:
            out[-1] = Chunk(out[-1].text + chunk.text, False)
        else:
            out.append(chunk)
    return out


def to_parts(sentence: str, spans: list[Span]) -> list[Part]:
    """Split a sentence at spans: text parts for the model, fixed parts kept verbatim."""
    parts: list[Part] = []
    pos = 0
    for span in spans:
        if span.start > pos:
            parts.append(Part(sentence[pos:span.start], False))
        parts.append(Part(span.replacement, True))
        pos = span.end
    if pos < len(sentence):
        parts.append(Part(sentence[pos:], False))
    return parts


def needs_model(text: str) -> bool:
    """A text part is sent to the model only if it has letters; "- " or ", " are copied."""
    return any(ch.isalpha() for ch in text)
