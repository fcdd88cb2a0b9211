"""What the SDK's calls return: the server's answer with the names and renderings a
caller wants (`.text`, `.segments`, `.turns`, `to_srt()`, `to_vtt()`, `to_rttm()`).

Each wraps the response message (`.proto`) and reads any other field through it, so
`result.audio_duration_s` works as on the message itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from parlons import transcripts
from parlons.transcripts import BROADCAST, SubtitleShape
from parlons.v1 import diarization_pb2, gateway_pb2, transcription_pb2, translation_pb2


@dataclass(frozen=True)
class _Result:
    proto: Message

    def __getattr__(self, name: str) -> Any:
        if name == "proto":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.proto, name)


@dataclass(frozen=True)
class Transcript(_Result):
    proto: transcription_pb2.TranscribeResponse

    @property
    def text(self) -> str:
        return self.proto.text

    @property
    def language(self) -> str:
        return self.proto.language

    @property
    def duration_s(self) -> float:
        return self.proto.audio_duration_s

    @property
    def segments(self) -> list[transcription_pb2.Segment]:
        return list(self.proto.segments)

    def to_txt(self) -> str:
        return transcripts.to_txt(self.proto)

    def to_json(self) -> str:
        return transcripts.to_json(self.proto)

    def to_srt(self, shape: SubtitleShape = BROADCAST) -> str:
        return transcripts.render(self.proto, "srt", shape=shape)

    def to_vtt(self, shape: SubtitleShape = BROADCAST) -> str:
        return transcripts.render(self.proto, "vtt", shape=shape)

    def to_rttm(self, uri: str = "audio") -> str:
        """Only for transcripts with speakers (a Conversation's)."""
        return transcripts.to_rttm(self.proto, uri)

    def render(self, fmt: str, *, shape: SubtitleShape = BROADCAST, uri: str = "audio") -> str:
        return transcripts.render(self.proto, fmt, shape=shape, uri=uri)


@dataclass(frozen=True)
class Conversation(_Result):
    """A speaker-attributed transcript (TranscribeConversation), with its translations."""

    proto: gateway_pb2.TranscribeConversationResponse

    @property
    def turns(self) -> list[gateway_pb2.ConversationTurn]:
        return list(self.proto.turns)

    @property
    def text(self) -> str:
        return self.proto.transcript.text

    @property
    def transcript(self) -> Transcript:
        """One segment per turn, speaker set: renders as any transcript."""
        return Transcript(self.proto.transcript)

    @property
    def translations(self) -> dict[str, Transcript]:
        return {language: Transcript(t) for language, t in transcripts.translations_by_language(self.proto).items()}

    @property
    def segments(self) -> list[transcription_pb2.Segment]:
        return self.transcript.segments

    def to_txt(self) -> str:
        return self.transcript.to_txt()

    def to_json(self) -> str:
        return transcripts.to_json(self.proto)

    def to_srt(self, shape: SubtitleShape = BROADCAST) -> str:
        return self.transcript.to_srt(shape)

    def to_vtt(self, shape: SubtitleShape = BROADCAST) -> str:
        return self.transcript.to_vtt(shape)

    def to_rttm(self) -> str:
        return self.proto.rttm

    def render(self, fmt: str, *, shape: SubtitleShape = BROADCAST, uri: str = "audio") -> str:
        if fmt == "rttm":
            return self.proto.rttm
        return self.transcript.render(fmt, shape=shape, uri=uri)


@dataclass(frozen=True)
class Diarization(_Result):
    proto: diarization_pb2.DiarizeResponse

    @property
    def turns(self) -> list[diarization_pb2.SpeakerTurn]:
        return list(self.proto.turns)

    @property
    def speakers(self) -> list[str]:
        return [s.speaker for s in self.proto.speakers]

    def to_rttm(self) -> str:
        return self.proto.rttm


@dataclass(frozen=True)
class SpeechTranslation(_Result):
    """TranslateSpeech: `.text` is what was said (as in the message), `.translated_text`
    its translation, `.translated` the translation as a transcript."""

    proto: gateway_pb2.TranslateSpeechResponse

    @property
    def text(self) -> str:
        return self.proto.text

    @property
    def translated_text(self) -> str:
        return self.proto.translated_text

    @property
    def translated(self) -> Transcript:
        """The translation as a transcript (source timings, no words): for subtitles."""
        response = transcription_pb2.TranscribeResponse(
            text=self.proto.translated_text, language=self.proto.target_language,
            audio_duration_s=self.proto.audio_duration_s)
        for segment, text in zip(self.proto.segments, self.proto.translated_segments, strict=False):
            copy = response.segments.add()
            copy.CopyFrom(segment)
            copy.text = text
            del copy.words[:]
        return Transcript(response)

    def to_srt(self, shape: SubtitleShape = BROADCAST) -> str:
        return self.translated.to_srt(shape)

    def to_vtt(self, shape: SubtitleShape = BROADCAST) -> str:
        return self.translated.to_vtt(shape)


@dataclass(frozen=True)
class TextTranslation(_Result):
    proto: translation_pb2.TranslateTextResponse

    @property
    def texts(self) -> list[str]:
        return [t.text for t in self.proto.translations]

    @property
    def text(self) -> str:
        return "\n".join(self.texts)
