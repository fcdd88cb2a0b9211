"""Diarisation results: speaker turns, per-speaker totals, RTTM; and the request checks.

No torch or pyannote here: the servicer and channel mode use these without loading the
neural pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from parlons.errors import InvalidArgument

Mode = Literal["neural", "channel"]


@dataclass(frozen=True)
class SpeakerTurn:
    """One speech turn; times in seconds from the start of the audio."""

    start: float
    end: float
    speaker: str
    # Another speaker talks during part of this turn.
    overlap: bool = False
    # Channel mode: the channel the turn came from; -1 in neural mode.
    channel: int = -1

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SpeakerSummary:
    speaker: str
    speaking_time_s: float
    turns: int
    # Named from a reference voice: its cosine similarity to that reference; 0 otherwise.
    reference_similarity: float = 0.0


@dataclass(frozen=True)
class DiarizationResult:
    turns: tuple[SpeakerTurn, ...]
    speakers: tuple[SpeakerSummary, ...]
    duration_s: float
    processing_s: float
    mode: Mode = "neural"
    # The clustering's own count and how far it holds (neural mode; channel mode: the
    # channels with speech, confidence 1).
    estimated_speakers: int = 0
    count_confidence: float = 0.0
    # Why the speakers returned differ from the estimate or from what was asked.
    count_note: str = ""
    # One speaker at a time: where turns overlap, the one whose voice dominates.
    dominant_turns: tuple[SpeakerTurn, ...] = ()

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    @property
    def speaking_time(self) -> dict[str, float]:
        return {s.speaker: s.speaking_time_s for s in self.speakers}

    @property
    def real_time_factor(self) -> float:
        return self.processing_s / self.duration_s if self.duration_s else 0.0

    def to_rttm(self, uri: str = "audio") -> str:
        """NIST RTTM, one SPEAKER line per turn (channel field: the channel in channel mode)."""
        uri = "_".join(uri.split()) or "audio"
        lines = []
        for turn in self.turns:
            channel = turn.channel + 1 if turn.channel >= 0 else 1
            lines.append(
                f"SPEAKER {uri} {channel} {turn.start:.3f} {turn.duration:.3f} "
                f"<NA> <NA> {turn.speaker} <NA> <NA>"
            )
        return "".join(line + "\n" for line in lines)


def overlap_flags(starts: np.ndarray, ends: np.ndarray, speakers: list[str]) -> list[bool]:
    """For turns sorted by start: does another speaker's turn overlap each one?"""
    flags = [False] * len(starts)
    for i in range(len(starts)):
        j = i + 1
        while j < len(starts) and starts[j] < ends[i]:
            if speakers[j] != speakers[i] and min(ends[i], ends[j]) > starts[j]:
                flags[i] = flags[j] = True
            j += 1
    return flags


def _summaries(turns: list[SpeakerTurn]) -> tuple[SpeakerSummary, ...]:
    """Per speaker: total time speaking (overlapping own turns counted once) and turn count."""
    by_speaker: dict[str, list[SpeakerTurn]] = {}
    for turn in turns:
        by_speaker.setdefault(turn.speaker, []).append(turn)
    out = []
    for speaker in sorted(by_speaker):
        total, current_end = 0.0, -1.0
        for turn in sorted(by_speaker[speaker], key=lambda t: t.start):
            start = max(turn.start, current_end)
            if turn.end > start:
                total += turn.end - start
            current_end = max(current_end, turn.end)
        out.append(SpeakerSummary(speaker, round(total, 3), len(by_speaker[speaker])))
    return tuple(out)


RawTurn = tuple[float, float, str, int]


def make_turns(raw: list[RawTurn]) -> list[SpeakerTurn]:
    """Sorted turns with their overlap flags, times rounded to the millisecond."""
    raw = sorted(raw, key=lambda t: (t[0], t[1], t[2]))
    starts = np.array([t[0] for t in raw])
    ends = np.array([t[1] for t in raw])
    flags = overlap_flags(starts, ends, [t[2] for t in raw])
    return [SpeakerTurn(round(s, 3), round(e, 3), spk, flag, ch) for (s, e, spk, ch), flag in zip(raw, flags)]


def finish(raw: list[RawTurn], duration: float, started: float, mode: Mode) -> DiarizationResult:
    turns = make_turns(raw)
    speakers = _summaries(turns)
    return DiarizationResult(tuple(turns), speakers, duration, time.perf_counter() - started, mode,
                             estimated_speakers=len(speakers), count_confidence=1.0)


def count_note(found: int, estimated: int, num: int | None, low: int | None, high: int | None) -> str:
    """Says why the speakers returned are not the clustering's own count, or not what was asked."""
    if num is not None and found != num:
        return f"num_speakers={num} was asked; the audio holds {found} distinguishable voice(s)"
    if low is not None and found < low:
        return f"min_speakers={low} was asked; the audio holds {found} distinguishable voice(s)"
    if num is not None and estimated != num:
        return f"num_speakers={num} kept; on its own the clustering finds {estimated}"
    if high is not None and estimated > high:
        return f"max_speakers={high} kept {found}; on its own the clustering finds {estimated}"
    if low is not None and estimated < low:
        return f"min_speakers={low} kept {found}; on its own the clustering finds {estimated}"
    return ""


def check_speaker_counts(
    num_speakers: int | None, min_speakers: int | None, max_speakers: int | None
) -> tuple[int | None, int | None, int | None]:
    """Validate the speaker-count options; 0 means "not given" (proto3 default)."""
    values = {"num_speakers": num_speakers, "min_speakers": min_speakers, "max_speakers": max_speakers}
    for name, value in values.items():
        if value is not None and value < 0:
            raise InvalidArgument(f"{name} must be >= 0 (0 = not set), got {value}")
    num, low, high = (v or None for v in values.values())
    if low is not None and high is not None and high < low:
        raise InvalidArgument(f"max_speakers ({high}) is below min_speakers ({low})")
    if num is not None and ((low is not None and num < low) or (high is not None and num > high)):
        raise InvalidArgument(
            f"num_speakers ({num}) contradicts min_speakers/max_speakers ({low}..{high}); set one or the other"
        )
    return num, low, high
