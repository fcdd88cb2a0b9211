"""Replica kill: two transcription replicas behind the gateway, 16 clients, one replica
killed with SIGKILL in the middle of the run.

    python benchmarks/bench_faults.py [--requests 96] [--clients 16] [--runs 3]

Replicas are `parlons serve transcription` processes (tiny.en); the gateway runs in this
process. Printed per run: requests sent, failed (must be 0: every call the dead replica
held is retried on the survivor), retried (the gateway's retry counter), the share each
replica served, and the wall time beside a run with no kill (the cost of the failover).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _retries() -> float:
    from parlons.services.gateway.routing import RETRIES

    return sum(sample.value for metric in RETRIES.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


def one_run(requests: int, clients: int, kill: bool, folder: Path) -> dict[str, float]:
    import grpc

    from gateway_helpers import gateway_config, start_embedded
    from parlons.clients.retry import NO_RETRY
    from parlons.clients.sdk import TranscriptionClient, open_channel
    from replicas import Replica
    from speech import AUDIO, wer

    a, b = Replica(folder, "a"), Replica(folder, "b")
    gateway = None
    try:
        a.wait()
        b.wait()
        config = gateway_config(None, None)
        config.gateway.rest_enabled = False
        config.gateway.transcription = [a.address, b.address]
        gateway = start_embedded(config, [])
        channel = open_channel(gateway.address)
        client = TranscriptionClient(channel, retry=NO_RETRY)  # the gateway's failover, not the SDK's retries
        audio = (AUDIO / "english.wav").read_bytes()

        def call(_: int) -> str:
            try:
                return client.transcribe(audio, timeout_s=180).text
            except grpc.RpcError as exc:
                return f"FAILED {exc.code().name}"

        with ThreadPoolExecutor(clients) as pool:  # warm both replicas
            list(pool.map(call, range(clients)))
        served_a, served_b = a.served(), b.served()
        retried = _retries()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(call, i) for i in range(requests)]
            if kill:
                while sum(f.done() for f in futures) < requests // 4:
                    time.sleep(0.01)
                a.kill()
            texts = [f.result() for f in futures]
        wall = time.perf_counter() - started
        failed = sum(t.startswith("FAILED") for t in texts)
        wrong = sum(not t.startswith("FAILED") and wer("one two three", t) > 0.34 for t in texts)
        result = {"sent": requests, "failed": failed, "wrong": wrong, "retried": _retries() - retried,
                  "wall_s": wall, "on_b": b.served() - served_b,
                  "on_a": (a.served() - served_a) if not kill else float("nan")}
        channel.close()
        return result
    finally:
        if gateway is not None:
            gateway.stop()
        a.stop()
        b.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    from common import machine, median

    print(f"replica-kill benchmark, {time.strftime('%Y-%m-%d')}, {machine()}, "
          f"{args.requests} requests from {args.clients} clients, {args.runs} runs of each")
    folder = Path(tempfile.mkdtemp(prefix="parlons-faults-"))
    rows: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.runs):
        for kill in (False, True):  # side by side, alternating
            rows[kill].append(one_run(args.requests, args.clients, kill, folder))
            r = rows[kill][-1]
            print(f"  {'kill ' if kill else 'no kill'}: sent {r['sent']:.0f}, failed {r['failed']:.0f}, "
                  f"wrong text {r['wrong']:.0f}, retried {r['retried']:.0f}, served by the survivor "
                  f"{r['on_b']:.0f}, wall {r['wall_s']:.1f} s", flush=True)
    walls = {k: [r["wall_s"] for r in v] for k, v in rows.items()}
    failed = sum(r["failed"] + r["wrong"] for v in rows.values() for r in v)
    print(f"\nmedian wall: no kill {median(walls[False]):.1f} s ({min(walls[False]):.1f}-{max(walls[False]):.1f}), "
          f"kill {median(walls[True]):.1f} s ({min(walls[True]):.1f}-{max(walls[True]):.1f}): "
          f"ratio {median(walls[True]) / median(walls[False]):.2f}; "
          f"retried per kill run {median([r['retried'] for r in rows[True]]):.0f}; failed or wrong {failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
