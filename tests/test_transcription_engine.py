"""The transcription engine and its options: real Whisper weights, real audio, no gRPC."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from parlons.services.common.audio import DecodedAudio, decode_audio
from parlons.errors import (
    Cancelled,
    InvalidArgument,
    ModelCorrupt,
    ModelNotFound,
    NotFound,
)
from parlons.services.transcription.engine import TranscriptionEngine
from parlons.languages import tag_of_whisper
from parlons.services.transcription.languages import (
    supported_bcp47,
    to_whisper,
)
from parlons.services.transcription.options import TranscriptionOptions
from speech import AUDIO, JFK_TEXT, espeak, normalise, stm_text, wer

FRENCH_TEXT = (
    "Bonjour madame, je viens pour renouveler ma carte de séjour. "
    "Voici mon passeport et le justificatif de domicile."
)


@pytest.fixture(scope="module")
def tiny(tiny_en_dir: Path) -> TranscriptionEngine:
    return TranscriptionEngine(tiny_en_dir, name="tiny.en")


@pytest.fixture(scope="module")
def base(base_dir: Path) -> TranscriptionEngine:
    return TranscriptionEngine(base_dir, name="base")


def _load(name: str, *, keep_channels: bool = False) -> DecodedAudio:
    return decode_audio((AUDIO / name).read_bytes(), keep_channels=keep_channels)


@pytest.fixture(scope="module")
def french(tmp_path_factory: pytest.TempPathFactory) -> DecodedAudio:
    path = espeak(FRENCH_TEXT, "fr", tmp_path_factory.mktemp("fr") / "fr.wav")
    return decode_audio(path.read_bytes())


# --------------------------------------------------------------------------- options


def test_options_map_bcp47_to_whisper_codes() -> None:
    # The options keep the client's tag; the Whisper code is derived from it once.
    assert TranscriptionOptions(language="fr-FR").model_language == "fr"
    assert TranscriptionOptions(language="pt-BR").model_language == "pt"
    assert TranscriptionOptions(language="pt_BR").model_language == "pt"
    assert TranscriptionOptions(language="zh-Hant-TW").model_language == "zh"
    assert TranscriptionOptions(language="jv").model_language == "jw"
    assert TranscriptionOptions(language="nb").model_language == "no"
    assert TranscriptionOptions(language="pt_br").language == "pt-BR"
    assert TranscriptionOptions(language="jv").with_(beam_size=1).language == "jv"
    assert TranscriptionOptions(language="jv").with_(beam_size=1).model_language == "jw"
    assert TranscriptionOptions(language_candidates=("fr-FR", "fr", "jv")).model_candidates == ("fr", "jw")
    assert TranscriptionOptions(language="  ").language is None
    assert TranscriptionOptions(language="  ").model_language is None
    assert TranscriptionOptions().language is None
    assert tag_of_whisper("jw") == "jv" and tag_of_whisper("fr") == "fr"
    assert to_whisper("UK") == "uk"


def test_unknown_language_is_not_found_with_a_hint() -> None:
    with pytest.raises(NotFound, match="ListLanguages"):
        TranscriptionOptions(language="tlh")
    with pytest.raises(NotFound):
        TranscriptionOptions(language="xx-XX")


def test_malformed_language_is_invalid_argument() -> None:
    for bad in ("french", "f", "fr FR", "12", "fr--FR"):
        with pytest.raises(InvalidArgument, match="BCP-47"):
            TranscriptionOptions(language=bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task", "summarise"),
        ("beam_size", 0),
        ("beam_size", 17),
        ("best_of", 0),
        ("patience", 0.0),
        ("temperatures", ()),
        ("temperatures", (0.0, 1.5)),
        ("temperatures", (-0.1,)),
        ("no_speech_threshold", 1.5),
        ("log_prob_threshold", 0.5),
        ("compression_ratio_threshold", -1.0),
        ("initial_prompt", "x" * 2001),
        ("hotwords", "y" * 2001),
        ("max_new_tokens", 0),
        ("beam_size", True),
        ("beam_size", float("nan")),
    ],
)
def test_bad_option_values_are_invalid_argument(field: str, value: object) -> None:
    with pytest.raises(InvalidArgument, match=field):
        TranscriptionOptions(**{field: value})  # type: ignore[arg-type]


def test_options_copy_revalidates() -> None:
    options = TranscriptionOptions(language="fr-FR", beam_size=3)
    copy = options.with_(beam_size=1)
    assert (copy.model_language, copy.beam_size) == ("fr", 1)
    assert copy.language == "fr-FR"  # the client's tag is kept
    with pytest.raises(InvalidArgument):
        options.with_(beam_size=-1)


def test_supported_languages() -> None:
    assert supported_bcp47(multilingual=False) == ["en"]
    tags = supported_bcp47()
    assert {"fr", "en", "ar", "uk", "pt", "jv"} <= set(tags) and "jw" not in tags


# ---------------------------------------------------------------------- model loading


def test_missing_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        TranscriptionEngine(tmp_path / "nope")


def test_incomplete_model_directory(tmp_path: Path, tiny_en_dir: Path) -> None:
    shutil.copy(tiny_en_dir / "config.json", tmp_path / "config.json")
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelCorrupt, match="tokenizer.json"):
        TranscriptionEngine(tmp_path)


def test_corrupt_model_bin(tmp_path: Path, tiny_en_dir: Path) -> None:
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(tiny_en_dir / name, tmp_path / name)
    (tmp_path / "model.bin").write_bytes((tiny_en_dir / "model.bin").read_bytes()[:100_000])
    with pytest.raises(ModelCorrupt, match="could not load"):
        TranscriptionEngine(tmp_path)


def test_bad_device_or_compute_type(tiny_en_dir: Path) -> None:
    with pytest.raises(ValueError, match="device"):
        TranscriptionEngine(tiny_en_dir, device="tpu")
    with pytest.raises(ValueError, match="compute type"):
        TranscriptionEngine(tiny_en_dir, device="cpu", compute_type="float64")


def test_model_info(tiny: TranscriptionEngine) -> None:
    info = tiny.info()
    assert info.name == "tiny.en"
    assert (info.device, info.compute_type, info.batched) == ("cpu", "int8", False)
    assert info.multilingual is False and info.languages == ("en",)
    assert info.load_s > 0


def test_english_only_model_refuses_other_languages(tiny: TranscriptionEngine) -> None:
    audio = _load("english.wav")
    with pytest.raises(NotFound, match="English-only"):
        tiny.transcribe(audio, TranscriptionOptions(language="fr"))
    with pytest.raises(InvalidArgument, match="cannot translate"):
        tiny.transcribe(audio, TranscriptionOptions(task="translate"))


# ----------------------------------------------------------------------- accuracy


@pytest.mark.slow
def test_jfk_tiny(tiny: TranscriptionEngine) -> None:
    audio = _load("jfk.flac")
    result = tiny.transcribe(audio, TranscriptionOptions(word_timestamps=True))
    assert wer(JFK_TEXT, result.text) <= 0.05
    assert result.language == "en" and result.language_probability == 1.0
    assert result.duration_s == pytest.approx(11.0)
    assert result.processing_s > 0
    assert [s.id for s in result.segments] == list(range(1, len(result.segments) + 1))
    for segment in result.segments:
        assert 0.0 <= segment.start < segment.end <= 11.0 + 0.05
        assert segment.channel == 0 and segment.language == "en"
        assert segment.avg_logprob < 0 and 0.0 <= segment.no_speech_prob <= 1.0
        assert segment.words
        assert "".join(w.word for w in segment.words).strip() == segment.text.strip()
        for word in segment.words:
            assert segment.start - 0.05 <= word.start <= word.end <= segment.end + 0.05
            assert 0.0 <= word.probability <= 1.0
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts)


@pytest.mark.slow
def test_sample_tiny(tiny: TranscriptionEngine) -> None:
    result = tiny.transcribe(_load("sample.wav"))
    assert wer(stm_text(AUDIO / "sample.stm"), result.text) <= 0.20


@pytest.mark.slow
def test_sample_base(base: TranscriptionEngine) -> None:
    result = base.transcribe(_load("sample.wav"))
    assert wer(stm_text(AUDIO / "sample.stm"), result.text) <= 0.25
    assert result.language == "en"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "english.wav",
        "audio-mono-8-bit-44100Hz.wav",
        "audio-stereo-24-bit-44100Hz.flac",
        "audio-mono-16-bit-44100Hz.aiff",
    ],
)
def test_format_variants_give_the_same_text(tiny: TranscriptionEngine, name: str) -> None:
    assert normalise(tiny.transcribe(_load(name)).text) == "one two three"


@pytest.mark.slow
def test_french_is_identified(base: TranscriptionEngine, french: DecodedAudio) -> None:
    detection = base.detect_language(french)
    assert detection.language == "fr"
    assert detection.probability > 0.5
    probabilities = [p for _, p in detection.all_probabilities]
    assert probabilities == sorted(probabilities, reverse=True)
    result = base.transcribe(french)
    assert result.language == "fr"
    assert all(s.language == "fr" for s in result.segments)
    assert "passeport" in result.text.lower()


@pytest.mark.slow
def test_language_per_segment(base: TranscriptionEngine, french: DecodedAudio) -> None:
    english = _load("jfk.flac")
    mixed = DecodedAudio.from_array(
        np.concatenate([english.mono(), np.zeros(16000, np.float32), french.mono()])
    )
    result = base.transcribe(mixed, TranscriptionOptions(detect_language_per_segment=True))
    languages = {s.language for s in result.segments}
    assert {"en", "fr"} <= languages, [(s.language, s.text) for s in result.segments]


@pytest.mark.slow
def test_english_detected_without_language(base: TranscriptionEngine) -> None:
    detection = base.detect_language(_load("jfk.flac"))
    assert detection.language == "en" and detection.probability > 0.5


@pytest.mark.slow
def test_per_channel(tiny: TranscriptionEngine) -> None:
    audio = _load("stereo_diarization.wav", keep_channels=True)
    result = tiny.transcribe(audio, TranscriptionOptions(per_channel=True))
    channels = {s.channel for s in result.segments}
    assert channels == {0, 1}
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts)
    assert [s.id for s in result.segments] == list(range(1, len(result.segments) + 1))
    # Each channel is transcribed on its own, so its text is what that channel alone says.
    left = DecodedAudio.from_array(audio.samples[0])
    alone = tiny.transcribe(left)
    assert " ".join(s.text.strip() for s in result.segments if s.channel == 0) == alone.text


@pytest.mark.slow
def test_batched_pipeline(tiny_en_dir: Path) -> None:
    engine = TranscriptionEngine(tiny_en_dir, batched=True, batch_size=4)
    assert engine.batched
    audio = _load("jfk.flac")
    for vad in (True, False):
        result = engine.transcribe(audio, TranscriptionOptions(vad_filter=vad))
        assert wer(JFK_TEXT, result.text) <= 0.05
    # Longer than one window without VAD: fixed 30-s clips.
    long = DecodedAudio.from_array(np.tile(audio.mono(), 4))
    result = engine.transcribe(long, TranscriptionOptions(vad_filter=False))
    assert result.segments[-1].end > 30.0
    assert wer(" ".join([JFK_TEXT] * 4), result.text) <= 0.15


@pytest.mark.slow
def test_concurrent_calls_share_one_model(tiny: TranscriptionEngine) -> None:
    audio = _load("jfk.flac")
    alone = tiny.transcribe(audio).text
    with ThreadPoolExecutor(3) as pool:
        texts = list(pool.map(lambda _: tiny.transcribe(audio).text, range(3)))
    assert texts == [alone] * 3


def test_silence_gives_no_segments(tiny: TranscriptionEngine) -> None:
    result = tiny.transcribe(DecodedAudio.from_array(np.zeros(16000 * 3, np.float32)))
    assert result.segments == () and result.text == ""
    empty = tiny.transcribe(DecodedAudio.from_array(np.zeros(0, np.float32)))
    assert empty.segments == () and empty.duration_s == 0.0 and empty.language == "en"


# ---------------------------------------------------------------------- cancellation


class _CancelAfter(threading.Event):
    """An event that reads as set from its n-th check on (a client leaving mid-way)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.remaining = checks

    def is_set(self) -> bool:
        self.remaining -= 1
        return self.remaining < 0 or super().is_set()


def _count_windows(engine: TranscriptionEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count encoder passes (one per 30-s window decoded)."""
    calls: list[int] = []
    encode = engine._model.encode

    def counting(features: np.ndarray) -> object:
        calls.append(1)
        return encode(features)

    monkeypatch.setattr(engine._model, "encode", counting)
    return calls


def test_cancelled_before_start(tiny: TranscriptionEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    windows = _count_windows(tiny, monkeypatch)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        tiny.transcribe(_load("jfk.flac"), cancel=cancel)
    assert windows == []


@pytest.mark.slow
def test_cancellation_stops_decoding(tiny: TranscriptionEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    jfk = _load("jfk.flac").mono()
    long = DecodedAudio.from_array(np.tile(jfk, 6))  # 66 s: a full run needs 3 windows
    options = TranscriptionOptions(vad_filter=False)
    windows = _count_windows(tiny, monkeypatch)
    with pytest.raises(Cancelled):
        tiny.transcribe(long, options, cancel=_CancelAfter(checks=2))  # 3rd check: 1st segment
    assert len(windows) == 1  # stopped within the first window


def test_a_language_identified_as_javanese_reaches_whisper_as_its_own_code(base: TranscriptionEngine) -> None:
    """Identification answers BCP-47 (`jv`); the full-window decode must give faster-whisper
    Whisper's code (`jw`): given `jv`, its tokenizer has no such language token and fails."""
    audio = _load("jfk.flac")
    options = TranscriptionOptions(language_candidates=("jv",), full_window=True, vad_filter=False, beam_size=1)
    result = base.transcribe(audio, options)
    assert result.language == "jv"  # the only candidate, sent back as BCP-47
    assert result.segments and all(s.language == "jv" for s in result.segments)


class _CountingEncoder:
    """The CTranslate2 model with its `encode` calls counted."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.encodes = inner, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def encode(self, *args: object, **kwargs: object) -> object:
        self.encodes += 1
        return self.inner.encode(*args, **kwargs)


def _counting(engine: TranscriptionEngine) -> tuple[TranscriptionEngine, _CountingEncoder]:
    import copy

    view = copy.copy(engine)
    view._model = copy.copy(engine._model)
    counter = _CountingEncoder(engine._model.model)
    view._model.model = counter
    return view, counter


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["fleurs-fr-003.ogg", "sample.wav"])
def test_automatic_language_in_the_full_window_encodes_each_window_once(base: TranscriptionEngine, clip: str) -> None:
    """faster-whisper without a language encodes its first window twice (identify, then
    decode); the engine encodes it once and gets the same text and language."""
    path = AUDIO.parent / "fleurs" / clip if clip.startswith("fleurs") else AUDIO / clip
    samples = decode_audio(path.read_bytes()).mono()
    ours, counter = _counting(base)
    options = TranscriptionOptions(full_window=True, vad_filter=False, word_timestamps=True)
    result = ours.transcribe(DecodedAudio.from_array(samples), options)
    theirs_view, theirs_counter = _counting(base)
    segments, info = theirs_view._model.transcribe(samples, language=None, beam_size=5, word_timestamps=True,
                                                   vad_filter=False)
    theirs = "".join(s.text for s in segments).strip()
    assert result.text == theirs
    assert result.language == tag_of_whisper(info.language)
    assert abs(result.language_probability - info.language_probability) < 0.05
    assert counter.encodes == theirs_counter.encodes - 1 >= 1
