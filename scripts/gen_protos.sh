#!/usr/bin/env bash
# Regenerate parlons/v1/*_pb2*.py from protos/. The generated code is committed;
# tests/test_protos_generated.py fails when it differs from a fresh generation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root}"
python="${PYTHON:-python}"
"$python" -m grpc_tools.protoc -I "$root/protos" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$root"/protos/parlons/v1/*.proto
