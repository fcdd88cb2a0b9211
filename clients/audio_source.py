"""Live audio for the streaming RPCs: a file played at real-time pace, or a microphone.

Both give 16-bit little-endian mono PCM at 16 kHz in chunks of `chunk_ms`, which is what
`LIVE_AUDIO_CONFIG` declares. A file is decoded with PyAV (any format FFmpeg reads); the
microphone needs the optional `sounddevice` package (`pip install sounddevice`, and the
system's PortAudio), imported only when asked for.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from collections.abc import Iterator

import av
import numpy as np

from parlons.audio_constants import SAMPLE_RATE as RATE
from parlons.v1 import audio_pb2

LIVE_AUDIO_CONFIG = audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=RATE, channels=1)


def file_pcm(path: str | Path) -> bytes:
    """The whole file as 16 kHz mono s16le."""
    pieces: list[np.ndarray] = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            pieces.append(out.to_ndarray().reshape(-1))
    return np.concatenate(pieces).astype("<i2").tobytes() if pieces else b""


def file_chunks(path: str | Path, *, chunk_ms: int = 100, realtime: bool = True,
                trailing_silence_ms: int = 1000) -> Iterator[bytes]:
    """The file in chunks, each sent when it would have been spoken (`realtime`), then a
    little silence so the last utterance ends."""
    pcm = file_pcm(path) + b"\0\0" * (RATE * trailing_silence_ms // 1000)
    step = RATE * chunk_ms // 1000 * 2
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(pcm), step)):
        if realtime:
            wait = started + index * chunk_ms / 1000 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        yield pcm[offset : offset + step]


def microphone_chunks(*, chunk_ms: int = 100, device: str | int | None = None) -> Iterator[bytes]:
    """The default (or named) input device, until the consumer stops iterating."""
    try:
        import sounddevice  # type: ignore[import-not-found]
    except (ImportError, OSError) as exc:
        raise RuntimeError(
            "the microphone needs the sounddevice package and PortAudio: pip install sounddevice "
            f"(and apt-get install libportaudio2); or stream a file instead ({exc})") from exc
    frames: queue.Queue[bytes] = queue.Queue(maxsize=100)

    def collect(data, _frames, _time, _status):  # type: ignore[no-untyped-def]
        try:
            frames.put_nowait(bytes(data))
        except queue.Full:  # the consumer is behind: drop rather than grow
            pass

    with sounddevice.RawInputStream(samplerate=RATE, channels=1, dtype="int16", device=device,
                                    blocksize=RATE * chunk_ms // 1000, callback=collect):
        while True:
            yield frames.get()
