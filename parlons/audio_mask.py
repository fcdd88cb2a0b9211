"""A recording with the spans of personal data replaced by silence or a tone, so it can
be kept for quality review (`parlons transcribe --anonymize-audio`).

Streamed frame by frame with PyAV (memory does not grow with the recording), written in
the input's container and codec where PyAV can encode it, else as FLAC. The spans come
from the masked words' timings (parlons.anonymized), padded a little on each side:
word timestamps are estimates.

The recording is written to a new private file beside the target (mkstemp: O_EXCL,
0600, a random name) through its descriptor, then renamed over the target: a link
planted at a predictable name is never opened, and one at the target is replaced. A
voice is personal data, so the file stays 0600.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from parlons.private_files import replaced_privately

log = logging.getLogger("parlons.audio_mask")

PAD_S = 0.1  # around each span: word boundaries from timestamps are approximate
TONE_HZ = 1000.0
TONE_AMPLITUDE = 0.1  # -20 dBFS: plainly a tone, not loud
MODES = ("silence", "tone")
# Containers whose own audio codec we re-encode to; others go to FLAC.
_ENCODERS = {"wav": "pcm_s16le", "flac": "flac", "mp3": "libmp3lame", "ogg": "libvorbis", "opus": "libopus",
             "m4a": "aac", "mp4": "aac", "webm": "libopus", "aiff": "pcm_s16be", "aif": "pcm_s16be"}


def merged_spans(spans: Sequence[tuple[float, float]], pad_s: float = PAD_S) -> list[tuple[float, float]]:
    """Padded, sorted, overlapping spans merged."""
    out: list[tuple[float, float]] = []
    for start, end in sorted((max(0.0, a - pad_s), b + pad_s) for a, b in spans if b > a):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def masked_path(source: Path, directory: Path | None = None) -> Path:
    return (directory or source.parent) / f"{source.stem}.anonymise{source.suffix.lower() or '.flac'}"


def mask_recording(source: Path, target: Path, spans: Sequence[tuple[float, float]], mode: str = "tone") -> Path:
    """Write `source` to `target` with `spans` (seconds) silenced or replaced by a tone;
    returns the path written (a .flac beside `target` when its format cannot be encoded)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    windows = merged_spans(spans)
    try:
        return _mask(source, target, windows, mode, codec=_ENCODERS.get(target.suffix.lower().lstrip(".")))
    except (av.error.FFmpegError, ValueError, KeyError) as exc:
        fallback = target.with_suffix(".flac")
        log.info("cannot write %s (%s): writing FLAC", target.suffix, exc)
        target.unlink(missing_ok=True)
        return _mask(source, fallback, windows, mode, codec="flac")


def _mask(source: Path, target: Path, windows: list[tuple[float, float]], mode: str, codec: str | None) -> Path:
    if codec is None:
        raise ValueError(f"no encoder for {target.suffix}")
    with av.open(str(source)) as inp:
        stream = inp.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        layout = stream.layout.name if stream.layout else "mono"
        with replaced_privately(target) as file, av.open(file, "w", format=_format_for(target)) as out:
            _encode(inp, stream, out, codec, rate, layout, windows, mode)
    return target


def _encode(inp: av.container.InputContainer, stream: av.audio.stream.AudioStream,
            out: av.container.OutputContainer, codec: str, rate: int, layout: str,
            windows: list[tuple[float, float]], mode: str) -> None:
    """Decode `stream`, mask `windows`, encode to `out` with `codec`, frame by frame."""
    encoder = out.add_stream(codec, rate=rate, layout=layout)
    assert isinstance(encoder, av.audio.stream.AudioStream)
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    rechunk = av.AudioResampler(format=encoder.codec_context.format.name, layout=layout, rate=rate,
                                frame_size=encoder.codec_context.frame_size or None)
    position = 0  # samples written so far
    for frame in inp.decode(stream):
        for planar in resampler.resample(frame):
            samples = planar.to_ndarray().astype(np.float32)
            _apply(samples, position, rate, windows, mode)
            position += samples.shape[1]
            masked = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
            masked.sample_rate = rate
            for ready in rechunk.resample(masked):
                out.mux(encoder.encode(ready))
    for ready in rechunk.resample(None):
        out.mux(encoder.encode(ready))
    out.mux(encoder.encode(None))


def _format_for(target: Path) -> str | None:
    suffix = target.suffix.lower().lstrip(".")
    return {"m4a": "mp4", "aif": "aiff", "opus": "ogg"}.get(suffix, suffix or None)


def _apply(samples: np.ndarray, offset: int, rate: int, windows: list[tuple[float, float]], mode: str) -> None:
    """Silence or tone in place over the part of `windows` this block covers."""
    count = samples.shape[1]
    for start_s, end_s in windows:
        a, b = max(int(start_s * rate) - offset, 0), min(int(end_s * rate) - offset, count)
        if a >= b:
            continue
        if mode == "silence":
            samples[:, a:b] = 0.0
        else:
            t = (np.arange(a, b) + offset) / rate
            samples[:, a:b] = (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
