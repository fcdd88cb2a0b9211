"""How live finals are decoded: time and accuracy of each policy, per set, side by side.

A live final is the decode of one utterance (at most 12 s) with the caller's options
(beam 5, word timestamps). This decodes real utterances exactly as
`StreamingSession._decode_final` does, under several policies, interleaved, and prints
per set the time per final (median of `--runs`) and the WER, with the worst clip:

  full        the full 30-s window (faster-whisper's own decode; the default until now)
  cut         the cut window (dynamic context), faster-whisper's guards, full window
              when they fail (`dynamic_finals = true`)
  cut-strict  the cut window kept only when every segment's average log-probability is
              at least -0.5 (else the full window)
  cut-10s     the cut window with a 10-s floor (more context for short turns)

Sets (choose on some, report the others apart):
  en        the 13 turns of the phone call sample.wav (sample.stm), automatic language
  fr-tune   FLEURS French clips 000-002, language given
  fr-check  FLEURS French clips 003-004, language given (not chosen on)
  fleurs    German, Spanish, Portuguese clips 000-004, language given (not chosen on)
  meetings  AMI excerpts cut at 0.5-s pauses (as the live end-pointer does), automatic
            language: no transcripts, so agreement with the full window (1 - WER vs full)

    python benchmarks/bench_live_finals.py --runs 3
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import AUDIO, DATA, french_normalise, machine
from speech import stm_turns

from parlons.services.common.audio import DecodedAudio, decode_audio
from parlons.services.transcription.engine import TranscriptionEngine
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.window import WindowPolicy

RATE = 16000
FLEURS = DATA / "fleurs"
MEETINGS = DATA / "meetings"


@dataclass(frozen=True)
class Clip:
    name: str
    samples: np.ndarray
    language: str | None
    reference: str | None  # None: scored against the full window's text


def wer(reference: str, hypothesis: str) -> float:
    """French-normalised WER; two empty texts agree (a meeting clip the full window
    found silent)."""
    reference, hypothesis = french_normalise(reference), french_normalise(hypothesis)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return float(jiwer.wer(reference, hypothesis)) if hypothesis else 1.0


def english_turns() -> list[Clip]:
    samples = decode_audio((AUDIO / "sample.wav").read_bytes()).mono()
    return [Clip(f"sample.wav {start:.1f}s", samples[int(start * RATE): int(end * RATE)], None, text)
            for _, start, end, text in sorted(stm_turns(AUDIO / "sample.stm"), key=lambda t: t[1])]


def fleurs(language: str, numbers: range) -> list[Clip]:
    clips = []
    for number in numbers:
        path = FLEURS / f"fleurs-{language}-{number:03d}.ogg"
        clips.append(Clip(path.name, decode_audio(path.read_bytes()).mono(), language,
                          path.with_suffix(".txt").read_text(encoding="utf-8").strip()))
    return clips


def meeting_utterances(max_s: float = 12.0, min_s: float = 1.0) -> list[Clip]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    clips = []
    for path in sorted(MEETINGS.glob("*.flac")):
        samples = decode_audio(path.read_bytes()).mono()
        chunks = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=500, max_speech_duration_s=max_s,
                                                            speech_pad_ms=200))
        for chunk in chunks:
            if chunk["end"] - chunk["start"] >= min_s * RATE:
                clips.append(Clip(f"{path.stem} {chunk['start'] / RATE:.1f}s",
                                  samples[chunk["start"]: chunk["end"]], None, None))
    return clips


def policies(engine: TranscriptionEngine) -> dict[str, tuple[TranscriptionEngine, bool]]:
    """name -> (engine with its window policy, full_window)."""
    def with_window(**changes: Any) -> TranscriptionEngine:
        view = copy.copy(engine)
        view.window = replace(engine.window, **changes)
        return view

    return {
        "full": (engine, True),
        "cut": (engine, False),
        "cut-strict": (with_window(min_log_prob=-0.5), False),
        "cut-10s": (with_window(floor_s=10.0), False),
    }


def decode(engine: TranscriptionEngine, clip: Clip, full_window: bool, beam: int) -> tuple[str, float]:
    options = TranscriptionOptions(language=clip.language, beam_size=beam, word_timestamps=True,
                                   vad_filter=False, full_window=full_window)
    started = time.perf_counter()
    text = engine.transcribe(DecodedAudio.from_array(clip.samples), options).text
    return text, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--sets", default="en,fr-tune,fr-check,fleurs,meetings")
    args = parser.parse_args()
    from parlons.models.manager import ModelManager

    engine = TranscriptionEngine(ModelManager().resolve(args.model), name=args.model, window=WindowPolicy())
    sets = {
        "en": english_turns,
        "fr-tune": lambda: fleurs("fr", range(0, 3)),
        "fr-check": lambda: fleurs("fr", range(3, 5)),
        "fleurs": lambda: [c for lang in ("de", "es", "pt") for c in fleurs(lang, range(0, 5))],
        "meetings": meeting_utterances,
    }
    chosen = [name for name in args.sets.split(",") if name]
    load = os.getloadavg()
    print(f"# live finals, {datetime.date.today()}, {machine()}, model {args.model}, beam {args.beam}, "
          f"word timestamps, {args.runs} run(s); load average before: {load[0]:.2f}")
    named = policies(engine)
    engine.transcribe(DecodedAudio.from_array(english_turns()[0].samples))  # warm-up
    for set_name in chosen:
        clips = sets[set_name]()
        times: dict[str, list[list[float]]] = {p: [[] for _ in clips] for p in named}
        texts: dict[str, list[str]] = {p: [""] * len(clips) for p in named}
        for _ in range(args.runs):
            for index, clip in enumerate(clips):
                for name, (view, full_window) in named.items():  # interleaved
                    text, seconds = decode(view, clip, full_window, args.beam)
                    times[name][index].append(seconds)
                    texts[name][index] = text
        audio_s = sum(c.samples.shape[0] for c in clips) / RATE
        print(f"\n## {set_name}: {len(clips)} utterances, {audio_s:.1f} s of audio")
        print("| policy | per final (median) | total | vs full | WER (all) | worst clip |")
        print("|---|---:|---:|---:|---:|---|")
        full_total = sum(statistics.median(t) for t in times["full"])
        for name in named:
            per = [statistics.median(t) for t in times[name]]
            references = [c.reference if c.reference is not None else texts["full"][i] for i, c in enumerate(clips)]
            corpus = wer(" ".join(references), " ".join(texts[name]))
            worst = max(range(len(clips)), key=lambda i: wer(references[i], texts[name][i]))
            label = "agreement with full" if clips[0].reference is None else "WER"
            print(f"| {name} | {statistics.median(per):.2f} s | {sum(per):.1f} s | {full_total / sum(per):.2f}x | "
                  f"{label} {1 - corpus if clips[0].reference is None else corpus:.3f} | "
                  f"{clips[worst].name} {wer(references[worst], texts[name][worst]):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
