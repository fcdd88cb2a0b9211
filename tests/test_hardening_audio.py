"""Crafted audio that once cost a server hundreds of MB (issue 10): each reproduced, its
outcome bounded (InvalidAudio naming the problem, time, peak memory of the decoder)."""

from __future__ import annotations


import numpy as np
import pytest

from parlons.services.common.audio import RawPcmFormat, decode_audio
from parlons.errors import InvalidAudio
from crafted import crafted_wav, measured
from speech import AUDIO, wav_bytes


def test_a_one_hertz_eight_channel_wav_is_refused_before_resampling() -> None:
    data = crafted_wav(b"\x01\x02" * 4800, rate=1, channels=8)  # 9.6 KB, "600 s" at 1 Hz
    for keep in (False, True):
        outcome, seconds, peak = measured(lambda: decode_audio(data, keep_channels=keep))
        assert isinstance(outcome, InvalidAudio) and "1 Hz" in str(outcome), outcome
        assert seconds < 1.0 and peak < 5, (seconds, peak)
    with pytest.raises(InvalidAudio, match="4000 Hz"):
        decode_audio(crafted_wav(b"\x00\x01" * 4000, rate=4000))
    with pytest.raises(InvalidAudio, match="out of range"):
        RawPcmFormat(sample_rate=1)


def test_decoded_samples_times_channels_are_bounded() -> None:
    stereo = wav_bytes(np.random.default_rng(1).uniform(-0.1, 0.1, (2, 16000 * 20)).astype(np.float32))
    # 20 s x 2 channels = 2.4 MiB of float32 samples; a 1 MiB bound refuses it, as it decodes.
    outcome, _, peak = measured(lambda: decode_audio(stereo, keep_channels=True, max_decoded_bytes=1 << 20))
    assert isinstance(outcome, InvalidAudio) and "more than 1 MiB of samples" in str(outcome), outcome
    assert peak < 8, peak
    # Downmixed, the same file is half the samples: 2.4 MiB -> 1.2 MiB, within a 2 MiB bound.
    assert decode_audio(stereo, keep_channels=False, max_decoded_bytes=2 << 20).duration_s == pytest.approx(20, abs=0.01)
    raw = RawPcmFormat(sample_rate=16000, channels=2)
    pcm = (np.zeros(16000 * 20 * 2)).astype("<i2").tobytes()
    with pytest.raises(InvalidAudio, match="more than 1 MiB"):
        decode_audio(pcm, raw=raw, keep_channels=True, max_decoded_bytes=1 << 20)


def test_a_float_wav_with_16_bit_samples_is_invalid_audio_not_an_internal_error() -> None:
    with pytest.raises(InvalidAudio, match="16-bit floating point"):
        decode_audio(crafted_wav(b"\x01\x02" * 16000, format_tag=3))


def test_real_files_still_decode() -> None:
    assert decode_audio((AUDIO / "jfk.flac").read_bytes()).duration_s == pytest.approx(11.0, abs=0.1)
