"""From a request's AudioConfig + bytes to decoded audio, with the checks every RPC shares.

The decoder itself lives in `audio.py`; this module knows the wire: which proto encoding
is which raw format, what a declared sample rate or channel count means for a container,
and how a client-streamed upload is read (config first, then bounded audio chunks).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import numpy as np

from parlons.services.common.audio import (
    HARD_MAX_CHANNELS,
    DecodedAudio,
    PcmStreamDecoder,
    RawPcmFormat,
    decode_audio,
)
from parlons.services.common.errors import InvalidArgument, InvalidAudio
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


def raw_format(config: audio_pb2.AudioConfig) -> RawPcmFormat | None:
    """The declared raw PCM format, or None for a self-describing container."""
    if config.encoding == audio_pb2.AUDIO_ENCODING_UNSPECIFIED:
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
) -> DecodedAudio:
    """Decode and check what the client declared against what the file really is."""
    raw = raw_format(config)
    audio = decode_audio(data, keep_channels=keep_channels, raw=raw, max_duration_s=max_duration_s)
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


async def read_upload(request_iterator: AsyncIterator[Any], max_bytes: int) -> tuple[Any, bytes]:
    """Read a client-streamed upload: one config message, then audio chunks, bounded.

    Works for every *UploadRequest (a oneof `request` of `config` and `audio_content`).
    """
    config: Any = None
    parts: list[bytes] = []
    total = 0
    async for request in request_iterator:
        kind = request.WhichOneof("request")
        if kind == "config":
            if config is not None:
                raise InvalidArgument("config sent twice: an upload takes one config, then audio chunks")
            if parts:
                raise InvalidArgument("audio sent before the config: send the config first")
            config = request.config
        elif kind == "audio_content":
            if config is None:
                raise InvalidArgument("audio sent before the config: send the config first")
            total += len(request.audio_content)
            if total > max_bytes:
                raise InvalidAudio(f"upload larger than the server's limit of {max_bytes // (1 << 20)} MiB")
            parts.append(request.audio_content)
        else:
            raise InvalidArgument("empty upload message: set config or audio_content")
    if config is None:
        raise InvalidArgument("empty upload: send a config message, then audio chunks")
    return config, b"".join(parts)


class StreamAudioDecoder:
    """Live audio: raw PCM chunks as declared in the config, to 16 kHz mono float32."""

    def __init__(self, config: audio_pb2.AudioConfig, *, keep_channels: bool = False) -> None:
        fmt = raw_format(config)
        if fmt is None:
            raise InvalidAudio(
                "live streams take raw audio: set config.encoding (e.g. LINEAR16), "
                "config.sample_rate_hz and config.channels"
            )
        self.format = fmt
        self.keep_channels = keep_channels
        self._decoder = PcmStreamDecoder(fmt, keep_channels=keep_channels)

    def seconds_in(self, data: bytes) -> float:
        return len(data) / self.format.frame_bytes / self.format.sample_rate

    def decode(self, data: bytes) -> np.ndarray:
        """(channels, n) when keeping channels, else 1-D mono."""
        out = self._decoder.feed(data)
        return out if self.keep_channels else out[0]

    def flush(self) -> np.ndarray:
        out = self._decoder.flush()
        return out if self.keep_channels else out[0]
