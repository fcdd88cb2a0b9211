"""Audio decoding for every service: any container/codec PyAV reads, or raw PCM, to float32.

One decoder for the whole suite so that limits (duration, channels) and error messages are
the same everywhere. Design choices, each for a reason:

* Input is bytes in memory (what a gRPC request carries); nothing is written to disk.
* Only a whitelist of demuxers is allowed. FFmpeg's probing would otherwise accept
  playlists and concat scripts (``ffconcat``/HLS) that make it open *other* files on the
  server: an uploaded 20-byte text file could read local audio files.
* Channels are resampled as they are (packed float) and downmixed with a plain mean in
  NumPy. swresample refuses to downmix layouts it cannot name ("3 channels"), and PyAV 18
  crashes on planar frames with 8 channels, so the packed path is also the safe one.
* Truncated files decode what is there (a WAV whose header claims more data than the file
  holds is the common case of an interrupted upload); a file from which not a single frame
  decodes is an error.
* ``max_duration_s`` is enforced while decoding, so a 10-hour file is rejected after
  decoding just past the limit, never held whole in memory; so is ``max_decoded_bytes``
  (samples x channels kept, 1 GiB by default: 4 h of 8 channels would be 7.4 GB).
* Below 8 kHz there is no speech to recognise, and a 1-Hz header would turn a few KB
  into hundreds of MB of resampled audio: such rates are refused before decoding.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, cast

import av
import av.error
import numpy as np
from parlons.audio_constants import SAMPLE_RATE as TARGET_RATE
from parlons.errors import InvalidAudio

MIN_SAMPLE_RATE: Final = 8000
MIN_RAW_RATE: Final = MIN_SAMPLE_RATE
MAX_RAW_RATE: Final = 192000
# Decoded float32 samples (all channels kept) one request may hold.
DEFAULT_MAX_DECODED_BYTES: Final = 1 << 30
# PyAV 18 handles up to 8 channels safely (see module docstring); more is refused.
HARD_MAX_CHANNELS: Final = 8

# Demuxers allowed for container input. Anything that can reference other files or URLs
# (concat, hls, dash, image2, ...) is absent on purpose.
ALLOWED_DEMUXERS: Final = (
    "wav", "w64", "flac", "mp3", "ogg", "aiff", "mov", "matroska", "webm", "aac", "ac3",
    "eac3", "amr", "amrnb", "amrwb", "caf", "au", "wv", "ape", "tta", "voc", "asf", "avi",
    "mpegts", "mpeg", "flv", "dts", "gsm", "mpc", "mpc8", "tak", "sox", "dsf", "wsaud",
)


@dataclass(frozen=True)
class RawEncoding:
    """A raw PCM sample encoding: the FFmpeg decoder and its bytes per sample."""

    codec: str
    bytes_per_sample: int


RAW_ENCODINGS: Final[dict[str, RawEncoding]] = {
    "s16le": RawEncoding("pcm_s16le", 2),
    "s24le": RawEncoding("pcm_s24le", 3),
    "s32le": RawEncoding("pcm_s32le", 4),
    "f32le": RawEncoding("pcm_f32le", 4),
    "u8": RawEncoding("pcm_u8", 1),
    "mulaw": RawEncoding("pcm_mulaw", 1),
    "alaw": RawEncoding("pcm_alaw", 1),
}


@dataclass(frozen=True)
class RawPcmFormat:
    """Headerless PCM as declared by the client: encoding, sample rate, channel count.

    Interleaved samples, little-endian. Validated on construction (InvalidAudio), so a
    servicer can build it straight from a request.
    """

    encoding: str = "s16le"
    sample_rate: int = TARGET_RATE
    channels: int = 1

    def __post_init__(self) -> None:
        if self.encoding not in RAW_ENCODINGS:
            raise InvalidAudio(
                f"unknown raw PCM encoding {self.encoding!r}; "
                f"use one of {', '.join(RAW_ENCODINGS)}"
            )
        if not MIN_RAW_RATE <= self.sample_rate <= MAX_RAW_RATE:
            raise InvalidAudio(
                f"raw PCM sample rate {self.sample_rate} Hz is out of range "
                f"({MIN_RAW_RATE}..{MAX_RAW_RATE} Hz)"
            )
        if self.channels < 1:
            raise InvalidAudio(f"raw PCM must have at least 1 channel, got {self.channels}")

    @property
    def frame_bytes(self) -> int:
        """Bytes in one sample frame (one sample of every channel)."""
        return RAW_ENCODINGS[self.encoding].bytes_per_sample * self.channels


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded audio: float32 samples in [-1, 1], shape (channels, n); mono is (1, n)."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    container: str = "array"
    codec: str = "float32"

    @classmethod
    def from_array(cls, samples: np.ndarray, sample_rate: int = TARGET_RATE) -> DecodedAudio:
        """Wrap samples already at `sample_rate` (1-D mono or (channels, n))."""
        arr = np.asarray(samples, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[np.newaxis, :]
        if arr.ndim != 2:
            raise ValueError(f"samples must be 1-D or (channels, n), got shape {arr.shape}")
        return cls(arr, sample_rate, sample_rate, arr.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def peak(self) -> float:
        """Largest absolute sample value: 0.0 means digital silence."""
        return float(np.max(np.abs(self.samples))) if self.samples.size else 0.0

    def mono(self) -> np.ndarray:
        """1-D mono samples (mean of the channels), what Whisper takes."""
        if self.channels == 1:
            return self.samples[0]
        return self.samples.mean(axis=0, dtype=np.float32)

    def channel(self, index: int) -> np.ndarray:
        return self.samples[index]


def decode_audio(
    data: bytes,
    *,
    target_rate: int = TARGET_RATE,
    keep_channels: bool = False,
    raw: RawPcmFormat | None = None,
    max_duration_s: float | None = None,
    max_channels: int = HARD_MAX_CHANNELS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> DecodedAudio:
    """Decode a whole file (container) or raw PCM to float32 at `target_rate`.

    Channels are kept when `keep_channels`, otherwise downmixed to mono by their mean.
    Raises InvalidAudio with a message a person can act on for any input it cannot serve.
    """
    max_channels = _check_max_channels(max_channels)
    if not data:
        raise InvalidAudio("the audio is empty (0 bytes)")
    limits = _Limits(max_duration_s, max_channels, max_decoded_bytes // 4)
    if raw is not None:
        return _decode_raw(bytes(data), raw, target_rate, keep_channels, limits)
    return _decode_container(bytes(data), target_rate, keep_channels, limits)


@dataclass(frozen=True)
class _Limits:
    max_duration_s: float | None
    max_channels: int
    max_samples: int  # decoded float32 samples, all kept channels together

    def check_decoded(self, samples: int, target_rate: int) -> None:
        if samples > self.max_samples:
            raise InvalidAudio(
                f"the audio decodes to more than {self.max_samples * 4 / 2**20:,.0f} MiB of samples "
                f"(about {self.max_samples / target_rate:,.0f} s of one channel at {target_rate} Hz), "
                "the server's limit; send fewer channels or a shorter file")


def _too_low_rate(rate: int) -> InvalidAudio:
    return InvalidAudio(
        f"the audio's sample rate is {rate} Hz; at least {MIN_SAMPLE_RATE} Hz is needed for speech "
        "(a corrupt header?)")


def _check_max_channels(max_channels: int) -> int:
    if not 1 <= max_channels <= HARD_MAX_CHANNELS:
        raise ValueError(f"max_channels must be in 1..{HARD_MAX_CHANNELS}, got {max_channels}")
    return max_channels


def _too_many_channels(channels: int, max_channels: int) -> InvalidAudio:
    return InvalidAudio(
        f"the audio has {channels} channels; at most {max_channels} are accepted"
    )


def _too_long(max_duration_s: float) -> InvalidAudio:
    return InvalidAudio(
        f"the audio is longer than the limit of {max_duration_s:g} s; "
        "split it or send it in several requests"
    )


class _Resampler:
    """PyAV resampler to packed float32 that keeps the channel layout of its input.

    Rebuilt when the input format changes mid-stream (chained Ogg, concatenated MP3).
    Output is (channels, n) float32, or (1, n) mean-downmixed when not keeping channels.
    """

    def __init__(self, target_rate: int, keep_channels: bool) -> None:
        self.target_rate = target_rate
        self.keep_channels = keep_channels
        self._resampler: av.AudioResampler | None = None
        self._key: tuple[str, str, int, int] | None = None
        self._channels = 0

    def push(self, frame: av.AudioFrame | None) -> Iterator[np.ndarray]:
        if frame is None:
            yield from self._flush()
            return
        channels = frame.layout.nb_channels
        key = (frame.format.name, frame.layout.name, frame.sample_rate, channels)
        if key != self._key:
            yield from self._flush()
            if self.keep_channels and self._channels and channels != self._channels:
                raise InvalidAudio(
                    f"the channel count changes mid-stream ({self._channels} -> {channels}); "
                    "per-channel processing needs a fixed channel count"
                )
            self._resampler = av.AudioResampler(
                format="flt", layout=frame.layout, rate=self.target_rate
            )
            self._key = key
            self._channels = channels
        frame.pts = None  # timestamps are irrelevant here and may be discontinuous
        assert self._resampler is not None
        for out in self._resampler.resample(frame):
            yield self._to_array(out)

    def _flush(self) -> Iterator[np.ndarray]:
        if self._resampler is None:
            return
        for out in self._resampler.resample(None):
            yield self._to_array(out)
        self._resampler = None
        self._key = None

    def _to_array(self, frame: av.AudioFrame) -> np.ndarray:
        channels = frame.layout.nb_channels
        arr = frame.to_ndarray().reshape(-1, channels).T
        if not self.keep_channels and channels > 1:
            arr = arr.mean(axis=0, dtype=np.float32, keepdims=True)
        return np.ascontiguousarray(arr, dtype=np.float32)


def concat_channels(parts: list[np.ndarray], channels: int) -> np.ndarray:
    if not parts:
        return np.zeros((channels, 0), dtype=np.float32)
    return np.concatenate(parts, axis=1)


def check_finite(arr: np.ndarray) -> None:
    if not np.isfinite(arr).all():
        raise InvalidAudio("the audio contains NaN or infinite sample values")


def _decode_container(data: bytes, target_rate: int, keep_channels: bool, limits: _Limits) -> DecodedAudio:
    try:
        container = av.open(
            io.BytesIO(data),
            mode="r",
            metadata_errors="ignore",
            options={"format_whitelist": ",".join(ALLOWED_DEMUXERS)},
        )
    except av.error.ArgumentError as exc:
        raise InvalidAudio(
            "the data is not in an accepted audio format (wav, flac, mp3, ogg/opus, aiff, "
            "m4a, webm, ...); for headerless PCM declare its encoding, rate and channels"
        ) from exc
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise InvalidAudio(
            "the data is not audio in a recognised format, or its header is corrupt "
            f"({_ffmpeg_reason(exc)}); for headerless PCM declare its encoding, rate "
            "and channels"
        ) from exc

    with container:
        if not container.streams.audio:
            raise InvalidAudio(
                f"the {container.format.name} data contains no audio stream"
            )
        stream = container.streams.audio[0]
        codec_ctx = stream.codec_context
        if codec_ctx is None:  # FFmpeg has no decoder for it (e.g. a WAV of 16-bit floats)
            raise InvalidAudio(
                f"the {container.format.name} audio uses a sample format or codec that cannot be "
                "decoded (e.g. a WAV declaring 16-bit floating point); convert it to PCM, FLAC or Opus")
        channels = codec_ctx.channels
        if channels <= 0:
            raise InvalidAudio("the audio stream declares 0 channels")
        if channels > limits.max_channels:
            raise _too_many_channels(channels, limits.max_channels)
        source_rate = codec_ctx.sample_rate
        if not source_rate or source_rate <= 0:
            raise InvalidAudio("the audio stream declares no sample rate")
        if source_rate < MIN_SAMPLE_RATE:
            raise _too_low_rate(source_rate)
        container_name = container.format.name
        codec_name = codec_ctx.name

        parts = []
        decoded = 0
        for part in resampled_frames(container_frames(container, stream), target_rate, keep_channels,
                                     limits.max_duration_s, limits.max_channels):
            decoded += part.size
            limits.check_decoded(decoded, target_rate)
            parts.append(part)

    out_channels = channels if keep_channels else 1
    samples = concat_channels(parts, out_channels)
    if samples.shape[1] == 0:
        raise InvalidAudio(
            f"no audio could be decoded from the {container_name} data: the file is "
            "truncated or corrupt"
        )
    check_finite(samples)
    return DecodedAudio(
        samples=samples,
        sample_rate=target_rate,
        source_sample_rate=source_rate,
        source_channels=samples.shape[0] if keep_channels else channels,
        container=container_name,
        codec=codec_name,
    )


def container_frames(
    container: av.container.InputContainer, stream: av.AudioStream, *, truncated_ok: bool = True
) -> Iterator[av.AudioFrame]:
    """Frames of one stream. A packet that fails to decode is skipped (as FFmpeg's CLI
    does). A demuxing error ends a file quietly (`truncated_ok`: keep what decoded, the
    file fails only if nothing did); a live stream raises it (the client should hear
    that its stream broke, not see it fall silent)."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError):
            if truncated_ok:
                return  # truncated or corrupt from here on: keep what decoded so far
            raise
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue
        yield from frames


def resampled_frames(
    frames: Iterable[av.AudioFrame],
    target_rate: int,
    keep_channels: bool,
    max_duration_s: float | None,
    max_channels: int,
) -> Iterator[np.ndarray]:
    """Resample frames, enforcing channel and duration limits as they arrive; yields
    (channels, n) float32 arrays as the resampler gives them (a live stream hands
    them out at once)."""
    resampler = _Resampler(target_rate, keep_channels)
    source_seconds = 0.0
    for frame in frames:
        if frame.layout.nb_channels > max_channels:
            raise _too_many_channels(frame.layout.nb_channels, max_channels)
        if frame.layout.nb_channels == 0 or frame.sample_rate <= 0:
            continue
        if frame.sample_rate < MIN_SAMPLE_RATE:
            raise _too_low_rate(frame.sample_rate)
        source_seconds += frame.samples / frame.sample_rate
        if max_duration_s is not None and source_seconds > max_duration_s + 1e-6:
            raise _too_long(max_duration_s)
        yield from resampler.push(frame)
    yield from resampler.push(None)


def _ffmpeg_reason(exc: BaseException) -> str:
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror).lower()
    return type(exc).__name__


def _decode_raw(data: bytes, fmt: RawPcmFormat, target_rate: int, keep_channels: bool, limits: _Limits) -> DecodedAudio:
    if fmt.channels > limits.max_channels:
        raise _too_many_channels(fmt.channels, limits.max_channels)
    if len(data) % fmt.frame_bytes:
        raise InvalidAudio(
            f"raw {fmt.encoding} audio with {fmt.channels} channel(s) needs a multiple of "
            f"{fmt.frame_bytes} bytes, got {len(data)} bytes (truncated, or wrong "
            "encoding/channels declared)"
        )
    duration = len(data) / fmt.frame_bytes / fmt.sample_rate
    if limits.max_duration_s is not None and duration > limits.max_duration_s:
        raise _too_long(limits.max_duration_s)
    limits.check_decoded(round(duration * target_rate) * (fmt.channels if keep_channels else 1), target_rate)
    decoder = PcmStreamDecoder(
        fmt, target_rate=target_rate, keep_channels=keep_channels, max_channels=limits.max_channels
    )
    samples = np.concatenate([decoder.feed(data), decoder.flush()], axis=1)
    return DecodedAudio(
        samples=samples,
        sample_rate=target_rate,
        source_sample_rate=fmt.sample_rate,
        source_channels=fmt.channels,
        container="raw",
        codec=RAW_ENCODINGS[fmt.encoding].codec,
    )


@dataclass
class PcmStreamDecoder:
    """Incremental decoder for live raw PCM: bytes in any chunking -> float32 at 16 kHz.

    Chunks need not align with sample frames; a partial frame is kept for the next
    chunk. `feed` returns (channels, n) float32 ((1, n) when downmixing) and may return
    fewer samples than fed while the resampler fills; `flush` returns the rest at the end
    of the stream. Not thread-safe: one decoder per stream.
    """

    fmt: RawPcmFormat
    target_rate: int = TARGET_RATE
    keep_channels: bool = False
    max_channels: int = HARD_MAX_CHANNELS
    dropped_bytes: int = field(default=0, init=False)
    decoded_seconds: float = field(default=0.0, init=False)
    _pending: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _codec: av.AudioCodecContext = field(init=False, repr=False)
    _resampler: _Resampler = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_max_channels(self.max_channels)
        if self.fmt.channels > self.max_channels:
            raise _too_many_channels(self.fmt.channels, self.max_channels)
        codec = cast(av.AudioCodecContext, av.CodecContext.create(RAW_ENCODINGS[self.fmt.encoding].codec, "r"))
        codec.sample_rate = self.fmt.sample_rate
        codec.layout = _layout_for(self.fmt.channels)
        self._codec = codec
        self._resampler = _Resampler(self.target_rate, self.keep_channels)

    @property
    def out_channels(self) -> int:
        return self.fmt.channels if self.keep_channels else 1

    def feed(self, data: bytes) -> np.ndarray:
        """Decode one chunk of raw bytes; returns the float32 samples ready so far."""
        self._pending.extend(data)
        usable = len(self._pending) - len(self._pending) % self.fmt.frame_bytes
        if usable == 0:
            return np.zeros((self.out_channels, 0), dtype=np.float32)
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        self.decoded_seconds += usable / self.fmt.frame_bytes / self.fmt.sample_rate
        parts: list[np.ndarray] = []
        for frame in self._codec.decode(av.Packet(chunk)):
            parts.extend(self._resampler.push(frame))
        out = concat_channels(parts, self.out_channels)
        check_finite(out)
        return out

    def flush(self) -> np.ndarray:
        """End of stream: the resampler's tail. A trailing partial frame is dropped and
        counted in `dropped_bytes` (a live stream cut mid-frame is not worth failing)."""
        self.dropped_bytes += len(self._pending)
        self._pending.clear()
        parts = list(self._resampler.push(None))
        return concat_channels(parts, self.out_channels)


def _layout_for(channels: int) -> str:
    """FFmpeg's default layout name for a channel count (interleaved order as sent)."""
    names = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
    return names[channels]
