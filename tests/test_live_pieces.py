"""The live pieces that need no Whisper model: the LocalAgreement-2 buffer (which interim
words are committed) and the end-pointer (where utterances start and end), the latter
driven by a scripted VAD, and once by the real Silero VAD on a recorded dialogue.

With the default StreamingConfig, in 512-sample (32 ms) VAD frames: the pad is 3200
samples, an utterance ends on the 16th frame below the release threshold after its last
speech frame (16 * 512 >= 8000 samples), a burst of 7 frames (3584 < 4000 samples) is
short and one of 8 frames is not, a short burst is dropped on the 63rd silent frame
(63 * 512 >= 32000 samples), and an utterance is cut once it spans 192000 samples."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from parlons.services.common.audio import decode_audio
from parlons.services.transcription.agreement import LocalAgreement, normalise
from parlons.services.transcription.endpointer import VAD_FRAME, EndPointer, StreamingVad, Utterance
from parlons.services.transcription.streaming import StreamingConfig
from speech import AUDIO, stm_turns

F = VAD_FRAME
PAD = 3200


# -- LocalAgreement ---------------------------------------------------------------------


def _agreement(*hypotheses: str) -> LocalAgreement:
    buffer = LocalAgreement()
    for hypothesis in hypotheses:
        buffer.insert(hypothesis.split())
    return buffer


def test_the_first_hypothesis_commits_nothing() -> None:
    buffer = _agreement("the cat sat on the mat")
    assert buffer.committed == []
    assert buffer.committed_text == ""
    assert buffer.unstable("the cat sat on the mat".split()) == "the cat sat on the mat".split()


def test_two_agreeing_hypotheses_commit_their_common_prefix_but_not_the_last_word() -> None:
    buffer = _agreement("the cat sat", "the cat sat on")
    assert buffer.committed == ["the", "cat", "sat"]  # "on" is the newer one's last word
    buffer = _agreement("the cat sat", "the cat sat")
    assert buffer.committed == ["the", "cat"]  # "sat" is the last word of both
    assert buffer.unstable("the cat sat".split()) == ["sat"]


def test_only_the_prefix_before_the_first_disagreement_is_committed() -> None:
    buffer = _agreement("the cat sat on the mat", "the cat sang on the mat today")
    assert buffer.committed == ["the", "cat"]  # "on the mat" agrees too, but after "sat"/"sang"
    assert buffer.unstable("the cat sang on the mat today".split()) == ["sang", "on", "the", "mat", "today"]


def test_words_are_compared_without_case_or_punctuation_and_take_the_newer_spelling() -> None:
    assert normalise("Hello,") == normalise("hello") == "hello"
    assert normalise("don't.") == "don't"
    buffer = _agreement("hello world how are", "Hello, World how are you")
    assert buffer.committed == ["Hello,", "World", "how", "are"]
    assert buffer.committed_text == "Hello, World how are"


def test_committed_words_are_never_reworded() -> None:
    buffer = _agreement("hello world how are", "Hello, World how are you")
    buffer.insert("hello world. How are you doing today".split())
    # "hello world. How are" agrees once normalised: the committed spelling stays.
    assert buffer.committed == ["Hello,", "World", "how", "are", "you"]
    buffer.insert("HELLO WORLD HOW ARE YOU DOING TODAY FRIEND".split())
    assert buffer.committed == ["Hello,", "World", "how", "are", "you", "DOING", "TODAY"]


def test_a_hypothesis_that_disagrees_with_the_committed_words_commits_nothing_and_takes_nothing_back() -> None:
    buffer = _agreement("the cat sat", "the cat sat down")
    assert buffer.committed == ["the", "cat", "sat"]
    assert not buffer.agrees("a dog barked loudly".split())
    buffer.insert("a dog barked loudly".split())
    assert buffer.committed == ["the", "cat", "sat"]
    # Agrees with the previous hypothesis, not with the committed words: nothing.
    buffer.insert("a dog barked loudly again".split())
    assert buffer.committed == ["the", "cat", "sat"]
    # Agrees with the committed words, but the previous hypothesis did not: nothing yet.
    buffer.insert("the cat sat down on the mat".split())
    assert buffer.committed == ["the", "cat", "sat"]
    # Shorter than the committed words: it does not agree.
    buffer.insert("the cat".split())
    assert buffer.committed == ["the", "cat", "sat"]
    buffer.insert("the cat sat down on".split())
    assert buffer.committed == ["the", "cat", "sat"]
    buffer.insert("the cat sat down on the".split())
    assert buffer.committed == ["the", "cat", "sat", "down", "on"]


def test_unstable_is_what_follows_the_committed_words() -> None:
    buffer = _agreement("the cat sat", "the cat sat down")
    assert buffer.unstable("the cat sat down on".split()) == ["down", "on"]
    assert buffer.unstable("the cat sat".split()) == []
    # A hypothesis that no longer starts with the committed words: the committed text
    # stays shown and the words past its length follow it.
    assert buffer.unstable("a dog barked loudly".split()) == ["loudly"]


def test_clear_resets_the_committed_words_and_the_previous_hypothesis() -> None:
    buffer = _agreement("the cat sat", "the cat sat down")
    assert buffer.committed
    buffer.clear()
    assert buffer.committed == [] and buffer.hypothesis == [] and buffer.committed_text == ""
    buffer.insert("the cat sat down on".split())
    assert buffer.committed == []  # no previous hypothesis to agree with
    buffer.insert("the cat sat down on".split())
    assert buffer.committed == ["the", "cat", "sat", "down"]


def test_random_hypotheses_keep_the_agreement_invariants() -> None:
    """Noisy growing hypotheses of a sentence (spelling variants, substituted words, words
    dropped): committed words only ever grow at the end, each one agreed on (normalised)
    by the previous hypothesis and taken from the current one, never its last word."""
    rng = random.Random(20240611)
    vocabulary = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]
    variants = {w: [w, w.capitalize(), w + ",", w.upper() + "."] for w in vocabulary}
    buffer = LocalAgreement()
    commits = disagreements = 0
    for _ in range(100):
        buffer.clear()
        sentence = [rng.choice(vocabulary) for _ in range(40)]
        length = 0
        for _ in range(30):
            length = min(len(sentence), length + rng.randint(0, 3))
            words = [rng.choice(variants[w]) for w in sentence[: max(0, length - rng.randint(0, 2))]]
            if words and rng.random() < 0.3:
                words[rng.randrange(len(words))] = rng.choice(vocabulary)
            before, previous = list(buffer.committed), list(buffer.hypothesis)
            disagreements += not buffer.agrees(words)
            buffer.insert(words)
            after = buffer.committed
            assert after[: len(before)] == before
            for i in range(len(before), len(after)):
                assert i < len(words) - 1
                assert after[i] == words[i]
                assert normalise(previous[i]) == normalise(words[i])
            if len(after) > len(before):
                assert all(normalise(a) == normalise(b) == normalise(c) for a, b, c in zip(before, previous, words))
            assert buffer.hypothesis == words
            commits += len(after) - len(before)
    assert commits > 500 and disagreements > 100, (commits, disagreements)  # the walk exercised both


# -- EndPointer with a scripted VAD --------------------------------------------------------


class ScriptedVad(StreamingVad):
    """One probability per 512-sample frame: the frame's mean sample value (the signal is
    the script, each frame's samples set to its probability). Frames split across pushes
    wait for their remaining samples, as the real VAD's do. Loads no model."""

    def __init__(self) -> None:
        self._rest = np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        data = np.concatenate([self._rest, np.asarray(samples, dtype=np.float32)])
        n = data.shape[0] // F
        self._rest = data[n * F :]
        return data[: n * F].reshape(n, F).mean(axis=1)


def script(*runs: tuple[float, int]) -> np.ndarray:
    """Samples for runs of (probability, number of frames)."""
    return np.concatenate([np.full(n * F, p, dtype=np.float32) for p, n in runs])


def endpointer(**config: Any) -> EndPointer:
    return EndPointer(StreamingConfig(**config), vad=ScriptedVad())


def feed(ep: EndPointer, signal: np.ndarray, chunk: int, *, keep_short: bool = False) -> list[Utterance]:
    out: list[Utterance] = []
    for i in range(0, signal.shape[0], chunk):
        out += ep.push(signal[i : i + chunk], keep_short=keep_short)
    return out


def frames_until_first(ep: EndPointer, signal: np.ndarray) -> tuple[int, list[Utterance]]:
    """Push one frame at a time: the index of the frame after which utterances came out."""
    for k in range(signal.shape[0] // F):
        utterances = ep.push(signal[k * F : (k + 1) * F])
        if utterances:
            return k, utterances
    raise AssertionError("no utterance ended")


def test_the_config_numbers_these_tests_count_on() -> None:
    ep = endpointer()
    assert (ep.pad, ep.min_speech) == (PAD, 4000)
    assert not ep.open and ep.position == 0


def test_an_utterance_starts_a_pad_before_its_first_speech_frame_and_ends_a_pad_after_its_last() -> None:
    ep = endpointer()
    signal = script((0.0, 20), (1.0, 30), (0.0, 40))
    assert ep.push(signal[: 20 * F]) == [] and not ep.open
    ep.push(signal[20 * F : 21 * F])
    assert ep.open and ep.start == 20 * F - PAD == 7040
    ep.push(signal[21 * F : 50 * F])
    # The 16th silent frame after the last speech (frame 49) is frame 65: the end comes there, not before.
    k, utterances = frames_until_first(ep, signal[50 * F :])
    assert 50 + k == 65
    assert utterances == [Utterance(start=7040, end=50 * F + PAD, last_speech_end=50 * F, speech_samples=30 * F)]
    assert not ep.open and ep.position == 66 * F
    assert ep.push(signal[66 * F :]) == []


def test_the_start_pad_stops_at_the_stream_start() -> None:
    utterances = endpointer().push(script((0.0, 3), (1.0, 20), (0.0, 20)))
    assert [(u.start, u.end) for u in utterances] == [(0, 23 * F + PAD)]


@pytest.mark.parametrize("silence_ms", [300, 500, 1000])
def test_the_end_comes_after_end_of_utterance_ms_of_silence(silence_ms: int) -> None:
    ep = endpointer(end_of_utterance_ms=silence_ms)
    frames = -(-silence_ms * 16 // F)  # the first whole number of frames reaching it
    k, utterances = frames_until_first(ep, script((0.0, 10), (1.0, 20), (0.0, frames + 10)))
    assert k == 30 + frames - 1
    assert [(u.start, u.end) for u in utterances] == [(10 * F - PAD, 30 * F + PAD)]


def test_the_end_pad_stops_at_the_frame_that_ended_the_utterance() -> None:
    # A 1 s pad after 300 ms of silence: the utterance ends where the silence did (frame 79).
    utterances = endpointer(speech_pad_ms=1000, end_of_utterance_ms=300).push(script((0.0, 40), (1.0, 30), (0.0, 20)))
    assert [(u.start, u.end, u.last_speech_end) for u in utterances] == [(40 * F - 16000, 80 * F, 70 * F)]


def test_an_utterance_never_starts_inside_the_previous_one() -> None:
    # Speech resumes 12 frames (384 ms) after the last: the next start (82 * 512 - 16000 =
    # 25984) is before the first one's end (80 * 512 = 40960); that audio is decoded twice.
    ep = endpointer(speech_pad_ms=1000, end_of_utterance_ms=300)
    utterances = ep.push(script((0.0, 40), (1.0, 30), (0.0, 12), (1.0, 30), (0.0, 40)))
    assert len(utterances) == 2
    assert utterances[0].end <= utterances[1].start, [(u.start, u.end) for u in utterances]


def test_the_end_waits_for_a_frame_under_the_release_threshold() -> None:
    """0.4 is under the start threshold (0.5) but over the release one (0.35): it neither
    starts an utterance nor counts as the silence that ends one."""
    ep = endpointer()
    assert ep.push(script((0.4, 40))) == [] and not ep.open
    k, utterances = frames_until_first(ep, script((1.0, 30), (0.4, 25), (0.0, 20)))
    assert k == 55  # the first 0.0 frame, 25 frames after the 16 that would have ended it
    assert [(u.start, u.end, u.last_speech_end) for u in utterances] == [(40 * F - PAD, 70 * F + PAD, 70 * F)]


@pytest.mark.parametrize(("speech_frames", "ends"), [(7, False), (8, True)])
def test_min_speech_ms_decides_whether_a_burst_ends_as_an_utterance(speech_frames: int, ends: bool) -> None:
    ep = endpointer()
    utterances = ep.push(script((0.0, 20), (1.0, speech_frames), (0.0, 30)))
    assert len(utterances) == int(ends)
    assert ep.open is not ends


def test_a_short_burst_stays_open_and_is_dropped_after_two_seconds_of_silence() -> None:
    ep = endpointer()
    assert ep.push(script((0.0, 20), (1.0, 5))) == []
    assert ep.open and ep.start == 20 * F - PAD and ep.speech_samples == 5 * F
    assert ep.push(script((0.0, 62))) == []
    assert ep.open and ep.silence_samples == 62 * F  # well past end_of_utterance_ms: kept open
    assert ep.push(script((0.0, 1))) == []
    assert not ep.open and ep.start is None  # 63 * 512 >= 2 s: dropped
    # Speech after it is an utterance of its own, from its own start.
    utterances = ep.push(script((1.0, 20), (0.0, 20)))
    assert [(u.start, u.end) for u in utterances] == [(88 * F - PAD, 108 * F + PAD)]


def test_a_short_burst_joins_the_speech_that_follows_within_two_seconds() -> None:
    utterances = endpointer().push(script((0.0, 20), (1.0, 5), (0.0, 50), (1.0, 30), (0.0, 20)))
    assert utterances == [Utterance(start=20 * F - PAD, end=105 * F + PAD, last_speech_end=105 * F, speech_samples=35 * F)]


def test_keep_short_ends_a_short_burst_as_an_utterance() -> None:
    signal = script((0.0, 20), (1.0, 5), (0.0, 30))
    utterances = endpointer().push(signal, keep_short=True)
    assert utterances == [Utterance(start=20 * F - PAD, end=25 * F + PAD, last_speech_end=25 * F, speech_samples=5 * F)]
    # keep_short applies to the utterance that ends in that push, not to the next ones.
    ep = endpointer()
    utterances = ep.push(np.concatenate([signal, signal]), keep_short=True)
    assert [u.start for u in utterances] == [20 * F - PAD]
    assert ep.open and ep.start == 55 * F + 20 * F - PAD


def _long_speech(*dips: tuple[int, float]) -> np.ndarray:
    """10 silent frames, speech (0.9) on frames 10..449 with the given (frame, probability)
    dips, then 40 silent frames. The utterance starts at 1920 and reaches 192000 samples on
    frame 378 (ending at 194048); its last 5 s are the frames ending after 113920 (222..)."""
    probs = np.zeros(490, dtype=np.float32)
    probs[10:450] = 0.9
    for frame, p in dips:
        probs[frame] = p
    return np.repeat(probs, F)


def test_an_over_long_utterance_is_cut_at_its_quietest_recent_frame_and_the_next_starts_there() -> None:
    # A deeper dip on frame 221 is just before the last 5 s; frame 300's is in them.
    ep = endpointer()
    k, first = frames_until_first(ep, _long_speech((221, 0.1), (300, 0.3)))
    assert k == 378
    cut = 301 * F - F // 2
    assert 300 * F < cut < 301 * F
    assert [(u.start, u.end, u.by_length) for u in first] == [(10 * F - PAD, cut, True)]
    assert ep.open and ep.start == cut
    assert ep.speech_samples == (378 - 300) * F  # frames 301..378, after the cut
    rest = ep.push(_long_speech((221, 0.1), (300, 0.3))[379 * F :])
    assert rest == [Utterance(start=cut, end=450 * F + PAD, last_speech_end=450 * F, speech_samples=149 * F)]
    assert not ep.open


def test_the_cut_takes_the_latest_of_equally_quiet_frames_and_the_limit_without_a_pause() -> None:
    utterances = endpointer().push(_long_speech((250, 0.3), (300, 0.3), (340, 0.6)))
    assert [(u.start, u.end, u.by_length) for u in utterances] == [(1920, 301 * F - F // 2, True), (301 * F - F // 2, 450 * F + PAD, False)]
    utterances = endpointer().push(_long_speech((222, 0.1), (300, 0.3)))  # 222: the first frame in the last 5 s
    assert [u.end for u in utterances][0] == 223 * F - F // 2
    utterances = endpointer().push(_long_speech())
    assert [(u.start, u.end, u.by_length) for u in utterances] == [(1920, 379 * F - F // 2, True), (379 * F - F // 2, 450 * F + PAD, False)]


def test_max_utterance_s_sets_the_cut() -> None:
    # 6 s: cut once 96000 samples long (frame 191), in its last 3 s (max(6 - 5, 6 / 2)):
    # the frames ending after 49920, 97.. (the dip at 90 is before them).
    ep = endpointer(max_utterance_s=6.0)
    utterances = ep.push(_long_speech((90, 0.1), (120, 0.3), (150, 0.2)))
    assert [(u.start, u.end, u.by_length) for u in utterances][0] == (1920, 151 * F - F // 2, True)


def test_several_utterances_in_one_push_come_out_in_order() -> None:
    ep = endpointer()
    utterances = ep.push(script((0.0, 20), (1.0, 30), (0.0, 30), (1.0, 20), (0.0, 40), (0.8, 50), (0.0, 30)))
    assert [(u.start, u.end, u.speech_samples) for u in utterances] == [
        (20 * F - PAD, 50 * F + PAD, 30 * F),
        (80 * F - PAD, 100 * F + PAD, 20 * F),
        (140 * F - PAD, 190 * F + PAD, 50 * F),
    ]
    assert not ep.open and ep.position == 220 * F


def _mixed_signal() -> np.ndarray:
    """Utterances, a short burst dropped, one joined, an over-long one cut, graded
    probabilities, and a tail that is not a whole frame (745 frames and 300 samples)."""
    rng = np.random.default_rng(7)
    probs = np.concatenate([
        np.zeros(13), np.full(23, 0.95), np.full(19, 0.1),  # speech on frames 13..35
        np.full(11, 0.7), np.zeros(40),  # 55..65
        np.full(4, 0.9), np.zeros(80),  # 106..109: short, dropped
        np.full(3, 0.6), np.full(30, 0.2), np.full(25, 0.85), np.zeros(20),  # 190..192 joins 223..247
        rng.uniform(0.55, 1.0, 420), np.zeros(25),  # 268..687: cut
        np.full(9, 0.9), np.full(5, 0.4), np.zeros(18),  # 713..721, then 0.4 holds the end to frame 737
    ]).astype(np.float32)
    assert probs.shape == (745,)
    probs[600] = 0.31  # the quietest of the long one's last 5 s (frames 484..640)
    return np.concatenate([np.repeat(probs, F), np.full(300, 1.0, dtype=np.float32)])


def test_positions_are_stream_samples_whatever_the_chunk_size() -> None:
    signal = _mixed_signal()
    reference = endpointer()
    expected = reference.push(signal)
    cut = 601 * F - F // 2
    assert [(u.start, u.end, u.by_length) for u in expected] == [
        (13 * F - PAD, 36 * F + PAD, False),
        (55 * F - PAD, 66 * F + PAD, False),
        (190 * F - PAD, 248 * F + PAD, False),
        (268 * F - PAD, cut, True),
        (cut, 688 * F + PAD, False),
        (713 * F - PAD, 722 * F + PAD, False),
    ]
    assert expected[2].speech_samples == 28 * F
    assert (reference.position, reference.open) == (745 * F, False)
    for chunk in (100, 1600, 16000, 511, 513):
        ep = endpointer()
        assert feed(ep, signal, chunk) == expected, chunk
        assert (ep.position, ep.open) == (745 * F, False), chunk


# -- The real VAD on recorded speech -------------------------------------------------------


@pytest.fixture(scope="module")
def dialogue() -> np.ndarray:
    return decode_audio((AUDIO / "sample.wav").read_bytes()).mono()


def test_the_streaming_vad_gives_the_whole_file_probabilities_whatever_the_chunks(dialogue: np.ndarray) -> None:
    from faster_whisper.vad import get_vad_model

    n = dialogue.shape[0] // F * F
    whole = np.asarray(get_vad_model()(dialogue[:n].copy())).reshape(-1)  # it writes into its input
    assert whole.shape == (n // F,)
    for chunk in (100, 1600, 16000):
        vad = StreamingVad()
        probs = np.concatenate([vad.process(dialogue[i : i + chunk]) for i in range(0, dialogue.shape[0], chunk)])
        assert probs.shape == whole.shape
        # The whole-file pass zeroes its last frame's context tail: the last frame may differ.
        np.testing.assert_allclose(probs[:-1], whole[:-1], atol=1e-5)
    assert (whole > 0.5).mean() > 0.4  # a dialogue: mostly speech


def test_the_real_vad_finds_the_turns_of_a_recorded_dialogue(dialogue: np.ndarray) -> None:
    ep = EndPointer(StreamingConfig(), vad=StreamingVad())
    utterances = feed(ep, dialogue, 1600)
    # The utterance still open at the end of the file, closed as the session closes it.
    assert ep.start is not None
    utterances.append(Utterance(ep.start, min(dialogue.shape[0], ep.last_speech_end + ep.pad), ep.last_speech_end, ep.speech_samples))
    spans = [(u.start, u.end) for u in utterances]
    assert len(spans) >= 2
    assert all(0 <= start < end <= dialogue.shape[0] for start, end in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    # Phone dialogue with no long pause: the turns run into utterances cut at 12 s.
    assert all(end - start <= 12 * 16000 for start, end in spans)

    turns = stm_turns(AUDIO / "sample.stm")
    assert len(turns) == 13
    first = min(t[1] for t in turns)
    assert abs(spans[0][0] / 16000 - first) < 0.5  # the first "Hello?" at 6.68 s
    overlapped = [t for t in turns if any(s / 16000 < t[2] and e / 16000 > t[1] for s, e in spans)]
    assert len(overlapped) >= 12, [t for t in turns if t not in overlapped]


def test_silence_after_the_recording_ends_the_open_utterance(dialogue: np.ndarray) -> None:
    ep = EndPointer(StreamingConfig(), vad=StreamingVad())
    before = ep.push(dialogue)
    assert len(before) >= 1 and ep.open
    start = ep.start
    assert before[-1].by_length and before[-1].end == start  # the open one began at the last cut
    after = ep.push(np.zeros(16000, dtype=np.float32))
    assert len(after) == 1 and not ep.open
    assert after[0].start == start
    assert dialogue.shape[0] - 2 * F <= after[0].last_speech_end <= dialogue.shape[0] + 4 * F  # speech to the end
    assert after[0].end == after[0].last_speech_end + PAD
