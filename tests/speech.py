"""Helpers for speech tests: shared data paths, STM references, word error rate."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import io
import wave

import jiwer
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PARLONS_TEST_DATA", ROOT.parent / "shared" / "data"))
AUDIO = DATA / "audio"

JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)

_NUMBERS = {"1": "one", "2": "two", "3": "three"}


def normalise(text: str) -> str:
    """Lower case, no punctuation, single spaces: what WER is computed on."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    words = [_NUMBERS.get(w, w) for w in text.split()]
    return " ".join(words)


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def stm_turns(path: Path) -> list[tuple[str, float, float, str]]:
    """(speaker, start, end, text) per line of an STM file."""
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith(";;"):
            continue
        parts = line.split(maxsplit=5)
        text = parts[5] if len(parts) > 5 else ""
        if text.startswith("<"):  # optional <label> field
            text = text.split(">", 1)[1] if ">" in text else ""
        turns.append((parts[2], float(parts[3]), float(parts[4]), text.strip()))
    return turns


def stm_text(path: Path) -> str:
    return " ".join(t[3] for t in sorted(stm_turns(path), key=lambda t: t[1]))


def espeak(text: str, voice: str, out: Path) -> Path:
    """Speech generated with espeak-ng (plumbing and language coverage, not accuracy)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed: run scripts/setup.sh (it installs it)")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True)
    return out


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    """int16 WAV bytes from float samples shaped (n,) or (channels, n)."""
    data = np.atleast_2d(samples)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(data.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(data.T, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def opus_bytes(samples: np.ndarray, container: str = "ogg", rate: int = 16000, bit_rate: int = 24000) -> bytes:
    """Mono float samples encoded as Opus in an Ogg or WebM container (what browsers'
    MediaRecorder sends), with PyAV's libopus."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for piece in [*resampler.resample(frame), *resampler.resample(None), None]:
            for packet in stream.encode(piece):
                out.mux(packet)
    return buffer.getvalue()

