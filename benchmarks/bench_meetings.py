"""Diarisation on the AMI meeting excerpts: each configuration beside pyannote out of the
box, file by file, in one run.

    python benchmarks/bench_meetings.py [--only baseline,default,...] [--runs 1]

Files: ../shared/data/meetings (trn01-09, dev00-01: 30 s, up to 4 speakers, much
overlap) and sample.wav (a phone call). Settings are chosen on the trn files; the dev
files are reported apart. Printed per configuration: per-file DER (pyannote.metrics,
collar 0, scored 0-30 s as the references' UEM) split into missed speech, false alarm
and confusion, the speaker count beside the reference's, the worst file, the DER of each
group (components summed over the group, as pyannote.metrics does), wall time and
real-time factor. Configurations run file by file in turn (A, B, C on file 1, then file 2)
so load from elsewhere hits them alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_diarization import BASELINE, build
from common import AUDIO, machine, median

MEETINGS = AUDIO.parent / "meetings"

CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("pyannote out of the box (same weights)", BASELINE),
    "stride1": ("our embedding step, every window embedded", {"embedding": {"stride": 1}}),
    "stride2": ("every 2nd window", {"embedding": {"stride": 2}}),
    "stride3": ("every 3rd window (the default until now)", {"embedding": {"stride": 3}}),
    "agree0.6": ("every 3rd; borrow only where both neighbours agree (cos >= 0.6)",
                 {"embedding": {"stride": 3, "neighbour_agreement": 0.6}}),
    "agree0.75": ("every 3rd; neighbours agree at cos >= 0.75",
                  {"embedding": {"stride": 3, "neighbour_agreement": 0.75}}),
    "agree0.85": ("every 3rd; neighbours agree at cos >= 0.85",
                  {"embedding": {"stride": 3, "neighbour_agreement": 0.85}}),
}


@dataclass
class FileScore:
    missed: float = 0.0
    false_alarm: float = 0.0
    confusion: float = 0.0
    total: float = 0.0
    speakers: int = 0
    reference_speakers: int = 0
    confidence: float = 0.0
    walls: list[float] = field(default_factory=list)

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / self.total if self.total else 0.0


def files() -> list[tuple[str, Path, Any]]:
    from pyannote.database.util import load_rttm

    meetings = load_rttm(str(MEETINGS / "meetings.rttm"))
    sample = load_rttm(str(AUDIO / "sample.rttm"))
    out = [(uri, MEETINGS / f"{uri}.flac", meetings[uri]) for uri in sorted(meetings)]
    return out + [("sample", AUDIO / "sample.wav", next(iter(sample.values())))]


def score(result, reference, duration_s: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    hypothesis = Annotation()
    for i, turn in enumerate(result.turns):
        hypothesis[Segment(turn.start, turn.end), i] = turn.speaker
    return DiarizationErrorRate(collar=0.0)(reference, hypothesis, uem=Segment(0, duration_s), detailed=True)


def group_der(scores: list[FileScore]) -> float:
    total = sum(s.total for s in scores)
    return sum(s.missed + s.false_alarm + s.confusion for s in scores) / total if total else 0.0


def count_summary(scores: dict[str, FileScore]) -> str:
    """Whether the count confidence tells right counts from wrong ones: its mean on each."""
    right = [s.confidence for s in scores.values() if s.speakers == s.reference_speakers]
    wrong = [s.confidence for s in scores.values() if s.speakers != s.reference_speakers]
    mean = lambda values: f"{sum(values) / len(values):.2f}" if values else "-"  # noqa: E731
    return (f"right on {len(right)}/{len(scores)} files; mean confidence {mean(right)} when right, "
            f"{mean(wrong)} when wrong; files under 0.8: "
            + (", ".join(f"{uri} {s.speakers} found of {s.reference_speakers} at {s.confidence:.2f}"
                         for uri, s in scores.items() if s.confidence < 0.8) or "none"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    parser.add_argument("--runs", type=int, default=1, help="runs per file and configuration (wall: median)")
    args = parser.parse_args()
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    from parlons.services.common.audio import decode_audio
    from parlons.services.diarization.engine import DiarizationEngine

    names = [n for n in args.only.split(",") if n] or list(CONFIGS)
    engines = {name: DiarizationEngine(build(CONFIGS[name][1])) for name in names}
    items = files()
    print(f"meetings diarisation benchmark, {time.strftime('%Y-%m-%d')}, {machine()}; {len(items)} files, "
          f"{args.runs} run(s)")
    table: dict[str, dict[str, FileScore]] = {name: {} for name in names}
    for uri, path, reference in items:
        audio = decode_audio(path.read_bytes())
        duration = min(audio.duration_s, 30.0) if uri != "sample" else audio.duration_s
        for name in names:
            entry = table[name].setdefault(uri, FileScore())
            for _ in range(args.runs):
                started = time.perf_counter()
                result = engines[name].diarize(audio)
                entry.walls.append(time.perf_counter() - started)
            detail = score(result, reference, duration)
            entry.missed, entry.false_alarm = detail["missed detection"], detail["false alarm"]
            entry.confusion, entry.total = detail["confusion"], detail["total"]
            entry.speakers = len({t.speaker for t in result.turns})
            entry.reference_speakers = len(reference.labels())
            entry.confidence = result.count_confidence
        line = "  ".join(f"{n} {table[n][uri].der * 100:5.1f}" for n in names)
        print(f"  {uri:7s} ({len(reference.labels())} spk): {line}", flush=True)

    print("\nper configuration: DER % (missed / false alarm / confusion), worst file, wall")
    base = table.get("baseline")
    for name in names:
        scores = table[name]
        groups = {
            "trn": [s for u, s in scores.items() if u.startswith("trn")],
            "dev": [s for u, s in scores.items() if u.startswith("dev")],
            "sample": [s for u, s in scores.items() if u == "sample"],
        }
        meetings = groups["trn"] + groups["dev"]
        worst = max(scores.items(), key=lambda kv: kv[1].der - (base[kv[0]].der if base else 0.0))
        audio_s = sum(30.0 for u in scores if u != "sample") + 30.0
        wall = sum(median(s.walls) for s in scores.values())
        parts = ", ".join(f"{g} {group_der(v) * 100:.1f}" for g, v in groups.items())
        missed = sum(s.missed for s in meetings) / max(sum(s.total for s in meetings), 1e-9) * 100
        fa = sum(s.false_alarm for s in meetings) / max(sum(s.total for s in meetings), 1e-9) * 100
        conf = sum(s.confusion for s in meetings) / max(sum(s.total for s in meetings), 1e-9) * 100
        worse = [u for u, s in scores.items() if base and s.der > base[u].der + 0.01]
        print(f"  {name:10s} {CONFIGS[name][0]}")
        print(f"             meetings {group_der(meetings) * 100:.1f} ({missed:.1f} / {fa:.1f} / {conf:.1f}); {parts}; "
              f"worst vs baseline {worst[0]} {worst[1].der * 100:.1f}"
              + (f" (baseline {base[worst[0]].der * 100:.1f})" if base else "")
              + f"; more than 1 point worse than baseline on: {', '.join(worse) or 'none'}; "
              f"wall {wall:.1f} s, RTF {wall / audio_s:.3f}")
        print(f"             speaker count: {count_summary(scores)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
