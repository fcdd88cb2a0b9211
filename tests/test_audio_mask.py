"""Masking spans of a recording: silent or tone exactly where asked, the rest untouched,
in the input's format (wav, flac, aiff, stereo, 44.1 kHz), FLAC where it cannot be encoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parlons.audio_mask import PAD_S, TONE_HZ, mask_recording, merged_spans
from parlons.services.common.audio import decode_audio

AUDIO = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"
SPANS = [(1.0, 1.6), (2.2, 2.5)]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


@pytest.mark.parametrize("name", ["sample.wav", "audio-stereo-24-bit-44100Hz.flac", "audio-mono-16-bit-44100Hz.aiff"])
@pytest.mark.parametrize("mode", ["silence", "tone"])
def test_spans_are_masked_and_the_rest_kept(tmp_path: Path, name: str, mode: str) -> None:
    source = AUDIO / name
    target = tmp_path / f"out{source.suffix}"
    written = mask_recording(source, target, SPANS, mode)
    assert written == target  # the input's own format
    before = decode_audio(source.read_bytes(), keep_channels=True)
    after = decode_audio(written.read_bytes(), keep_channels=True)
    assert after.source_channels == before.source_channels
    assert after.source_sample_rate == before.source_sample_rate
    assert abs(after.duration_s - before.duration_s) < 0.05
    rate = after.sample_rate
    x, y = np.atleast_2d(before.samples), np.atleast_2d(after.samples)
    if x.shape[0] > x.shape[1]:
        x, y = x.T, y.T
    for start, end in SPANS:
        inside = y[:, int((start - PAD_S + 0.02) * rate):int((end + PAD_S - 0.02) * rate)]
        if mode == "silence":
            assert np.abs(inside).max() < 1e-3
        else:
            spectrum = np.abs(np.fft.rfft(inside[0]))
            peak_hz = np.argmax(spectrum) * rate / inside.shape[1]
            assert abs(peak_hz - TONE_HZ) < 20 and 0.05 < _rms(inside) < 0.1
    # outside the spans, the recording is what it was (codec rounding aside)
    keep = slice(int(1.8 * rate), int(2.0 * rate))
    assert _rms(x[:, keep] - y[:, keep]) < 0.01 + 0.05 * _rms(x[:, keep])
    assert _rms(y[:, keep]) > 0.0 or _rms(x[:, keep]) == 0.0


def test_an_unknown_format_falls_back_to_flac(tmp_path: Path) -> None:
    written = mask_recording(AUDIO / "sample.wav", tmp_path / "out.xyz", SPANS, "silence")
    assert written.suffix == ".flac" and decode_audio(written.read_bytes()).duration_s > 29


def test_spans_are_padded_and_merged() -> None:
    assert merged_spans([(2.0, 2.5), (1.0, 1.2), (2.55, 3.0), (4.0, 3.0)], pad_s=0.1) == [(0.9, 1.3), (1.9, 3.1)]
