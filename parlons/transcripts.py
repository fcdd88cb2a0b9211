"""Transcripts and their outputs: plain text, JSON, SRT, WebVTT and RTTM, and the
conversation (speaker turns) as a transcript. One module for both sides: the gateway
composes and renders with it, the clients render what the gateway returns.

Subtitles follow common broadcast practice by default (at most 42 characters a line, two
lines, 7 s a cue; `SubtitleShape` changes it): long segments are cut at word boundaries
using word timestamps when the transcript has them. Speaker names (diarised transcripts)
go into SRT as "NAME: text" and into VTT as voice tags, which players show.
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
from google.protobuf.message import Message

from parlons.v1 import gateway_pb2, transcription_pb2

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_S = 7.0

FORMATS = ("txt", "json", "srt", "vtt", "rttm")


@dataclass(frozen=True)
class SubtitleShape:
    """How much text a cue holds: characters a line, lines, seconds."""

    line_chars: int = MAX_LINE_CHARS
    lines: int = MAX_LINES
    max_cue_s: float = MAX_CUE_S

    def __post_init__(self) -> None:
        if not 10 <= self.line_chars <= 200:
            raise ValueError(f"a subtitle line holds 10 to 200 characters, got {self.line_chars}")
        if not 1 <= self.lines <= 4:
            raise ValueError(f"a cue holds 1 to 4 lines, got {self.lines}")
        if not 1.0 <= self.max_cue_s <= 30.0:
            raise ValueError(f"a cue lasts 1 to 30 s, got {self.max_cue_s:g}")


BROADCAST = SubtitleShape()


@dataclass
class Cue:
    start_s: float
    end_s: float
    text: str
    speaker: str = ""
    # Other speakers heard during the cue (overlapped speech).
    overlapping: tuple[str, ...] = ()

    @property
    def overlap_marker(self) -> str:
        """"(+ SPEAKER_01)" when other voices are heard during the cue; "" otherwise."""
        return f"(+ {', '.join(self.overlapping)})" if self.overlapping else ""

    @property
    def label(self) -> str:
        """The speaker as shown: "SPEAKER_00", or "SPEAKER_00 (+ SPEAKER_01)" over an overlap."""
        if not self.speaker or not self.overlapping:
            return self.speaker
        return f"{self.speaker} {self.overlap_marker}"


def _split_words(
    words: Sequence[transcription_pb2.WordInfo], speaker: str, shape: SubtitleShape,
    overlapping: tuple[str, ...] = (),
) -> list[Cue]:
    cues: list[Cue] = []
    current: list[transcription_pb2.WordInfo] = []
    limit = shape.line_chars * shape.lines

    def cue(words: list[transcription_pb2.WordInfo]) -> Cue:
        others = overlapping if any(w.overlap for w in words) else ()
        return Cue(words[0].start_s, words[-1].end_s, "".join(w.word for w in words).strip(), speaker, others)

    for word in words:
        candidate = "".join(w.word for w in [*current, word]).strip()
        too_long = len(candidate) > limit
        too_slow = bool(current) and word.end_s - current[0].start_s > shape.max_cue_s
        if current and (too_long or too_slow):
            cues.append(cue(current))
            current = []
        current.append(word)
    if current:
        cues.append(cue(current))
    return cues


def cues_from_segments(segments: Iterable[transcription_pb2.Segment], shape: SubtitleShape = BROADCAST) -> list[Cue]:
    """One cue per segment, or several when a segment is too long to read on screen."""
    cues: list[Cue] = []
    for segment in segments:
        text = segment.text.strip()
        if not text:
            continue
        fits = len(text) <= shape.line_chars * shape.lines and segment.end_s - segment.start_s <= shape.max_cue_s
        overlapping = tuple(segment.overlapping_speakers)
        if fits:
            cues.append(Cue(segment.start_s, segment.end_s, text, segment.speaker, overlapping))
        elif segment.words:
            cues.extend(_split_words(segment.words, segment.speaker, shape, overlapping))
        else:
            cues.extend(_split_text(text, segment.start_s, segment.end_s, segment.speaker, shape, overlapping))
    return cues


def _split_text(text: str, start_s: float, end_s: float, speaker: str, shape: SubtitleShape,
                overlapping: tuple[str, ...] = ()) -> list[Cue]:
    """A segment without word timings (a translation, a transcript made without them),
    cut at word boundaries into cues that fit, timed in proportion to their characters."""
    pieces = textwrap.wrap(text, shape.line_chars * shape.lines) or [text]
    total = sum(len(p) for p in pieces)
    cues: list[Cue] = []
    at = start_s
    for piece in pieces:
        until = at + (end_s - start_s) * len(piece) / total
        cues.append(Cue(at, until, piece, speaker, overlapping))
        at = until
    return cues


def _wrap(text: str, shape: SubtitleShape = BROADCAST) -> str:
    return "\n".join(textwrap.wrap(text, shape.line_chars)) or text


def to_srt(cues: Sequence[Cue], shape: SubtitleShape = BROADCAST) -> str:
    subtitles = [
        srt.Subtitle(
            index=i,
            start=datetime.timedelta(seconds=cue.start_s),
            end=datetime.timedelta(seconds=max(cue.end_s, cue.start_s + 0.001)),
            content=_wrap(f"{cue.label}: {cue.text}" if cue.speaker else cue.text, shape),
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


def to_vtt(cues: Sequence[Cue], shape: SubtitleShape = BROADCAST) -> str:
    document = webvtt.WebVTT()
    for cue in cues:
        text = _wrap(cue.text, shape)
        if cue.speaker:
            marker = f"{cue.overlap_marker} " if cue.overlapping else ""
            text = f"<v {cue.speaker}>{marker}{text}"
        document.captions.append(
            webvtt.Caption(_vtt_time(cue.start_s), _vtt_time(max(cue.end_s, cue.start_s + 0.001)), text)
        )
    return document.content


def speaker_label(segment: transcription_pb2.Segment) -> str:
    """"SPEAKER_00", or "SPEAKER_00 (+ SPEAKER_01)" when another voice is heard meanwhile."""
    return Cue(segment.start_s, segment.end_s, "", segment.speaker, tuple(segment.overlapping_speakers)).label


def to_txt(response: transcription_pb2.TranscribeResponse) -> str:
    lines = []
    for segment in response.segments:
        text = segment.text.strip()
        if segment.speaker:
            text = f"{speaker_label(segment)}: {text}"
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
        prefix = f"[{segment.start_s:6.1f}s] " + (f"{speaker_label(segment)}: " if segment.speaker else "")
        lines.append(prefix + text)
        for language, version in translated.items():
            if index < len(version.segments):
                lines.append(f"{'':10}{language}: {version.segments[index].text.strip()}")
    return "\n".join(lines) + "\n"


def to_json(response: Message) -> str:
    return json.dumps(
        MessageToDict(response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        ensure_ascii=False,
        indent=2,
    ) + "\n"


def to_rttm(response: transcription_pb2.TranscribeResponse, uri: str = "audio") -> str:
    """Who spoke when, one RTTM line per segment with a speaker (diarised transcripts)."""
    segments = [s for s in response.segments if s.speaker]
    if response.segments and not segments:
        raise ValueError("RTTM needs speakers: transcribe with diarisation (--diarize)")
    lines = [
        f"SPEAKER {uri} 1 {s.start_s:.3f} {max(s.end_s - s.start_s, 0.0):.3f} <NA> <NA> {s.speaker} <NA> <NA>"
        for s in segments
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def render(response: transcription_pb2.TranscribeResponse, fmt: str, *, shape: SubtitleShape = BROADCAST,
           uri: str = "audio") -> str:
    if fmt == "txt":
        return to_txt(response)
    if fmt == "json":
        return to_json(response)
    if fmt == "srt":
        return to_srt(cues_from_segments(response.segments, shape), shape)
    if fmt == "vtt":
        return to_vtt(cues_from_segments(response.segments, shape), shape)
    if fmt == "rttm":
        return to_rttm(response, uri)
    raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")


# -- conversations -------------------------------------------------------------------


def turns_to_transcript(response: gateway_pb2.TranscribeConversationResponse) -> transcription_pb2.TranscribeResponse:
    """The conversation as a plain transcript: one segment per turn, speaker set."""
    transcript = transcription_pb2.TranscribeResponse(
        language=response.language,
        audio_duration_s=response.audio_duration_s,
        processing_duration_s=response.processing_duration_s,
        model=response.transcription_model,
    )
    for i, turn in enumerate(response.turns):
        segment = transcript.segments.add(
            id=i, start_s=turn.start_s, end_s=turn.end_s, text=turn.text, language=turn.language,
            channel=max(turn.channel, 0), speaker=turn.speaker,
            overlapping_speakers=list(turn.overlapping_speakers),
        )
        segment.words.extend(turn.words)
    transcript.text = " ".join(t.text for t in response.turns)
    return transcript


def translated_transcript(
    transcript: transcription_pb2.TranscribeResponse,
    turns: Sequence[gateway_pb2.ConversationTurn],
    language: str,
) -> transcription_pb2.TranscribeResponse:
    """`transcript` (one segment per turn) with each turn's translation into `language`."""
    texts = [next((t.text for t in turn.translations if t.language == language), "") for turn in turns]
    return with_texts(transcript, texts, language)


def with_texts(transcript: transcription_pb2.TranscribeResponse, texts: Sequence[str],
               language: str) -> transcription_pb2.TranscribeResponse:
    """The transcript with each segment's text replaced (a translation): same timings and
    speakers, no words (the source's word timings do not fit another language)."""
    if len(texts) != len(transcript.segments):
        raise ValueError(f"{len(texts)} texts for {len(transcript.segments)} segments")
    copy = transcription_pb2.TranscribeResponse()
    copy.CopyFrom(transcript)
    copy.language = language
    for segment, text in zip(copy.segments, texts, strict=True):
        segment.text = text
        segment.language = language
        del segment.words[:]
    copy.text = " ".join(s.text.strip() for s in copy.segments if s.text.strip())
    return copy


def translations_by_language(
    response: gateway_pb2.TranscribeConversationResponse,
) -> dict[str, transcription_pb2.TranscribeResponse]:
    """The gateway's translated transcripts, by language."""
    return {t.language: t for t in response.translated_transcripts}
