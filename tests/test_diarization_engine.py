"""Diarisation engine on real audio with the real models (no gRPC).

sample.wav (pyannote's 30-s two-speaker phone call) with its reference RTTM is the
accuracy check: DER with pyannote.metrics, collar 0, must stay <= 8 %.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from parlons.services.common.audio import DecodedAudio, decode_audio
from parlons.errors import Cancelled, InvalidArgument, InvalidAudio
from parlons.services.diarization.engine import (
    DiarizationEngine,
    DiarizationResult,
    check_speaker_counts,
    diarize_channels,
)
from parlons.services.diarization.options import DiarizationConfig

pytestmark = pytest.mark.slow

MAX_DER = 0.08


def der(result: DiarizationResult, reference_rttm: Path) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = next(iter(load_rttm(reference_rttm).values()))
    hypothesis = Annotation()
    for i, turn in enumerate(result.turns):
        hypothesis[Segment(turn.start, turn.end), i] = turn.speaker
    metric = DiarizationErrorRate(collar=0.0)
    return float(metric(reference, hypothesis, uem=Segment(0.0, result.duration_s)))


@pytest.fixture(scope="module")
def engine() -> DiarizationEngine:
    return DiarizationEngine(DiarizationConfig.from_file())


@pytest.fixture(scope="module")
def sample(audio_dir: Path) -> DecodedAudio:
    return decode_audio((audio_dir / "sample.wav").read_bytes())


@pytest.fixture(scope="module")
def sample_result(engine: DiarizationEngine, sample: DecodedAudio) -> DiarizationResult:
    return engine.diarize(sample)


def test_sample_two_speakers_within_der(sample_result: DiarizationResult, audio_dir: Path) -> None:
    assert sample_result.num_speakers == 2
    assert {s.speaker for s in sample_result.speakers} == {"SPEAKER_00", "SPEAKER_01"}
    assert der(sample_result, audio_dir / "sample.rttm") <= MAX_DER


def test_result_shape(sample_result: DiarizationResult, sample: DecodedAudio) -> None:
    turns = sample_result.turns
    assert turns and all(0.0 <= t.start < t.end <= sample.duration_s + 1e-6 for t in turns)
    assert [t.start for t in turns] == sorted(t.start for t in turns)
    assert all(t.channel == -1 for t in turns)
    # the reference has overlapping speech (18.05-18.59 s): some turns are flagged
    overlapped = [t for t in turns if t.overlap]
    assert overlapped
    for t in overlapped:
        assert any(o.speaker != t.speaker and min(o.end, t.end) > max(o.start, t.start) for o in turns)
    for t in turns:
        if not t.overlap:
            assert not any(o.speaker != t.speaker and min(o.end, t.end) > max(o.start, t.start) for o in turns)
    # speaking time: each speaker talks about 12 s of the 30 s in the reference
    for summary in sample_result.speakers:
        own = [t for t in turns if t.speaker == summary.speaker]
        assert summary.turns == len(own)
        assert 8.0 < summary.speaking_time_s <= sum(t.duration for t in own) + 1e-6
    assert 0 < sample_result.processing_s and sample_result.duration_s == pytest.approx(30.0, abs=0.01)


def test_rttm_round_trip(sample_result: DiarizationResult, tmp_path: Path, audio_dir: Path) -> None:
    from pyannote.database.util import load_rttm

    path = tmp_path / "hyp.rttm"
    path.write_text(sample_result.to_rttm("my call"))
    lines = path.read_text().splitlines()
    assert len(lines) == len(sample_result.turns)
    assert all(line.startswith("SPEAKER my_call 1 ") for line in lines)
    loaded = load_rttm(path)["my_call"]
    assert sorted(loaded.labels()) == ["SPEAKER_00", "SPEAKER_01"]
    assert loaded.get_timeline().support().duration() == pytest.approx(
        sum(s.speaking_time_s for s in sample_result.speakers)
        - _overlap_seconds(sample_result), abs=0.05)


def _overlap_seconds(result: DiarizationResult) -> float:
    """Seconds where two speakers talk at once (counted twice in the per-speaker totals)."""
    grid = np.zeros((2, int(result.duration_s * 1000) + 1), dtype=bool)
    for t in result.turns:
        grid[int(t.speaker[-1]), int(t.start * 1000):int(t.end * 1000)] = True
    return float((grid[0] & grid[1]).sum()) / 1000


def test_speaker_count_options(engine: DiarizationEngine, sample: DecodedAudio, audio_dir: Path) -> None:
    one = engine.diarize(sample, max_speakers=1)
    assert one.num_speakers == 1
    exact = engine.diarize(sample, num_speakers=2)
    assert exact.num_speakers == 2 and der(exact, audio_dir / "sample.rttm") <= MAX_DER
    three = engine.diarize(sample, min_speakers=3)
    assert three.num_speakers == 3


@pytest.mark.parametrize(
    ("num", "low", "high", "message"),
    [
        (None, 3, 2, "below min_speakers"),
        (-1, None, None, "num_speakers must be >= 0"),
        (None, None, -2, "max_speakers must be >= 0"),
        (4, 1, 3, "contradicts"),
    ],
)
def test_bad_speaker_counts(engine: DiarizationEngine, num, low, high, message: str) -> None:
    audio = DecodedAudio.from_array(np.zeros(16000, dtype=np.float32))
    with pytest.raises(InvalidArgument, match=message):
        engine.diarize(audio, num_speakers=num, min_speakers=low, max_speakers=high)


def test_zero_means_unset() -> None:
    assert check_speaker_counts(0, 0, 0) == (None, None, None)
    assert check_speaker_counts(2, 0, 0) == (2, None, None)


def test_silence_is_zero_speakers(engine: DiarizationEngine) -> None:
    silent = engine.diarize(DecodedAudio.from_array(np.zeros(5 * 16000, dtype=np.float32)))
    assert silent.num_speakers == 0 and silent.turns == () and silent.to_rttm() == ""
    rng = np.random.default_rng(0)
    hiss = engine.diarize(DecodedAudio.from_array((rng.standard_normal(5 * 16000) * 1e-4).astype(np.float32)))
    assert hiss.num_speakers == 0
    empty = engine.diarize(DecodedAudio.from_array(np.zeros(0, dtype=np.float32)))
    assert empty.num_speakers == 0 and empty.duration_s == 0.0


def test_one_second_clip(engine: DiarizationEngine, sample: DecodedAudio) -> None:
    clip = DecodedAudio.from_array(sample.samples[0, 11 * 16000:12 * 16000])
    result = engine.diarize(clip)
    assert result.num_speakers == 1
    assert all(0.0 <= t.start < t.end <= 1.0 for t in result.turns)
    assert sum(t.duration for t in result.turns) > 0.5  # the speaker talks all through 11-12 s


def test_eight_channels_downmixed(engine: DiarizationEngine, sample: DecodedAudio, audio_dir: Path) -> None:
    eight = DecodedAudio.from_array(np.repeat(sample.samples, 8, axis=0))
    result = engine.diarize(eight)
    assert result.num_speakers == 2 and der(result, audio_dir / "sample.rttm") <= MAX_DER


def test_wrong_sample_rate_refused(engine: DiarizationEngine) -> None:
    with pytest.raises(InvalidAudio, match="16000 Hz"):
        engine.diarize(DecodedAudio.from_array(np.zeros(8000, dtype=np.float32), sample_rate=8000))


def test_cancel(engine: DiarizationEngine, sample: DecodedAudio) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        engine.diarize(sample, cancel=cancel)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        engine.diarize(sample, cancel=cancel)
    assert time.perf_counter() - started < 30


def test_concurrent_calls_agree(engine: DiarizationEngine, sample: DecodedAudio,
                                sample_result: DiarizationResult) -> None:
    results: list[DiarizationResult] = []
    threads = [threading.Thread(target=lambda: results.append(engine.diarize(sample))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.turns for r in results] == [sample_result.turns] * 2


def test_result_cache(sample: DecodedAudio, sample_result: DiarizationResult) -> None:
    cached_engine = DiarizationEngine(DiarizationConfig.from_file().replace(result_cache_size=2))
    first = cached_engine.diarize(sample)
    again = cached_engine.diarize(sample)
    assert again.turns == first.turns == sample_result.turns
    assert again.processing_s < first.processing_s / 10
    other = cached_engine.diarize(sample, num_speakers=1)  # options are part of the key
    assert other.num_speakers == 1


# ---------------------------------------------------------------------- channel mode


@pytest.fixture(scope="module")
def stereo(audio_dir: Path) -> DecodedAudio:
    return decode_audio((audio_dir / "stereo_diarization.wav").read_bytes(), keep_channels=True)


def test_channel_mode_one_speaker_per_channel(engine: DiarizationEngine, stereo: DecodedAudio) -> None:
    result = engine.diarize_channels(stereo)
    assert result.mode == "channel" and result.num_speakers == 2
    assert {(t.speaker, t.channel) for t in result.turns} == {("SPEAKER_00", 0), ("SPEAKER_01", 1)}
    left = [t for t in result.turns if t.channel == 0]
    right = [t for t in result.turns if t.channel == 1]
    # left talks from ~0.2 s to the end, right from ~0.3 s to ~2.7 s (then digital silence)
    assert left[0].start == pytest.approx(0.2, abs=0.25) and left[-1].end == pytest.approx(5.0, abs=0.3)
    assert right[0].start == pytest.approx(0.3, abs=0.25) and right[-1].end == pytest.approx(2.7, abs=0.3)
    assert all(t.overlap for t in right)  # both talk at once while the right one talks
    assert result.processing_s < 5.0
    rttm = result.to_rttm("desk").splitlines()
    assert {line.split()[2] for line in rttm} == {"1", "2"}


def test_channel_mode_names_and_no_engine_needed(stereo: DecodedAudio) -> None:
    result = diarize_channels(stereo, speaker_names=["agent", "visitor"])
    assert {t.speaker for t in result.turns} == {"agent", "visitor"}


def test_channel_mode_ignores_cross_talk(stereo: DecodedAudio) -> None:
    left, right = stereo.samples
    # the left voice leaks into the right microphone 20 dB down, all along
    leaky = DecodedAudio.from_array(np.stack([left, right + 0.1 * left]))
    result = diarize_channels(leaky)
    right_turns = [t for t in result.turns if t.channel == 1]
    assert right_turns and right_turns[-1].end < 3.2  # right still stops talking at ~2.7 s
    # without the level comparison, voice activity alone hears the leak as right's speech
    no_suppression = diarize_channels(leaky, DiarizationConfig().replace(channel_mode={"bleed_margin_db": 200.0}))
    assert any(t.channel == 1 and t.end > 3.5 for t in no_suppression.turns)


def test_channel_mode_eight_channels(stereo: DecodedAudio) -> None:
    silent = np.zeros((6, stereo.num_samples), dtype=np.float32)
    eight = DecodedAudio.from_array(np.concatenate([stereo.samples, silent]))
    result = diarize_channels(eight)
    assert {t.channel for t in result.turns} == {0, 1}
    with pytest.raises(InvalidArgument, match="at most 4 channels"):
        diarize_channels(eight, DiarizationConfig().replace(channel_mode={"max_channels": 4}))


def test_channel_mode_needs_channels(sample: DecodedAudio) -> None:
    with pytest.raises(InvalidArgument, match="2 or more channels"):
        diarize_channels(sample)


def test_channel_mode_silence() -> None:
    result = diarize_channels(DecodedAudio.from_array(np.zeros((2, 16000), dtype=np.float32)))
    assert result.num_speakers == 0
