#!/usr/bin/env bash
# Set up parlons on a fresh machine: system packages, a virtual environment in .venv,
# the CPU build of PyTorch first (so nothing pulls CUDA wheels), the project, and the
# default models. Safe to run again: every step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${PARLONS_VENV:-.venv}"
TORCH_VERSION="${PARLONS_TORCH_VERSION:-2.13.0}"
# Models pulled now so the first call does not wait for them (names from models/catalog.toml):
# base is the CPU default (multilingual), tiny.en serves the tests, spacy-fr-core-news-md
# finds names for the anonymisation service.
DEFAULT_MODELS="${PARLONS_DEFAULT_MODELS:-base tiny.en pyannote-segmentation-3.0 speechbrain-ecapa-voxceleb spacy-fr-core-news-md}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
# The desk's browser tests drive Debian's Chromium (Playwright never downloads a browser).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium fonts-noto-core)
# Shared gateway quotas: the tests start their own redis-server.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    say "optional system packages missing (${need_apt[*]}): some tests generate speech with espeak-ng, the desk's tests need chromium, the shared-quota tests redis-server"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip)

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  say "installing torch==$TORCH_VERSION (CPU build where available) before anything else"
  "${PIP[@]}" install -q "torch==$TORCH_VERSION"
fi

say "installing parlons and its dependencies"
"${PIP[@]}" install -q -e ".[dev]"

if "${PIP[@]}" list 2>/dev/null | grep -qi '^nvidia-'; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    say "warning: CUDA (nvidia-*) packages were installed on a machine without a GPU"
  fi
fi

if command -v npm >/dev/null 2>&1; then
  if [ ! -x tools/node_modules/.bin/buf ] || [ ! -f tools/node_modules/axe-core/axe.min.js ]; then
    say "installing test tools from npm (buf: a second gRPC client; axe-core: accessibility checks)"
    (cd tools && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
else
  say "npm not found: the reflection test with buf curl will be skipped"
fi

say "fetching default models: $DEFAULT_MODELS"
# shellcheck disable=SC2086
"$VENV/bin/parlons" models pull $DEFAULT_MODELS

# The anonymisation service's learned recogniser (docs/anonymization.md): trained once from
# the repository's annotated counter dialogues into the model cache (about 3 min on 2
# cores; deterministic; again when the checkout's training files change), checked
# against its manifest afterwards.
say "learned anonymisation recogniser: training it if it is not installed"
"$VENV/bin/python" scripts/train_counter_ner.py --if-missing | tail -1

# Translation for a French counter, where a model hub (or $PARLONS_MODEL_MIRROR) answers:
# French<->English direct (OPUS-MT, CC-BY attribution) and M2M100 (MIT) for ~100 other
# languages, which an administration may use. Installed models are served as they are
# (no configuration); without them setup still succeeds and says how to add one.
TRANSLATION_MODELS="${PARLONS_DEFAULT_TRANSLATION_MODELS-opus-mt-fr-en opus-mt-en-fr m2m100-418m}"
missing=()
for model in $TRANSLATION_MODELS; do
  "$VENV/bin/parlons" models pull "$model" >/dev/null 2>&1 || missing+=("$model")
done
if [ -n "$TRANSLATION_MODELS" ] && [ "${#missing[@]}" -gt 0 ]; then
  say "translation needs a model, and ${missing[*]} could not be fetched here (no model hub): copy a model directory to \$PARLONS_MODEL_MIRROR/<name> and run '$VENV/bin/parlons models pull <name>' (docs/models.md, 'Offline machines and mirrors'); everything else works without it"
fi
say "ready: $VENV/bin/parlons"
