"""TranscriptionService through a real gRPC server on loopback, real Whisper weights."""

from __future__ import annotations

import time
import wave
from pathlib import Path
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from parlons.clients.sdk import TranscriptionClient, open_channel
from parlons.serve import build_modules
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import BackgroundServer
from parlons.v1 import audio_pb2, transcription_pb2
from parlons.services.common.audio import decode_audio
from crafted import crafted_wav
from speech import AUDIO, JFK_TEXT, espeak, opus_bytes, stm_text, wav_bytes, wer

pytestmark = pytest.mark.slow


def _server(model: str, **transcription: object) -> BackgroundServer:
    config = ParlonsConfig()
    config.server.port = 0
    config.server.max_message_mb = 8
    config.transcription.model = model
    config.transcription.max_audio_s = 600.0
    for key, value in transcription.items():
        setattr(config.transcription, key, value)
    return BackgroundServer(config.server, build_modules(config, ["transcription"])).start()


@pytest.fixture(scope="module")
def tiny() -> Iterator[BackgroundServer]:
    server = _server("tiny.en", max_concurrent=1, max_queued=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(tiny: BackgroundServer) -> Iterator[TranscriptionClient]:
    channel = open_channel(tiny.address, max_message_mb=32)
    yield TranscriptionClient(channel)
    channel.close()




def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value.code()


# -- accuracy ------------------------------------------------------------------------


def test_jfk_word_error_rate_tiny_en(client: TranscriptionClient) -> None:
    response = client.transcribe((AUDIO / "jfk.flac").read_bytes(), timeout_s=120)
    assert wer(JFK_TEXT, response.text) <= 0.05, response.text
    assert response.language == "en"
    assert 10.5 < response.audio_duration_s < 11.5
    assert response.segments and all(s.end_s > s.start_s for s in response.segments)


def test_sample_wav_word_error_rate_tiny_en(client: TranscriptionClient) -> None:
    response = client.transcribe_file(AUDIO / "sample.wav", timeout_s=300)
    score = wer(stm_text(AUDIO / "sample.stm"), response.text)
    assert score <= 0.20, (score, response.text)


def test_word_timestamps_are_ordered_and_inside_segments(client: TranscriptionClient) -> None:
    options = transcription_pb2.TranscriptionOptions(word_timestamps=True)
    response = client.transcribe((AUDIO / "jfk.flac").read_bytes(), options, timeout_s=120)
    words = [w for s in response.segments for w in s.words]
    assert len(words) >= 20
    starts = [w.start_s for w in words]
    assert starts == sorted(starts)
    for segment in response.segments:
        for word in segment.words:
            assert segment.start_s - 0.5 <= word.start_s <= word.end_s <= segment.end_s + 0.5
            assert 0.0 <= word.probability <= 1.0


def test_all_shared_format_variants_give_the_same_text(client: TranscriptionClient) -> None:
    texts = {}
    for name in [
        "english.wav",
        "audio-mono-8-bit-44100Hz.wav",
        "audio-stereo-24-bit-44100Hz.flac",
        "audio-mono-16-bit-44100Hz.aiff",
    ]:
        texts[name] = client.transcribe((AUDIO / name).read_bytes(), timeout_s=60).text
    for name, text in texts.items():
        assert wer("one two three", text) == 0.0, (name, text)


def test_per_channel_tags_each_channel(client: TranscriptionClient) -> None:
    options = transcription_pb2.TranscriptionOptions(per_channel=True)
    response = client.transcribe((AUDIO / "stereo_diarization.wav").read_bytes(), options, timeout_s=60)
    assert response.channels == 2
    assert {s.channel for s in response.segments} == {0, 1}


def test_upload_in_chunks_equals_unary(client: TranscriptionClient) -> None:
    unary = client.transcribe((AUDIO / "jfk.flac").read_bytes(), timeout_s=60)
    uploaded = client.transcribe_file(AUDIO / "jfk.flac", timeout_s=60)
    assert uploaded.text == unary.text


@pytest.fixture(scope="module")
def base_client() -> Iterator[TranscriptionClient]:
    """A server on the default configuration ("auto"): base on this CPU."""
    server = _server("auto")
    channel = open_channel(server.address)
    yield TranscriptionClient(channel)
    channel.close()
    server.stop()


def test_default_model_sample_wav_and_french_identification(
    base_client: TranscriptionClient, tmp_path: Path
) -> None:
    client = base_client
    response = client.transcribe_file(AUDIO / "sample.wav", timeout_s=300)
    score = wer(stm_text(AUDIO / "sample.stm"), response.text)
    assert score <= 0.25, (score, response.text)
    french = espeak(
        "Bonjour madame, je viens pour renouveler ma carte de séjour. "
        "Voici mon passeport et le justificatif de domicile.",
        "fr",
        tmp_path / "fr.wav",
    )
    response = client.transcribe(french.read_bytes(), timeout_s=120)
    assert response.language == "fr", response
    assert response.language_probability > 0.5
    models = client.list_models()
    assert models.default_model == "base"
    assert any(m.name == "base" and m.loaded and m.multilingual for m in models.models)


# -- streaming -----------------------------------------------------------------------


def _pcm_chunks(path: Path, chunk_ms: int, realtime: bool) -> Iterator[bytes]:
    with wave.open(str(path), "rb") as handle:
        assert handle.getframerate() == 16000 and handle.getsampwidth() == 2
        frames = handle.readframes(handle.getnframes())
    step = 16000 * 2 * chunk_ms // 1000
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(frames), step)):
        if realtime:
            delay = started + index * chunk_ms / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield frames[offset : offset + step]


def _stream_config(**options: object) -> transcription_pb2.StreamingConfig:
    return transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        options=transcription_pb2.TranscriptionOptions(**options),  # type: ignore[arg-type]
    )


def test_streaming_sample_at_real_time_gives_interim_and_final_results(client: TranscriptionClient) -> None:
    unary = client.transcribe_file(AUDIO / "sample.wav", timeout_s=300)
    results = []
    received_at = []
    for response in client.streaming_transcribe(
        _pcm_chunks(AUDIO / "sample.wav", 100, realtime=True), _stream_config(), timeout_s=300
    ):
        for result in response.results:
            results.append(result)
            received_at.append(time.monotonic())
    interim = [r for r in results if not r.is_final]
    finals = [r for r in results if r.is_final]
    assert interim, "no interim results"
    assert len(finals) >= 3
    assert all(0.0 <= r.stability <= 1.0 for r in interim)
    # committed text never shrinks within an utterance (no flicker)
    by_utterance: dict[int, list[str]] = {}
    for r in interim:
        by_utterance.setdefault(r.utterance_index, []).append(r.committed_text)
    for committed in by_utterance.values():
        for before, after in zip(committed, committed[1:]):
            assert after.startswith(before), (before, after)
    starts = [f.start_s for f in finals]
    assert starts == sorted(starts)
    final_text = " ".join(f.text for f in finals)
    assert wer(unary.text, final_text) <= 0.15, (unary.text, final_text)


def test_stream_audio_before_config_is_refused(client: TranscriptionClient) -> None:
    def requests() -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
        yield transcription_pb2.StreamingTranscribeRequest(audio_content=b"\0\0" * 1600)

    with pytest.raises(grpc.RpcError) as info:
        list(client.stub.StreamingTranscribe(requests(), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "first message" in info.value.details()


def test_stream_config_twice_is_refused(client: TranscriptionClient) -> None:
    def requests() -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
        yield transcription_pb2.StreamingTranscribeRequest(config=_stream_config())
        yield transcription_pb2.StreamingTranscribeRequest(audio_content=b"\0\0" * 1600)
        yield transcription_pb2.StreamingTranscribeRequest(config=_stream_config())

    with pytest.raises(grpc.RpcError) as info:
        list(client.stub.StreamingTranscribe(requests(), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config sent twice" in info.value.details()


def test_stream_with_container_encoding_is_refused(client: TranscriptionClient) -> None:
    config = transcription_pb2.StreamingConfig()
    with pytest.raises(grpc.RpcError) as info:
        list(client.streaming_transcribe(iter([b"RIFF"]), config, timeout_s=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw audio" in info.value.details()


@pytest.mark.parametrize("encoding, container", [(audio_pb2.OGG_OPUS, "ogg"), (audio_pb2.WEBM_OPUS, "webm")])
def test_opus_stream_gives_the_finals_of_the_pcm_stream(
    client: TranscriptionClient, encoding: audio_pb2.AudioEncoding, container: str
) -> None:
    """What a browser's MediaRecorder sends, in 1-KB pieces, against the same speech as
    raw PCM: the same finals."""
    samples = decode_audio((AUDIO / "jfk.flac").read_bytes()).mono()
    samples = np.concatenate([samples, np.zeros(16000, np.float32)])
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    opus = opus_bytes(samples, container)

    def finals(chunks: Iterator[bytes], config: transcription_pb2.StreamingConfig) -> str:
        return " ".join(
            r.text for response in client.streaming_transcribe(chunks, config, timeout_s=120)
            for r in response.results if r.is_final
        )

    expected = finals(iter([pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]), _stream_config())
    config = transcription_pb2.StreamingConfig(config=audio_pb2.AudioConfig(encoding=encoding))
    got = finals(iter([opus[i : i + 1000] for i in range(0, len(opus), 1000)]), config)
    assert wer(JFK_TEXT, expected) <= 0.05
    assert wer(expected, got) <= 0.05, (expected, got)


def test_corrupt_opus_stream_is_invalid_argument(tiny: BackgroundServer, client: TranscriptionClient) -> None:
    config = transcription_pb2.StreamingConfig(config=audio_pb2.AudioConfig(encoding=audio_pb2.OGG_OPUS))
    with pytest.raises(grpc.RpcError) as info:
        list(client.streaming_transcribe(iter([b"OggS garbage " * 300] * 3), config, timeout_s=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ogg" in info.value.details()
    assert wer(JFK_TEXT, client.transcribe((AUDIO / "jfk.flac").read_bytes(), timeout_s=60).text) <= 0.05


def test_language_hints_the_model_does_not_know_are_named(base_client: TranscriptionClient) -> None:
    config = _stream_config()
    config.config.language_hints.extend(["fr", "xx", "french"])
    with pytest.raises(grpc.RpcError) as info:
        list(base_client.streaming_transcribe(iter([b"\0\0" * 1600]), config, timeout_s=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'xx'" in info.value.details() and "'french'" in info.value.details()


# -- bad input -------------------------------------------------------------------------


def _request(data: bytes, **config: object) -> transcription_pb2.TranscribeRequest:
    return transcription_pb2.TranscribeRequest(
        config=audio_pb2.AudioConfig(**config),  # type: ignore[arg-type]
        audio=audio_pb2.Audio(content=data),
    )


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: b"", "no audio"),
        (lambda: b"this is a text file, not audio at all" * 10, "audio"),
        (lambda: (AUDIO / "jfk.flac").read_bytes()[:200], ""),
        (lambda: (AUDIO / "english.wav").read_bytes()[:44], ""),
        # Crafted headers (issue 10): float format with 16-bit samples (was INTERNAL with a
        # traceback); 8 channels at 1 Hz (9.6 KB that decoded to 292 MiB).
        (lambda: crafted_wav(b"\x01\x02" * 16000, format_tag=3), "cannot be decoded"),
        (lambda: crafted_wav(b"\x01\x02" * 4800, rate=1, channels=8), "1 hz"),
    ],
    ids=["empty", "not-audio", "truncated-flac-header", "wav-header-only", "float16-wav", "one-hertz-wav"],
)
def test_bad_audio_is_invalid_argument(client: TranscriptionClient, make: object, needle: str) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        client.stub.Transcribe(_request(make()), timeout=30)  # type: ignore[operator]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert needle in info.value.details().lower()
    assert time.monotonic() - started < 10


def test_truncated_wav_transcribes_what_is_there(client: TranscriptionClient) -> None:
    data = (AUDIO / "jfk.flac").read_bytes()
    from parlons.services.common.audio import decode_audio

    audio = decode_audio(data)
    whole = wav_bytes(audio.mono())
    response = client.transcribe(whole[: len(whole) // 2], timeout_s=60)
    assert "fellow americans" in response.text.lower()
    assert response.audio_duration_s < 6.0


def test_silence_gives_an_empty_transcript_not_an_error(client: TranscriptionClient) -> None:
    response = client.transcribe(wav_bytes(np.zeros(16000 * 5)), timeout_s=60)
    assert response.text.strip() == ""
    assert response.audio_duration_s == pytest.approx(5.0, abs=0.01)


def test_declared_sample_rate_that_contradicts_the_file(client: TranscriptionClient) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.stub.Transcribe(_request((AUDIO / "jfk.flac").read_bytes(), sample_rate_hz=8000), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "44100" in info.value.details()


def test_raw_audio_without_channels_is_refused(client: TranscriptionClient) -> None:
    request = _request(b"\0\0" * 16000, encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=0)
    with pytest.raises(grpc.RpcError) as info:
        client.stub.Transcribe(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "channels" in info.value.details()


def test_raw_pcm_is_transcribed(client: TranscriptionClient) -> None:
    from parlons.services.common.audio import decode_audio

    audio = decode_audio((AUDIO / "jfk.flac").read_bytes())
    pcm = (audio.mono() * 32767).astype("<i2").tobytes()
    request = _request(pcm, encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1)
    response = client.stub.Transcribe(request, timeout=60)
    assert wer(JFK_TEXT, response.text) <= 0.05


def test_eight_channels_are_served_and_nine_refused(client: TranscriptionClient) -> None:
    from parlons.services.common.audio import decode_audio

    speech = decode_audio((AUDIO / "english.wav").read_bytes()).mono()
    eight = np.zeros((8, speech.size), dtype=np.float32)
    eight[3] = speech
    response = client.transcribe(wav_bytes(eight), timeout_s=60)
    assert response.channels == 8
    assert wer("one two three", response.text) == 0.0
    nine = np.zeros((9, 16000), dtype=np.float32)
    with pytest.raises(grpc.RpcError) as info:
        client.transcribe(wav_bytes(nine), timeout_s=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "channels" in info.value.details()


def test_audio_longer_than_the_limit_is_refused_quickly(client: TranscriptionClient) -> None:
    # 11 minutes of near silence, over the server's 600 s limit but under the message
    # size: 8-bit samples at 8 kHz (the lowest rate accepted), 5.3 MB.
    long = crafted_wav(np.full(8000 * 660, 129, dtype=np.uint8).tobytes(), bits=8, rate=8000)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        client.transcribe(long, timeout_s=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "600" in info.value.details()
    assert time.monotonic() - started < 10


def test_message_over_the_size_limit(client: TranscriptionClient) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.transcribe(b"\0" * (9 * 1024 * 1024), timeout_s=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("language, code", [("xx", grpc.StatusCode.NOT_FOUND), ("french", grpc.StatusCode.INVALID_ARGUMENT),
                                            ("fr", grpc.StatusCode.NOT_FOUND)])
def test_unknown_or_unsupported_language(client: TranscriptionClient, language: str, code: grpc.StatusCode) -> None:
    options = transcription_pb2.TranscriptionOptions(language=language)
    with pytest.raises(grpc.RpcError) as info:
        client.transcribe((AUDIO / "english.wav").read_bytes(), options, timeout_s=30)
    assert info.value.code() == code, info.value.details()


def test_unknown_model_is_not_found(client: TranscriptionClient) -> None:
    options = transcription_pb2.TranscriptionOptions(model="whisper-imaginary")
    with pytest.raises(grpc.RpcError) as info:
        client.transcribe((AUDIO / "english.wav").read_bytes(), options, timeout_s=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "tiny.en" in info.value.details()


def test_bad_option_values(client: TranscriptionClient) -> None:
    for options in [
        transcription_pb2.TranscriptionOptions(beam_size=99),
        transcription_pb2.TranscriptionOptions(temperatures=[2.0]),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            client.transcribe((AUDIO / "english.wav").read_bytes(), options, timeout_s=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_uri_audio_is_refused_with_a_hint(client: TranscriptionClient) -> None:
    request = transcription_pb2.TranscribeRequest(audio=audio_pb2.Audio(uri="https://example.org/a.wav"))
    with pytest.raises(grpc.RpcError) as info:
        client.stub.Transcribe(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "audio.content" in info.value.details()


def test_deadline_is_honoured_and_the_server_stays_healthy(tiny: BackgroundServer, client: TranscriptionClient) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        client.transcribe_file(AUDIO / "sample.wav", timeout_s=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3
    # the cancelled decode stops, so the next call is served promptly
    started = time.monotonic()
    response = client.transcribe((AUDIO / "english.wav").read_bytes(), timeout_s=30)
    assert wer("one two three", response.text) == 0.0
    assert time.monotonic() - started < 10


def test_overload_is_refused_with_resource_exhausted(tiny: BackgroundServer) -> None:
    channel = open_channel(tiny.address)
    stub = TranscriptionClient(channel).stub
    request = _request((AUDIO / "jfk.flac").read_bytes())
    futures = [stub.Transcribe.future(request, timeout=120) for _ in range(6)]
    codes = []
    for future in futures:
        try:
            future.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
    assert codes.count(grpc.StatusCode.OK) >= 3  # 1 running + 2 queued
    channel.close()


def test_request_id_is_echoed(client: TranscriptionClient) -> None:
    _, call = client.stub.Transcribe.with_call(
        _request((AUDIO / "english.wav").read_bytes()), timeout=30, metadata=(("x-request-id", "abc-123"),)
    )
    assert ("x-request-id", "abc-123") in tuple(call.initial_metadata())


def test_health_is_serving_after_all_the_bad_input(tiny: BackgroundServer) -> None:
    channel = open_channel(tiny.address)
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ["", "parlons.v1.TranscriptionService"]:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    channel.close()


# -- discovery with a second client implementation ----------------------------------------

BUF = Path(__file__).resolve().parents[1] / "tools" / "node_modules" / ".bin" / "buf"


def _buf(*args: str) -> str:
    import subprocess

    if not BUF.exists():
        import os

        assert not os.environ.get("CI"), "CI must install buf (scripts/setup.sh, tools/package.json)"
        pytest.skip("buf not installed: run scripts/setup.sh (needs npm)")
    result = subprocess.run([str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_reflection_and_health_answer_buf_curl(tiny: BackgroundServer) -> None:
    url = f"http://{tiny.address}"
    methods = _buf("--list-methods", url).split()
    assert "parlons.v1.TranscriptionService/Transcribe" in methods
    assert "parlons.v1.TranscriptionService/StreamingTranscribe" in methods
    assert "grpc.health.v1.Health/Check" in methods
    health = _buf("-d", '{"service": "parlons.v1.TranscriptionService"}', f"{url}/grpc.health.v1.Health/Check")
    assert '"SERVING"' in health
    models = _buf(f"{url}/parlons.v1.TranscriptionService/ListModels")
    assert '"tiny.en"' in models
