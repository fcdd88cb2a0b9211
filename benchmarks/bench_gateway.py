"""Gateway benchmark: overhead, replica scaling, live conversation latency.

    python benchmarks/bench_gateway.py                 # all three parts
    python benchmarks/bench_gateway.py --parts overhead --runs 5

1. Overhead: the same work through the gateway and straight to the services (both on
   loopback TCP, split layout). TranscribeConversation (channel mode: one transcription,
   plus the merge) vs a direct Transcribe; neural mode vs the sum of direct Transcribe +
   Diarize (the gateway runs them concurrently); the pass-through Transcribe vs direct.
2. Throughput: `parlons serve transcription` replicas (1 CPU thread each, like a pod
   with a 1-CPU limit) behind the gateway, 1 vs 2 replicas, 4 concurrent clients.
3. LiveConversation: two microphones at real-time pace (visitor: turns of sample.wav in
   English, language "detect"; agent: French sentences), latency from the end of each
   utterance (when its last audio was sent) to its final result with the translation.
4. LiveConversation, one shared microphone (`--parts shared`): the desk dialogue (the 13
   turns of sample.wav, each + 1.2 s pause, both parties English, so only the voices
   tell them apart) at real-time pace: share of finals given to the right party and
   latency, with voice prints, with the agent's voice enrolled, and without the
   diarisation service (turn taking), side by side.

Translation uses small generated models (tests/translation_models.py): their output is
meaningless, their cost is small; real OPUS-MT models add their own time.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import percentile  # noqa: E402
from parlons.clients.sdk import GatewayClient  # noqa: E402
from parlons.clients.sdk import TranscriptionClient, open_channel, wait_until_serving  # noqa: E402
from parlons.serve import available_services, build_modules  # noqa: E402
from parlons.services.common.audio import decode_audio  # noqa: E402
from parlons.services.common.config import ParlonsConfig  # noqa: E402
from parlons.services.common.server import BackgroundServer  # noqa: E402
from parlons.v1 import (  # noqa: E402
    audio_pb2,
    diarization_pb2,
    diarization_pb2_grpc,
    gateway_pb2,
    transcription_pb2,
)

DATA = Path(os.environ.get("PARLONS_TEST_DATA", ROOT.parent / "shared" / "data")) / "audio"


def _config(model: str) -> ParlonsConfig:
    config = ParlonsConfig()
    config.server.port = 0
    config.transcription.model = model
    config.transcription.max_queued = 64
    config.gateway.rest_enabled = False
    config.gateway.auth = "none"
    return config


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _row(label: str, direct: list[float], gateway: list[float]) -> None:
    """Median and best of each side: on a shared CPU the best run is the least disturbed."""
    d_med, g_med, d_min, g_min = _median(direct), _median(gateway), min(direct), min(gateway)
    print(f"  {label:<42} direct {d_med:6.3f} s (best {d_min:6.3f})   gateway {g_med:6.3f} s (best {g_min:6.3f})"
          f"   overhead median {100 * (g_med / d_med - 1):+5.1f} %, best {100 * (g_min / d_min - 1):+5.1f} %")


# --------------------------------------------------------------------------- 1. overhead


def overhead(model: str, runs: int) -> None:
    print(f"\n1. Gateway overhead (median of {runs}, model {model}, split layout over loopback TCP)")
    services = ["transcription"] + (["diarization"] if "diarization" in available_services() else [])
    config = _config(model)
    direct = BackgroundServer(config.server, build_modules(config, services)).start(timeout_s=900)
    gw_config = _config(model)
    for name in services:
        setattr(gw_config.gateway, name, [direct.address])
    gateway = BackgroundServer(gw_config.server, build_modules(gw_config, ["gateway"])).start()
    d_channel, g_channel = open_channel(direct.address), open_channel(gateway.address)
    d_client, g_client = TranscriptionClient(d_channel), TranscriptionClient(g_channel)
    conversation = GatewayClient(g_channel)
    stereo = (DATA / "stereo_diarization.wav").read_bytes()
    sample = (DATA / "sample.wav").read_bytes()
    words = transcription_pb2.TranscriptionOptions(word_timestamps=True)
    per_channel = transcription_pb2.TranscriptionOptions(word_timestamps=True, per_channel=True)
    channel_mode = diarization_pb2.DiarizationOptions(mode=diarization_pb2.CHANNEL)
    try:
        samples: dict[str, list[float]] = {}

        def measure(name: str, fn: Callable[[], object]) -> None:
            samples.setdefault(name, []).append(_timed(fn))

        for run in range(runs + 1):  # the first round warms up
            measure("pass_direct", lambda: d_client.transcribe(sample, words))
            measure("pass_gateway", lambda: g_client.transcribe(sample, words))
            measure("channel_direct", lambda: d_client.transcribe(stereo, per_channel))
            measure("channel_gateway", lambda: conversation.transcribe_conversation(stereo, diarization=channel_mode))
            if "diarization" in services:
                diarize = diarization_pb2_grpc.DiarizationServiceStub(d_channel)
                request = diarization_pb2.DiarizeRequest(audio=audio_pb2.Audio(content=sample))
                measure("neural_direct", lambda: (d_client.transcribe(sample, words), diarize.Diarize(request)))
                measure("neural_gateway", lambda: conversation.transcribe_conversation(sample))
            if run == 0:
                samples.clear()
        list_models = transcription_pb2.ListModelsRequest()
        for stub, name in ((d_client.stub, "noop_direct"), (g_client.stub, "noop_gateway")):
            for _ in range(5):
                stub.ListModels(list_models)
            samples[name] = [_timed(functools.partial(stub.ListModels, list_models)) for _ in range(100)]
        added_ms = 1000 * (_median(samples['noop_gateway']) - _median(samples['noop_direct']))
        print(f"  {'ListModels (no model work): added latency':<42} {added_ms:.2f} ms"
              f" (direct {1000 * _median(samples['noop_direct']):.2f} ms, gateway {1000 * _median(samples['noop_gateway']):.2f} ms)")
        _row("Transcribe sample.wav (pass-through)", samples["pass_direct"], samples["pass_gateway"])
        _row("TranscribeConversation, channel mode", samples["channel_direct"], samples["channel_gateway"])
        if "neural_direct" in samples:
            _row("TranscribeConversation sample.wav vs sum", samples["neural_direct"], samples["neural_gateway"])
        else:
            print("  (no diarisation service installed: neural mode not measured)")
    finally:
        d_channel.close()
        g_channel.close()
        gateway.stop()
        direct.stop()


# --------------------------------------------------------------------------- 2. replicas


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replica(model: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "PARLONS_TRANSCRIPTION_MODEL": model, "PARLONS_TRANSCRIPTION_CPU_THREADS": "1",
           "PARLONS_TRANSCRIPTION_MAX_QUEUED": "64"}
    process = subprocess.Popen([sys.executable, "-m", "parlons.cli", "serve", "transcription", "--port", str(port)],
                               env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return process, f"127.0.0.1:{port}"


def replicas(model: str, requests: int, clients: int) -> None:
    print(f"\n2. Throughput through the gateway, {clients} concurrent clients, {requests} x jfk.flac, "
          f"{model}, 1 CPU thread per replica")
    logs = Path(tempfile.mkdtemp(prefix="parlons-bench-"))
    started = [_replica(model, logs / f"replica{i}.log") for i in range(2)]
    try:
        for _, address in started:
            channel = open_channel(address)
            wait_until_serving(channel, "parlons.v1.TranscriptionService", timeout_s=300)
            channel.close()
        audio = (DATA / "jfk.flac").read_bytes()
        results = {}
        for count in (1, 2):
            config = _config(model)
            config.gateway.transcription = [address for _, address in started[:count]]
            gateway = BackgroundServer(config.server, build_modules(config, ["gateway"])).start()
            channel = open_channel(gateway.address)
            client = TranscriptionClient(channel)
            client.transcribe(audio)  # warm-up
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda _: client.transcribe(audio, timeout_s=600), range(requests)))
            wall = time.perf_counter() - t0
            results[count] = requests / wall
            print(f"  {count} replica(s): {results[count]:.2f} requests/s ({11.0 * results[count]:.1f} audio s/s)")
            channel.close()
            gateway.stop()
        print(f"  2 replicas vs 1: x{results[2] / results[1]:.2f}")
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, _ in started:
            process.wait(30)


# --------------------------------------------------------------------------- 3. live


# What the agent says in desk_audio (French, espeak-ng): also the reference of its finals.
AGENT_LINES = ["Bonjour madame, que puis-je faire pour vous ?", "Avez-vous votre numéro de dossier ?",
               "Merci, je vérifie votre demande.", "Votre rendez-vous est confirmé pour mardi.",
               "Je vous souhaite une bonne journée."]


def visitor_turns() -> list[tuple[str, float, float, str]]:
    """The turns of sample.stm that desk_audio gives the visitor (speaker, start, end, text)."""
    from speech import stm_turns

    return [t for t in stm_turns(DATA / "sample.stm") if t[2] - t[1] >= 1.5][:5]


def desk_audio(workdir: Path) -> tuple[np.ndarray, float, list[tuple[int, float, float]]]:
    """A desk dialogue on two channels: visitor turns cut from sample.wav (English, one
    real voice per turn, from sample.stm) alternating with French agent sentences, 1.2 s
    apart, as at a counter. Returns the audio, its length and its turns (channel, start,
    end: 0 the agent, 1 the visitor)."""
    from speech import espeak

    recording = decode_audio((DATA / "sample.wav").read_bytes()).mono()
    visitor = [recording[int((s - 0.1) * 16000) : int((e + 0.1) * 16000)] for _, s, e, _ in visitor_turns()]
    agent = [decode_audio(espeak(t, "fr", workdir / f"agent{i}.wav").read_bytes()).mono()
             for i, t in enumerate(AGENT_LINES)]
    gap = int(1.2 * 16000)
    parts: list[tuple[int, np.ndarray]] = []
    for v, a in zip(visitor, agent):
        parts += [(1, v), (0, a)]
    n = sum(len(x) + gap for _, x in parts) + gap
    audio = np.zeros((2, n), dtype=np.float32)
    at = gap
    turns: list[tuple[int, float, float]] = []
    for channel, part in parts:
        audio[channel, at : at + len(part)] = part
        turns.append((channel, at / 16000, (at + len(part)) / 16000))
        at += len(part) + gap
    return audio, n / 16000, turns


def paced(pcm: bytes, chunk: int, started: list[float]) -> Iterator[bytes]:
    """`chunk` bytes (100 ms of audio) at a time at real-time pace; `started[0]` is set to
    when the first one left, the origin of the latencies."""
    started[0] = time.monotonic()
    for i, offset in enumerate(range(0, len(pcm), chunk)):
        delay = started[0] + i * 0.1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield pcm[offset : offset + chunk]


def live(model: str, dynamic_context: bool = True) -> None:
    from translation_models import build_bilingual_model

    print(f"\n3. LiveConversation latency, two microphones at real-time pace, {model}, "
          f"dynamic context {'on' if dynamic_context else 'off'}")
    workdir = Path(tempfile.mkdtemp(prefix="parlons-bench-live-"))
    config = _config(model)
    config.transcription.max_streams = 4
    config.transcription.dynamic_context = dynamic_context
    config.translation.models = [str(build_bilingual_model(workdir / "fr-en", "fr", "en")),
                                 str(build_bilingual_model(workdir / "en-fr", "en", "fr", seed=5))]
    server = BackgroundServer(config.server, build_modules(config, ["transcription", "translation", "gateway"]))
    server.start(timeout_s=900)
    audio, seconds, _ = desk_audio(workdir)
    pcm = (np.clip(audio.T, -1, 1) * 32767).astype("<i2").tobytes()
    chunk = 2 * 2 * 1600  # 100 ms of 2-channel 16-bit audio
    t0 = [0.0]

    live_config = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=2),
        parties=[gateway_pb2.Party(name="agent", language="fr", channel=0),
                 gateway_pb2.Party(name="visitor", language="detect", channel=1)],
    )
    channel = open_channel(server.address)
    latencies: dict[str, list[float]] = {"agent": [], "visitor": []}
    interim = 0
    try:
        for response in GatewayClient(channel).live_conversation(paced(pcm, chunk, t0), live_config, timeout_s=seconds + 300):
            now = time.monotonic()
            for u in response.utterances:
                if not u.is_final:
                    interim += 1
                elif u.text:
                    # The utterance's last audio left the client at t0 + end_s (real-time pace).
                    latencies[u.party].append(now - (t0[0] + min(u.end_s, seconds)))
    finally:
        channel.close()
        server.stop()
    every = sorted(latencies["agent"] + latencies["visitor"])
    if not every:
        print("  no final result")
        return
    p95 = percentile(every, 95)
    print(f"  {len(every)} finals ({len(latencies['agent'])} agent, {len(latencies['visitor'])} visitor), "
          f"{interim} interim results")
    print(f"  utterance end -> final + translation: p50 {statistics.median(every):.2f} s, p95 {p95:.2f} s "
          "(includes the 0.5 s of silence that ends an utterance)")


# --------------------------------------------------------------------------- 4. shared


def shared(model: str, repeats: int = 2) -> None:
    """One microphone, two English voices: voice prints vs turn taking, same audio."""
    from bench_transcription import desk_dialogue
    from speech import stm_turns, wav_bytes

    print(f"\n4. LiveConversation, shared microphone, desk dialogue at real-time pace, {model}")
    pcm = desk_dialogue(1.2)
    seconds = len(pcm) / 32000
    turns, at = [], 1.2
    for name, start, end, _ in stm_turns(DATA / "sample.stm"):
        turns.append((name, at, at + end - start))
        at += end - start + 1.2
    agent_voice = turns[0][0]  # the first voice heard: the first party without enrolment
    recording = decode_audio((DATA / "sample.wav").read_bytes()).mono()
    enrol_turn = next(t for t in stm_turns(DATA / "sample.stm") if t[0] == agent_voice and t[2] - t[1] >= 2.0)
    sample = wav_bytes(recording[int(enrol_turn[1] * 16000) : int(enrol_turn[2] * 16000)])

    def speaker_of(start: float, end: float) -> str:
        return max(turns, key=lambda t: min(t[2], end) - max(t[1], start))[0]

    runs = [("voice prints", True, b""), ("voice prints, agent enrolled", True, sample),
            ("turn taking (no diarisation)", False, b"")]
    for label, with_diarization, voice_sample in runs:
        shares, p50s, p95s = [], [], []
        for _ in range(repeats):
            share, p50, p95 = _shared_run(model, pcm, seconds, with_diarization, voice_sample, speaker_of, agent_voice)
            shares.append(share)
            p50s.append(p50)
            p95s.append(p95)
        print(f"  {label:30s} right {statistics.median(shares):.1%} ({', '.join(f'{x:.0%}' for x in shares)}), "
              f"latency p50 {statistics.median(p50s):.2f} s ({', '.join(f'{x:.2f}' for x in p50s)}), "
              f"p95 {statistics.median(p95s):.2f} s")
    print(f"  (enrolment sample: the agent's turn at {enrol_turn[1]:.1f}-{enrol_turn[2]:.1f} s of the same call, "
          "which is also scored)")


def _shared_run(model, pcm, seconds, with_diarization, voice_sample, speaker_of, agent_voice):  # type: ignore[no-untyped-def]
    """One real-time pass of the desk dialogue: (share of finals right, p50, p95)."""
    config = _config(model)
    services = ["transcription", "diarization", "gateway"] if with_diarization else ["transcription", "gateway"]
    server = BackgroundServer(config.server, build_modules(config, services))
    server.start(timeout_s=900)
    live_config = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        parties=[gateway_pb2.Party(name="agent", language="en", channel=-1, voice_sample=voice_sample),
                 gateway_pb2.Party(name="visitor", language="en", channel=-1)],
    )
    t0 = [0.0]

    channel = open_channel(server.address)
    finals: list[tuple[str, float, float, float]] = []  # party, start, end, latency
    try:
        for response in GatewayClient(channel).live_conversation(paced(pcm, 3200, t0), live_config, timeout_s=seconds + 300):
            now = time.monotonic()
            finals += [(u.party, u.start_s, u.end_s, now - (t0[0] + min(u.end_s, seconds)))
                       for u in response.utterances if u.is_final and u.text]
    finally:
        channel.close()
        server.stop()
    right = sum((party == "agent") == (speaker_of(a, b) == agent_voice) for party, a, b, _ in finals)
    latencies = sorted(f[3] for f in finals)
    if not latencies:
        return 0.0, float("nan"), float("nan")
    return right / len(finals), statistics.median(latencies), percentile(latencies, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="overhead,replicas,live")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--live-model", default="base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "overhead" in parts:
        overhead(args.model, args.runs)
    if "replicas" in parts:
        replicas(args.model, args.requests, args.clients)
    if "live" in parts:
        live(args.live_model, dynamic_context=True)
        live(args.live_model, dynamic_context=False)
    if "shared" in parts:
        shared(args.live_model, args.runs)


if __name__ == "__main__":
    main()
