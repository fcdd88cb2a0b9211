"""The committed generated code must be exactly what protoc makes from protos/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), str(tmp_path)],
        check=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    fresh = sorted(p.relative_to(tmp_path) for p in (tmp_path / "parlons" / "v1").glob("*_pb2*.py*"))
    committed = sorted(p.relative_to(ROOT) for p in (ROOT / "parlons" / "v1").glob("*_pb2*.py*"))
    assert fresh == committed, "a proto was added or removed: run scripts/gen_protos.sh"
    stale = [str(p) for p in fresh if (tmp_path / p).read_bytes() != (ROOT / p).read_bytes()]
    assert not stale, f"generated code differs from protos/ (run scripts/gen_protos.sh): {stale}"


def test_every_service_is_importable() -> None:
    from parlons.v1 import (  # noqa: F401
        diarization_pb2_grpc,
        gateway_pb2_grpc,
        transcription_pb2_grpc,
        translation_pb2_grpc,
    )
