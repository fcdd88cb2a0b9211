"""Choose the agglomerative clustering's threshold and min_cluster_size on the AMI trn
excerpts, then check the choice on the held-out files (dev00-01 and sample.wav).

    python benchmarks/tune_clustering.py [--out results.json]

Clustering changes neither the segmentation nor the embeddings, so the default pipeline
(pipeline.toml) runs once per file with the pipeline's `get_segmentations` and
`get_embeddings` memoised (wrapped on the instance, keyed by the file's uri); each grid
point then re-instantiates only the clustering parameters and reruns clustering and
reconstruction. The first pass, at the packaged parameters, is a normal pipeline run;
the same point rerun from the memo must give the same DER (checked), and one file run
through `DiarizationEngine.diarize` checks that this script turns the pipeline's output
into turns as the engine does.

pyannote caps min_cluster_size at max(1, round(0.1 * n)) where n is the number of
embeddings that enter the clustering (AgglomerativeClustering.cluster). On 30-s files n
is a few dozen, so every value above that cap behaves alike there; results are
memoised per (file, threshold, effective min_cluster_size), which is exact, and the cap
of each file is printed. These files therefore say nothing about min_cluster_size on
recordings long enough (roughly 80 s and more) for values above about 4 to take effect.

Grid: threshold 0.55 to 0.90 in steps of 0.025 plus the current value, min_cluster_size
in 1, 3, 5, 8, 10, 12, 15, 20. Scores: DER of pyannote.metrics (collar 0, scored 0-30 s;
bench_meetings.score), group DER with the components summed over the group
(bench_meetings.group_der), speaker count found beside the reference's.

Choice rule, on the trn files only:
1. smoothed DER of a point = mean trn group DER over the point and its immediate grid
   neighbours (the 3 x 3 box of threshold index +-1, min_cluster_size index +-1, clipped
   at the grid's edges; the thresholds are the sorted list including the current value):
   a point on a plateau wins over a sharp minimum;
2. candidates = the points whose smoothed DER is within TOLERANCE (0.25 DER point) of the
   lowest smoothed DER;
3. among them: fewest trn files with a wrong speaker count, then the lowest mean absolute
   count error, then the lowest own trn DER, then the current default if it is still
   tied, then the nearest threshold and min_cluster_size to the current default.
The dev files and sample.wav play no part in the choice; they are reported apart, for
the chosen point, the current default and pyannote out of the box (bench_diarization's
BASELINE: pyannote's embedding step on every window, same weights, run once, no memo),
since the project's rule is that on every file the default is within 1 DER point of
pyannote out of the box, or better.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_diarization import BASELINE, build
from bench_meetings import FileScore, files, group_der, score
from common import machine

THRESHOLD_STEPS = [round(0.55 + 0.025 * i, 4) for i in range(15)]  # 0.55 ... 0.90
MIN_CLUSTER_SIZES = [1, 3, 5, 8, 10, 12, 15, 20]
TOLERANCE = 0.0025  # smoothed trn DER within 0.25 DER point of the best counts as tied
RULE_POINTS = 0.01  # the project's rule: within 1 DER point of pyannote out of the box
GROUPS = ("trn", "dev", "sample")


def group_of(uri: str) -> str:
    return "sample" if uri == "sample" else uri[:3]


@dataclass
class Item:
    uri: str
    audio: Any  # DecodedAudio
    reference: Any  # pyannote.core.Annotation
    duration: float  # scored span: 0-30 s for the meetings, the whole call for sample

    @property
    def speakers(self) -> int:
        return len(self.reference.labels())


@dataclass
class Point:
    threshold: float
    min_cluster_size: int
    scores: dict[str, FileScore] = field(default_factory=dict)
    smoothed: float = 0.0

    @property
    def der(self) -> float:
        return group_der(list(self.scores.values()))

    def count_errors(self, refs: dict[str, int]) -> list[int]:
        return [self.scores[u].speakers - refs[u] for u in self.scores]

    def wrong_counts(self, refs: dict[str, int]) -> int:
        return sum(1 for e in self.count_errors(refs) if e)

    def count_mae(self, refs: dict[str, int]) -> float:
        errors = self.count_errors(refs)
        return sum(abs(e) for e in errors) / len(errors) if errors else 0.0

    def label(self) -> str:
        return f"threshold {self.threshold:.4f}, min_cluster_size {self.min_cluster_size}"


class Memo:
    """Memoises a pipeline's segmentation and embeddings per file uri (wrapped on the instance)."""

    def __init__(self, pipeline: Any) -> None:
        from pyannote.core import SlidingWindowFeature

        self.segmentations: dict[str, Any] = {}
        self.binary: dict[str, Any] = {}
        self.embeddings: dict[str, Any] = {}
        self.misses = 0
        get_segmentations: Callable[..., Any] = pipeline.get_segmentations
        get_embeddings: Callable[..., Any] = pipeline.get_embeddings

        def segmentations(file: dict[str, Any], hook: Callable[..., Any] | None = None) -> Any:
            uri = str(file["uri"])
            if uri not in self.segmentations:
                self.misses += 1
                self.segmentations[uri] = get_segmentations(file, hook=hook)
            cached = self.segmentations[uri]
            # a copy: nothing downstream may alter what the next grid point reads
            return SlidingWindowFeature(cached.data.copy(), cached.sliding_window, labels=cached.labels)

        def embeddings(file: dict[str, Any], binary_segmentations: Any, exclude_overlap: bool = False,
                       hook: Callable[..., Any] | None = None) -> Any:
            uri = str(file["uri"])
            if uri not in self.embeddings:
                self.embeddings[uri] = get_embeddings(file, binary_segmentations, exclude_overlap=exclude_overlap, hook=hook)
                self.binary[uri] = binary_segmentations
            return self.embeddings[uri].copy()

        pipeline.get_segmentations = segmentations
        pipeline.get_embeddings = embeddings

    def clustered(self, pipeline: Any, uri: str) -> int:
        """How many embeddings of the file enter the clustering (pyannote's filter)."""
        if uri not in self.embeddings:
            return 0
        train, _, _ = pipeline.clustering.filter_embeddings(self.embeddings[uri], segmentations=self.binary[uri])
        return int(train.shape[0])


def effective_min_cluster_size(min_cluster_size: int, clustered: int) -> int:
    """pyannote's reduction on short files (AgglomerativeClustering.cluster)."""
    return min(min_cluster_size, max(1, round(0.1 * clustered)))


def diarize(engine: Any, item: Item) -> Any:
    """engine.diarize's neural path without options, with the file's own uri (the memo's key)."""
    import torch

    from parlons.services.diarization.engine import SAMPLE_RATE
    from parlons.services.diarization.results import finish

    samples = engine._mono(item.audio)
    duration = samples.shape[0] / SAMPLE_RATE
    started = time.perf_counter()
    file = {"waveform": torch.from_numpy(samples)[None], "sample_rate": SAMPLE_RATE, "uri": item.uri}
    output = engine._pipeline(file)
    raw = engine._raw_turns(output.speaker_diarization, duration)
    return finish(raw, duration, started, "neural")


def file_score(result: Any, item: Item) -> FileScore:
    detail = score(result, item.reference, item.duration)
    return FileScore(missed=detail["missed detection"], false_alarm=detail["false alarm"],
                     confusion=detail["confusion"], total=detail["total"],
                     speakers=len({t.speaker for t in result.turns}))


def parameters(base: dict[str, Any], threshold: float, min_cluster_size: int) -> dict[str, Any]:
    return {**base, "clustering": {**base["clustering"], "threshold": threshold, "min_cluster_size": min_cluster_size}}


def smooth(points: dict[tuple[int, int], Point], rows: int, cols: int) -> None:
    for (i, j), point in points.items():
        box = [points[(a, b)].der for a in range(max(0, i - 1), min(rows, i + 2))
               for b in range(max(0, j - 1), min(cols, j + 2))]
        point.smoothed = sum(box) / len(box)


def choose(points: Sequence[Point], refs: dict[str, int], default: Point) -> Point:
    best = min(p.smoothed for p in points)
    candidates = [p for p in points if p.smoothed <= best + TOLERANCE]

    def key(p: Point) -> tuple[float, ...]:
        return (p.wrong_counts(refs), round(p.count_mae(refs), 9), round(p.der, 9), p is not default,
                abs(p.threshold - default.threshold), abs(p.min_cluster_size - default.min_cluster_size))

    return min(candidates, key=key)


def pct(value: float) -> str:
    return f"{value * 100:5.1f}"


def group_lines(name: str, scores: dict[str, FileScore], refs: dict[str, int]) -> list[str]:
    lines = []
    groups: dict[str, list[str]] = {g: [u for u in scores if group_of(u) == g] for g in GROUPS}
    groups["meetings"] = groups["trn"] + groups["dev"]
    parts = []
    for g, uris in groups.items():
        right = sum(1 for u in uris if scores[u].speakers == refs[u])
        mae = sum(abs(scores[u].speakers - refs[u]) for u in uris) / max(len(uris), 1)
        parts.append(f"{g} {pct(group_der([scores[u] for u in uris])).strip()} (count {right}/{len(uris)}, MAE {mae:.2f})")
    worst = max(scores, key=lambda u: scores[u].der)
    lines.append(f"  {name:9s} DER % " + "; ".join(parts) + f"; worst file {worst} {pct(scores[worst].der).strip()}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="also write the results here (JSON)")
    args = parser.parse_args()

    from parlons.services.common.audio import decode_audio
    from parlons.services.diarization.engine import DiarizationEngine

    began = time.perf_counter()
    items: list[Item] = []
    for uri, path, reference in files():
        audio = decode_audio(path.read_bytes())
        duration = audio.duration_s if uri == "sample" else min(audio.duration_s, 30.0)
        items.append(Item(uri, audio, reference, duration))
    refs = {it.uri: it.speakers for it in items}
    trn = [it for it in items if group_of(it.uri) == "trn"]
    print(f"clustering sweep, {time.strftime('%Y-%m-%d')}, {machine()}; {len(items)} files "
          f"({len(trn)} trn for the choice)", flush=True)

    config = build({})
    engine = DiarizationEngine(config)
    pipeline = engine._pipeline
    base = config.pyannote_parameters()
    current = (float(config.clustering.threshold), int(config.clustering.min_cluster_size))
    memo = Memo(pipeline)

    # 1. the packaged default, computed for real (fills the memo)
    started = time.perf_counter()
    first: dict[str, FileScore] = {}
    for it in items:
        first[it.uri] = file_score(diarize(engine, it), it)
        print(f"  {it.uri:7s} default DER {pct(first[it.uri].der)} ({first[it.uri].speakers} spk, ref {it.speakers})",
              flush=True)
    print(f"first pass (segmentation + embeddings of every file): {time.perf_counter() - started:.0f} s")
    clustered = {it.uri: memo.clustered(pipeline, it.uri) for it in items}
    print("embeddings clustered per file (effective min_cluster_size cap = max(1, round(0.1 n))): "
          + ", ".join(f"{u} {n} (cap {effective_min_cluster_size(99, n)})" for u, n in clustered.items()))

    # 2. the grid on trn, from the memo
    thresholds = sorted(set(THRESHOLD_STEPS) | {current[0]})
    cache: dict[tuple[str, float, int], FileScore] = {}

    def run_point(threshold: float, size: int, chosen_items: Sequence[Item]) -> dict[str, FileScore]:
        out: dict[str, FileScore] = {}
        instantiated = False
        for it in chosen_items:
            key = (it.uri, threshold, effective_min_cluster_size(size, clustered[it.uri]))
            if key not in cache:
                if not instantiated:
                    pipeline.instantiate(parameters(base, threshold, size))
                    instantiated = True
                cache[key] = file_score(diarize(engine, it), it)
            out[it.uri] = cache[key]
        return out

    started = time.perf_counter()
    grid: dict[tuple[int, int], Point] = {}
    for i, threshold in enumerate(thresholds):
        for j, size in enumerate(MIN_CLUSTER_SIZES):
            grid[(i, j)] = Point(threshold, size, run_point(threshold, size, trn))
    smooth(grid, len(thresholds), len(MIN_CLUSTER_SIZES))
    print(f"grid: {len(grid)} points x {len(trn)} trn files, {len(cache)} distinct clusterings, "
          f"{time.perf_counter() - started:.0f} s; segmentation/embedding computed {memo.misses} times")
    points = list(grid.values())
    default = next(p for p in points if (p.threshold, p.min_cluster_size) == current)
    chosen = choose(points, refs, default)

    # the memo reproduces the real run at the default point
    mismatch = [u for u in default.scores if abs(default.scores[u].der - first[u].der) > 1e-9
                or default.scores[u].speakers != first[u].speakers]
    assert not mismatch, f"memoised default differs from the first pass on {mismatch}"
    pipeline.instantiate(parameters(base, *current))
    check = items[-1]
    direct = file_score(engine.diarize(check.audio), check)  # uri "audio": a memo miss, computed afresh
    assert abs(direct.der - first[check.uri].der) < 1e-9 and direct.speakers == first[check.uri].speakers, (
        f"engine.diarize gives DER {direct.der} on {check.uri}, this script {first[check.uri].der}")
    print(f"checks: memoised default = first pass on all trn files; engine.diarize = this script on {check.uri}")

    print("\ntrn group DER % by threshold (rows) x min_cluster_size (columns); smoothed DER in the last column "
          "is for the column of the current min_cluster_size")
    print("  threshold " + " ".join(f"{s:>6d}" for s in MIN_CLUSTER_SIZES))
    j_current = MIN_CLUSTER_SIZES.index(current[1])
    for i, threshold in enumerate(thresholds):
        cells = " ".join(pct(grid[(i, j)].der).rjust(6) for j in range(len(MIN_CLUSTER_SIZES)))
        mark = " <- current" if threshold == current[0] else ""
        print(f"  {threshold:.4f}    {cells}   | smoothed {pct(grid[(i, j_current)].smoothed)}{mark}")

    trn_uris = [it.uri for it in trn]
    print(f"\ntop 10 grid points on trn (by own trn DER; smoothed = 3x3 box mean); count = files with the "
          f"reference's speaker count /{len(trn)}")
    print("    threshold  mcs    DER smooth count   MAE  " + " ".join(f"{u:>6s}" for u in trn_uris))

    def row(p: Point) -> str:
        mark = "*" if p is chosen else ("d" if p is default else " ")
        return (f"  {mark} {p.threshold:.4f} {p.min_cluster_size:4d} {pct(p.der)} {pct(p.smoothed)}  {len(trn) - p.wrong_counts(refs):2d}/"
                f"{len(trn)} {p.count_mae(refs):5.2f}  " + " ".join(pct(p.scores[u].der).rjust(6) for u in trn_uris))

    ranked = sorted(points, key=lambda p: (p.der, p.smoothed, p.wrong_counts(refs)))
    for p in ranked[:10]:
        print(row(p))
    by_smoothed = sorted(points, key=lambda p: p.smoothed)
    print(f"  ... current default: rank {ranked.index(default) + 1} by DER, {by_smoothed.index(default) + 1} by smoothed DER "
          f"of {len(points)}:")
    print(row(default))
    if chosen not in ranked[:10]:
        print(row(chosen))
    tied = [p for p in points if p.smoothed <= min(q.smoothed for q in points) + TOLERANCE]
    print(f"chosen (rule in the docstring; {len(tied)} points within {TOLERANCE * 100:.2f} of the best smoothed DER): "
          f"{chosen.label()}")

    # 3. held-out files: chosen vs default (memo) vs pyannote out of the box (fresh engine)
    chosen_all = run_point(chosen.threshold, chosen.min_cluster_size, items)
    default_all = run_point(current[0], current[1], items)
    started = time.perf_counter()
    baseline_engine = DiarizationEngine(build(BASELINE))
    baseline_all = {it.uri: file_score(baseline_engine.diarize(it.audio), it) for it in items}
    print(f"\npyannote out of the box (BASELINE of bench_diarization, clustering at the packaged values): "
          f"{time.perf_counter() - started:.0f} s")

    columns = {"chosen": chosen_all, "default": default_all, "pyannote": baseline_all}
    print(f"\nper file: DER % (speakers found), reference speakers; '!' = more than {RULE_POINTS * 100:.0f} DER point "
          f"worse than pyannote out of the box")
    print(f"  chosen = {chosen.label()}; default = threshold {current[0]:.4f}, min_cluster_size {current[1]}")
    print("  file    group ref " + "".join(f"{n:>15s}" for n in columns))
    for it in items:
        cells = ""
        for name, scores in columns.items():
            s = scores[it.uri]
            flag = "!" if name != "pyannote" and s.der > baseline_all[it.uri].der + RULE_POINTS else " "
            cells += f"{pct(s.der):>9s} ({s.speakers}){flag}"
        print(f"  {it.uri:7s} {group_of(it.uri):6s} {it.speakers:2d} {cells}")
    print("\nper group (components summed), count accuracy, worst file")
    for name, scores in columns.items():
        print("\n".join(group_lines(name, scores, refs)))
    for name in ("chosen", "default"):
        worse = [u for u in columns[name] if columns[name][u].der > baseline_all[u].der + RULE_POINTS]
        print(f"  {name}: more than 1 point worse than pyannote out of the box on: {', '.join(worse) or 'none'}")
    print(f"total {time.perf_counter() - began:.0f} s")

    if args.out:
        def dump(scores: dict[str, FileScore]) -> dict[str, Any]:
            return {u: {"der": s.der, "missed": s.missed, "false_alarm": s.false_alarm, "confusion": s.confusion,
                        "total": s.total, "speakers": s.speakers, "reference_speakers": refs[u]} for u, s in scores.items()}

        def groups(scores: dict[str, FileScore]) -> dict[str, float]:
            out = {g: group_der([s for u, s in scores.items() if group_of(u) == g]) for g in GROUPS}
            out["meetings"] = group_der([s for u, s in scores.items() if group_of(u) in ("trn", "dev")])
            return out

        Path(args.out).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d"), "machine": machine(), "tolerance": TOLERANCE,
            "current": {"threshold": current[0], "min_cluster_size": current[1]},
            "chosen": {"threshold": chosen.threshold, "min_cluster_size": chosen.min_cluster_size},
            "clustered_embeddings": clustered,
            "grid": [{"threshold": p.threshold, "min_cluster_size": p.min_cluster_size, "trn_der": p.der,
                      "smoothed_trn_der": p.smoothed, "wrong_counts": p.wrong_counts(refs),
                      "count_mae": p.count_mae(refs), "files": {u: s.der for u, s in p.scores.items()}} for p in points],
            "held_out": {name: {"files": dump(scores), "groups": groups(scores)} for name, scores in columns.items()},
        }, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
