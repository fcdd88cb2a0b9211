"""Voice prints of a shared microphone (services/gateway/voices.py): the decision rules on
controlled vectors. The real-voice behaviour is tested through LiveConversation
(test_gateway_service.py) and measured in benchmarks/bench_diarization.py (part voices)."""

from __future__ import annotations

import numpy as np
import pytest

from parlons.services.gateway.voices import VoicePrints, VoiceSettings, pause_cuts, unit

DIM = 192


def _voice(seed: int) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal(DIM))


def _utterance(voice: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """An utterance of a voice: its direction plus noise (similarity to the voice about
    1 / sqrt(1 + noise^2))."""
    return unit(voice + noise * _voice(1000 + seed))


AGENT, VISITOR = _voice(1), _voice(2)


def test_first_voice_is_the_first_party_and_a_new_voice_the_other() -> None:
    prints = VoicePrints()
    first = prints.attribute(_utterance(AGENT, 0.5, 1), 2.0, None)
    assert (first.party, first.reason) == (0, "turn taking")
    prints.learn(0, _utterance(AGENT, 0.5, 1), 2.0)
    same = prints.attribute(_utterance(AGENT, 0.5, 2), 2.0, 0)
    assert (same.party, same.reason) == (0, "voice")
    new = prints.attribute(_utterance(VISITOR, 0.5, 3), 2.0, 0)
    assert (new.party, new.reason) == (1, "new voice")


def test_a_short_utterance_does_not_open_a_voice_alone() -> None:
    """Under reliable_s, an utterance unlike the only print is given by turn taking."""
    prints = VoicePrints()
    prints.learn(0, AGENT, 2.0)
    short = prints.attribute(_utterance(VISITOR, 0.5, 4), 0.5, 1)
    assert (short.party, short.reason) == (0, "turn taking")


def test_two_prints_closer_wins_and_a_tie_goes_by_turn_taking() -> None:
    prints = VoicePrints()
    prints.learn(0, AGENT, 3.0)
    prints.learn(1, VISITOR, 3.0)
    assert prints.attribute(_utterance(VISITOR, 0.6, 5), 1.5, 1).party == 1
    assert prints.attribute(_utterance(AGENT, 0.6, 6), 1.5, 0).party == 0
    halfway = unit(AGENT + VISITOR)
    tie = prints.attribute(halfway, 1.5, 0)
    assert (tie.party, tie.reason) == (1, "turn taking")


def test_enrolment_names_the_agent_from_the_first_word() -> None:
    prints = VoicePrints()
    prints.enrol(0, AGENT)
    assert prints.enrolled(0) and not prints.enrolled(1)
    # The visitor speaks first: without enrolment turn taking would make them party 0.
    visitor = prints.attribute(_utterance(VISITOR, 0.5, 7), 2.0, None)
    assert visitor.party == 1
    agent = prints.attribute(_utterance(AGENT, 0.5, 8), 2.0, 1)
    assert (agent.party, agent.reason) == (0, "enrolment")


def test_prints_are_duration_weighted_means() -> None:
    """A long utterance weighs more than a short one in its party's print."""
    prints = VoicePrints()
    prints.learn(0, AGENT, 4.0)
    prints.learn(0, VISITOR, 0.4)  # a short misattribution barely moves the print
    (similarity, _) = prints.similarities(AGENT)
    assert similarity is not None and similarity > 0.99


def test_parts_split_only_where_the_voice_changes() -> None:
    prints = VoicePrints()
    prints.learn(0, AGENT, 4.0)
    prints.learn(1, VISITOR, 4.0)
    parts = [_utterance(AGENT, 0.4, 10), _utterance(AGENT, 0.4, 11), _utterance(VISITOR, 0.4, 12)]
    assert prints.attribute_parts(parts, [1.5, 1.2, 1.4], 1) == [0, 0, 1]
    one_voice = [_utterance(VISITOR, 0.6, 13), _utterance(VISITOR, 0.6, 14)]
    assert prints.attribute_parts(one_voice, [1.5, 1.5], 0) == [1, 1]


def test_parts_before_the_voices_are_known() -> None:
    """Cold start: two groups of parts whose voices differ are two parties; the first
    group goes to the first party; alike parts stay one utterance."""
    prints = VoicePrints()
    parts = [_utterance(AGENT, 0.4, 20), _utterance(VISITOR, 0.4, 21), _utterance(VISITOR, 0.4, 22)]
    assert prints.attribute_parts(parts, [1.5, 1.5, 1.5], None) == [0, 1, 1]
    assert prints.all_known
    fresh = VoicePrints()
    alike = [_utterance(AGENT, 0.4, 23), _utterance(AGENT, 0.4, 24)]
    assert fresh.attribute_parts(alike, [1.5, 1.5], None) == [0, 0]
    # Groups from a diarisation of the utterance override the prints' guess.
    assert VoicePrints().attribute_parts(alike, [1.5, 1.5], None, groups=[0, 1]) == [0, 1]


@pytest.mark.parametrize(
    ("words", "cuts"),
    [
        ([], []),
        ([(0.0, 0.4), (0.5, 0.9)], []),  # too short for two parts of 1 s
        ([(0.0, 1.0), (1.1, 2.0), (2.6, 3.5)], [1.05, 2.3]),  # widest pause first, then within
        ([(0.0, 1.0), (1.4, 2.4), (2.5, 3.4), (3.9, 5.0)], [1.2, 2.45, 3.65]),
        ([(0.0, 1.5), (1.6, 2.2)], []),  # a cut would leave 0.65 s on the right
    ],
)
def test_pause_cuts(words: list[tuple[float, float]], cuts: list[float]) -> None:
    end = words[-1][1] if words else 0.0
    assert pause_cuts(words, 0.0, end, VoiceSettings().min_piece_s) == pytest.approx(cuts)
