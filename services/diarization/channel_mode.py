"""Channel mode: one speaker per channel (a microphone per party), without the neural pipeline.

At a counter with a microphone for the agent and one for the visitor, "who spoke when" is
"which channel carries speech when". Two steps:

1. Voice activity per channel with Silero VAD (the small ONNX model faster-whisper ships
   and the transcription service already uses): speech, not just energy, so a door or
   keyboard near one microphone is not a turn.
2. Cross-talk removal: each microphone also picks up the other party, quieter. A frame
   of channel c counts as speech only where c's level, relative to c's own loud speech,
   is within `bleed_margin_db` of the loudest other channel's. When both talk at once,
   both are near their own level and both count (an overlap, as it should be).

Runs in a few milliseconds per second of audio per channel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from parlons.services.common.audio import TARGET_RATE, DecodedAudio
from parlons.errors import Cancelled, InvalidArgument, InvalidAudio
from parlons.services.diarization.options import ChannelModeConfig, DiarizationConfig
from parlons.services.diarization.results import DiarizationResult, finish

FRAME_S: Final = 0.01  # energy frame hop
_WINDOW: Final = 3  # energy window, in hops (30 ms)
_SILENT_DB: Final = -100.0


@dataclass(frozen=True)
class ChannelTurn:
    start: float
    end: float
    channel: int


def _frame_levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(channels, frames) RMS level in dB of 30-ms windows every 10 ms."""
    hop = int(round(FRAME_S * sample_rate))
    channels, n = samples.shape
    frames = max(1, int(np.ceil(n / hop)))
    padded = np.zeros((channels, (frames + _WINDOW) * hop), dtype=np.float64)
    padded[:, :n] = samples
    power = (padded.reshape(channels, -1, hop) ** 2).mean(axis=2)
    # moving average over _WINDOW hops, centred
    kernel = np.ones(_WINDOW) / _WINDOW
    smoothed = np.stack([np.convolve(p, kernel, mode="same") for p in power])[:, :frames]
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(smoothed), _SILENT_DB)


def _vad_mask(channel: np.ndarray, sample_rate: int, frames: int, config: ChannelModeConfig) -> np.ndarray:
    """Boolean speech mask per energy frame from Silero VAD."""
    options = VadOptions(
        threshold=config.vad_threshold,
        min_speech_duration_ms=config.min_speech_ms,
        min_silence_duration_ms=config.min_silence_ms,
        speech_pad_ms=config.speech_pad_ms,
    )
    mask = np.zeros(frames, dtype=bool)
    for region in get_speech_timestamps(channel.astype(np.float32), options, sampling_rate=sample_rate):
        start = int(region["start"] / sample_rate / FRAME_S)
        end = int(np.ceil(region["end"] / sample_rate / FRAME_S))
        mask[start:end] = True
    return mask


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame ranges where mask is True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _clean(mask: np.ndarray, min_speech: int, min_silence: int) -> np.ndarray:
    """Fill gaps shorter than min_silence, then drop runs shorter than min_speech."""
    out = mask.copy()
    runs = _runs(out)
    for (_, end), (start, _) in zip(runs, runs[1:]):
        if start - end < min_silence:
            out[end:start] = True
    for start, end in _runs(out):
        if end - start < min_speech:
            out[start:end] = False
    return out


def channel_turns(samples: np.ndarray, sample_rate: int, config: ChannelModeConfig) -> list[ChannelTurn]:
    """Speech turns of each channel of (channels, n) float32 audio, sorted by start."""
    channels, n = samples.shape
    if n == 0:
        return []
    levels = _frame_levels(samples, sample_rate)
    frames = levels.shape[1]
    speech = np.stack([_vad_mask(samples[c], sample_rate, frames, config) for c in range(channels)])
    if channels > 1:
        # each channel's own loud-speech level: the 95th percentile of its speech frames
        reference = np.array([
            np.percentile(levels[c][speech[c]], 95) if speech[c].any() else 0.0 for c in range(channels)
        ])
        relative = levels - reference[:, None]
        for c in range(channels):
            others = np.delete(relative, c, axis=0).max(axis=0)
            speech[c] &= relative[c] >= others - config.bleed_margin_db
    min_speech = int(round(config.min_speech_ms / 1000 / FRAME_S))
    min_silence = int(round(config.min_silence_ms / 1000 / FRAME_S))
    duration = n / sample_rate
    turns = []
    for c in range(channels):
        for start, end in _runs(_clean(speech[c], min_speech, min_silence)):
            turns.append(ChannelTurn(start * FRAME_S, min(end * FRAME_S, duration), c))
    return sorted(turns, key=lambda t: (t.start, t.channel))


def speaker_name(channel: int, names: Sequence[str]) -> str:
    """The caller's name for a channel, else SPEAKER_00, SPEAKER_01... (as the gateway)."""
    return names[channel] if channel < len(names) and names[channel] else f"SPEAKER_{channel:02d}"


def diarize_channels(
    audio: DecodedAudio,
    config: DiarizationConfig | None = None,
    *,
    speaker_names: Sequence[str] = (),
    cancel: threading.Event | None = None,
) -> DiarizationResult:
    """Channel mode without loading any neural model (usable before/without the engine)."""
    started = time.perf_counter()
    config = config or DiarizationConfig()
    limit = config.channel_mode.max_channels
    if audio.channels < 2:
        raise InvalidArgument(
            "channel mode needs one channel per speaker (2 or more channels); this audio has "
            "1 channel: use the neural mode"
        )
    if audio.channels > limit:
        raise InvalidArgument(f"channel mode takes at most {limit} channels; this audio has {audio.channels}")
    if audio.sample_rate != TARGET_RATE:
        raise InvalidAudio(f"diarisation needs {TARGET_RATE} Hz audio, got {audio.sample_rate} Hz")
    if cancel is not None and cancel.is_set():
        raise Cancelled("diarisation cancelled")
    raw = [
        (t.start, t.end, speaker_name(t.channel, speaker_names), t.channel)
        for t in channel_turns(audio.samples, audio.sample_rate, config.channel_mode)
    ]
    return finish(raw, audio.duration_s, started, "channel")
