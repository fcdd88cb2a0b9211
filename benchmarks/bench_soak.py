"""Soak: N clients of mixed RPCs against the embedded server for a long run, and whether
its memory stays flat.

    python benchmarks/bench_soak.py [--minutes 30] [--clients 8]

The server (gateway, transcription tiny.en, translation test models, diarisation when
installed) runs in its own process (bench_fuzz.py's layout). Each client loops over:
Transcribe (english.wav, through the gateway), StreamingTranscribe (jfk.flac, unpaced),
TranslateText, TranslateDocument (HTML), TranscribeConversation (diarised) and one bad
input (garbage audio: INVALID_ARGUMENT expected). Printed: calls and errors per RPC,
their p50 latency, and the server's RSS after warm-up, every 5 minutes, and at the end
(target: growth < 5 % from the first reading after warm-up).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
WARM_UP_S = 120.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

    import grpc

    from bench_fuzz import spawn_server
    from common import machine, percentile
    from gateway_helpers import load_mono
    from parlons.v1 import (
        audio_pb2,
        gateway_pb2,
        gateway_pb2_grpc,
        transcription_pb2,
        transcription_pb2_grpc,
        translation_pb2,
        translation_pb2_grpc,
    )
    from speech import AUDIO

    print(f"soak benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {machine()}, "
          f"{args.clients} clients, {args.minutes:g} min")
    process, address, _ = spawn_server("parlons-soak-")
    try:
        channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
        transcription = transcription_pb2_grpc.TranscriptionServiceStub(channel)
        translation = translation_pb2_grpc.TranslationServiceStub(channel)
        gateway = gateway_pb2_grpc.GatewayServiceStub(channel)
        wav = (AUDIO / "english.wav").read_bytes()
        jfk = (load_mono(AUDIO / "jfk.flac") * 32767).astype("<i2").tobytes()
        html = ("<html><body>" + "".join(f"<p>Bonjour, voici le paragraphe {i}.</p>" for i in range(40))
                + "</body></html>").encode()
        fr_en = translation_pb2.TranslationOptions(source_language="fr", target_language="en")

        def stream() -> object:
            def requests():  # type: ignore[no-untyped-def]
                yield transcription_pb2.StreamingTranscribeRequest(config=transcription_pb2.StreamingConfig(
                    config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1)))
                for at in range(0, len(jfk), 3200):
                    yield transcription_pb2.StreamingTranscribeRequest(audio_content=jfk[at : at + 3200])
            return list(transcription.StreamingTranscribe(requests(), timeout=120))

        def bad_audio() -> object:
            try:
                transcription.Transcribe(transcription_pb2.TranscribeRequest(
                    audio=audio_pb2.Audio(content=os.urandom(4096))), timeout=60)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                return exc
            raise AssertionError("garbage audio was accepted")

        work = {
            "Transcribe": lambda: transcription.Transcribe(
                transcription_pb2.TranscribeRequest(audio=audio_pb2.Audio(content=wav)), timeout=120),
            "StreamingTranscribe": stream,
            "TranslateText": lambda: translation.TranslateText(translation_pb2.TranslateTextRequest(
                texts=["Bonjour madame, votre dossier est complet.", "Merci, au revoir."], options=fr_en),
                timeout=60),
            "TranslateDocument": lambda: translation.TranslateDocument(translation_pb2.TranslateDocumentRequest(
                content=html, format=translation_pb2.HTML, options=fr_en), timeout=120),
            "TranscribeConversation": lambda: gateway.TranscribeConversation(gateway_pb2.TranscribeConversationRequest(
                audio=audio_pb2.Audio(content=wav)), timeout=300),
            "bad audio": bad_audio,
        }
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, list[str]] = defaultdict(list)
        lock = threading.Lock()
        started = time.monotonic()
        stop_at = started + args.minutes * 60

        def client(index: int) -> None:
            names = list(work)
            i = index
            while time.monotonic() < stop_at:
                name = names[i % len(names)]
                i += 1
                t0 = time.perf_counter()
                try:
                    work[name]()
                    with lock:
                        latencies[name].append(time.perf_counter() - t0)
                except Exception as exc:
                    with lock:
                        errors[name].append(exc.code().name if isinstance(exc, grpc.RpcError) else repr(exc))

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        readings: list[tuple[float, float]] = []
        next_reading = started + min(WARM_UP_S, args.minutes * 30)
        while any(t.is_alive() for t in threads):
            time.sleep(1.0)
            now = time.monotonic()
            if now >= next_reading:
                readings.append((now - started, rss_mib(process.pid)))
                print(f"  t = {(now - started) / 60:5.1f} min  server RSS {readings[-1][1]:7.1f} MiB", flush=True)
                next_reading = now + 300
        readings.append((time.monotonic() - started, rss_mib(process.pid)))
        print(f"  t = {readings[-1][0] / 60:5.1f} min  server RSS {readings[-1][1]:7.1f} MiB (end)")
        print(f"\n{'RPC':24} {'calls':>6} {'errors':>6} {'p50 s':>7} {'p95 s':>7}")
        for name in work:
            values = latencies[name]
            print(f"{name:24} {len(values):6d} {len(errors[name]):6d} {percentile(values, 50):7.2f} "
                  f"{percentile(values, 95):7.2f}")
            if errors[name]:
                print(f"  errors: {sorted(set(errors[name]))}")
        first, last = readings[0][1], readings[-1][1]
        growth = (last - first) / first * 100
        print(f"\nserver RSS after warm-up {first:.1f} MiB, at the end {last:.1f} MiB: growth {growth:+.1f} % "
              f"(target < 5 %); calls {sum(map(len, latencies.values()))}, "
              f"errors {sum(map(len, errors.values()))}")
        return 0 if growth < 5 and not any(errors.values()) else 1
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    sys.exit(main())
