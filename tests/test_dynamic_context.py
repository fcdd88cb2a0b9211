"""Dynamic audio context, language hints and the default model.

The window rules and the guards are checked on their own; then the engine with `base`
against the fixed 30-s window on real recordings (WER within a point), on sub-second
and noise clips (no invented text), and on alternating French and Arabic utterances
with two language hints (each identified correctly).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from parlons.services.common.audio import DecodedAudio, decode_audio
from parlons.services.common.config import ParlonsConfig
from parlons.errors import InvalidArgument
from parlons.services.transcription import convert
from parlons.services.transcription.engine import (
    TranscriptionEngine,
    TranscriptionResult,
    default_model,
)
from parlons.services.transcription.speech_chunks import chunks_after
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.streaming import StreamingSession
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment as WhisperSegment
from parlons.services.transcription.window import (
    FULL_FRAMES,
    WindowPolicy,
    acceptable,
    choose_language,
    loops,
    repeats,
    whisper_options,
)
from parlons.v1 import audio_pb2, transcription_pb2
from speech import AUDIO, JFK_TEXT, espeak, stm_text, stm_turns, wer

RATE = 16000


# -- window rules ------------------------------------------------------------------------


def test_window_is_clip_plus_pad_above_the_floor_and_never_over_30_s() -> None:
    policy = WindowPolicy(floor_s=3.0, pad_s=0.5)
    assert policy.frames(RATE // 2) == 300  # 0.5 s clip: the floor
    assert policy.frames(4 * RATE) == 450  # 4 s + 0.5 s
    assert policy.frames(29 * RATE) == FULL_FRAMES
    assert policy.frames(23 * RATE) == 2350 and policy.frames(24 * RATE) == FULL_FRAMES
    assert all(policy.frames(n) % 2 == 0 for n in range(1, 5 * RATE, 997))
    assert WindowPolicy(enabled=False).frames(RATE) == FULL_FRAMES


@pytest.mark.parametrize(
    "text, loops",
    [
        ("Hello Hello Hello Hello", True),
        ("there. Leave the desire. Leave the desire.", True),
        ("I don't- I don't- I don't-", True),
        ("Okay, I thought, you know, I heard a beat, this is, I thought, you know, I heard a beat, this is, I", True),
        ("no no, that is not it", False),
        ("I think I think we should go now to the meeting room and talk", False),
        ("This is Diane in New Jersey.", False),
        ("", False),
    ],
)
def test_repetition_guard(text: str, loops: bool) -> None:
    assert repeats(text) is loops


def test_long_decode_loop_guard_spares_speech_that_repeats_a_word_three_times() -> None:
    """The loop CI's AVX2 machine got after 27 s of good text on trn03, and speech."""
    stuck = "you know, it was some stupid, " + ", ".join(["stupid"] * 13)
    assert loops([_segment("I'm not 100% sure.", 6), _segment(stuck, 30)])
    assert loops([_segment("yes I think " + "and then we " * 5, 20)])
    assert not loops([_segment("No, no, no, I said the Java thing, the Java thing.", 14)])


def test_the_rest_of_a_group_after_a_loop_is_cut_in_its_chunk() -> None:
    chunks = [{"start": 0, "end": 16000}, {"start": 32000, "end": 64000}]
    # 1.5 s into the joined audio is 0.5 s into the second chunk.
    assert chunks_after(chunks, 24000) == [{"start": 40000, "end": 64000}]
    assert chunks_after(chunks, 8000) == [{"start": 8000, "end": 16000}, {"start": 32000, "end": 64000}]
    assert chunks_after(chunks, 44000) == []  # 0.25 s left: nothing worth decoding


def test_candidates_restrict_and_renormalise_language_identification() -> None:
    probabilities = [("pt", 0.5), ("ar", 0.3), ("fr", 0.1), ("en", 0.1)]
    assert choose_language(probabilities) == ("pt", 0.5)
    language, probability = choose_language(probabilities, ["fr", "ar"])
    assert language == "ar" and probability == pytest.approx(0.75)
    assert choose_language(probabilities, ["de"]) == ("pt", 0.5)  # no candidate scored


def test_language_hints_become_candidates_and_bad_hints_are_named() -> None:
    options = convert.options_from_proto(
        transcription_pb2.TranscriptionOptions(), audio_pb2.AudioConfig(language_hints=["fr", "ar-MA", "fr"])
    )
    assert options.language is None and options.model_candidates == ("fr", "ar")
    assert options.language_candidates == ("fr", "ar-MA")  # the tags as given, one per language
    single = convert.options_from_proto(
        transcription_pb2.TranscriptionOptions(), audio_pb2.AudioConfig(language_hints=["fr"])
    )
    assert single.language == "fr" and single.language_candidates == ()
    with pytest.raises(InvalidArgument, match="'xx'.*'french'|'french'.*'xx'"):
        TranscriptionOptions(language_candidates=("fr", "xx", "french"))
    with pytest.raises(InvalidArgument, match="at most 16"):
        TranscriptionOptions(language_candidates=tuple(["fr"] * 17))


# -- default model -----------------------------------------------------------------------


@dataclass
class _Info:
    installed: bool
    status: str


class _Manager:
    def __init__(self, installed: bool) -> None:
        self.installed = installed

    def info(self, name: str) -> _Info:
        assert name == "large-v3-turbo"
        return _Info(self.installed, "ok" if self.installed else "not installed")


def test_default_model_is_multilingual_on_every_device() -> None:
    assert ParlonsConfig().transcription.model == "auto"
    assert default_model("auto", "cpu", _Manager(True)) == "base"
    assert default_model("auto", "cuda", _Manager(True)) == "large-v3-turbo"
    assert default_model("auto", "cuda", _Manager(False)) == "base"
    assert default_model("tiny.en", "cpu", _Manager(False)) == "tiny.en"  # only when asked


# -- the engine on real speech -------------------------------------------------------------


@pytest.fixture(scope="module")
def engines(base_dir: Path) -> tuple[TranscriptionEngine, TranscriptionEngine]:
    dynamic = TranscriptionEngine(base_dir, name="base", device="cpu")
    fixed = TranscriptionEngine(base_dir, name="base", device="cpu", window=WindowPolicy(enabled=False))
    return dynamic, fixed


def _mono(path: Path) -> np.ndarray:
    return decode_audio(path.read_bytes()).mono()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, reference",
    [
        ("jfk.flac", JFK_TEXT),
        ("english.wav", "one two three"),
        ("sample.wav", stm_text(AUDIO / "sample.stm")),
    ],
)
def test_file_wer_with_dynamic_context_is_within_a_point_of_the_full_window(
    engines: tuple[TranscriptionEngine, TranscriptionEngine], name: str, reference: str
) -> None:
    dynamic, fixed = engines
    audio = DecodedAudio.from_array(_mono(AUDIO / name))
    options = TranscriptionOptions(language="en", temperatures=(0.0,))  # deterministic
    dyn = wer(reference, dynamic.transcribe(audio, options).text)
    full = wer(reference, fixed.transcribe(audio, options).text)
    assert dyn <= full + 0.01, (dyn, full)


@pytest.mark.slow
def test_french_speech_with_dynamic_context(
    engines: tuple[TranscriptionEngine, TranscriptionEngine], tmp_path: Path
) -> None:
    """A 39-word request at a prefecture desk: French identified, and the cut window
    within two words of the full one. (A 20-word sentence was too short a test: espeak's
    voice through `base` gives WER 0.7-0.8 there, and the two windows swap a word
    depending on the CPU's instruction set.) Measured: 0.125 vs 0.175 with AVX-512,
    0.175 vs 0.175 with AVX2, and 0.200 vs 0.150 on another AVX-512 machine (2026-12-07:
    "séjour" and "rendez-vous" lost in the cut window), hence two words, not one."""
    text = (
        "Bonjour monsieur. Je voudrais renouveler ma carte de séjour, qui expire à la fin du "
        "mois. J'ai apporté mon passeport, une facture d'électricité et trois photos "
        "d'identité. Combien de temps faut-il attendre pour le rendez-vous à la préfecture ?"
    )
    audio = DecodedAudio.from_array(_mono(espeak(text, "fr", tmp_path / "fr.wav")))
    dynamic, fixed = engines
    result = dynamic.transcribe(audio, TranscriptionOptions(temperatures=(0.0,)))
    assert result.language == "fr"
    full = fixed.transcribe(audio, TranscriptionOptions(temperatures=(0.0,)))
    two_words = 2 / len(text.split())
    assert wer(text, result.text) <= min(0.3, wer(text, full.text) + two_words + 1e-9), (result.text, full.text)


@pytest.mark.slow
def test_live_turns_keep_the_full_window_accuracy(
    engines: tuple[TranscriptionEngine, TranscriptionEngine],
) -> None:
    """The 13 turns of sample.wav as live utterances (what finals decode), greedy so the
    comparison is deterministic: the guarded short window costs at most two words of the
    81 (the window settings were chosen on these turns; the other recordings are the
    check that they hold). Measured: one word with AVX-512, two with AVX2 (CTranslate2's
    kernels round differently: "in New Jersey" loses its "in", a turn cut 0.2 s after its
    end gets the next turn's "This is")."""
    dynamic, fixed = engines
    samples = _mono(AUDIO / "sample.wav")
    turns = stm_turns(AUDIO / "sample.stm")
    reference = " ".join(t for *_, t in turns)
    options = TranscriptionOptions(language="en", vad_filter=False, temperatures=(0.0,))
    hyps: dict[str, list[str]] = {"dynamic": [], "fixed": []}
    for _, start, end, _ in turns:
        clip = DecodedAudio.from_array(samples[int(max(0.0, start - 0.2) * RATE) : int((end + 0.2) * RATE)])
        hyps["dynamic"].append(dynamic.transcribe(clip, options).text)
        hyps["fixed"].append(fixed.transcribe(clip, options).text)
    dyn, full = (wer(reference, " ".join(hyps[k])) for k in ("dynamic", "fixed"))
    two_words = 2 / len(reference.split())
    assert dyn <= full + two_words + 1e-9, (dyn, full, hyps)


@pytest.mark.slow
def test_sub_second_bursts_and_noise_invent_no_text(
    engines: tuple[TranscriptionEngine, TranscriptionEngine],
) -> None:
    dynamic, _ = engines
    rng = np.random.default_rng(7)
    noise = (0.05 * rng.standard_normal(2 * RATE)).astype(np.float32)
    # Pure noise through a live session: no final, no interim text.
    session = StreamingSession(dynamic)
    events = [e for i in range(0, noise.shape[0], 1600) for e in session.feed(noise[i : i + 1600])]
    events += session.finish()
    assert not [e for e in events if e.text.strip()], events
    # A 0.2-s speech burst followed by silence: too short to be an utterance.
    speech = _mono(AUDIO / "jfk.flac")
    burst = np.concatenate([np.zeros(RATE // 2, np.float32), speech[RATE : RATE + RATE // 5],
                            np.zeros(3 * RATE, np.float32)])
    session = StreamingSession(dynamic)
    events = [e for i in range(0, burst.shape[0], 1600) for e in session.feed(burst[i : i + 1600])]
    events += session.finish()
    assert not [e for e in events if e.is_final and e.text.strip()], events
    # Noise as a file with the VAD filter: nothing.
    assert dynamic.transcribe(DecodedAudio.from_array(noise)).text == ""


@pytest.mark.slow
def test_french_and_arabic_alternating_with_two_hints(
    engines: tuple[TranscriptionEngine, TranscriptionEngine], tmp_path: Path
) -> None:
    """A desk with French and Arabic, each utterance identified on its own among the two
    hints. espeak-ng's Arabic voice is a weak stand-in for Arabic speech: `base` takes
    some of it for French, with the full window too (docs/transcription.md), so the
    test holds what the hints guarantee (no third language, French always French) and
    the share measured for Arabic."""
    dynamic, _ = engines
    lines = [
        ("fr", "Bonjour, que puis-je faire pour vous aujourd'hui ?"),
        ("ar", "السلام عليكم، أنا هنا من أجل تجديد بطاقة الإقامة."),
        ("fr", "Avez-vous votre passeport et un justificatif de domicile ?"),
        ("ar", "أنا لا أتكلم الفرنسية جيدا، هل يمكنك مساعدتي من فضلك؟"),
        ("fr", "Très bien, je vous donne un rendez-vous pour mardi matin."),
        ("ar", "شكرا جزيلا لك، مع السلامة."),
    ]
    silence = np.zeros(int(1.2 * RATE), np.float32)
    pieces = [silence]
    for i, (voice, text) in enumerate(lines):
        pieces += [_mono(espeak(text, voice, tmp_path / f"{i}.wav")), silence]
    samples = np.concatenate(pieces)
    options = TranscriptionOptions(language_candidates=("fr", "ar"))
    session = StreamingSession(dynamic, options)
    events = [e for i in range(0, samples.shape[0], 1600) for e in session.feed(samples[i : i + 1600])]
    events += session.finish()
    finals = [e for e in events if e.is_final]
    found = [(f.language, f.text) for f in finals]
    assert len(finals) == len(lines), found
    assert all(e.language in ("fr", "ar", None) for e in events), found
    assert all(f.language == "fr" for f, (voice, _) in zip(finals, lines) if voice == "fr"), found
    arabic = [f.language == "ar" for f, (voice, _) in zip(finals, lines) if voice == "ar"]
    assert sum(arabic) >= 2, found


@pytest.mark.slow
def test_more_than_30_s_of_speech_is_decoded_in_groups_with_file_times(
    engines: tuple[TranscriptionEngine, TranscriptionEngine], data_dir: Path
) -> None:
    """Two meeting excerpts back to back (60 s, speech in several VAD groups): segment
    and word times are in file time, ordered, and the text agrees with the full window."""
    dynamic, fixed = engines
    parts = [_mono(data_dir / "meetings" / name) for name in ("trn03.flac", "trn05.flac")]
    audio = DecodedAudio.from_array(np.concatenate(parts))
    options = TranscriptionOptions(language="en", word_timestamps=True, temperatures=(0.0,))
    result = dynamic.transcribe(audio, options)
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= audio.duration_s + 0.01
    assert any(w.start > 30.0 for s in result.segments for w in s.words)  # the second excerpt is there
    for segment in result.segments:
        assert all(segment.start - 0.05 <= w.start <= w.end <= segment.end + 0.05 for w in segment.words)
    assert wer(fixed.transcribe(audio, options).text, result.text) <= 0.15


def test_token_budget_bounds_short_clips_by_script() -> None:
    policy = WindowPolicy()
    assert policy.token_budget(2 * RATE, "fr", None) == 24 + 40
    assert policy.token_budget(2 * RATE, "am", None) == 24 + 100  # Ge'ez: byte-coded
    assert policy.token_budget(2 * RATE, "fr", 30) == 30  # a caller's smaller cap wins
    assert policy.token_budget(20 * RATE, "fr", None) is None  # long: the model's limit
    assert WindowPolicy(enabled=False).token_budget(2 * RATE, "fr", None) is None


def _segment(text: str, tokens: int, avg_logprob: float = -0.3) -> WhisperSegment:
    return WhisperSegment(
        id=1, seek=0, start=0.0, end=1.0, text=text, tokens=list(range(tokens)),
        avg_logprob=avg_logprob, compression_ratio=1.2, no_speech_prob=0.1, words=None, temperature=0.0,
    )


def test_a_decode_cut_by_its_budget_or_unsure_is_refused(base_dir: Path) -> None:
    """A loop truncated by the budget can look like text; it must not be kept."""
    from faster_whisper.tokenizer import Tokenizer

    model = WhisperModel(str(base_dir), device="cpu", compute_type="int8")
    tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="fr")
    options = whisper_options(model, tokenizer)
    assert acceptable([_segment(" Bonjour madame.", 6)], options, budget=40)
    assert not acceptable([_segment(" Bonjour madame, bonjour", 39)], options, budget=40)
    assert not acceptable([_segment(" Bonjour madame.", 6, -0.7)], options, 40, min_log_prob=-0.6)
    assert not acceptable([], options, budget=40)


class _Recorder:
    """Engine wrapper that records the options of every decode."""

    def __init__(self, engine: TranscriptionEngine) -> None:
        self.engine = engine
        self.calls: list[TranscriptionOptions] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def transcribe(self, audio: DecodedAudio, options: TranscriptionOptions, *,
                   cancel: threading.Event | None = None) -> TranscriptionResult:
        self.calls.append(options)
        return self.engine.transcribe(audio, options, cancel=cancel)


@pytest.mark.parametrize("dynamic_finals", [False, True])
def test_live_interims_are_previews_and_finals_use_the_full_window_unless_asked(
    engines: tuple[TranscriptionEngine, TranscriptionEngine], dynamic_finals: bool
) -> None:
    """Interims: one cut-window pass, no fallback. Finals: faster-whisper's own 30-s
    decode by default (cut-window finals lost 4 words of 81 on the desk dialogue)."""
    recorder = _Recorder(engines[0])
    session = StreamingSession(recorder, TranscriptionOptions(language="en"), dynamic_finals=dynamic_finals)  # type: ignore[arg-type]
    samples = _mono(AUDIO / "jfk.flac")
    events = [e for i in range(0, samples.shape[0], 1600) for e in session.feed(samples[i : i + 1600])]
    events += session.finish()
    interims = [o for o in recorder.calls if o.preview]
    finals = [o for o in recorder.calls if not o.preview]
    assert interims and finals and any(e.is_final for e in events)
    assert all(not o.full_window for o in interims)
    assert all(o.full_window is (not dynamic_finals) for o in finals)
    full = engines[1].transcribe(DecodedAudio.from_array(samples), TranscriptionOptions(language="en", vad_filter=False))
    assert wer(full.text, " ".join(e.text for e in events if e.is_final)) <= 0.1


def test_full_window_option_decodes_exactly_as_faster_whisper(
    engines: tuple[TranscriptionEngine, TranscriptionEngine],
) -> None:
    dynamic, fixed = engines
    clip = DecodedAudio.from_array(_mono(AUDIO / "sample.wav")[: 8 * RATE])
    options = TranscriptionOptions(
        language="en", vad_filter=False, word_timestamps=True, temperatures=(0.0,), full_window=True
    )
    assert dynamic.transcribe(clip, options).segments == fixed.transcribe(clip, options).segments
