"""Faults (issue 10): a backend that dies under a live stream, and a server drained by
SIGTERM with calls in flight. Real `parlons serve transcription` processes (tiny.en),
killed or terminated as a pod would be; the replica-kill test under 16 clients is in
test_gateway_routing.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway_helpers import gateway_config, load_mono, start_embedded
from parlons.clients.retry import NO_RETRY
from parlons.clients.sdk import TranscriptionClient, open_channel
from parlons.v1 import audio_pb2, transcription_pb2, transcription_pb2_grpc
from replicas import Replica
from speech import AUDIO, JFK_TEXT, wav_bytes, wer

pytestmark = pytest.mark.slow

SERVICE = "parlons.v1.TranscriptionService"
CHUNK = 1600  # 100 ms


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _stream(pcm: bytes, *, pace_s: float = 0.0) -> Iterator[transcription_pb2.StreamingTranscribeRequest]:
    yield transcription_pb2.StreamingTranscribeRequest(config=transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        interim_results=True))
    for at in range(0, len(pcm), 2 * CHUNK):
        yield transcription_pb2.StreamingTranscribeRequest(audio_content=pcm[at : at + 2 * CHUNK])
        if pace_s:
            time.sleep(pace_s)


def _finals(responses: Iterator[transcription_pb2.StreamingTranscribeResponse]) -> str:
    return " ".join(r.text for response in responses for r in response.results if r.is_final)


def test_a_backend_killed_under_a_live_stream_gives_unavailable_at_once_and_a_new_stream_works(
    tmp_path: Path,
) -> None:
    replica = Replica(tmp_path, "a")
    replica.wait()
    config = gateway_config(None, None)
    config.gateway.rest_enabled = False
    config.gateway.transcription = [replica.address]
    gateway = start_embedded(config, [])
    channel = grpc.insecure_channel(gateway.address)
    stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
    jfk = _pcm(load_mono(AUDIO / "jfk.flac"))
    try:
        responses = stub.StreamingTranscribe(_stream(jfk * 4, pace_s=0.1), timeout=120)
        next(responses)  # the stream is live: a first result came back through the gateway
        replica.kill()
        killed = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            for _ in responses:
                pass
        waited = time.monotonic() - killed
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
        assert "transcription service is unavailable" in info.value.details()
        assert waited < 3.0, waited

        # The replica comes back on its port; the gateway finds it again by itself.
        replica.stop()
        replica = Replica(tmp_path, "a", port=replica.port)
        replica.wait()
        back = time.monotonic()
        while True:
            try:
                text = _finals(stub.StreamingTranscribe(_stream(jfk), timeout=120))
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                assert time.monotonic() - back < 15, "the gateway did not reconnect to the restarted replica"
                time.sleep(0.5)
        assert wer(JFK_TEXT, text) <= 0.3, text
    finally:
        channel.close()
        gateway.stop()
        replica.stop()


def test_sigterm_says_not_serving_first_finishes_calls_in_flight_and_refuses_new_ones(tmp_path: Path) -> None:
    replica = Replica(tmp_path, "drained", PARLONS_SERVER_GRACE_S="60", PARLONS_SERVER_SHUTDOWN_DELAY_S="1.5")
    replica.wait()
    channel = open_channel(replica.address)
    client = TranscriptionClient(channel)
    jfk = load_mono(AUDIO / "jfk.flac")
    audio = wav_bytes(np.concatenate([jfk] * 3))  # 33 s: several seconds of work each

    health: list[tuple[float, int]] = []
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=120)

    def follow() -> None:
        try:
            for reply in watch:
                health.append((time.monotonic(), reply.status))
        except grpc.RpcError:
            pass  # the server went away

    threading.Thread(target=follow, daemon=True).start()
    try:
        with ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(client.transcribe, audio, timeout_s=120) for _ in range(4)]
            time.sleep(1.0)  # all four received: one decoding, three queued
            assert not any(c.done() for c in calls)
            terminated = time.monotonic()
            replica.process.terminate()
            deadline = time.monotonic() + 5
            while not any(s == health_pb2.HealthCheckResponse.NOT_SERVING for _, s in health):
                assert time.monotonic() < deadline, health
                time.sleep(0.02)
            not_serving = next(t for t, s in health if s == health_pb2.HealthCheckResponse.NOT_SERVING)
            assert not_serving - terminated < 1.0
            time.sleep(2.0)  # past the shutdown delay: new calls are refused
            refused_at = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                TranscriptionClient(open_channel(replica.address), retry=NO_RETRY).transcribe(audio, timeout_s=30)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
            assert time.monotonic() - refused_at < 2.0
            assert not all(c.done() for c in calls), "the calls in flight should outlast the refusal"
            texts = [c.result().text for c in calls]  # every call in flight completes
        assert all(wer(" ".join([JFK_TEXT] * 3), t) <= 0.3 for t in texts), texts
        assert replica.process.wait(60) == 0
    finally:
        channel.close()
        replica.stop()
