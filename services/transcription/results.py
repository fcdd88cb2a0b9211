"""What the transcription engine returns: plain dataclasses (no gRPC, no model), and the
one place faster-whisper's lazy segments become them."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from parlons.errors import Cancelled
from parlons.languages import LanguageTag


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """One transcribed segment; times in seconds from the start of the audio."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    language: str  # BCP-47
    language_probability: float
    channel: int = 0
    words: tuple[Word, ...] = ()
    temperature: float | None = None


@dataclass(frozen=True)
class TranscriptionResult:
    segments: tuple[Segment, ...]
    # BCP-47; the language of the channel with the most speech ("" when nothing could be
    # identified: no samples, or no speech in per-segment mode)
    language: str
    language_probability: float
    duration_s: float
    processing_s: float
    model: str = ""
    duration_after_vad_s: float | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def real_time_factor(self) -> float:
        return self.processing_s / self.duration_s if self.duration_s else 0.0


@dataclass(frozen=True)
class LanguageDetection:
    language: LanguageTag
    probability: float
    all_probabilities: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ModelInfo:
    """What ListModels / ListLanguages report about the loaded model."""

    name: str
    path: str
    device: str
    compute_type: str
    multilingual: bool
    languages: tuple[str, ...]  # BCP-47
    batched: bool
    load_s: float
    dynamic_context: bool = True


def raise_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the transcription was cancelled")


def collect_segments(
    generator: Iterable[Any],
    channel: int,
    language: str,
    probability: float,
    offset: float,
    limit: float,
    cancel: threading.Event | None,
) -> list[Segment]:
    """Drain faster-whisper's lazy generator, checking `cancel` between segments.

    Times are shifted by `offset` and clamped to `limit` (the end of the audio):
    Whisper's timestamps can run past the end of a short clip."""

    def at(t: float) -> float:
        return round(min(float(t) + offset, limit), 3)

    segments: list[Segment] = []
    try:
        for raw in generator:
            raise_if_cancelled(cancel)
            segments.append(
                Segment(
                    id=0,
                    start=at(raw.start),
                    end=at(raw.end),
                    text=raw.text,
                    avg_logprob=float(raw.avg_logprob),
                    no_speech_prob=float(raw.no_speech_prob),
                    compression_ratio=float(raw.compression_ratio),
                    language=language,
                    language_probability=probability,
                    channel=channel,
                    words=tuple(
                        Word(at(w.start), at(w.end), w.word, float(w.probability))
                        for w in (raw.words or ())
                    ),
                    temperature=raw.temperature,
                )
            )
    finally:
        close = getattr(generator, "close", None)
        if close is not None:
            close()
    return segments
