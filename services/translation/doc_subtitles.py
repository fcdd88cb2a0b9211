"""SRT and WebVTT: translate cue text, keep numbering, timings, settings, styles and tags.

A cue's lines are one utterance wrapped for the screen, so they are joined, translated
together and re-wrapped over the same number of lines. Cues with markup (`<i>`, `<b>`,
`<v Speaker>`, `{\\an8}`) keep their tags verbatim and have the text between tags
translated piece by piece. Cues are translated one by one, never merged: a sentence that
runs over two cues stays in two cues, so the timings still fit the speech.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Callable

import srt
import webvtt
from webvtt import errors as webvtt_errors

from parlons.errors import InvalidArgument

_TAG = re.compile(r"(<[^>\n]*>|\{\\[^}\n]*\})")


def rewrap(text: str, lines: int) -> str:
    """Spread words over `lines` lines of similar length (subtitle style)."""
    if lines <= 1:
        return text
    words = text.split()
    if len(words) < lines:
        # Scripts written without spaces (Chinese, Japanese, Thai): cut by characters.
        if " " not in text.strip() and len(text) >= 2 * lines:
            step = -(-len(text) // lines)
            return "\n".join(text[i:i + step] for i in range(0, len(text), step))
        if len(words) <= 1:
            return text
    lines = min(lines, len(words))
    target = len(text) / lines
    out: list[list[str]] = [[]]
    length = 0
    for i, word in enumerate(words):
        remaining_words = len(words) - i
        remaining_lines = lines - len(out)
        if out[-1] and remaining_lines > 0 and (length + len(word) > target or remaining_words <= remaining_lines):
            out.append([])
            length = 0
        out[-1].append(word)
        length += len(word) + 1
    return "\n".join(" ".join(line) for line in out)


@dataclass
class CueText:
    """Segments of one cue and how to write the translated cue back."""

    segments: list[str] = field(default_factory=list)
    build: Callable[[list[str]], str] = lambda parts: ""


def split_cue(content: str) -> CueText:
    if not _TAG.search(content):
        lines = content.split("\n")
        joined = " ".join(line.strip() for line in lines if line.strip())
        if not joined:
            return CueText([], lambda parts: content)
        return CueText([joined], lambda parts: rewrap(parts[0], len(lines)))
    pieces = _TAG.split(content)
    text_idx = [i for i, p in enumerate(pieces) if i % 2 == 0 and p.strip()]

    def build(parts: list[str]) -> str:
        out = list(pieces)
        for i, translated in zip(text_idx, parts):
            original = pieces[i]
            lead = original[: len(original) - len(original.lstrip())]
            trail = original[len(original.rstrip()):]
            out[i] = lead + translated.strip() + trail
        return "".join(out)

    return CueText([pieces[i] for i in text_idx], build)


def _cue_safe(text: str) -> str:
    """A translation must not end the cue early: no blank line, no timing arrow."""
    return text.replace("-->", "\u2192")


@dataclass
class SubtitleDocument:
    segments: list[str]
    _cues: list[tuple[CueText, Callable[[str], None]]]
    _render: Callable[[], str]

    def rebuild(self, translations: list[str]) -> bytes:
        pos = 0
        for cue, assign in self._cues:
            n = len(cue.segments)
            assign(cue.build(translations[pos:pos + n]))
            pos += n
        return self._render().encode("utf-8")


def _collect(cues: list[tuple[CueText, Callable[[str], None]]]) -> list[str]:
    return [s for cue, _ in cues for s in cue.segments]


def open_srt(text: str) -> SubtitleDocument:
    try:
        subs = list(srt.parse(text))
    except (srt.SRTParseError, ValueError) as exc:
        raise InvalidArgument(f"not a valid SRT file: {exc}") from None
    if not subs and text.strip():
        raise InvalidArgument("not a valid SRT file: no cues found")
    cues: list[tuple[CueText, Callable[[str], None]]] = []
    for sub in subs:
        def assign(value: str, sub: srt.Subtitle = sub) -> None:
            sub.content = "\n".join(line for line in _cue_safe(value).split("\n") if line.strip())
        cues.append((split_cue(sub.content), assign))
    return SubtitleDocument(_collect(cues), cues, lambda: srt.compose(subs, reindex=False))


def open_vtt(text: str) -> SubtitleDocument:
    try:
        vtt = webvtt.WebVTT.from_string(text)
    except (webvtt_errors.MalformedFileError, webvtt_errors.MalformedCaptionError, ValueError) as exc:
        raise InvalidArgument(f"not a valid WebVTT file: {exc}") from None
    cues: list[tuple[CueText, Callable[[str], None]]] = []
    for caption in vtt.captions:
        def assign(value: str, caption: webvtt.Caption = caption) -> None:
            caption.lines = [line for line in _cue_safe(value).split("\n") if line.strip()] or [""]
        cues.append((split_cue("\n".join(caption.lines)), assign))
    return SubtitleDocument(_collect(cues), cues, lambda: vtt.content)
