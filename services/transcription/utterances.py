"""Language per segment: a file split at pauses, each utterance identified and transcribed
in its own language.

Whisper itself picks one language per 30-s window, which loses the second speaker at a
bilingual counter. This costs one extra encoder pass per utterance.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from parlons.audio_constants import SAMPLE_RATE
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.results import Segment, raise_if_cancelled
from parlons.services.transcription.window import WINDOW_S

if TYPE_CHECKING:
    from parlons.services.transcription.engine import TranscriptionEngine

_TURN_SILENCE_MS: Final = 500  # a pause this long may change speaker, so language


def transcribe_utterances(
    engine: TranscriptionEngine,
    samples: np.ndarray,
    options: TranscriptionOptions,
    channel: int,
    cancel: threading.Event | None,
) -> tuple[list[Segment], str, float, float]:
    """(segments, the language spoken longest, its best probability, seconds of speech)."""
    chunks = get_speech_timestamps(
        samples,
        VadOptions(min_silence_duration_ms=_TURN_SILENCE_MS, max_speech_duration_s=WINDOW_S, speech_pad_ms=200),
    )
    segments: list[Segment] = []
    speech_by_language: dict[str, tuple[float, float]] = {}
    kept = 0
    for chunk in chunks:
        raise_if_cancelled(cancel)
        clip = samples[chunk["start"] : chunk["end"]]
        kept += clip.shape[0]
        found, language, probability = engine.transcribe_short(
            clip,
            options.with_(condition_on_previous_text=False),
            channel,
            chunk["start"] / SAMPLE_RATE,
            chunk["end"] / SAMPLE_RATE,
            cancel,
        )
        segments.extend(found)
        seconds, best = speech_by_language.get(language, (0.0, 0.0))
        speech_by_language[language] = (seconds + clip.shape[0] / SAMPLE_RATE, max(best, float(probability)))
    if not speech_by_language:  # no speech: no language either
        return [], "", 0.0, 0.0
    language = max(speech_by_language, key=lambda k: speech_by_language[k][0])
    return segments, language, speech_by_language[language][1], kept / SAMPLE_RATE


__all__ = ["transcribe_utterances"]
