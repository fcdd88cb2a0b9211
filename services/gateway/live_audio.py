"""A LiveConversation's client audio cut into each lane's PCM (LINEAR16, 16 kHz, mono).

Why not always decode: a desk that sends LINEAR16 at 16 kHz already sends what the
transcription streams take. Decoding it to float, splitting the channels and re-encoding
each one cost a PyAV decode and a float round trip per chunk (and rescaled every sample by
32767/32768) only to forward the same samples. So one channel per party is cut from the
interleaved int16 directly, and a mono stream goes to its lane as it came; the shared
microphone's voice window still gets float samples (int16 / 32768, what the decoder
gives). Other encodings and rates, and a shared microphone mixed from several channels,
are decoded (PyAV, resampled to 16 kHz) as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from parlons.audio_constants import SAMPLE_RATE as RATE
from parlons.services.common.audio_request import StreamAudioDecoder, raw_format
from parlons.v1 import audio_pb2

_INT16_SCALE = np.float32(1 / 32768)  # exact in float32, as FFmpeg converts s16 to flt


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


@dataclass(frozen=True)
class LaneChunk:
    """What one client chunk gives: the bytes of each lane (b"" while nothing is ready),
    and the shared microphone's float samples for its voice window (None without one)."""

    lanes: list[bytes]
    mono: np.ndarray | None


class LaneAudio:
    """The client's audio as declared in its config, for lanes that each take one channel
    (0, 1, ...) or the mix of all (-1, a shared microphone). Not thread-safe."""

    def __init__(self, config: audio_pb2.AudioConfig, channels: Sequence[int]) -> None:
        self.channels = list(channels)
        fmt = raw_format(config)
        forward = (
            fmt is not None
            and fmt.encoding == "s16le"
            and fmt.sample_rate == RATE
            and (fmt.channels == 1 or all(c >= 0 for c in self.channels))
        )
        self._channels = fmt.channels if fmt is not None else 0
        self._pending = bytearray()  # a partial frame, when forwarding
        self._forwarded_s = 0.0
        self._decoder = None if forward else StreamAudioDecoder(config, keep_channels=True)

    @property
    def decodes(self) -> bool:
        """Whether chunks are decoded (blocking work, for a worker thread)."""
        return self._decoder is not None

    @property
    def decoded_seconds(self) -> float:
        """Seconds of client audio taken so far (what quotas charge)."""
        return self._decoder.decoded_seconds if self._decoder is not None else self._forwarded_s

    def feed(self, data: bytes) -> LaneChunk:
        if self._decoder is not None:
            return self._split(self._decoder.decode(data))
        frame = 2 * self._channels
        if not self._pending and len(data) % frame == 0:
            block = data  # the usual case: whole frames, forwarded without a copy
        else:
            self._pending.extend(data)
            usable = len(self._pending) - len(self._pending) % frame
            block = bytes(self._pending[:usable])
            del self._pending[:usable]
        if not block:
            return self._empty()
        self._forwarded_s += len(block) / frame / RATE
        samples = np.frombuffer(block, dtype="<i2")
        if self._channels == 1:
            mono = samples * _INT16_SCALE if -1 in self.channels else None
            return LaneChunk([block] * len(self.channels), mono)
        frames = samples.reshape(-1, self._channels)
        return LaneChunk([frames[:, c].tobytes() for c in self.channels], None)

    def flush(self) -> LaneChunk:
        """End of the stream: the decoder's tail (a trailing partial frame is dropped)."""
        self._pending.clear()
        return self._split(self._decoder.flush()) if self._decoder is not None else self._empty()

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()

    def _split(self, samples: np.ndarray) -> LaneChunk:
        """Decoded (channels, n) float32 samples -> each lane's PCM16."""
        if samples.shape[-1] == 0:
            return self._empty()
        mono: np.ndarray | None = None
        lanes = []
        for channel in self.channels:
            if channel == -1:
                mono = samples.mean(axis=0) if samples.shape[0] > 1 else samples[0]
                lanes.append(pcm16(mono))
            else:
                lanes.append(pcm16(samples[channel]))
        return LaneChunk(lanes, mono)

    def _empty(self) -> LaneChunk:
        return LaneChunk([b""] * len(self.channels), None)
