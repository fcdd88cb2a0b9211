"""Live streaming engine: VAD end-pointing, LocalAgreement interims, finals in stream time."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.vad import get_vad_model
from parlons.services.common.audio import DecodedAudio, decode_audio
from parlons.errors import Cancelled, InvalidArgument
from parlons.services.transcription.engine import TranscriptionEngine
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.streaming import (
    MultiChannelStreamingSession,
    StreamEvent,
    StreamingConfig,
    StreamingSession,
)
from parlons.services.transcription.endpointer import StreamingVad
from speech import AUDIO, JFK_TEXT, espeak, wer

CHUNK = 1600  # 100 ms


@pytest.fixture(scope="module")
def tiny(tiny_en_dir: Path) -> TranscriptionEngine:
    return TranscriptionEngine(tiny_en_dir, name="tiny.en")


def _mono(name: str) -> np.ndarray:
    return decode_audio((AUDIO / name).read_bytes()).mono()


def _stream(session: StreamingSession, samples: np.ndarray, chunk: int = CHUNK) -> list[StreamEvent]:
    """Feed as fast as the session takes it (faster than real time), then finish."""
    events: list[StreamEvent] = []
    for i in range(0, samples.shape[0], chunk):
        events.extend(session.feed(samples[i : i + chunk]))
    events.extend(session.finish())
    return events


def _check_stream_invariants(events: list[StreamEvent], duration: float) -> None:
    """What a client relies on, whatever the audio."""
    finals = [e for e in events if e.is_final]
    assert [f.utterance_index for f in finals] == list(range(len(finals)))
    committed: dict[int, str] = {}
    for event in events:
        assert 0.0 <= event.stability <= 1.0
        assert 0.0 <= event.start <= event.end <= duration + 1e-6
        if event.is_final:
            assert event.stability == 1.0
            continue
        # Interim: the committed text only grows within an utterance, never rewords.
        previous = committed.get(event.utterance_index, "")
        assert event.committed_text.startswith(previous), (previous, event.committed_text)
        committed[event.utterance_index] = event.committed_text
        assert event.text == " ".join(x for x in (event.committed_text, event.unstable_text) if x)
        assert all(f.utterance_index != event.utterance_index for f in finals if f.end < event.start)
    # Finals: ordered, non-overlapping, segments and words in stream time.
    last_end = 0.0
    for final in finals:
        assert final.start >= last_end - 1e-6
        last_end = final.end
        for segment in final.segments:
            assert final.start - 0.05 <= segment.start <= segment.end <= final.end + 0.05
            for word in segment.words:
                assert segment.start - 0.05 <= word.start <= word.end <= segment.end + 0.05
    starts = [s.start for f in finals for s in f.segments]
    assert starts == sorted(starts)
    ids = [s.id for f in finals for s in f.segments]
    assert ids == list(range(1, len(ids) + 1))


def test_incremental_vad_equals_whole_file_vad() -> None:
    samples = _mono("jfk.flac")
    samples = samples[: samples.shape[0] // 512 * 512]
    whole = get_vad_model()(samples).reshape(-1)
    vad = StreamingVad()
    parts = [vad.process(samples[i : i + 1000]) for i in range(0, samples.shape[0], 1000)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


@pytest.mark.slow
def test_sample_wav_streamed(tiny: TranscriptionEngine) -> None:
    samples = _mono("sample.wav")
    unary = tiny.transcribe(DecodedAudio.from_array(samples))
    session = StreamingSession(tiny, TranscriptionOptions(word_timestamps=True))
    events = _stream(session, samples)
    _check_stream_invariants(events, 30.0)
    interims = [e for e in events if not e.is_final]
    finals = [e for e in events if e.is_final]
    assert len(interims) >= 10
    assert any(e.committed_text for e in interims) and any(e.unstable_text for e in interims)
    assert finals
    text = " ".join(f.text for f in finals)
    assert wer(unary.text, text) <= 0.15
    # Speech starts 6.7 s in: times are stream time, not utterance time.
    assert 5.5 < finals[0].start < 7.0
    assert finals[0].segments[0].start > 5.5
    assert all(f.language == "en" for f in finals)
    assert finals[-1].words and finals[-1].words == tuple(
        w for s in finals[-1].segments for w in s.words
    )
    assert session.audio_seconds == pytest.approx(30.0)


@pytest.mark.slow
def test_pauses_end_utterances(tiny: TranscriptionEngine) -> None:
    events = _stream(StreamingSession(tiny), _mono("jfk.flac"))
    _check_stream_invariants(events, 11.0)
    finals = [e for e in events if e.is_final]
    assert len(finals) >= 3  # JFK pauses between phrases
    assert wer(JFK_TEXT, " ".join(f.text for f in finals)) <= 0.15
    for final in finals[:-1]:
        assert final.end - final.start < 5.0


@pytest.mark.slow
@pytest.mark.parametrize("early_final_ms", [250, 0])
def test_early_final_takes_the_decode_off_the_end_of_utterance(
    tiny: TranscriptionEngine, monkeypatch: pytest.MonkeyPatch, early_final_ms: int
) -> None:
    """The final is decoded during the pause; the feed that ends the utterance only
    emits it. With the early final off, that feed pays for the decode."""
    decodes: list[int] = []
    transcribe = tiny.transcribe

    def counting(*args: object, **kwargs: object) -> object:
        decodes.append(1)
        return transcribe(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tiny, "transcribe", counting)
    session = StreamingSession(tiny, early_final_ms=early_final_ms, interim_results=False)
    samples = _mono("jfk.flac")
    finals_without_decode = 0
    finals: list[StreamEvent] = []
    for i in range(0, samples.shape[0], CHUNK):
        before = len(decodes)
        events = session.feed(samples[i : i + CHUNK])
        finals.extend(e for e in events if e.is_final)
        if any(e.is_final for e in events) and len(decodes) == before:
            finals_without_decode += 1
    finals.extend(session.finish())
    assert len(finals) >= 3
    assert wer(JFK_TEXT, " ".join(f.text for f in finals)) <= 0.15
    if early_final_ms:
        assert finals_without_decode >= 2
    else:
        assert finals_without_decode == 0


@pytest.mark.slow
@pytest.mark.parametrize("sentence_end_ms", [300, 0])
def test_a_finished_sentence_ends_its_utterance_before_the_end_silence(
    tiny: TranscriptionEngine, sentence_end_ms: int
) -> None:
    """Semantic end-pointing: with a 2-s end-of-utterance silence, JFK's last sentence
    (which ends with a full stop) is final once its early decode is known and the pause
    has lasted 0.3 s; without it, only after the 2 s. Measured in stream samples fed,
    not in time."""
    session = StreamingSession(tiny, interim_results=False, end_of_utterance_ms=2000, max_utterance_s=30.0,
                               sentence_end_ms=sentence_end_ms)
    samples = np.concatenate([_mono("jfk.flac"), np.zeros(4 * 16000, np.float32)])
    final_at: list[tuple[float, StreamEvent]] = []
    fed = 0
    for i in range(0, samples.shape[0], CHUNK):
        chunk = samples[i : i + CHUNK]
        fed += chunk.shape[0]
        final_at.extend((fed / 16000, e) for e in session.feed(chunk) if e.is_final)
    assert final_at, "no final"
    seen_s, last = final_at[-1]
    assert last.text.rstrip().endswith(".")
    assert wer(JFK_TEXT, " ".join(e.text for _, e in final_at)) <= 0.15
    wait = seen_s - last.end
    if sentence_end_ms:
        assert wait < 1.0, wait
    else:
        assert wait >= 1.7, wait


@pytest.mark.slow
def test_long_speech_is_cut_at_max_utterance(tiny: TranscriptionEngine) -> None:
    samples = _mono("sample.wav")
    session = StreamingSession(tiny, max_utterance_s=8.0, interim_results=False)
    events = _stream(session, samples, chunk=4800)
    _check_stream_invariants(events, 30.0)
    assert all(e.is_final for e in events)
    assert len(events) >= 3
    assert all(e.end - e.start <= 8.0 + 0.05 for e in events)
    unary = tiny.transcribe(DecodedAudio.from_array(samples))
    assert wer(unary.text, " ".join(e.text for e in events)) <= 0.3


@pytest.mark.slow
def test_per_channel_stream(tiny: TranscriptionEngine) -> None:
    stereo = decode_audio((AUDIO / "stereo_diarization.wav").read_bytes(), keep_channels=True)
    samples = np.concatenate([stereo.samples, np.zeros((2, 16000), np.float32)], axis=1)
    session = MultiChannelStreamingSession(tiny, channels=2)
    events = []
    for i in range(0, samples.shape[1], CHUNK):
        events.extend(session.feed(samples[:, i : i + CHUNK]))
    events.extend(session.finish())
    finals = [e for e in events if e.is_final]
    assert {f.channel for f in finals} == {0, 1}
    for final in finals:
        assert all(s.channel == final.channel for s in final.segments)
    for channel in (0, 1):
        _check_stream_invariants([e for e in events if e.channel == channel], 6.0)
    with pytest.raises(ValueError, match="shaped"):
        session.feed(np.zeros(100, np.float32))


def test_silence_produces_nothing_and_memory_stays_bounded(tiny: TranscriptionEngine) -> None:
    session = StreamingSession(tiny)
    silence = np.zeros(CHUNK, np.float32)
    for _ in range(600):  # one minute
        assert session.feed(silence) == []
    assert session.buffered_s < 0.5
    assert session.finish() == []


def test_stream_errors(tiny: TranscriptionEngine) -> None:
    with pytest.raises(InvalidArgument, match="16000"):
        StreamingSession(tiny, sample_rate=8000)
    with pytest.raises(InvalidArgument, match="end_of_utterance_ms"):
        StreamingSession(tiny, end_of_utterance_ms=10)
    with pytest.raises(InvalidArgument, match="max_utterance_s"):
        StreamingConfig(max_utterance_s=45.0)
    session = StreamingSession(tiny)
    with pytest.raises(ValueError, match="mono"):
        session.feed(np.zeros((2, 100), np.float32))
    assert session.feed(np.zeros(0, np.float32)) == []
    session.finish()
    assert session.finish() == []
    with pytest.raises(InvalidArgument, match="after the end"):
        session.feed(np.zeros(100, np.float32))


def test_cancelled_stream(tiny: TranscriptionEngine) -> None:
    cancel = threading.Event()
    session = StreamingSession(tiny, cancel=cancel)
    session.feed(np.zeros(CHUNK, np.float32))
    cancel.set()
    with pytest.raises(Cancelled):
        session.feed(np.zeros(CHUNK, np.float32))


@pytest.mark.slow
def test_french_stream_with_base(base_dir: Path, tmp_path: Path) -> None:
    engine = TranscriptionEngine(base_dir, name="base")
    path = espeak(
        "Bonjour madame, je viens pour renouveler ma carte de séjour. "
        "Voici mon passeport et le justificatif de domicile.",
        "fr",
        tmp_path / "fr.wav",
    )
    samples = decode_audio(path.read_bytes()).mono()
    samples = np.concatenate([np.zeros(8000, np.float32), samples, np.zeros(16000, np.float32)])
    events = _stream(StreamingSession(engine), samples)
    finals = [e for e in events if e.is_final]
    assert finals and all(f.language == "fr" for f in finals)
    assert "passeport" in " ".join(f.text for f in finals).lower()
