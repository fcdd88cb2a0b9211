"""A file with the VAD filter, decoded speech chunk by speech chunk in cut windows.

Speech chunks are joined into groups of at most 30 s (as faster-whisper's
`collect_chunks`, whose metadata loses the first chunk of every group after the first: not
used), each group decoded in a window cut to its length, times mapped back to the file
(`restore_speech_timestamps`). A file with less than 30 s of speech costs one short window
instead of a full one. Measured: one window per chunk instead is slower on meetings (many
sub-second chunks, each its own decode) and no more accurate (docs/transcription.md).
The language, when not given, is identified once on the first group, as faster-whisper
does on the first 30 s of speech; the previous group's tokens prompt the next when
`condition_on_previous_text`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from faster_whisper.transcribe import restore_speech_timestamps
from faster_whisper.vad import VadOptions, get_speech_timestamps

from parlons.audio_constants import SAMPLE_RATE
from parlons.languages import tag_of_whisper
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.results import Segment, collect_segments, raise_if_cancelled
from parlons.services.transcription.window import WINDOW_S, loops

if TYPE_CHECKING:
    from parlons.services.transcription.engine import TranscriptionEngine

# Whisper keeps at most this many prompt tokens (half its 448-token context).
_PROMPT_TOKENS = 223


def transcribe_speech_chunks(
    engine: TranscriptionEngine,
    samples: np.ndarray,
    options: TranscriptionOptions,
    channel: int,
    cancel: threading.Event | None,
) -> tuple[list[Segment], str, float, float]:
    """(segments, BCP-47 language, its probability, seconds of speech) of one channel."""
    chunks = get_speech_timestamps(
        samples,
        VadOptions(min_silence_duration_ms=options.vad_min_silence_ms, max_speech_duration_s=WINDOW_S),
    )
    if not chunks:
        return [], ("en" if not engine.is_multilingual else ""), 0.0, 0.0
    grouped = group_chunks(chunks, int(WINDOW_S * SAMPLE_RATE))
    language, probability = options.model_language, 1.0
    first = None  # the first group's encoding, when identification made it
    if language is None and engine.is_multilingual:
        first, language, probability, _ = engine.identify(_joined(samples, grouped[0]), options.model_candidates)
    tag = tag_of_whisper(language or "en")
    segments: list[Segment] = []
    previous: list[int] = []
    pending = [(group, first if number == 0 else None) for number, group in enumerate(grouped)]
    while pending:
        raise_if_cancelled(cancel)
        chunk_group, encoded = pending.pop(0)
        raw = engine.decode_clip(_joined(samples, chunk_group), options, language, prompt_tokens=previous or None, encoded=encoded)
        looped = next((i for i, segment in enumerate(raw) if loops([segment])), None)
        if looped is not None:
            # Keep what came before the loop and decode the rest of the group anew
            # (a loop that opens the clip is skipped): a fresh window rarely loops.
            resume = raw[looped].start if looped > 0 else raw[looped].end
            rest = chunks_after(chunk_group, int(resume * SAMPLE_RATE))
            if rest:
                pending.insert(0, (rest, None))
            raw = raw[:looped]
        restored = list(restore_speech_timestamps(raw, chunk_group, SAMPLE_RATE))
        segments.extend(
            collect_segments(restored, channel, tag, probability, 0.0, samples.shape[0] / SAMPLE_RATE, cancel)
        )
        previous = _next_prompt(engine, options, raw, previous)
    kept = sum(c["end"] - c["start"] for c in chunks)  # the groups hold every chunk once
    return segments, tag, float(probability), kept / SAMPLE_RATE


def _joined(samples: np.ndarray, chunks: list[dict[str, int]]) -> np.ndarray:
    """The speech of a group of chunks, one after the other."""
    return np.concatenate([samples[c["start"] : c["end"]] for c in chunks])


def _next_prompt(engine: TranscriptionEngine, options: TranscriptionOptions, raw: list[Any],
                 previous: list[int]) -> list[int]:
    """The prompt of the next group: the initial prompt and the text so far (at most
    223 tokens, Whisper's prompt half), reset after a high-temperature decode."""
    if not options.condition_on_previous_text or any((s.temperature or 0.0) > 0.5 for s in raw):
        return engine.initial_prompt_tokens(options) or []
    tokens = previous or (engine.initial_prompt_tokens(options) or [])
    for segment in raw:
        tokens = tokens + list(segment.tokens)
    return tokens[-_PROMPT_TOKENS:]


def group_chunks(chunks: list[dict[str, int]], max_samples: int) -> list[list[dict[str, int]]]:
    """Consecutive speech chunks in groups of at most `max_samples` (each chunk is at
    most that long itself: the VAD cuts longer speech)."""
    groups: list[list[dict[str, int]]] = []
    size = 0
    for chunk in chunks:
        length = chunk["end"] - chunk["start"]
        if not groups or size + length > max_samples:
            groups.append([])
            size = 0
        groups[-1].append(chunk)
        size += length
    return groups


def chunks_after(chunks: list[dict[str, int]], offset: int) -> list[dict[str, int]]:
    """The speech chunks of a group from `offset` samples of its joined audio on (the
    chunk that holds it cut there); nothing when less than 0.5 s is left."""
    rest: list[dict[str, int]] = []
    for chunk in chunks:
        length = chunk["end"] - chunk["start"]
        if offset < length:
            rest.append({"start": chunk["start"] + max(0, offset), "end": chunk["end"]})
        offset -= length
    left = sum(c["end"] - c["start"] for c in rest)
    return rest if left >= SAMPLE_RATE // 2 else []


__all__ = ["chunks_after", "group_chunks", "transcribe_speech_chunks"]
