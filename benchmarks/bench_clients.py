"""Clients: the batch CLI on a folder vs the service called file by file, with one and two
transcription replicas behind the gateway; the SDK's asyncio clients vs its sync ones on
small requests.

    python benchmarks/bench_clients.py [--runs 3] [--calls 300]

The folder is the shared recordings and AMI meeting excerpts (18 files, 6.4 min). The
replicas are `parlons serve transcription` processes (tiny.en: the client side is what is
measured); the gateway runs in this process. Printed per run, side by side: wall time and
audio throughput (x real time) of (a) a loop calling `TranscriptionClient.transcribe_file`
file by file, (b) `parlons transcribe FOLDER --jobs 2` as a subprocess (its start-up
included), each with one then two replicas; the word error rate of jfk and english beside
them (the same transcripts whichever way they were made). Then the per-call latency of
ListModels, sync vs asyncio, sequential, p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _folder(root: Path) -> tuple[Path, float]:
    from parlons.clients.batch import probe_duration_s
    from speech import AUDIO, DATA

    folder = root / "archive"
    folder.mkdir()
    for source in [*sorted(AUDIO.glob("*.wav")), *sorted(AUDIO.glob("*.flac")), *sorted(AUDIO.glob("*.aiff")),
                   *sorted((DATA / "meetings").glob("*.flac"))]:
        shutil.copy(source, folder / source.name)
    return folder, sum(probe_duration_s(p) or 0.0 for p in folder.iterdir())


def _file_by_file(address: str, folder: Path, out: Path) -> float:
    from parlons.clients.connection import Connection
    from parlons.clients.sdk import TranscriptionClient

    started = time.perf_counter()
    with TranscriptionClient(Connection(address)) as client:
        for path in sorted(folder.iterdir()):
            (out / f"{path.stem}.txt").write_text(client.transcribe_file(path, timeout_s=600).to_txt())
    return time.perf_counter() - started


def _cli(address: str, folder: Path, out: Path, jobs: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "parlons.cli", "transcribe", str(folder), "--server", address,
                    "--jobs", str(jobs), "--output-dir", str(out), "--format", "txt", "--overwrite", "--quiet"],
                   check=True, capture_output=True)
    return time.perf_counter() - started


def _wer_pair(out: Path) -> float:
    from speech import JFK_TEXT, wer

    return (wer(JFK_TEXT, (out / "jfk.txt").read_text()) + wer("one two three", (out / "english.txt").read_text())) / 2


def _latencies(address: str, calls: int) -> tuple[list[float], list[float]]:
    from parlons.clients.aio import AsyncTranscriptionClient
    from parlons.clients.connection import Connection
    from parlons.clients.sdk import TranscriptionClient

    sync_times: list[float] = []
    with TranscriptionClient(Connection(address)) as client:
        client.list_models()
        for _ in range(calls):
            started = time.perf_counter()
            client.list_models()
            sync_times.append(time.perf_counter() - started)

    async def run() -> list[float]:
        times: list[float] = []
        async with AsyncTranscriptionClient(Connection(address)) as client:
            await client.list_models()
            for _ in range(calls):
                started = time.perf_counter()
                await client.list_models()
                times.append(time.perf_counter() - started)
        return times

    return sync_times, asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    from common import machine, median, percentile
    from gateway_helpers import gateway_config, start_embedded
    from replicas import Replica

    work = Path(tempfile.mkdtemp(prefix="parlons-clients-"))
    folder, audio_s = _folder(work)
    print(f"clients benchmark, {time.strftime('%Y-%m-%d')}, {machine()}; {len(list(folder.iterdir()))} files, "
          f"{audio_s / 60:.1f} min of audio; {args.runs} runs; tiny.en replicas")
    a, b = Replica(work, "a"), Replica(work, "b")
    gateways = []
    try:
        a.wait()
        b.wait()
        for replicas in ([a.address], [a.address, b.address]):
            config = gateway_config(None, None)
            config.gateway.rest_enabled = False
            config.gateway.transcription = replicas
            gateways.append(start_embedded(config, []))
        results: dict[str, list[float]] = {}
        wers: dict[str, list[float]] = {}
        for run in range(args.runs):
            for count, gateway in zip((1, 2), gateways, strict=True):
                for name, job in (("file by file", lambda g, o: _file_by_file(g.address, folder, o)),
                                  ("cli --jobs 2", lambda g, o: _cli(g.address, folder, o, 2))):
                    out = work / f"out-{run}-{count}-{name.split()[0]}"
                    out.mkdir()
                    wall = job(gateway, out)
                    key = f"{name}, {count} replica(s)"
                    results.setdefault(key, []).append(wall)
                    wers.setdefault(key, []).append(_wer_pair(out))
                    print(f"  run {run + 1}: {key}: {wall:.1f} s, x{audio_s / wall:.2f} real time, "
                          f"WER jfk+english {wers[key][-1]:.3f}", flush=True)
        base = median(results["file by file, 1 replica(s)"])
        print("\nmedian wall (min-max), throughput ratio vs file by file with 1 replica:")
        for key, walls in results.items():
            print(f"  {key:28s} {median(walls):6.1f} s ({min(walls):.1f}-{max(walls):.1f})  x{audio_s / median(walls):.2f} "
                  f"real time  ratio {base / median(walls):.2f}  WER {median(wers[key]):.3f}")
        one, two = median(results["cli --jobs 2, 1 replica(s)"]), median(results["cli --jobs 2, 2 replica(s)"])
        print(f"  CLI gain from the second replica: x{one / two:.2f}")
        sync_times, async_times = _latencies(gateways[0].address, args.calls)
        print(f"\nListModels through the gateway, {args.calls} sequential calls: "
              f"sync p50 {percentile(sync_times, 50) * 1000:.2f} ms p99 {percentile(sync_times, 99) * 1000:.2f} ms; "
              f"asyncio p50 {percentile(async_times, 50) * 1000:.2f} ms p99 {percentile(async_times, 99) * 1000:.2f} ms; "
              f"async/sync p50 ratio {percentile(async_times, 50) / percentile(sync_times, 50):.2f}")
    finally:
        for gateway in gateways:
            gateway.stop()
        a.stop()
        b.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
