"""Fuzz every RPC and REST endpoint with >= 1000 inputs each (tests/fuzz.py).

    python benchmarks/bench_fuzz.py [--examples 1000]

The server (the embedded layout: gateway, transcription tiny.en, translation test
models, diarisation) runs in its own process, so its peak memory is its own. Printed per
entry point: inputs tried, UNKNOWN/INTERNAL answers and hangs (must be 0), the slowest
answer, the status codes seen; then the server's peak RSS and whether it still serves.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def serve(models: str) -> None:
    from test_fuzz import fuzz_server

    running, rest_port = fuzz_server(Path(models))
    print(f"READY {running.address} {rest_port}", flush=True)
    while True:
        time.sleep(3600)


def spawn_server(prefix: str) -> tuple[subprocess.Popen[str], str, str]:
    """The embedded server in its own process (`--serve`), once it says READY: the
    process, its gRPC address and its REST port. The caller terminates it."""
    process = subprocess.Popen([sys.executable, __file__, "--serve", tempfile.mkdtemp(prefix=prefix)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = ""
    while not line.startswith("READY"):
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line and process.poll() is not None:
            raise RuntimeError("the embedded server did not start")
    _, address, rest_port = line.split()
    return process, address, rest_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    if args.serve:
        serve(args.serve)
        return 0

    import grpc
    from hypothesis import HealthCheck, given, settings

    import fuzz
    from common import machine, peak_rss_mib

    print(f"fuzz benchmark, {time.strftime('%Y-%m-%d')}, {machine()}, {args.examples} inputs per entry point")
    process, address, rest_port = spawn_server("parlons-fuzz-")
    try:
        fuzz.tolerate_lazy_modules()
        config = settings(max_examples=args.examples, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
        total_bad = 0
        with grpc.insecure_channel(address) as channel:
            for point in fuzz.entry_points():
                tally = fuzz.Tally()
                given(point.inputs())(config(lambda messages: tally.add(fuzz.call(channel, point, messages))))()
                total_bad += len(tally.bad)
                codes = ", ".join(f"{k} {v}" for k, v in sorted(tally.codes.items(), key=lambda kv: -kv[1]))
                print(f"{point.path:58s} {tally.calls:5d} inputs, {len(tally.bad)} bad, "
                      f"slowest {tally.slowest_s:.2f} s  [{codes}]")
                for code, details in tally.bad[:3]:
                    print(f"    {code}: {details}")
            rest = {"calls": 0, "server_errors": 0, "slowest": 0.0}

            def one_rest(item: fuzz.RestInput) -> None:
                status, seconds = fuzz.rest_call(f"http://127.0.0.1:{rest_port}", item)
                rest["calls"] += 1
                rest["server_errors"] += status >= 500
                rest["slowest"] = max(rest["slowest"], seconds)

            given(fuzz.rest_inputs())(settings(config, max_examples=args.examples * 5)(one_rest))()
            print(f"{'REST (5 endpoints)':58s} {rest['calls']:5d} inputs, {rest['server_errors']} server errors, "
                  f"slowest {rest['slowest']:.2f} s")
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        print(f"server peak RSS {peak_rss_mib(process.pid):.0f} MiB; health after the run: "
              f"{health_pb2.HealthCheckResponse.ServingStatus.Name(status)}; UNKNOWN/INTERNAL/hangs: {total_bad}")
        return 1 if total_bad else 0
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    raise SystemExit(main())
