"""Anonymised text put back on transcripts, for the gateway and the clients alike.

The anonymisation service returns each text with its masked spans; a conversation turn
or a transcript segment also carries timed words. `apply_to_timed_text` sets the new
text and merges the words each span covers into one word (the placeholder) timed from
the first covered word to the last, and returns those times: where the personal data
was said, for masking the recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parlons.v1 import anonymization_pb2, transcription_pb2, translation_pb2


# The policy names of the CLI and the REST facade, to the wire's values.
POLICIES = {
    "placeholder": anonymization_pb2.ANONYMIZATION_POLICY_PLACEHOLDER,
    "redact": anonymization_pb2.ANONYMIZATION_POLICY_REDACT,
    "pseudonym": anonymization_pb2.ANONYMIZATION_POLICY_PSEUDONYM,
}


def joined_text(segments: Sequence[Any]) -> str:
    """A transcript's text from its (anonymised) segments."""
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def apply_to_timed_text(message: Any, item: anonymization_pb2.AnonymizedText) -> list[tuple[float, float, str]]:
    """`message` (a ConversationTurn or a Segment: `text`, `words`) anonymised with
    `item`, the service's answer for `message.text`; returns the masked words' times
    (start_s, end_s, entity type)."""
    joined = "".join(w.word for w in message.words)
    lead = len(joined) - len(joined.lstrip())
    original, message.text = message.text, item.text
    if not item.spans:
        return []
    if joined.strip() != original.strip():  # words that do not spell the text: drop a span's words
        dropped: list[tuple[Any, str]] = []
        kept = []
        for w in message.words:
            kinds = [s.entity_type for s in item.spans if _word_in(original, w.word, s.start, s.end)]
            if kinds:
                dropped.append((w, kinds[0]))
            else:
                kept.append(w)
        del message.words[:]
        message.words.extend(kept)
        return [(w.start_s, w.end_s, kind) for w, kind in dropped]
    positions, at = [], (len(original) - len(original.lstrip())) - lead  # word offsets in `original`
    for word in message.words:
        positions.append((at, at + len(word.word)))
        at += len(word.word)
    words = list(message.words)
    out: list[transcription_pb2.WordInfo] = []
    times: list[tuple[float, float, str]] = []
    i = 0
    for span in sorted(item.spans, key=lambda s: s.start):
        while i < len(words) and positions[i][1] <= span.start:
            out.append(words[i])
            i += 1
        covered = []
        while i < len(words) and positions[i][0] < span.end:
            covered.append(words[i])
            i += 1
        if not covered:
            continue
        first, last = covered[0], covered[-1]
        spacing = first.word[:len(first.word) - len(first.word.lstrip())]
        out.append(transcription_pb2.WordInfo(
            start_s=first.start_s, end_s=last.end_s, word=spacing + span.replacement,
            probability=min(w.probability for w in covered), speaker=first.speaker,
            overlap=any(w.overlap for w in covered)))
        times.append((first.start_s, last.end_s, span.entity_type))
    out.extend(words[i:])
    del message.words[:]
    message.words.extend(out)
    return times


def _word_in(text: str, word: str, start: int, end: int) -> bool:
    """Whether `word` occurs in text[start:end] (words not aligned with the text)."""
    return bool(word.strip()) and word.strip() in text[start:end]


def keep_placeholders(glossary: translation_pb2.Glossary, placeholders: Sequence[str]) -> translation_pb2.Glossary:
    """The glossary plus each placeholder as a do-not-translate term, so "[PERSONNE_1]"
    comes out of translation as it went in."""
    if not placeholders:
        return glossary
    out = translation_pb2.Glossary()
    out.CopyFrom(glossary)
    for placeholder in placeholders:
        out.entries.add(source=placeholder, do_not_translate=True, case_sensitive=True)
    return out
