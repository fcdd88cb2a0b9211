"""Shared benchmark helpers: a server in a subprocess, timing, RSS, machine description."""

from __future__ import annotations

import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PARLONS_TEST_DATA", ROOT.parent / "shared" / "data"))
AUDIO = DATA / "audio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}"


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@contextmanager
def server_process(service: str, env: dict[str, str] | None = None,
                   metrics_port: int | None = None) -> Iterator[tuple[str, int]]:
    """`parlons serve SERVICE` in a subprocess on a free port; yields (address, pid).
    With `metrics_port`, Prometheus /metrics is served there (127.0.0.1)."""
    port = free_port()
    environment = {**os.environ, "PARLONS_SERVER_LOG_LEVEL": "WARNING", **(env or {})}
    metrics = ["--metrics-port", str(metrics_port)] if metrics_port is not None else []
    process = subprocess.Popen(
        [sys.executable, "-m", "parlons.cli", "serve", *([service] if service else []), "--port", str(port), *metrics],
        env=environment,
    )
    try:
        import grpc

        from parlons.clients.sdk import wait_until_serving

        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        wait_until_serving(channel, timeout_s=300)
        channel.close()
        yield f"127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def timed(fn, *args, **kwargs) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def french_normalise(text: str) -> str:
    """What French WER is computed on: lower case, punctuation removed (hyphens too),
    apostrophes kept (typographic ones made plain)."""
    text = text.lower().replace("\u2019", "'").replace("-", " ")
    return " ".join(re.sub(r"[^\w\s']", " ", text).split())
