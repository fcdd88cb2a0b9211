"""Dynamic audio context: file transcription and live utterances, side by side in one run.

For every recording (the shared ones, the meeting excerpts, French espeak-ng speech):
  * raw faster-whisper `WhisperModel.transcribe(vad_filter=True)`, same model and options;
  * the parlons engine with dynamic context (VAD chunks in cut windows);
  * the parlons engine with dynamic context off (faster-whisper's fixed 30-s windows).
Runs are interleaved, repeated, and the median time is reported with the spread; WER is
against the reference where there is one (sample.stm, jfk, english.wav, the espeak text),
else against raw faster-whisper's text (agreement, the meeting excerpts have no
transcript). Then the 13 turns of sample.wav as live utterances (vad off, beam 5, word
timestamps off), the cost a final pays, with and without dynamic context.

    python benchmarks/bench_dynamic_context.py --model base --runs 3
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import AUDIO, DATA, machine
from speech import JFK_TEXT, stm_text, stm_turns, wer

FRENCH = (
    "Bonjour madame, je viens pour renouveler ma carte de séjour. "
    "Avez-vous apporté votre passeport et un justificatif de domicile de moins de trois mois ? "
    "Oui, j'ai aussi la lettre de la préfecture et mon attestation de la caisse d'allocations familiales."
)


def recordings(tmp: Path) -> list[tuple[str, Path, str | None, str | None]]:
    """(label, path, reference text or None, language or None)."""
    french = tmp / "fr.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-s", "150", "-w", str(french), FRENCH], check=True)
    items: list[tuple[str, Path, str | None, str | None]] = [
        ("sample.wav", AUDIO / "sample.wav", stm_text(AUDIO / "sample.stm"), None),
        ("jfk.flac", AUDIO / "jfk.flac", JFK_TEXT, None),
        ("english.wav", AUDIO / "english.wav", "one two three", None),
        ("fr espeak", french, FRENCH, None),
    ]
    for path in sorted((DATA / "meetings").glob("*.flac")):
        items.append((f"meetings/{path.name}", path, None, None))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--floor", type=float, default=None, help="window floor (s); default: the engine's")
    parser.add_argument("--pad", type=float, default=None, help="window pad (s); default: the engine's")
    parser.add_argument("--only-live", action="store_true", help="only the live-utterance part")
    args = parser.parse_args()

    import numpy as np
    from faster_whisper import WhisperModel

    from parlons.models.manager import ModelManager
    from parlons.services.common.audio import DecodedAudio, decode_audio
    from parlons.services.transcription.engine import TranscriptionEngine
    from parlons.services.transcription.options import TranscriptionOptions
    from parlons.services.transcription.window import WindowPolicy

    model_dir = ModelManager().resolve(args.model, kind="whisper")
    defaults = WindowPolicy()
    policy = WindowPolicy(floor_s=args.floor or defaults.floor_s, pad_s=args.pad or defaults.pad_s)
    dynamic = TranscriptionEngine(model_dir, device="cpu", window=policy)
    fixed = TranscriptionEngine(model_dir, device="cpu", window=WindowPolicy(enabled=False))
    raw = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=dynamic_threads())
    print(f"# {datetime.date.today()}  {machine()}  model {args.model}  runs {args.runs}  "
          f"window floor {policy.floor_s} s, pad {policy.pad_s} s")

    totals = {"raw": 0.0, "dynamic": 0.0, "fixed": 0.0}
    worst = (0.0, "")
    with tempfile.TemporaryDirectory() as tmp:
        items = [] if args.only_live else recordings(Path(tmp))
        print(f"{'file':22s} {'raw fw':>8s} {'dynamic':>8s} {'fixed30':>8s} {'speed-up':>9s} "
              f"{'WER raw':>8s} {'WER dyn':>8s} {'WER fix':>8s}  (spread of dynamic)")
        for label, path, reference, language in items:
            samples = decode_audio(path.read_bytes()).mono()
            audio = DecodedAudio.from_array(samples)
            options = TranscriptionOptions(language=language)
            times: dict[str, list[float]] = {"raw": [], "dynamic": [], "fixed": []}
            texts: dict[str, str] = {}
            for _ in range(args.runs):
                started = time.perf_counter()
                segments, _ = raw.transcribe(samples, beam_size=5, vad_filter=True,
                                             vad_parameters={"min_silence_duration_ms": 2000},
                                             language=language)
                texts["raw"] = " ".join(s.text for s in segments)
                times["raw"].append(time.perf_counter() - started)
                for name, engine in (("dynamic", dynamic), ("fixed", fixed)):
                    started = time.perf_counter()
                    texts[name] = engine.transcribe(audio, options).text
                    times[name].append(time.perf_counter() - started)
            target = reference if reference is not None else texts["raw"]
            errors = {k: wer(target, v) if target.strip() else float(bool(v.strip())) for k, v in texts.items()}
            med = {k: statistics.median(v) for k, v in times.items()}
            for k in totals:
                totals[k] += med[k]
            speedup = med["raw"] / med["dynamic"] if med["dynamic"] else float("nan")
            delta = errors["dynamic"] - errors["fixed"]
            if delta > worst[0]:
                worst = (delta, label)
            ref_mark = "" if reference is not None else " (vs raw)"
            print(f"{label:22s} {med['raw']:7.2f}s {med['dynamic']:7.2f}s {med['fixed']:7.2f}s {speedup:8.2f}x "
                  f"{errors['raw']:8.3f} {errors['dynamic']:8.3f} {errors['fixed']:8.3f}  "
                  f"({min(times['dynamic']):.2f}-{max(times['dynamic']):.2f}){ref_mark}", flush=True)
        if items:
            print(f"{'total':22s} {totals['raw']:7.2f}s {totals['dynamic']:7.2f}s {totals['fixed']:7.2f}s "
                  f"{totals['raw'] / totals['dynamic']:8.2f}x")
            print(f"worst WER change dynamic vs fixed: {worst[0]:+.3f} ({worst[1] or 'none'})")

    # Live utterances: the decode a final pays (13 turns of sample.wav).
    samples = decode_audio((AUDIO / "sample.wav").read_bytes()).mono()
    turns = stm_turns(AUDIO / "sample.stm")
    clips = [samples[int(max(0.0, s - 0.2) * 16000): int((e + 0.2) * 16000)] for _, s, e, _ in turns]
    reference = " ".join(t for *_, t in turns)
    live = TranscriptionOptions(vad_filter=False)
    print("\nlive utterances (13 turns of sample.wav, automatic language, beam 5):")
    for name, engine in (("dynamic", dynamic), ("fixed", fixed)):
        per_run: list[float] = []
        run_wers: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            hyps = [engine.transcribe(DecodedAudio.from_array(np.ascontiguousarray(c)), live).text for c in clips]
            per_run.append(time.perf_counter() - started)
            run_wers.append(wer(reference, " ".join(hyps)))
        print(f"  {name:8s} {statistics.median(per_run):6.2f} s for 13 finals "
              f"({statistics.median(per_run) / 13 * 1000:.0f} ms each; runs {min(per_run):.2f}-{max(per_run):.2f} s), "
              f"WER median {statistics.median(run_wers):.3f} (runs {min(run_wers):.3f}-{max(run_wers):.3f})")
    return 0


def dynamic_threads() -> int:
    import os

    return min(4, len(os.sched_getaffinity(0)))


if __name__ == "__main__":
    raise SystemExit(main())
