"""Streamed Ogg/Opus and WebM/Opus decoded as the bytes arrive (no model needed)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from parlons.services.common.audio import decode_audio
from parlons.services.common.audio_request import StreamAudioDecoder
from parlons.services.common.audio_stream import ContainerStreamDecoder
from parlons.errors import InvalidAudio
from parlons.v1 import audio_pb2
from speech import AUDIO, opus_bytes


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    return decode_audio((AUDIO / "jfk.flac").read_bytes()).mono()


@pytest.mark.parametrize("container", ["ogg", "webm"])
def test_chunked_stream_gives_the_samples_of_the_whole_file(jfk: np.ndarray, container: str) -> None:
    data = opus_bytes(jfk, container)
    whole = decode_audio(data).mono()
    decoder = ContainerStreamDecoder(container)
    parts = [decoder.feed(data[i : i + 700]) for i in range(0, len(data), 700)]
    parts.append(decoder.flush())
    decoder.close()
    streamed = np.concatenate(parts, axis=1)[0]
    assert streamed.shape == whole.shape
    assert np.array_equal(streamed, whole)
    # Samples come out while the stream is still arriving, not only at the end.
    assert sum(p.shape[-1] for p in parts[: len(parts) // 2]) > whole.shape[0] // 4


def test_stream_decoder_from_the_wire_config(jfk: np.ndarray) -> None:
    data = opus_bytes(jfk, "webm")
    decoder = StreamAudioDecoder(audio_pb2.AudioConfig(encoding=audio_pb2.WEBM_OPUS))
    out = np.concatenate([decoder.decode(data[:5000]), decoder.decode(data[5000:]), decoder.flush()])
    decoder.close()
    assert out.ndim == 1 and abs(out.shape[0] - jfk.shape[0]) < 800
    assert decoder.decoded_seconds == pytest.approx(jfk.shape[0] / 16000, abs=0.1)


def test_garbage_is_invalid_audio_and_the_thread_ends() -> None:
    before = threading.active_count()
    decoder = ContainerStreamDecoder("ogg")
    with pytest.raises(InvalidAudio, match="not valid ogg"):
        decoder.feed(b"this is not an ogg stream " * 200)
        decoder.flush()
    decoder.close()
    assert threading.active_count() <= before


def test_truncated_stream_decodes_what_arrived(jfk: np.ndarray) -> None:
    data = opus_bytes(jfk, "ogg")
    decoder = ContainerStreamDecoder("ogg")
    got = decoder.feed(data[: len(data) // 2]).shape[-1] + decoder.flush().shape[-1]
    decoder.close()
    assert 0 < got < jfk.shape[0]


def test_empty_stream_and_closing_without_flush() -> None:
    decoder = ContainerStreamDecoder("webm")
    assert decoder.flush().shape[-1] == 0
    decoder.close()
    other = ContainerStreamDecoder("ogg")
    other.close()  # the demuxer thread waiting for bytes ends too
    assert not other._thread.is_alive()


def test_bytes_waiting_are_bounded() -> None:
    decoder = ContainerStreamDecoder("ogg", max_buffered_bytes=1000)
    with pytest.raises(InvalidAudio, match="KiB waiting"):
        decoder.feed(b"\0" * 5000)
    decoder.close()
