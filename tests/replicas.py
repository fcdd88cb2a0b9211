"""Transcription replicas as real `parlons serve transcription` processes (tiny.en), so
that a test can kill one with SIGKILL or SIGTERM as a crashed or drained pod would be."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from desk_helpers import free_port
from parlons.clients.sdk import open_channel, wait_until_serving

TRANSCRIBE = "/parlons.v1.TranscriptionService/Transcribe"


class Replica:
    """A transcription server in its own process."""

    def __init__(self, log_dir: Path, name: str, *, port: int = 0, **settings: str) -> None:
        self.port = port or free_port()
        self.metrics_port = free_port()
        env = {**os.environ, "PARLONS_TRANSCRIPTION_MODEL": "tiny.en", "PARLONS_TRANSCRIPTION_MAX_QUEUED": "16",
               "PARLONS_SERVER_GRACE_S": "2", **settings}
        self.log = (log_dir / f"{name}.log").open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "parlons.cli", "serve", "transcription", "--port", str(self.port),
             "--metrics-port", str(self.metrics_port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait(self) -> None:
        channel = open_channel(self.address)
        wait_until_serving(channel, "parlons.v1.TranscriptionService", timeout_s=300)
        channel.close()

    def served(self) -> int:
        """Transcribe calls this replica answered OK (its Prometheus counter)."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        pattern = r'parlons_requests_total\{code="OK",method="' + re.escape(TRANSCRIBE) + r'"\} ([0-9.e+]+)'
        match = re.search(pattern, text) or re.search(
            r'parlons_requests_total\{method="' + re.escape(TRANSCRIBE) + r'",code="OK"\} ([0-9.e+]+)', text)
        return int(float(match.group(1))) if match else 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
