"""Transcription benchmark: service vs raw faster-whisper, concurrency, streaming latency.

Prints ratios measured side by side in one run:
  * `Transcribe` through a real server (subprocess, loopback) vs `WhisperModel.transcribe`
    in this process, same model, same file, same options, runs interleaved;
  * throughput with 1, 2 and 4 concurrent clients and the server's peak RSS;
  * live streaming at real-time pace: latency from the end of each utterance (the last
    speech in it) to its final result, p50 and p95.

    python benchmarks/bench_transcription.py --model base --runs 3
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import sys
import time
import wave
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import AUDIO, machine, median, peak_rss_mib, percentile, server_process  # noqa: E402


def raw_transcribe(model, path: Path, vad: bool) -> str:  # type: ignore[no-untyped-def]
    from parlons.services.common.audio import decode_audio

    audio = decode_audio(path.read_bytes()).mono()  # same decoding as the service
    segments, _ = model.transcribe(audio, beam_size=5, vad_filter=vad)
    return " ".join(s.text for s in segments)


def pcm_chunks(path: Path, chunk_ms: int) -> Iterator[bytes]:
    with wave.open(str(path), "rb") as handle:
        frames = handle.readframes(handle.getnframes())
    step = 16000 * 2 * chunk_ms // 1000
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(frames), step)):
        delay = started + index * chunk_ms / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield frames[offset : offset + step]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base")
    parser.add_argument("--file", default=str(AUDIO / "sample.wav"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-vad", action="store_true", help="compare without the VAD filter")
    parser.add_argument("--stream-runs", type=int, default=2)
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from parlons.clients.sdk import TranscriptionClient, open_channel
    from parlons.models.manager import ModelManager
    from parlons.services.transcription.engine import resolve_compute_type, resolve_device
    from parlons.v1 import audio_pb2, transcription_pb2

    path = Path(args.file)
    vad = not args.no_vad
    device = resolve_device("auto")
    compute_type = resolve_compute_type(device, "auto")
    model_dir = ModelManager().resolve(args.model)
    print(f"# parlons transcription benchmark, {datetime.date.today()}, {machine()}")
    print(f"model {args.model} on {device}/{compute_type}, file {path.name}, vad {vad}, runs {args.runs}\n")

    raw_model = WhisperModel(str(model_dir), device=device, compute_type=compute_type)
    env = {"PARLONS_TRANSCRIPTION_MODEL": args.model, "PARLONS_TRANSCRIPTION_MAX_CONCURRENT": "2",
           "PARLONS_TRANSCRIPTION_NUM_WORKERS": "2", "PARLONS_TRANSCRIPTION_MAX_QUEUED": "16"}
    with server_process("transcription", env) as (address, pid):
        channel = open_channel(address)
        client = TranscriptionClient(channel)
        data = path.read_bytes()
        options = transcription_pb2.TranscriptionOptions(beam_size=5, vad_filter=vad)
        client.transcribe(data, options)  # warm-up, both sides
        raw_transcribe(raw_model, path, vad)
        service_s, raw_s = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            client.transcribe(data, options)
            service_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw_transcribe(raw_model, path, vad)
            raw_s.append(time.perf_counter() - started)
        del raw_model
        overhead = median(service_s) / median(raw_s) - 1
        print("## Service Transcribe vs raw faster-whisper (median wall time)")
        print(f"raw faster-whisper  {median(raw_s):7.2f} s   runs {', '.join(f'{s:.2f}' for s in raw_s)}")
        print(f"service Transcribe  {median(service_s):7.2f} s   runs {', '.join(f'{s:.2f}' for s in service_s)}")
        print(f"overhead            {overhead * 100:+6.1f} %   (target <= +10 %)\n")

        print("## Throughput (files/min) with concurrent clients, one model copy (num_workers=2)")
        base_rate = None
        for clients in (1, 2, 4):
            jobs = clients * 2
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda _: client.transcribe(data, options, timeout_s=600), range(jobs)))
            elapsed = time.perf_counter() - started
            rate = jobs / elapsed * 60
            base_rate = base_rate or rate
            print(f"{clients} client(s): {rate:6.2f} files/min  ({rate / base_rate:.2f}x of 1 client), "
                  f"real-time factor {elapsed / jobs / _duration(path):.3f}")
        print(f"server peak RSS: {peak_rss_mib(pid):.0f} MiB\n")

        print("## Streaming at real-time pace: utterance end -> final result")
        latencies: list[float] = []
        config = transcription_pb2.StreamingConfig(
            config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
            options=transcription_pb2.TranscriptionOptions(beam_size=5, word_timestamps=True),
        )
        for _ in range(args.stream_runs):
            started = time.monotonic()
            for response in client.streaming_transcribe(pcm_chunks(AUDIO / "sample.wav", 100), config, timeout_s=600):
                arrived = time.monotonic() - started
                for result in response.results:
                    if result.is_final:
                        last_word = result.words[-1].end_s if result.words else result.end_s
                        latencies.append(arrived - last_word)
        print(f"finals {len(latencies)}: p50 {percentile(latencies, 50):.2f} s, p95 {percentile(latencies, 95):.2f} s "
              f"(includes the end-of-utterance silence wait; target p50 <= 1.0 s)")
        channel.close()
    return 0


def _duration(path: Path) -> float:
    from parlons.services.common.audio import decode_audio

    return decode_audio(path.read_bytes()).duration_s


if __name__ == "__main__":
    sys.exit(main())
