"""The shared audio decoder: every container/codec and raw PCM, and every bad input."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.codeccontext import AudioCodecContext
from parlons.services.common.audio import (
    RAW_ENCODINGS,
    DecodedAudio,
    PcmStreamDecoder,
    RawPcmFormat,
    decode_audio,
)
from parlons.errors import InvalidArgument, InvalidAudio
from speech import AUDIO

ENGLISH_VARIANTS = (
    "english.wav",
    "audio-mono-8-bit-44100Hz.wav",
    "audio-stereo-24-bit-44100Hz.flac",
    "audio-mono-16-bit-44100Hz.aiff",
)
# name -> (duration s, channels, source rate)
SHARED_FILES = {
    "english.wav": (2.745, 1, 44100),
    "audio-mono-8-bit-44100Hz.wav": (2.745, 1, 44100),
    "audio-stereo-24-bit-44100Hz.flac": (2.745, 2, 44100),
    "audio-mono-16-bit-44100Hz.aiff": (2.745, 1, 44100),
    "jfk.flac": (11.0, 2, 44100),
    "sample.wav": (30.0, 1, 16000),
    "stereo_diarization.wav": (5.0, 2, 16000),
}


# ----------------------------------------------------------------------------- helpers


def encode(samples: np.ndarray, rate: int, fmt: str, codec: str, out_rate: int | None = None) -> bytes:
    """Encode float samples (channels, n) with PyAV into a container, in memory."""
    layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
    out_rate = out_rate or rate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        assert isinstance(stream, av.AudioStream)  # an audio codec gives an audio stream
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name, layout=layout, rate=out_rate
        )
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T.reshape(1, -1), dtype=np.float32),
            format="flt",
            layout=layout,
        )
        frame.sample_rate = rate
        for out in resampler.resample(frame) + resampler.resample(None):
            out.pts = None
            for packet in stream.encode(out):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def wav_bytes(channels: int, rate: int, pcm: bytes, *, bits: int = 16, claim: int | None = None) -> bytes:
    """A canonical PCM WAV with a hand-written header (to fake any header value)."""
    block = channels * bits // 8
    size = len(pcm) if claim is None else claim
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", size) + pcm
    )


def best_correlation(reference: np.ndarray, other: np.ndarray, max_lag: int = 2048) -> float:
    """Highest correlation over small delays (AAC adds priming samples)."""
    n = min(reference.shape[0], other.shape[0]) - max_lag
    return max(
        float(np.corrcoef(reference[:n], other[lag : lag + n])[0, 1])
        for lag in range(0, max_lag + 1, 16)
    )


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.shape[0], 1 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def english() -> DecodedAudio:
    return decode_audio((AUDIO / "english.wav").read_bytes())


# ----------------------------------------------------------------------- shared files


def test_every_shared_audio_file_is_covered() -> None:
    decodable = {p.name for p in AUDIO.iterdir() if p.suffix in {".wav", ".flac", ".aiff"}}
    assert decodable == set(SHARED_FILES)


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_shared_files_decode(name: str) -> None:
    duration, channels, rate = SHARED_FILES[name]
    data = (AUDIO / name).read_bytes()
    mono = decode_audio(data)
    kept = decode_audio(data, keep_channels=True)
    assert mono.samples.dtype == np.float32
    assert mono.samples.shape[0] == 1
    assert mono.num_samples == pytest.approx(duration * 16000, abs=2)
    assert mono.sample_rate == 16000
    assert mono.source_sample_rate == rate
    assert mono.source_channels == channels
    assert mono.duration_s == pytest.approx(duration, abs=1e-3)
    assert kept.samples.shape == (channels, mono.num_samples)
    assert 0.05 < mono.peak <= 1.0
    # Downmix is the mean of the kept channels.
    np.testing.assert_allclose(mono.samples[0], kept.samples.mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("name", ENGLISH_VARIANTS[1:])
def test_format_variants_carry_the_same_signal(name: str, english: DecodedAudio) -> None:
    other = decode_audio((AUDIO / name).read_bytes())
    assert other.num_samples == english.num_samples
    assert best_correlation(english.mono(), other.mono(), max_lag=0) > 0.99


def test_stereo_channels_are_kept_apart() -> None:
    audio = decode_audio((AUDIO / "stereo_diarization.wav").read_bytes(), keep_channels=True)
    left, right = audio.samples
    assert abs(float(np.corrcoef(left, right)[0, 1])) < 0.5  # two different speakers


def test_container_and_codec_names() -> None:
    audio = decode_audio((AUDIO / "jfk.flac").read_bytes())
    assert (audio.container, audio.codec) == ("flac", "flac")
    audio = decode_audio((AUDIO / "audio-mono-8-bit-44100Hz.wav").read_bytes())
    assert (audio.container, audio.codec) == ("wav", "pcm_u8")


def test_resampling_keeps_frequencies() -> None:
    data = encode(sine(1000, 44100, 1.0)[np.newaxis], 44100, "wav", "pcm_s16le")
    audio = decode_audio(data)
    assert audio.source_sample_rate == 44100
    assert audio.num_samples == 16000
    assert dominant_frequency(audio.mono(), 16000) == pytest.approx(1000, abs=2)


def test_other_target_rate() -> None:
    audio = decode_audio((AUDIO / "english.wav").read_bytes(), target_rate=8000)
    assert audio.sample_rate == 8000
    assert audio.num_samples == pytest.approx(2.745 * 8000, abs=2)


# --------------------------------------------------------------- generated encodings


@pytest.mark.parametrize(
    ("fmt", "codec", "rate", "container"),
    [
        ("mp3", "libmp3lame", 16000, "mp3"),
        ("ogg", "libopus", 48000, "ogg"),
        ("ipod", "aac", 16000, "mov,mp4,m4a,3gp,3g2,mj2"),  # .m4a
        ("webm", "libopus", 48000, "matroska,webm"),
        ("wav", "pcm_f32le", 16000, "wav"),
        ("wav", "pcm_s32le", 16000, "wav"),
        ("wav", "pcm_s24le", 16000, "wav"),
        ("aiff", "pcm_s24be", 22050, "aiff"),
        ("flac", "flac", 48000, "flac"),
        ("caf", "pcm_s16le", 16000, "caf"),
    ],
)
def test_generated_encodings_decode(
    fmt: str, codec: str, rate: int, container: str, english: DecodedAudio
) -> None:
    data = encode(english.samples, 16000, fmt, codec, out_rate=rate)
    audio = decode_audio(data)
    assert audio.container == container
    assert audio.source_sample_rate == rate
    assert audio.duration_s == pytest.approx(english.duration_s, abs=0.1)
    assert best_correlation(english.mono(), audio.mono()) > 0.95


def test_stereo_opus_keeps_channels(english: DecodedAudio) -> None:
    stereo = np.vstack([english.samples[0], np.zeros_like(english.samples[0])])
    audio = decode_audio(encode(stereo, 16000, "ogg", "libopus", 48000), keep_channels=True)
    assert audio.channels == 2
    assert np.abs(audio.samples[0]).max() > 0.3
    assert np.abs(audio.samples[1]).max() < 0.05


# --------------------------------------------------------------------------- raw PCM


def _raw(samples: np.ndarray, encoding: str) -> bytes:
    """Interleave (channels, n) float samples as raw bytes of `encoding`."""
    inter = samples.T.reshape(-1)
    if encoding == "s16le":
        return (inter * 32767).astype("<i2").tobytes()
    if encoding == "s32le":
        return (inter * 2147483647).astype("<i4").tobytes()
    if encoding == "f32le":
        return inter.astype("<f4").tobytes()
    if encoding == "u8":
        return (inter * 127 + 128).astype(np.uint8).tobytes()
    if encoding == "s24le":
        ints = (inter * 8388607).astype("<i4").view(np.uint8).reshape(-1, 4)
        return ints[:, :3].tobytes()
    # G.711: use FFmpeg's own encoder so the test does not re-implement the codec.
    codec = av.CodecContext.create(RAW_ENCODINGS[encoding].codec, "w")
    assert isinstance(codec, AudioCodecContext)  # the codec's name is a str here, not one of PyAV's literals
    codec.sample_rate = 8000
    codec.layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
    codec.format = "s16"
    frame = av.AudioFrame.from_ndarray(
        (inter * 32767).astype("<i2").reshape(1, -1), format="s16", layout=codec.layout
    )
    frame.sample_rate = 8000
    return b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))


@pytest.mark.parametrize("encoding", sorted(RAW_ENCODINGS))
def test_raw_pcm_decodes(encoding: str) -> None:
    rate = 8000
    signal = sine(440, rate, 1.0)[np.newaxis]
    audio = decode_audio(_raw(signal, encoding), raw=RawPcmFormat(encoding, rate, 1))
    assert audio.container == "raw"
    assert audio.source_sample_rate == rate
    assert audio.num_samples == 16000
    assert dominant_frequency(audio.mono(), 16000) == pytest.approx(440, abs=2)
    assert audio.peak == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("encoding", ["s16le", "f32le", "mulaw"])
def test_raw_pcm_interleaved_channels(encoding: str) -> None:
    rate = 8000
    signal = np.vstack([sine(440, rate, 0.5), np.zeros(rate // 2, np.float32)])
    fmt = RawPcmFormat(encoding, rate, 2)
    audio = decode_audio(_raw(signal, encoding), raw=fmt, keep_channels=True)
    assert audio.channels == 2
    assert np.abs(audio.samples[0]).max() > 0.4
    assert np.abs(audio.samples[1]).max() < 0.01


def test_raw_at_16k_is_not_altered() -> None:
    signal = sine(300, 16000, 0.5)[np.newaxis]
    audio = decode_audio(_raw(signal, "f32le"), raw=RawPcmFormat("f32le", 16000, 1))
    np.testing.assert_allclose(audio.samples, signal, atol=1e-6)


def test_pcm_stream_decoder_matches_whole_decode() -> None:
    rate = 44100
    signal = np.vstack([sine(440, rate, 1.0), sine(880, rate, 1.0)])
    data = _raw(signal, "s16le")
    fmt = RawPcmFormat("s16le", rate, 2)
    whole = decode_audio(data, raw=fmt, keep_channels=True).samples
    decoder = PcmStreamDecoder(fmt, keep_channels=True)
    pieces = [decoder.feed(data[i : i + 333]) for i in range(0, len(data), 333)]
    pieces.append(decoder.flush())
    assert all(p.shape[0] == 2 and p.dtype == np.float32 for p in pieces)
    streamed = np.concatenate(pieces, axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    assert decoder.dropped_bytes == 0


def test_pcm_stream_decoder_mono_and_partial_frame() -> None:
    decoder = PcmStreamDecoder(RawPcmFormat("s16le", 16000, 1))
    out = decoder.feed(b"\x00\x10" * 800 + b"\x01")  # 800 samples and half of one
    assert out.shape[0] == 1
    tail = decoder.flush()
    assert out.shape[1] + tail.shape[1] == 800
    assert decoder.dropped_bytes == 1


# ------------------------------------------------------------------------- bad input


def _invalid(data: bytes, **kwargs: object) -> str:
    with pytest.raises(InvalidAudio) as info:
        decode_audio(data, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, InvalidArgument)
    return info.value.message


def test_empty() -> None:
    assert "empty" in _invalid(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is certainly not audio " * 40,
        bytes(4096),
        np.random.default_rng(0).bytes(8192),
        b'{"model": "whisper", "layers": 4}',
    ],
    ids=["text", "zeros", "random", "json"],
)
def test_not_audio(data: bytes) -> None:
    assert "not audio" in _invalid(data)


def test_playlists_that_read_server_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FFmpeg's concat demuxer would read a file named in the upload from the server."""
    (tmp_path / "secret.wav").write_bytes((AUDIO / "english.wav").read_bytes())
    monkeypatch.chdir(tmp_path)
    message = _invalid(b"ffconcat version 1.0\nfile secret.wav\n")
    assert "not in an accepted audio format" in message


def test_video_without_audio_stream() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuvj420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuvj420p")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert "no audio stream" in _invalid(buffer.getvalue())


def test_truncated_wav_decodes_what_is_there(english: DecodedAudio) -> None:
    data = (AUDIO / "english.wav").read_bytes()
    half = decode_audio(data[: len(data) // 2])
    assert half.duration_s == pytest.approx(english.duration_s / 2, abs=0.05)
    np.testing.assert_allclose(
        half.samples[0, :8000], english.samples[0, :8000], atol=1e-4
    )


def test_header_claiming_more_data_than_present() -> None:
    pcm = (sine(200, 16000, 1.0) * 32767).astype("<i2").tobytes()
    audio = decode_audio(wav_bytes(1, 16000, pcm, claim=10**8))
    assert audio.duration_s == pytest.approx(1.0, abs=0.01)


def test_truncated_compressed_file_decodes_what_is_there(english: DecodedAudio) -> None:
    data = encode(english.samples, 16000, "mp3", "libmp3lame")
    audio = decode_audio(data[: len(data) // 2])
    assert 0.8 < audio.duration_s < 2.0


@pytest.mark.parametrize(
    "data",
    [
        wav_bytes(1, 16000, b"", claim=32000),
        (AUDIO / "english.wav").read_bytes()[:60],
    ],
    ids=["header-only", "cut-inside-header"],
)
def test_nothing_decodable(data: bytes) -> None:
    message = _invalid(data)
    assert "truncated" in message or "not audio" in message


def test_zero_channels() -> None:
    assert "0 channels" in _invalid(wav_bytes(0, 16000, bytes(1000)))


def test_too_many_channels() -> None:
    pcm = bytes(9 * 2 * 1600)
    assert "9 channels; at most 8" in _invalid(wav_bytes(9, 16000, pcm))
    pcm = bytes(3 * 2 * 1600)
    assert "3 channels; at most 2" in _invalid(wav_bytes(3, 16000, pcm), max_channels=2)


def test_eight_channels_are_the_hard_limit() -> None:
    pcm = (np.random.default_rng(1).normal(0, 0.1, (8, 1600)).T * 32767).astype("<i2").tobytes()
    audio = decode_audio(wav_bytes(8, 16000, pcm), keep_channels=True)
    assert audio.channels == 8
    with pytest.raises(ValueError):
        decode_audio(wav_bytes(8, 16000, pcm), max_channels=9)


def test_longer_than_limit() -> None:
    pcm = bytes(2 * 16000 * 5)
    assert "limit of 2 s" in _invalid(wav_bytes(1, 16000, pcm), max_duration_s=2)
    assert decode_audio(wav_bytes(1, 16000, pcm), max_duration_s=5).duration_s == 5.0


def test_long_file_is_rejected_with_bounded_memory() -> None:
    """20 minutes would decode to 77 MB of float32; the limit stops long before."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=8000, layout="mono")
        zeros = np.zeros((1, 8000 * 10), np.int16)
        for _ in range(120):
            frame = av.AudioFrame.from_ndarray(zeros, format="s16", layout="mono")
            frame.sample_rate = 8000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = buffer.getvalue()
    tracemalloc.start()
    try:
        message = _invalid(data, max_duration_s=60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "limit of 60 s" in message
    assert peak < 20 * 1024 * 1024


def test_raw_limits() -> None:
    with pytest.raises(InvalidAudio, match="out of range"):
        RawPcmFormat("s16le", 4000, 1)
    with pytest.raises(InvalidAudio, match="out of range"):
        RawPcmFormat("s16le", 384000, 1)
    with pytest.raises(InvalidAudio, match="at least 1 channel"):
        RawPcmFormat("s16le", 16000, 0)
    with pytest.raises(InvalidAudio, match="unknown raw PCM encoding"):
        RawPcmFormat("mp3", 16000, 1)
    message = _invalid(bytes(1001), raw=RawPcmFormat("s16le", 16000, 1))
    assert "multiple of 2 bytes" in message
    message = _invalid(bytes(1002), raw=RawPcmFormat("s16le", 16000, 2))
    assert "multiple of 4 bytes" in message
    assert "9 channels" in _invalid(bytes(18 * 100), raw=RawPcmFormat("s16le", 16000, 9))
    assert "limit of 1 s" in _invalid(
        bytes(2 * 16000 * 2), raw=RawPcmFormat("s16le", 16000, 1), max_duration_s=1
    )


def test_non_finite_float_samples() -> None:
    samples = np.zeros(1600, np.float32)
    samples[100] = np.nan
    message = _invalid(samples.tobytes(), raw=RawPcmFormat("f32le", 16000, 1))
    assert "NaN" in message


def test_decoded_audio_from_array() -> None:
    audio = DecodedAudio.from_array(np.ones(1600, np.float32) * 0.25)
    assert audio.samples.shape == (1, 1600)
    assert audio.duration_s == 0.1
    assert audio.peak == 0.25
    stereo = DecodedAudio.from_array(np.stack([np.ones(10), -np.ones(10)]))
    assert stereo.channels == 2
    np.testing.assert_array_equal(stereo.mono(), np.zeros(10, np.float32))
