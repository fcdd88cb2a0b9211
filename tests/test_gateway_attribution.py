"""A shared microphone's attribution (services/gateway/attribution.py) driven with fake
EmbedVoices and Diarize calls, and the lanes' audio of LiveConversation
(services/gateway/live_audio.py): no gRPC, no model.

The fake microphone carries who speaks in its samples: the agent's voice is a constant
0.1, the visitor's 0.2, silence 0. The fake EmbedVoices gives each span the direction of
the voice it holds (a mix where it holds both), the fake Diarize one turn per run of one
level; the real voices are tested through LiveConversation (test_gateway_service.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest

from parlons.services.common.audio_request import StreamAudioDecoder
from parlons.errors import FailedPrecondition, InvalidArgument, Unavailable
from parlons.services.gateway.attribution import RATE, Attributor, Party
from parlons.services.gateway.compose import SpeakerSpan
from parlons.services.gateway.core import Call, GatewayCore
from parlons.services.gateway.live import LiveConversation
from parlons.services.gateway.live_audio import LaneAudio, pcm16
from parlons.services.gateway.voices import unit
from parlons.v1 import audio_pb2, gateway_pb2, transcription_pb2
from speech import wav_bytes

AGENT_LEVEL, VISITOR_LEVEL = 0.1, 0.2
AGENT = unit(np.random.default_rng(1).standard_normal(192))
VISITOR = unit(np.random.default_rng(2).standard_normal(192))


def _voice_of(samples: np.ndarray) -> np.ndarray | None:
    """The fake print: the agent's direction, the visitor's, or their mix by share."""
    voiced = samples[np.abs(samples) > 0.05]
    if voiced.size == 0:
        return None
    share = float(np.clip((voiced.mean() - AGENT_LEVEL) / (VISITOR_LEVEL - AGENT_LEVEL), 0.0, 1.0))
    return unit((1 - share) * AGENT + share * VISITOR)


class FakeVoices:
    """EmbedVoices and Diarize over the fake microphone, recording their calls."""

    def __init__(self) -> None:
        self.embedded: list[list[tuple[float, float]]] = []
        self.diarised: list[float] = []  # seconds of each clip
        self.fail = False

    async def embed(self, clip: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[np.ndarray | None]:
        if self.fail:
            raise Unavailable("the diarization service is down")
        self.embedded.append(list(spans))
        whole = [(0.0, clip.shape[0] / RATE)]
        return [_voice_of(clip[int(a * RATE) : int(b * RATE)]) for a, b in (spans or whole)]

    async def diarise(self, clip: np.ndarray, speakers: int) -> list[SpeakerSpan]:
        if self.fail:
            raise Unavailable("the diarization service is down")
        assert speakers == 2
        self.diarised.append(clip.shape[0] / RATE)
        # Labels unlike the parties' indexes: the attributor maps them by earlier finals.
        names = {1: "SPEAKER_07", 2: "SPEAKER_03"}
        levels = np.where(np.abs(clip) < 0.05, 0, np.where(clip < 0.15, 1, 2))
        changes = np.flatnonzero(np.diff(levels)) + 1
        bounds = [0, *changes.tolist(), levels.shape[0]]
        return [SpeakerSpan(a / RATE, b / RATE, names[int(levels[a])]) for a, b in zip(bounds, bounds[1:]) if levels[a]]


def _speech(*turns: tuple[float, float, float], total_s: float) -> np.ndarray:
    """The microphone: (start, end, level) turns in silence."""
    audio = np.zeros(int(total_s * RATE), dtype=np.float32)
    for start, end, level in turns:
        audio[int(start * RATE) : int(end * RATE)] = level
    return audio


def _final(start: float, end: float, *words: tuple[float, float, str], language: str = "", probability: float = 0.0
           ) -> transcription_pb2.StreamingResult:
    return transcription_pb2.StreamingResult(
        is_final=True, start_s=start, end_s=end, language=language, language_probability=probability,
        text="".join(w for _, _, w in words).strip(),
        words=[transcription_pb2.WordInfo(start_s=a, end_s=b, word=w) for a, b, w in words],
    )


def _parties(agent: str = "fr", visitor: str = "fr", enrol: tuple[float, ...] = ()) -> list[Party]:
    """Agent and visitor on one microphone; `enrol` the levels of their voice samples."""
    samples = [wav_bytes(np.full(2 * RATE, level, dtype=np.float32)) for level in enrol]
    samples += [b""] * (2 - len(samples))
    return [Party(0, "agent", agent, -1, voice_sample=samples[0]), Party(1, "visitor", visitor, -1, voice_sample=samples[1])]


async def _enrolled(attributor: Attributor) -> None:
    for party in attributor.parties:
        await attributor.enrol(party)


def _described(pieces: list[tuple[Party, transcription_pb2.StreamingResult]]) -> list[tuple[str, str]]:
    return [(party.name, piece.text) for party, piece in pieces]


# -- enrolment --------------------------------------------------------------------------


async def test_enrolment_sets_the_agents_print_and_names_them_although_the_visitor_speaks_first() -> None:
    fake = FakeVoices()
    attributor = Attributor(_parties(enrol=(AGENT_LEVEL,)), fake.embed, fake.diarise)
    seconds = await attributor.enrol(attributor.parties[0])
    assert seconds == pytest.approx(2.0)
    assert fake.embedded == [[]]  # the whole sample, one print
    assert attributor.voices.enrolled(0) and not attributor.voices.enrolled(1)
    similarities = attributor.voices.similarities(AGENT)
    assert similarities[0] == pytest.approx(1.0, abs=1e-3) and similarities[1] is None

    # The visitor speaks first: the enrolled agent's voice is compared in the diarisation.
    attributor.hear(_speech((0.2, 1.8, VISITOR_LEVEL), total_s=2.0))
    pieces = await attributor.final(_final(0.0, 2.0, (0.2, 1.8, " Bonjour")))
    assert _described(pieces) == [("visitor", "Bonjour")]
    assert len(fake.diarised) == 1 and fake.diarised[0] > 2.0 + 2.0  # enrolment, pause, utterance

    # Without enrolment the same first voice is the first party.
    cold = FakeVoices()
    fresh = Attributor(_parties(), cold.embed, cold.diarise)
    fresh.hear(_speech((0.2, 1.8, VISITOR_LEVEL), total_s=2.0))
    assert _described(await fresh.final(_final(0.0, 2.0, (0.2, 1.8, " Bonjour")))) == [("agent", "Bonjour")]


async def test_enrolment_bad_samples_and_no_diarisation_service() -> None:
    fake = FakeVoices()
    short = Attributor([Party(0, "agent", "fr", -1, voice_sample=wav_bytes(np.full(RATE // 2, 0.1, np.float32))),
                        Party(1, "visitor", "en", -1)], fake.embed, fake.diarise)
    with pytest.raises(InvalidArgument, match="lasts 0.5 s"):
        await short.enrol(short.parties[0])
    silent = Attributor(_parties(enrol=(0.0,)), fake.embed, fake.diarise)
    with pytest.raises(InvalidArgument, match="no voice"):
        await silent.enrol(silent.parties[0])
    without = Attributor(_parties(enrol=(AGENT_LEVEL,)))
    with pytest.raises(FailedPrecondition, match="diarisation"):
        await without.enrol(without.parties[0])
    assert await without.enrol(without.parties[1]) == 0.0  # no sample: nothing to do


# -- voices -----------------------------------------------------------------------------


async def test_a_final_whose_second_part_is_the_other_voice_is_split_there() -> None:
    fake = FakeVoices()
    attributor = Attributor(_parties(enrol=(AGENT_LEVEL, VISITOR_LEVEL)), fake.embed, fake.diarise)
    await _enrolled(attributor)
    # The agent asks, the visitor answers after a 0.3-s pause: one utterance for the VAD.
    attributor.hear(_speech((0.0, 2.0, AGENT_LEVEL), (2.0, 4.0, VISITOR_LEVEL), total_s=4.0))
    final = _final(0.0, 4.0, (0.1, 0.9, " Votre"), (1.0, 1.9, " nom ?"), (2.2, 3.0, " Martin,"), (3.1, 3.9, " Paul."))
    pieces = await attributor.final(final)
    assert _described(pieces) == [("agent", "Votre nom ?"), ("visitor", "Martin, Paul.")]
    assert [(round(p.start_s, 2), round(p.end_s, 2)) for _, p in pieces] == [(0.0, 2.05), (2.05, 4.0)]
    assert [len(p.words) for _, p in pieces] == [2, 2]
    assert fake.diarised == []  # both prints known: no diarisation
    assert fake.embedded[-1] == [(0.0, pytest.approx(2.05)), (pytest.approx(2.05), pytest.approx(4.0))]

    # The same final all in the agent's voice stays whole, the agent's.
    attributor.hear(_speech((0.0, 4.0, AGENT_LEVEL), total_s=4.0))
    later = _final(4.0, 8.0, *[(4.0 + a, 4.0 + b, w) for a, b, w in ((0.1, 0.9, " Votre"), (1.0, 1.9, " nom"),
                                                                         (2.2, 3.0, " et"), (3.1, 3.9, " prénom."))])
    (whole,) = await attributor.final(later)
    assert whole[0].name == "agent" and whole[1] is later


async def test_first_finals_are_diarised_with_the_seconds_before_then_the_prints_decide() -> None:
    fake = FakeVoices()
    attributor = Attributor(_parties(), fake.embed, fake.diarise)
    attributor.hear(_speech((0.0, 1.5, AGENT_LEVEL), total_s=2.0))
    first = await attributor.final(_final(0.0, 1.5, (0.1, 1.4, " Bonjour.")))
    attributor.spoke(first[-1][0])
    attributor.hear(_speech((0.0, 1.5, VISITOR_LEVEL), total_s=2.0))
    second = await attributor.final(_final(2.0, 3.5, (2.1, 3.4, " Hello.")))
    attributor.spoke(second[-1][0])
    assert _described(first + second) == [("agent", "Bonjour."), ("visitor", "Hello.")]
    assert len(fake.diarised) == 2 and attributor.voices.all_known
    # Both prints known: the next agent's final by its print, with no diarisation, and
    # against turn taking (the visitor spoke last, so turns would give the agent anyway:
    # the agent speaks twice in a row to tell them apart).
    attributor.hear(_speech((0.0, 1.5, AGENT_LEVEL), total_s=2.0))
    third = await attributor.final(_final(4.0, 5.5, (4.1, 5.4, " Asseyez-vous.")))
    attributor.spoke(third[-1][0])
    attributor.hear(_speech((0.0, 1.5, AGENT_LEVEL), total_s=2.0))
    fourth = await attributor.final(_final(6.0, 7.5, (6.1, 7.4, " Merci.")))
    assert _described(third + fourth) == [("agent", "Asseyez-vous."), ("agent", "Merci.")]
    assert len(fake.diarised) == 2


# -- language, turn taking ------------------------------------------------------------


@pytest.mark.parametrize(("probability", "party"), [(0.95, "visitor"), (0.5, "agent")])
async def test_a_trusted_language_decides_a_one_voice_utterance(probability: float, party: str) -> None:
    """The agent's voice, but Arabic detected: the Arabic-speaking visitor when the model
    is sure; the voice (the agent's) when it is not."""
    fake = FakeVoices()
    attributor = Attributor(_parties("fr", "ar", enrol=(AGENT_LEVEL, VISITOR_LEVEL)), fake.embed, fake.diarise)
    await _enrolled(attributor)
    attributor.hear(_speech((0.1, 1.4, AGENT_LEVEL), total_s=1.5))
    pieces = await attributor.final(_final(0.0, 1.5, (0.1, 1.4, " مرحبا"), language="ar", probability=probability))
    assert [p.name for p, _ in pieces] == [party]


async def test_without_diarisation_service_language_then_turn_taking() -> None:
    attributor = Attributor(_parties("fr", "ar"))
    attributor.hear(_speech((0.0, 1.0, AGENT_LEVEL), total_s=1.0))
    names = []
    for i in range(3):
        ((party, _),) = await attributor.final(_final(i, i + 1.0, (i + 0.1, i + 0.9, " euh")))
        attributor.spoke(party)
        names.append(party.name)
    assert names == ["agent", "visitor", "agent"]
    # A sure language names its party, whoever spoke last (the agent did).
    ((party, _),) = await attributor.final(_final(3.0, 4.0, (3.1, 3.9, " نعم"), language="ar", probability=0.9))
    assert party.name == "visitor"
    ((party, _),) = await attributor.final(_final(3.0, 4.0, (3.1, 3.9, " oui"), language="fr", probability=0.9))
    assert party.name == "agent"
    # An unsure one does not: turn taking (the agent spoke last).
    ((party, _),) = await attributor.final(_final(3.0, 4.0, (3.1, 3.9, " oui"), language="fr", probability=0.5))
    assert party.name == "visitor"
    # Interims: by language, else the last speaker.
    assert attributor.interim(transcription_pb2.StreamingResult(language="ar")).name == "visitor"
    assert attributor.interim(transcription_pb2.StreamingResult(language="")).name == "agent"


async def test_a_failing_diarisation_service_falls_back_to_language_then_turns() -> None:
    fake = FakeVoices()
    fake.fail = True
    attributor = Attributor(_parties("fr", "en"), fake.embed, fake.diarise)
    attributor.hear(_speech((0.0, 1.0, VISITOR_LEVEL), total_s=1.0))
    ((party, _),) = await attributor.final(_final(0.0, 1.0, (0.1, 0.9, " hi"), language="en"))
    assert party.name == "visitor"
    attributor.spoke(party)
    ((party, _),) = await attributor.final(_final(1.0, 2.0, (1.1, 1.9, " hm")))
    assert party.name == "agent"
    assert not attributor.voices.all_known and fake.embedded == fake.diarised == []


# -- the lanes' audio -----------------------------------------------------------------


def _linear16(channels: int, rate: int = RATE) -> audio_pb2.AudioConfig:
    return audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=rate, channels=channels)


class _FakeBackend:
    """StreamingTranscribe that records the audio each lane sends, answering nothing."""

    def __init__(self) -> None:
        self.stub = SimpleNamespace(StreamingTranscribe=None)
        self.lanes: list[list[bytes]] = []

    async def relay(self, invoke: object, requests: AsyncIterator[transcription_pb2.StreamingTranscribeRequest],
                    options: object) -> AsyncIterator[transcription_pb2.StreamingTranscribeResponse]:
        received: list[bytes] = []
        self.lanes.append(received)
        async for request in requests:
            if request.WhichOneof("request") == "audio_content":
                received.append(request.audio_content)
        for _ in ():
            yield transcription_pb2.StreamingTranscribeResponse()


async def _converse(config: gateway_pb2.LiveConversationConfig, chunks: list[bytes]) -> tuple[LiveConversation, _FakeBackend, float]:
    backend = _FakeBackend()
    charged: list[float] = []

    async def charge_audio(tenant: object, seconds: float, *, under_way: bool = False) -> None:
        charged.append(seconds)

    core = SimpleNamespace(
        check_glossary=lambda glossary: None,
        router=SimpleNamespace(has=lambda name: False, get=lambda name: backend),
        quotas=SimpleNamespace(charge_audio=charge_audio),
    )
    conversation = LiveConversation(cast(GatewayCore, core), cast(Call, SimpleNamespace(tenant="t", options=None)), config)

    async def requests() -> AsyncIterator[gateway_pb2.LiveConversationRequest]:
        for chunk in chunks:
            yield gateway_pb2.LiveConversationRequest(audio_content=chunk)

    assert [r async for r in conversation.run(requests())] == []
    return conversation, backend, sum(charged)


def _chunks(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Cut at uneven sizes (not whole frames), cycling through `sizes`."""
    out, at, i = [], 0, 0
    while at < len(data):
        out.append(data[at : at + sizes[i % len(sizes)]])
        at += sizes[i % len(sizes)]
        i += 1
    return out


async def test_each_lane_receives_its_channels_bytes_exactly() -> None:
    """One channel per party, LINEAR16 at 16 kHz: each lane gets the client's int16 of
    its channel, bit for bit (no float round trip), whatever the chunking."""
    frames = np.random.default_rng(3).integers(-32768, 32768, size=(16000 * 2 + 7, 2), dtype=np.int64).astype("<i2")
    frames[:100] = [[-32768, 32767]] * 100  # the extremes a float round trip would change
    config = gateway_pb2.LiveConversationConfig(
        config=_linear16(2),
        parties=[gateway_pb2.Party(name="agent", language="fr", channel=1),
                 gateway_pb2.Party(name="visitor", language="en", channel=0)],
    )
    conversation, backend, charged = await _converse(config, _chunks(frames.tobytes(), [3200, 1601, 6402, 7]))
    assert not conversation.audio.decodes
    agent, visitor = (b"".join(lane) for lane in backend.lanes)  # lanes open in the parties' order
    assert agent == frames[:, 1].tobytes()
    assert visitor == frames[:, 0].tobytes()
    assert charged == pytest.approx(frames.shape[0] / RATE)


async def test_a_mono_shared_microphone_is_forwarded_as_it_came() -> None:
    samples = np.random.default_rng(4).integers(-32768, 32768, size=16000, dtype=np.int64).astype("<i2")
    data = samples.tobytes()
    config = gateway_pb2.LiveConversationConfig(
        config=_linear16(1),
        parties=[gateway_pb2.Party(name="agent", language="fr", channel=-1),
                 gateway_pb2.Party(name="visitor", language="en", channel=-1)],
    )
    conversation, backend, _ = await _converse(config, [data[:3200], data[3200:9601], data[9601:]])
    assert not conversation.audio.decodes
    (lane,) = backend.lanes
    assert b"".join(lane) == data
    # The voice window holds what the decoder would have given.
    decoder = StreamAudioDecoder(_linear16(1), keep_channels=True)
    decoded = np.concatenate([decoder.decode(data)[0], decoder.flush()[0]])
    assert conversation.attributor is not None
    np.testing.assert_array_equal(conversation.attributor.window.between(0.0, 1.0), decoded)


def test_other_rates_and_a_mixed_shared_microphone_are_decoded() -> None:
    stereo = (np.random.default_rng(5).standard_normal((2, 8000)) * 0.1).astype(np.float32)
    data = (stereo.T * 32767).astype("<i2").tobytes()
    phone = LaneAudio(_linear16(2, rate=8000), [0, 1])
    assert phone.decodes
    chunk = phone.feed(data)
    tail = phone.flush()
    assert sum(len(c) + len(t) for c, t in zip(chunk.lanes, tail.lanes)) == pytest.approx(2 * 2 * 16000, rel=0.01)
    mixed = LaneAudio(_linear16(2), [-1])
    assert mixed.decodes
    out = mixed.feed(data)
    assert out.mono is not None and out.lanes == [pcm16(out.mono)]
    np.testing.assert_allclose(out.mono, stereo.mean(axis=0), atol=1e-3)
