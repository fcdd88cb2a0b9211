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
from collections.abc import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import AUDIO, machine, median, peak_rss_mib, percentile, server_process


def raw_transcribe(model, path: Path, vad: bool) -> str:  # type: ignore[no-untyped-def]
    from parlons.services.common.audio import decode_audio

    audio = decode_audio(path.read_bytes()).mono()  # same decoding as the service
    segments, _ = model.transcribe(audio, beam_size=5, vad_filter=vad)
    return " ".join(s.text for s in segments)


def desk_dialogue(pause_s: float = 1.2) -> bytes:
    """A counter-like dialogue from real speech: the turns of sample.wav (its STM), each
    followed by a pause, as 16 kHz LINEAR16. The phone call itself has almost no pauses
    between turns, so there utterances end only when they reach their maximum length."""
    import numpy as np

    from parlons.services.common.audio import decode_audio

    samples = decode_audio((AUDIO / "sample.wav").read_bytes()).mono()
    turns = [(float(line.split()[3]), float(line.split()[4]))
             for line in (AUDIO / "sample.stm").read_text().splitlines() if line.strip()]
    silence = np.zeros(int(pause_s * 16000), dtype=np.float32)
    pieces = [silence]
    for start, end in turns:
        pieces += [samples[int(start * 16000) : int(end * 16000)], silence]
    return (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2").tobytes()


def pcm_chunks(source: Path | bytes, chunk_ms: int) -> Iterator[bytes]:
    """LINEAR16 chunks at real-time pace, from a 16 kHz mono WAV file or raw bytes."""
    if isinstance(source, bytes):
        frames = source
    else:
        with wave.open(str(source), "rb") as handle:
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
    parser.add_argument("--only-streaming", action="store_true",
                        help="only the live latency, dynamic context on vs off")
    parser.add_argument("--concurrency", default="",
                        help="with --only-streaming: also N concurrent desk streams, e.g. 1,2,3")
    args = parser.parse_args()
    if args.only_streaming:
        if args.stream_runs:  # 0: only the concurrency figures
            streaming_dynamic_vs_fixed(args.model, args.stream_runs)
        for n in [int(x) for x in args.concurrency.split(",") if x]:
            concurrent_streams(args.model, n)
        return 0

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

        print("## Streaming at real-time pace: end of the last word of an utterance -> its final result")
        config = transcription_pb2.StreamingConfig(
            config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
            options=transcription_pb2.TranscriptionOptions(beam_size=5, word_timestamps=True),
        )
        for label, source in (("desk dialogue (turns + 1.2 s pauses)", desk_dialogue()),
                              ("phone call sample.wav (no pauses)", AUDIO / "sample.wav")):
            latencies = stream_latencies(client, config, source, args.stream_runs)
            print(f"{label}: finals {len(latencies)}, p50 {percentile(latencies, 50):.2f} s, "
                  f"p95 {percentile(latencies, 95):.2f} s (includes the 0.5 s end-of-utterance wait)")
        channel.close()
    return 0


def stream_latencies(client, config, source, runs: int, texts: list[str] | None = None) -> list[float]:  # type: ignore[no-untyped-def]
    """End of each final's last word -> its arrival, over `runs` streams; the finals'
    text of each run is appended to `texts` when given."""
    latencies: list[float] = []
    for _ in range(runs):
        started = time.monotonic()
        finals = []
        for response in client.streaming_transcribe(pcm_chunks(source, 100), config, timeout_s=600):
            arrived = time.monotonic() - started
            for result in response.results:
                if result.is_final and result.words:
                    latencies.append(arrived - result.words[-1].end_s)
                if result.is_final:
                    finals.append(result.text)
        if texts is not None:
            texts.append(" ".join(finals))
    return latencies


def streaming_dynamic_vs_fixed(model: str, runs: int) -> int:
    """The desk dialogue streamed at real-time pace to two servers, one with dynamic
    context and one without, runs interleaved; latency and WER of the finals."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from speech import stm_text, wer

    from parlons.clients.sdk import TranscriptionClient, open_channel
    from parlons.v1 import audio_pb2, transcription_pb2

    print(f"# live latency, dynamic context on vs off, {datetime.date.today()}, {machine()}, model {model}")
    config = transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        options=transcription_pb2.TranscriptionOptions(beam_size=5, word_timestamps=True),
    )
    reference = stm_text(AUDIO / "sample.stm")
    dialogue = desk_dialogue()
    base_env = {"PARLONS_TRANSCRIPTION_MODEL": model}
    results: dict[str, tuple[list[float], list[str]]] = {
        "dynamic (default: cut-window interims, full-window finals)": ([], []),
        "dynamic_finals on (cut-window finals too)": ([], []),
        "fixed 30 s (dynamic_context off)": ([], []),
    }
    with server_process("transcription", base_env) as (dyn_address, _), \
            server_process("transcription", {**base_env, "PARLONS_TRANSCRIPTION_DYNAMIC_FINALS": "true"}) as (fin_address, _), \
            server_process("transcription", {**base_env, "PARLONS_TRANSCRIPTION_DYNAMIC_CONTEXT": "false"}) as (fix_address, _):
        clients = dict(zip(results, (TranscriptionClient(open_channel(a)) for a in (dyn_address, fin_address, fix_address))))
        for client in clients.values():  # warm-up
            client.transcribe((AUDIO / "jfk.flac").read_bytes())
        for _ in range(runs):
            for label, client in clients.items():
                latencies, texts = results[label]
                latencies.extend(stream_latencies(client, config, dialogue, 1, texts))
    print("desk dialogue: 13 turns of sample.wav, each + 1.2 s pause, 100 ms chunks, automatic language")
    for label, (latencies, texts) in results.items():
        errors = [wer(reference, t) for t in texts]
        print(f"{label:58s} finals {len(latencies):3d}  p50 {percentile(latencies, 50):.2f} s  "
              f"p95 {percentile(latencies, 95):.2f} s  max {max(latencies):.2f} s  "
              f"WER of finals {median(errors):.3f} (runs {', '.join(f'{e:.3f}' for e in errors)})")
    return 0


def concurrent_streams(model: str, streams: int) -> None:
    """`streams` desk dialogues at real-time pace at once to one server, dynamic context
    on then off: a server holds them in real time when the finals keep their latency
    (no backlog growing over the 50-s dialogue)."""
    from parlons.clients.sdk import TranscriptionClient, open_channel
    from parlons.v1 import audio_pb2, transcription_pb2

    config = transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        options=transcription_pb2.TranscriptionOptions(beam_size=5, word_timestamps=True),
    )
    dialogue = desk_dialogue()
    for dynamic in ("true", "false"):
        env = {"PARLONS_TRANSCRIPTION_MODEL": model, "PARLONS_TRANSCRIPTION_DYNAMIC_CONTEXT": dynamic,
               "PARLONS_TRANSCRIPTION_MAX_STREAMS": str(streams)}
        with server_process("transcription", env) as (address, _):
            client = TranscriptionClient(open_channel(address))
            client.transcribe((AUDIO / "jfk.flac").read_bytes())
            with concurrent.futures.ThreadPoolExecutor(streams) as pool:
                runs = list(pool.map(lambda _: stream_latencies(client, config, dialogue, 1), range(streams)))
        every = [x for run in runs for x in run]
        late_half = [x for run in runs for x in run[len(run) // 2 :]]
        print(f"{streams} concurrent stream(s), dynamic {dynamic:5s}: finals {len(every)}, "
              f"p50 {percentile(every, 50):.2f} s, p95 {percentile(every, 95):.2f} s, "
              f"p50 of the second half {percentile(late_half, 50):.2f} s", flush=True)


def _duration(path: Path) -> float:
    from parlons.services.common.audio import decode_audio

    return decode_audio(path.read_bytes()).duration_s


if __name__ == "__main__":
    sys.exit(main())
