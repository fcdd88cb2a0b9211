"""DiarizationService through a real gRPC server on loopback, with the real models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from parlons.clients.sdk import open_channel
from parlons.serve import build_modules
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import BackgroundServer
from parlons.v1 import audio_pb2, diarization_pb2, diarization_pb2_grpc
from speech import wav_bytes


pytestmark = pytest.mark.slow

SERVICE = "parlons.v1.DiarizationService"
MAX_DER = 0.08  # the bar: diarisation error rate on sample.wav, collar 0


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    config = ParlonsConfig()
    config.server.port = 0
    config.server.max_message_mb = 8
    config.diarization.max_concurrent = 1
    config.diarization.max_queued = 1
    config.diarization.max_audio_s = 120.0
    running = BackgroundServer(config.server, build_modules(config, ["diarization"])).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stub(server: BackgroundServer) -> Iterator[diarization_pb2_grpc.DiarizationServiceStub]:
    channel = open_channel(server.address, max_message_mb=32)
    yield diarization_pb2_grpc.DiarizationServiceStub(channel)
    channel.close()




def _request(content: bytes, **options: object) -> diarization_pb2.DiarizeRequest:
    return diarization_pb2.DiarizeRequest(
        audio=audio_pb2.Audio(content=content),
        options=diarization_pb2.DiarizationOptions(**options),  # type: ignore[arg-type]
        uri="call",
    )


def _error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value


def _der(response: diarization_pb2.DiarizeResponse, reference: Path) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    hypothesis = Annotation()
    for i, turn in enumerate(response.turns):
        hypothesis[Segment(turn.start_s, turn.end_s), i] = turn.speaker
    ref = next(iter(load_rttm(reference).values()))
    return float(DiarizationErrorRate(collar=0.0)(ref, hypothesis, uem=Segment(0, response.audio_duration_s)))


def test_health_serving(server: BackgroundServer) -> None:
    channel = open_channel(server.address)
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    channel.close()


def test_diarize_sample(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    response = stub.Diarize(_request((audio_dir / "sample.wav").read_bytes()), timeout=300)
    assert response.mode == diarization_pb2.NEURAL
    assert sorted(s.speaker for s in response.speakers) == ["SPEAKER_00", "SPEAKER_01"]
    assert _der(response, audio_dir / "sample.rttm") <= MAX_DER
    assert response.rttm.splitlines()[0].startswith("SPEAKER call 1 ")
    assert len(response.rttm.splitlines()) == len(response.turns)
    assert any(t.overlap for t in response.turns) and all(t.channel == -1 for t in response.turns)
    assert response.audio_duration_s == pytest.approx(30.0, abs=0.01)
    assert 0 < response.processing_duration_s < 120
    assert all(s.turns > 0 and s.speaking_time_s > 5 for s in response.speakers)


def test_diarize_upload_with_speaker_count(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    data = (audio_dir / "sample.wav").read_bytes()

    def requests() -> Iterator[diarization_pb2.DiarizeUploadRequest]:
        yield diarization_pb2.DiarizeUploadRequest(
            config=diarization_pb2.DiarizeUploadConfig(
                options=diarization_pb2.DiarizationOptions(num_speakers=2), uri="upload"
            )
        )
        for start in range(0, len(data), 100_000):
            yield diarization_pb2.DiarizeUploadRequest(audio_content=data[start:start + 100_000])

    response = stub.DiarizeUpload(requests(), timeout=300)
    assert len(response.speakers) == 2 and _der(response, audio_dir / "sample.rttm") <= MAX_DER
    assert response.rttm.startswith("SPEAKER upload 1 ")


def test_channel_mode(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    request = _request(
        (audio_dir / "stereo_diarization.wav").read_bytes(),
        mode=diarization_pb2.CHANNEL,
        channel_speaker_names=["agent", "visitor"],
    )
    response = stub.Diarize(request, timeout=60)
    assert response.mode == diarization_pb2.CHANNEL
    assert {(t.speaker, t.channel) for t in response.turns} == {("agent", 0), ("visitor", 1)}
    assert {s.speaker for s in response.speakers} == {"agent", "visitor"}


def test_raw_pcm_eight_channels(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    from parlons.services.common.audio import decode_audio

    stereo = decode_audio((audio_dir / "stereo_diarization.wav").read_bytes(), keep_channels=True).samples
    eight = np.concatenate([stereo, np.zeros((6, stereo.shape[1]), dtype=np.float32)])
    pcm = (np.clip(eight.T, -1, 1) * 32767).astype("<i2").tobytes()
    config = audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=8)
    request = _request(pcm, mode=diarization_pb2.CHANNEL)
    request.config.CopyFrom(config)
    response = stub.Diarize(request, timeout=60)
    assert {t.channel for t in response.turns} == {0, 1}
    neural = _request(pcm)
    neural.config.CopyFrom(config)
    response = stub.Diarize(neural, timeout=300)  # neural mode downmixes the 8 channels
    assert response.mode == diarization_pb2.NEURAL and 1 <= len(response.speakers) <= 2


def test_silence_and_short_clip(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    silence = stub.Diarize(_request(wav_bytes(np.zeros(3 * 16000))), timeout=60)
    assert len(silence.turns) == 0 and len(silence.speakers) == 0 and silence.rttm == ""
    from parlons.services.common.audio import decode_audio

    sample = decode_audio((audio_dir / "sample.wav").read_bytes()).samples[0]
    clip = stub.Diarize(_request(wav_bytes(sample[11 * 16000:12 * 16000])), timeout=120)
    assert len(clip.speakers) == 1 and clip.audio_duration_s == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        ({"min_speakers": 3, "max_speakers": 2}, "below min_speakers"),
        ({"num_speakers": -1}, "num_speakers must be >= 0"),
        ({"num_speakers": 5, "max_speakers": 2}, "contradicts"),
        ({"mode": 7}, "unknown diarisation mode"),
    ],
)
def test_bad_options(stub: diarization_pb2_grpc.DiarizationServiceStub, options: dict, detail: str) -> None:
    error = _error(lambda: stub.Diarize(_request(wav_bytes(np.zeros(16000)), **options), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and detail in error.details()


def test_bad_audio(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    for content in (b"this is not audio at all" * 40, b"\x00\x01\x02" * 1000):
        error = _error(lambda: stub.Diarize(_request(content), timeout=30))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = _error(lambda: stub.Diarize(diarization_pb2.DiarizeRequest(), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "no audio" in error.details()
    mono = _request((audio_dir / "sample.wav").read_bytes(), mode=diarization_pb2.CHANNEL)
    error = _error(lambda: stub.Diarize(mono, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "2 or more channels" in error.details()
    # the server is unharmed
    assert stub.Diarize(_request(wav_bytes(np.zeros(16000))), timeout=60).audio_duration_s == pytest.approx(1.0)


def test_bad_upload_order(stub: diarization_pb2_grpc.DiarizationServiceStub) -> None:
    def audio_first() -> Iterator[diarization_pb2.DiarizeUploadRequest]:
        yield diarization_pb2.DiarizeUploadRequest(audio_content=b"RIFF")
        yield diarization_pb2.DiarizeUploadRequest(config=diarization_pb2.DiarizeUploadConfig())

    error = _error(lambda: stub.DiarizeUpload(audio_first(), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "config first" in error.details()
    error = _error(lambda: stub.DiarizeUpload(iter(()), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_overload_is_refused_at_once(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    data = (audio_dir / "sample.wav").read_bytes()
    codes: list[grpc.StatusCode] = []

    def call() -> None:
        try:
            stub.Diarize(_request(data), timeout=300)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # one runs, one waits, the rest are refused
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
    assert codes.count(grpc.StatusCode.OK) >= 2


def test_deadline_stops_the_work(stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path) -> None:
    data = (audio_dir / "sample.wav").read_bytes()
    error = _error(lambda: stub.Diarize(_request(data), timeout=0.5))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # the next call is served normally (the cancelled job released its slot)
    assert len(stub.Diarize(_request(data), timeout=300).speakers) == 2


# -- EmbedVoices ------------------------------------------------------------------------


def _stm_spans(audio_dir: Path, speaker: str, min_s: float) -> list[tuple[float, float]]:
    from speech import stm_turns

    return [(s, e) for name, s, e, _ in stm_turns(audio_dir / "sample.stm") if name == speaker and e - s >= min_s]


def test_voice_prints_tell_the_two_voices_of_the_call(
    stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path
) -> None:
    """Prints of the same voice are closer than prints of the other voice, on the real
    call; each is unit length, in request order."""
    diane, sheila = _stm_spans(audio_dir, "Diane", 1.4), _stm_spans(audio_dir, "Sheila", 1.9)
    spans = diane + sheila
    reply = stub.EmbedVoices(
        diarization_pb2.EmbedVoicesRequest(
            audio=audio_pb2.Audio(content=(audio_dir / "sample.wav").read_bytes()),
            spans=[diarization_pb2.TimeSpan(start_s=a, end_s=b) for a, b in spans],
        ),
        timeout=120,
    )
    assert reply.dimension == 192 and reply.model and abs(reply.audio_duration_s - 30.0) < 0.1
    assert [x for p in reply.prints for x in (p.start_s, p.end_s)] == pytest.approx([x for s in spans for x in s], abs=1e-4)
    vectors = np.array([p.vector for p in reply.prints])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    n = len(diane)
    for i in range(len(spans)):
        # Each turn is closer to the print of its speaker's other turns than to the
        # other speaker's: what the live desk's attribution relies on.
        own = [j for j in range(len(spans)) if j != i and (j < n) == (i < n)]
        other = [j for j in range(len(spans)) if (j < n) != (i < n)]
        own_print, other_print = vectors[own].mean(axis=0), vectors[other].mean(axis=0)
        own_sim = vectors[i] @ own_print / np.linalg.norm(own_print)
        other_sim = vectors[i] @ other_print / np.linalg.norm(other_print)
        assert own_sim > other_sim + 0.05, (i, own_sim, other_sim)


def test_voice_print_of_whole_audio_and_too_short_span(
    stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path
) -> None:
    content = (audio_dir / "jfk.flac").read_bytes()
    whole = stub.EmbedVoices(diarization_pb2.EmbedVoicesRequest(audio=audio_pb2.Audio(content=content)), timeout=60)
    assert len(whole.prints) == 1 and len(whole.prints[0].vector) == 192
    assert whole.prints[0].start_s == 0 and abs(whole.prints[0].end_s - whole.audio_duration_s) < 1e-3
    tiny = stub.EmbedVoices(
        diarization_pb2.EmbedVoicesRequest(
            audio=audio_pb2.Audio(content=content), spans=[diarization_pb2.TimeSpan(start_s=1.0, end_s=1.001)]
        ),
        timeout=60,
    )
    assert len(tiny.prints) == 1 and not tiny.prints[0].vector  # too short for the model: no print


@pytest.mark.parametrize(
    ("spans", "detail"),
    [
        ([(2.0, 1.0)], "start_s < end_s"),
        ([(-1.0, 1.0)], "start_s < end_s"),
        ([(float("nan"), 1.0)], "start_s < end_s"),
        ([(0.0, 1.0)] * 65, "at most 64"),
        ([(0.0, 500.0), (0.0, 500.0)], "at most 600 s"),
        ([(40.0, 41.0)], "after the end of the audio"),
    ],
)
def test_voice_prints_bad_spans(
    stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path, spans: list, detail: str
) -> None:
    request = diarization_pb2.EmbedVoicesRequest(
        audio=audio_pb2.Audio(content=(audio_dir / "jfk.flac").read_bytes()),
        spans=[diarization_pb2.TimeSpan(start_s=a, end_s=b) for a, b in spans],
    )
    error = _error(lambda: stub.EmbedVoices(request, timeout=60))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and detail in error.details(), error.details()


# -- speaker references and counts --------------------------------------------------------


def _voice_of(audio_dir: Path, speaker: str, until_s: float, keep_s: float = 30.0) -> bytes:
    """The turns of `speaker` in sample.rttm before `until_s`, without the other voice
    (the first `keep_s` seconds of them)."""
    from pyannote.core import Segment
    from pyannote.database.util import load_rttm

    from parlons.services.common.audio import decode_audio

    truth = next(iter(load_rttm(str(audio_dir / "sample.rttm")).values())).crop(Segment(0.0, until_s))
    others = truth.subset([speaker], invert=True).get_timeline().support()
    own = truth.label_timeline(speaker).support().extrude(others)
    samples = decode_audio((audio_dir / "sample.wav").read_bytes()).mono()
    voice = np.concatenate([samples[int(s.start * 16000):int(s.end * 16000)] for s in own])
    return wav_bytes(voice[: int(keep_s * 16000)])


def test_a_reference_voice_names_its_speaker(
    stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path
) -> None:
    """speaker90's clean turns of the first 20 s as the agent's voice: the speaker whose
    turns are mostly speaker90's in the reference is named Agent, the other keeps its
    label, and the RTTM carries the name."""
    from pyannote.core import Segment
    from pyannote.database.util import load_rttm

    reference = diarization_pb2.SpeakerReference(name="Agent", audio=audio_pb2.Audio(
        content=_voice_of(audio_dir, "speaker90", 20.0)))
    response = stub.Diarize(_request((audio_dir / "sample.wav").read_bytes(), speaker_references=[reference]),
                            timeout=300)
    names = sorted(s.speaker for s in response.speakers)
    assert len(names) == 2 and "Agent" in names and any(n.startswith("SPEAKER_") for n in names), names
    agent = next(s for s in response.speakers if s.speaker == "Agent")
    assert 0.5 <= agent.reference_similarity <= 1.0
    truth = next(iter(load_rttm(str(audio_dir / "sample.rttm")).values()))
    own = sum(truth.crop(Segment(t.start_s, t.end_s)).label_duration("speaker90")
              for t in response.turns if t.speaker == "Agent")
    spoken = sum(t.end_s - t.start_s for t in response.turns if t.speaker == "Agent")
    assert own >= 0.8 * spoken, (own, spoken)
    assert " Agent " in response.rttm


@pytest.mark.parametrize(
    "content, detail",
    [
        (lambda audio_dir: wav_bytes(np.zeros(5 * 16000, np.float32)), "'Agent' is silent"),
        (lambda audio_dir: _voice_of(audio_dir, "speaker90", 20.0, keep_s=1.2), "'Agent' holds"),
        (lambda audio_dir: b"not audio at all", "Agent"),
    ],
    ids=["silence", "too-short", "not-decodable"],
)
def test_a_reference_that_cannot_serve_is_refused_by_name(
    stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path, content: object, detail: str
) -> None:
    reference = diarization_pb2.SpeakerReference(name="Agent", audio=audio_pb2.Audio(
        content=content(audio_dir)))  # type: ignore[operator]
    error = _error(lambda: stub.Diarize(_request((audio_dir / "sample.wav").read_bytes(),
                                                 speaker_references=[reference]), timeout=120))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in (error.details() or ""), error.details()


def test_min_speakers_above_what_the_call_holds_is_answered_with_the_count(
    stub: diarization_pb2_grpc.DiarizationServiceStub, audio_dir: Path
) -> None:
    """Two voices, six asked at least: an answer, with the estimate and a note saying why."""
    response = stub.Diarize(_request((audio_dir / "sample.wav").read_bytes(), min_speakers=6), timeout=300)
    assert response.turns and response.estimated_speakers == 2, response.estimated_speakers
    assert 0.0 < response.speaker_count_confidence <= 1.0
    assert "min_speakers=6" in response.speaker_count_note
