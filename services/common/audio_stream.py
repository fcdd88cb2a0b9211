"""Live compressed audio: a streamed Ogg/Opus or WebM/Opus container decoded as it arrives.

Browsers' MediaRecorder sends WebM/Opus (Chromium) or Ogg/Opus (Firefox) in small pieces;
at 24-32 kbit/s that is ten to twenty times less than raw PCM on a counter's network.

FFmpeg's demuxers pull bytes from a file; a live stream has only the bytes sent so far.
So the demuxer runs in a thread of its own over a blocking pipe: `feed` appends bytes
and waits until the demuxer has consumed them all (it then blocks for more), so each
call returns every sample the bytes sent so far can give: no extra latency, and the
same samples as decoding the whole file at once. `flush` closes the pipe (end of
stream) and returns the rest. Memory is bounded: at most `max_buffered_bytes` wait in
the pipe, and the decoded samples are handed out at each call.

Bad input: data that is not the declared container, or that breaks mid-stream, raises
InvalidAudio at the next call; the thread always ends (closing the pipe ends it).
"""

from __future__ import annotations

import io
import threading
from typing import Final

import av
import av.error
import numpy as np

from parlons.services.common.audio import (
    ALLOWED_DEMUXERS,
    HARD_MAX_CHANNELS,
    TARGET_RATE,
    check_finite,
    concat_channels,
    container_frames,
    resampled_frames,
)
from parlons.errors import InvalidAudio

# Container name on the wire -> FFmpeg demuxer.
STREAM_CONTAINERS: Final = {"ogg": "ogg", "webm": "matroska"}
_WAIT_S: Final = 5.0  # longest wait for the demuxer to take what was fed (CPU starved)


class _BlockingPipe(io.RawIOBase):
    """A byte pipe whose reader blocks until data arrives or the pipe is closed."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self._data = bytearray()
        self._eof = False
        self._waiting = False
        self._max = max_bytes
        self._cond = threading.Condition()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        with self._cond:
            while not self._data and not self._eof:
                self._waiting = True
                self._cond.notify_all()
                self._cond.wait()
            self._waiting = False
            n = min(len(buffer), len(self._data))
            buffer[:n] = self._data[:n]
            del self._data[:n]
            return n

    def write_bytes(self, data: bytes) -> None:
        with self._cond:
            if len(self._data) + len(data) > self._max:
                raise InvalidAudio(
                    f"the compressed stream is not being decoded fast enough "
                    f"(over {self._max // 1024} KiB waiting); send smaller chunks"
                )
            self._data.extend(data)
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_drained(self, timeout: float, finished: threading.Event) -> None:
        """Until the reader has taken everything and waits for more (or has ended)."""
        with self._cond:
            self._cond.wait_for(
                lambda: (not self._data and self._waiting) or finished.is_set(), timeout
            )


class ContainerStreamDecoder:
    """Incremental decoder of a streamed container (see module docstring). One per
    stream, not thread-safe; `close` ends its thread (always call it)."""

    def __init__(
        self,
        container: str,
        *,
        target_rate: int = TARGET_RATE,
        keep_channels: bool = False,
        max_channels: int = HARD_MAX_CHANNELS,
        max_buffered_bytes: int = 4 << 20,
    ) -> None:
        if container not in STREAM_CONTAINERS:
            raise InvalidAudio(f"unknown streamed container {container!r}")
        self.container = container
        self.target_rate = target_rate
        self.keep_channels = keep_channels
        self.max_channels = max_channels
        self.decoded_samples = 0  # per channel, at target_rate, handed out or waiting
        self.channels = 0  # of the decoded output, once there is some
        self._pipe = _BlockingPipe(max_buffered_bytes)
        self._parts: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._error: InvalidAudio | None = None
        self._fed = 0
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{container}-demux", daemon=True)
        self._thread.start()

    @property
    def decoded_seconds(self) -> float:
        return self.decoded_samples / self.target_rate

    @property
    def out_channels(self) -> int:
        return max(self.channels, 1)

    def feed(self, data: bytes) -> np.ndarray:
        """Add bytes; returns the samples decoded so far, (channels, n) float32."""
        self._raise_error()
        if data:
            self._fed += len(data)
            self._pipe.write_bytes(data)
            self._pipe.wait_drained(_WAIT_S, self._finished)
        return self._take()

    def flush(self) -> np.ndarray:
        """End of stream: the rest of the samples. A stream from which nothing could be
        decoded is InvalidAudio."""
        self._pipe.end()
        self._thread.join(_WAIT_S)
        out = self._take()
        if self._fed and self.decoded_samples == 0 and self._error is None:
            self._error = InvalidAudio(f"no audio could be decoded from the streamed {self.container} data")
        self._raise_error()
        return out

    def close(self) -> None:
        self._pipe.end()
        self._thread.join(_WAIT_S)

    # -- the demuxer thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._demux()
        except InvalidAudio as exc:
            self._error = exc
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            self._error = InvalidAudio(
                f"the streamed data is not valid {self.container}/Opus audio "
                f"({getattr(exc, 'strerror', None) or type(exc).__name__}); "
                "send the bytes MediaRecorder produces, from the first one"
            )
        finally:
            self._finished.set()
            self._pipe.end()  # also wakes a feed() waiting for the drain

    def _demux(self) -> None:
        try:
            container = av.open(
                self._pipe,
                mode="r",
                format=STREAM_CONTAINERS[self.container],
                metadata_errors="ignore",
                options={"format_whitelist": ",".join(ALLOWED_DEMUXERS)},
            )
        except av.error.FFmpegError as exc:
            if not self._fed:
                return  # closed before any byte: an empty stream, nothing to decode
            raise exc
        with container:
            if not container.streams.audio:
                raise InvalidAudio(f"the streamed {self.container} data has no audio track")
            frames = container_frames(container, container.streams.audio[0], truncated_ok=False)
            for part in resampled_frames(frames, self.target_rate, self.keep_channels, None, self.max_channels):
                with self._lock:
                    self._parts.append(part)
                    self.channels = part.shape[0]
                    self.decoded_samples += part.shape[1]

    def _take(self) -> np.ndarray:
        with self._lock:
            parts, self._parts = self._parts, []
        out = concat_channels(parts, self.out_channels)
        check_finite(out)
        return out

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
