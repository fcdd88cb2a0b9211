"""From a request's AudioConfig + bytes to decoded audio, with the checks every RPC shares.

The decoder itself lives in `audio.py`; this module knows the wire: which proto encoding
is which raw format, what a declared sample rate or channel count means for a container,
and how a client-streamed upload is read (config first, then bounded audio chunks).
"""

from __future__ import annotations

import io
from typing import Any
from collections.abc import AsyncIterator, Callable

import numpy as np

from parlons.services.common.audio import (
    DEFAULT_MAX_DECODED_BYTES,
    HARD_MAX_CHANNELS,
    TARGET_RATE,
    DecodedAudio,
    PcmStreamDecoder,
    RawPcmFormat,
    decode_audio,
)
from parlons.services.common.audio_stream import ContainerStreamDecoder
from parlons.errors import InvalidArgument, InvalidAudio
from parlons.v1 import audio_pb2

RAW_ENCODING_NAMES: dict[int, str] = {
    audio_pb2.LINEAR16: "s16le",
    audio_pb2.LINEAR32: "s32le",
    audio_pb2.FLOAT32: "f32le",
    audio_pb2.MULAW: "mulaw",
    audio_pb2.ALAW: "alaw",
}


def audio_bytes(audio: audio_pb2.Audio | None) -> bytes:
    """The request's audio bytes; URIs are refused (no server-side fetches by default)."""
    source = audio.WhichOneof("source") if audio is not None else None
    if source == "uri":
        raise InvalidArgument(
            "audio.uri is not enabled on this server; send the bytes in audio.content "
            "(or use the Upload RPC for large files)"
        )
    if source != "content" or audio is None or not audio.content:
        raise InvalidAudio("no audio: set audio.content to the file's bytes")
    return audio.content


# Declared compressed containers -> the streamed container decoder's names.
CONTAINER_ENCODINGS: dict[int, str] = {audio_pb2.OGG_OPUS: "ogg", audio_pb2.WEBM_OPUS: "webm"}


def raw_format(config: audio_pb2.AudioConfig) -> RawPcmFormat | None:
    """The declared raw PCM format, or None for a self-describing container."""
    if config.encoding == audio_pb2.AUDIO_ENCODING_UNSPECIFIED or config.encoding in CONTAINER_ENCODINGS:
        if config.channels < 0 or config.channels > HARD_MAX_CHANNELS:
            raise InvalidAudio(f"config.channels must be 0 (any) or 1..{HARD_MAX_CHANNELS}, got {config.channels}")
        return None
    name = RAW_ENCODING_NAMES.get(config.encoding)
    if name is None:
        raise InvalidAudio(f"unknown audio encoding {config.encoding}")
    if config.sample_rate_hz <= 0:
        raise InvalidAudio(
            f"raw {audio_pb2.AudioEncoding.Name(config.encoding)} audio needs config.sample_rate_hz"
        )
    if config.channels <= 0:
        raise InvalidAudio(
            f"raw {audio_pb2.AudioEncoding.Name(config.encoding)} audio needs config.channels (1..{HARD_MAX_CHANNELS}), "
            f"got {config.channels}"
        )
    if config.channels > HARD_MAX_CHANNELS:
        raise InvalidAudio(f"{config.channels} channels: at most {HARD_MAX_CHANNELS} are supported")
    return RawPcmFormat(encoding=name, sample_rate=config.sample_rate_hz, channels=config.channels)


def decode_request_audio(
    data: bytes,
    config: audio_pb2.AudioConfig,
    *,
    keep_channels: bool,
    max_duration_s: float | None,
    max_decoded_mb: int = DEFAULT_MAX_DECODED_BYTES >> 20,
) -> DecodedAudio:
    """Decode and check what the client declared against what the file really is."""
    raw = raw_format(config)
    audio = decode_audio(data, keep_channels=keep_channels, raw=raw, max_duration_s=max_duration_s,
                         max_decoded_bytes=max_decoded_mb << 20)
    if raw is None:
        if config.sample_rate_hz and config.sample_rate_hz != audio.source_sample_rate:
            raise InvalidAudio(
                f"config.sample_rate_hz is {config.sample_rate_hz} Hz but the file is "
                f"{audio.source_sample_rate} Hz; leave it 0 for files with a header"
            )
        if config.channels and config.channels != audio.source_channels:
            raise InvalidAudio(
                f"config.channels is {config.channels} but the file has {audio.source_channels}"
            )
    return audio


async def read_upload(request_iterator: AsyncIterator[Any], max_bytes: int,
                      admit: Callable[[], None] | None = None) -> tuple[Any, bytes]:
    """Read a client-streamed upload: one config message, then audio chunks, bounded.

    Works for every *UploadRequest (a oneof `request` of `config` and `audio_content`).
    `admit` runs as soon as the config arrives, before any audio is held: a full work
    queue or a tenant over quota refuses the upload at its first message, not after
    the client has sent (and the server buffered) a gigabyte.
    """
    config: Any = None
    buffer = UploadBuffer(max_bytes)
    async for request in request_iterator:
        kind = request.WhichOneof("request")
        if kind == "config":
            if config is not None:
                raise InvalidArgument("config sent twice: an upload takes one config, then audio chunks")
            config = request.config
            if admit is not None:
                admit()
        elif kind == "audio_content":
            if config is None:
                raise InvalidArgument("audio sent before the config: send the config first")
            buffer.append(request.audio_content)
        else:
            raise InvalidArgument("empty upload message: set config or audio_content")
    if config is None:
        raise InvalidArgument("empty upload: send a config message, then audio chunks")
    return config, buffer.take()


def _upload_too_large(max_bytes: int) -> Exception:
    return InvalidAudio(f"upload larger than the server's limit of {max_bytes // (1 << 20)} MiB")


class UploadBuffer:
    """One growing buffer for an upload, refused past `max_bytes` before it grows.

    A list of chunks joined at the end holds the upload twice at the join; a BytesIO
    grows in place (realloc) and hands its bytes over without a copy, so the peak is
    the upload once (plus the growth margin).
    """

    def __init__(self, max_bytes: int, too_large: Callable[[int], Exception] | None = None) -> None:
        self.max_bytes = max_bytes
        self._too_large = too_large or _upload_too_large
        self._io = io.BytesIO()

    def append(self, chunk: bytes) -> None:
        if self._io.tell() + len(chunk) > self.max_bytes:
            raise self._too_large(self.max_bytes)
        self._io.write(chunk)

    def __len__(self) -> int:
        return self._io.tell()

    def take(self) -> bytes:
        """The bytes received, without a copy; the buffer is empty afterwards."""
        data = self._io.getvalue()
        self._io = io.BytesIO()
        return data


class StreamAudioDecoder:
    """Live audio to 16 kHz float32: raw PCM chunks as declared in the config, or a
    streamed Ogg/Opus or WebM/Opus container (decoded as it arrives). Call `close` at
    the end of the stream (the container decoder runs a thread)."""

    def __init__(self, config: audio_pb2.AudioConfig, *, keep_channels: bool = False) -> None:
        self.keep_channels = keep_channels
        self.container = CONTAINER_ENCODINGS.get(config.encoding)
        fmt = raw_format(config)  # also checks the declared channels of a container
        if self.container is not None:
            self.format: RawPcmFormat | None = None
            self._decoder: PcmStreamDecoder | ContainerStreamDecoder = ContainerStreamDecoder(
                self.container, keep_channels=keep_channels
            )
            self.declared_channels = config.channels
            return
        if fmt is None:
            raise InvalidAudio(
                "live streams take raw audio (config.encoding LINEAR16 with sample_rate_hz "
                "and channels) or a streamed container (OGG_OPUS, WEBM_OPUS)"
            )
        self.format = fmt
        self.declared_channels = fmt.channels
        self._decoder = PcmStreamDecoder(fmt, keep_channels=keep_channels)

    def seconds_in(self, data: bytes) -> float:
        """Seconds of audio in `data` for raw PCM; for a compressed container, the
        seconds the same bytes would hold as 16 kHz LINEAR16 (buffers stay bounded by
        bytes; quotas are charged on decoded seconds, see `decoded_seconds`)."""
        if self.format is None:
            return len(data) / (2 * TARGET_RATE)
        return len(data) / self.format.frame_bytes / self.format.sample_rate

    @property
    def decoded_seconds(self) -> float:
        return self._decoder.decoded_seconds

    def decode(self, data: bytes) -> np.ndarray:
        """(channels, n) when keeping channels, else 1-D mono."""
        out = self._decoder.feed(data)
        return self._shape(out)

    def flush(self) -> np.ndarray:
        return self._shape(self._decoder.flush())

    def close(self) -> None:
        if isinstance(self._decoder, ContainerStreamDecoder):
            self._decoder.close()

    def _shape(self, out: np.ndarray) -> np.ndarray:
        if not self.keep_channels:
            return out[0]
        if self.container is not None and self.declared_channels and out.shape[1] and out.shape[0] != self.declared_channels:
            raise InvalidAudio(
                f"config.channels is {self.declared_channels} but the stream has {out.shape[0]}"
            )
        return out
