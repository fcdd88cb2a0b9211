"""Transcript outputs: plain text, JSON, SRT and WebVTT.

Subtitles follow common broadcast practice (at most ~42 characters a line, two lines, 7 s a
cue): long segments are cut at word boundaries using word timestamps when the transcript
has them. Speaker names (diarised transcripts) go into SRT as "NAME: text" and into VTT as
voice tags, which players show.
"""

from __future__ import annotations

import datetime
import json
import textwrap
from dataclasses import dataclass
from collections.abc import Iterable, Sequence

import srt
import webvtt
from google.protobuf.json_format import MessageToDict

from parlons.v1 import transcription_pb2

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_S = 7.0

FORMATS = ("txt", "json", "srt", "vtt")


@dataclass
class Cue:
    start_s: float
    end_s: float
    text: str
    speaker: str = ""


def _split_words(
    words: Sequence[transcription_pb2.WordInfo], speaker: str
) -> list[Cue]:
    cues: list[Cue] = []
    current: list[transcription_pb2.WordInfo] = []
    limit = MAX_LINE_CHARS * MAX_LINES
    for word in words:
        candidate = "".join(w.word for w in [*current, word]).strip()
        too_long = len(candidate) > limit
        too_slow = bool(current) and word.end_s - current[0].start_s > MAX_CUE_S
        if current and (too_long or too_slow):
            cues.append(Cue(current[0].start_s, current[-1].end_s, "".join(w.word for w in current).strip(), speaker))
            current = []
        current.append(word)
    if current:
        cues.append(Cue(current[0].start_s, current[-1].end_s, "".join(w.word for w in current).strip(), speaker))
    return cues


def cues_from_segments(segments: Iterable[transcription_pb2.Segment]) -> list[Cue]:
    """One cue per segment, or several when a segment is too long to read on screen."""
    cues: list[Cue] = []
    for segment in segments:
        text = segment.text.strip()
        if not text:
            continue
        fits = len(text) <= MAX_LINE_CHARS * MAX_LINES and segment.end_s - segment.start_s <= MAX_CUE_S
        if fits or not segment.words:
            cues.append(Cue(segment.start_s, segment.end_s, text, segment.speaker))
        else:
            cues.extend(_split_words(segment.words, segment.speaker))
    return cues


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, MAX_LINE_CHARS)) or text


def to_srt(cues: Sequence[Cue]) -> str:
    subtitles = [
        srt.Subtitle(
            index=i,
            start=datetime.timedelta(seconds=cue.start_s),
            end=datetime.timedelta(seconds=max(cue.end_s, cue.start_s + 0.001)),
            content=_wrap(f"{cue.speaker}: {cue.text}" if cue.speaker else cue.text),
        )
        for i, cue in enumerate(cues, start=1)
    ]
    return srt.compose(subtitles, reindex=False)


def _vtt_time(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def to_vtt(cues: Sequence[Cue]) -> str:
    document = webvtt.WebVTT()
    for cue in cues:
        text = _wrap(cue.text)
        if cue.speaker:
            text = f"<v {cue.speaker}>{text}"
        document.captions.append(
            webvtt.Caption(_vtt_time(cue.start_s), _vtt_time(max(cue.end_s, cue.start_s + 0.001)), text)
        )
    return document.content


def to_txt(response: transcription_pb2.TranscribeResponse) -> str:
    lines = []
    for segment in response.segments:
        text = segment.text.strip()
        if segment.speaker:
            text = f"{segment.speaker}: {text}"
        lines.append(text)
    return "\n".join(lines) + "\n"


def to_txt_with_translations(
    response: transcription_pb2.TranscribeResponse,
    translated: dict[str, transcription_pb2.TranscribeResponse],
) -> str:
    """Each segment, then its translations indented under it (for reading on a terminal)."""
    lines = []
    for index, segment in enumerate(response.segments):
        text = segment.text.strip()
        prefix = f"[{segment.start_s:6.1f}s] " + (f"{segment.speaker}: " if segment.speaker else "")
        lines.append(prefix + text)
        for language, version in translated.items():
            if index < len(version.segments):
                lines.append(f"{'':10}{language}: {version.segments[index].text.strip()}")
    return "\n".join(lines) + "\n"


def to_json(response: transcription_pb2.TranscribeResponse) -> str:
    return json.dumps(
        MessageToDict(response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        ensure_ascii=False,
        indent=2,
    ) + "\n"


def render(response: transcription_pb2.TranscribeResponse, fmt: str) -> str:
    if fmt == "txt":
        return to_txt(response)
    if fmt == "json":
        return to_json(response)
    if fmt == "srt":
        return to_srt(cues_from_segments(response.segments))
    if fmt == "vtt":
        return to_vtt(cues_from_segments(response.segments))
    raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
