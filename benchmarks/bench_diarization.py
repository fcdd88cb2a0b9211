"""Diarisation benchmark: each speed choice against pyannote out of the box, same weights, same run.

Every configuration is a pipeline config (services/diarization/pipeline.toml) variant;
the first one is pyannote's own pipeline as it comes (its embedding step, PyTorch, batch
size 1, PyTorch's default threads) on the same segmentation-3.0 + ECAPA-TDNN weights.
Runs are interleaved round-robin (config A, B, C, A, B, C, ...) so that load from other
processes on the machine hits all configurations alike; the table gives the median and
the best wall time, the median CPU time of this process, real-time factor (median wall /
audio duration), DER (pyannote.metrics, collar 0) and the speed-up over the first row.
Peak RSS is measured for the out-of-the-box and default configurations, each in a fresh
subprocess. `--micro` adds ONNX fp32 vs int8 for the embedding network alone; `--sensitivity` prints
DER for embedding stride x clustering threshold instead.

    python benchmarks/bench_diarization.py --runs 3
    python benchmarks/bench_diarization.py --only default,baseline --runs 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import AUDIO, machine, median, peak_rss_mib
from parlons.services.diarization.options import PYANNOTE_ECAPA_THRESHOLD

# name -> (description, changes over the packaged pipeline.toml)
BASELINE: dict[str, Any] = {
    "threads": 0, "embedding": {"fast": False, "backend": "torch", "stride": 1, "batch_size": 1},
    "segmentation": {"batch_size": 1}, "clustering": {"threshold": PYANNOTE_ECAPA_THRESHOLD},
}
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("pyannote out of the box (its embedding step, PyTorch, batch 1, default threads)", BASELINE),
    "threads1": ("+ 1 intra-op thread", {**BASELINE, "threads": 1}),
    "seg-batch8": ("+ segmentation batch 8", {**BASELINE, "threads": 1, "segmentation": {"batch_size": 8}}),
    "fast-torch": ("+ our embedding step (active speakers, speech only), PyTorch",
                   {"embedding": {"stride": 1}}),
    "fast-batch8": ("our step, embeddings in length-sorted batches of 8",
                    {"embedding": {"stride": 1, "batch_size": 8}}),
    "onnx": ("our step, ECAPA in ONNX Runtime", {"embedding": {"stride": 1, "backend": "onnx"}}),
    "onnx-2threads": ("our step, ONNX Runtime, 2 intra-op threads",
                      {"threads": 2, "embedding": {"stride": 1, "backend": "onnx"}}),
    "excl-overlap": ("our step, overlapped frames excluded from embeddings",
                     {"embedding": {"stride": 1, "exclude_overlap": True}}),
    "step0.2": ("our step, segmentation step 0.2 (fewer windows)",
                {"embedding": {"stride": 1}, "segmentation": {"step": 0.2}}),
    "step0.3": ("our step, segmentation step 0.3", {"embedding": {"stride": 1}, "segmentation": {"step": 0.3}}),
    "stride2": ("our step, embed every 2nd window", {"embedding": {"stride": 2}}),
    "default": ("our step, embed every 3rd window: the default pipeline.toml", {}),
    "default-onnx": ("the default in ONNX Runtime", {"embedding": {"backend": "onnx"}}),
    "stride5": ("our step, embed every 5th window", {"embedding": {"stride": 5}}),
    "cached": ("default + result cache, identical request again", {"result_cache_size": 4}),
}
GPU_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "gpu-baseline": ("GPU: pyannote out of the box", {**BASELINE, "device": "cuda"}),
    "gpu-default": ("GPU: the default (embedding batches of 32), segmentation batch 32",
                    {"device": "cuda", "segmentation": {"batch_size": 32}}),
    "gpu-stride1": ("GPU: our embedding step, stride 1", {"device": "cuda", "embedding": {"stride": 1},
                                                          "segmentation": {"batch_size": 32}}),
}


@dataclass
class Row:
    name: str
    description: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    ders: list[float] = field(default_factory=list)
    speakers: list[int] = field(default_factory=list)
    load_s: float = 0.0


def der(result, reference) -> float:  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    hypothesis = Annotation()
    for i, turn in enumerate(result.turns):
        hypothesis[Segment(turn.start, turn.end), i] = turn.speaker
    return float(DiarizationErrorRate(collar=0.0)(reference, hypothesis, uem=Segment(0, result.duration_s)))


def build(changes: dict[str, Any]):  # type: ignore[no-untyped-def]
    from parlons.services.diarization.options import DiarizationConfig

    config = DiarizationConfig.from_file().replace(**changes)
    config.validate()
    return config


def rss_of(name: str) -> float:
    """Peak RSS (MiB) of a fresh process that loads the configuration and runs it once."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-probe", name], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def rss_probe(name: str, audio_path: Path) -> None:
    from parlons.services.common.audio import decode_audio
    from parlons.services.diarization.engine import DiarizationEngine

    table = {**CONFIGS, **GPU_CONFIGS}
    engine = DiarizationEngine(build(table[name][1]))
    engine.diarize(decode_audio(audio_path.read_bytes()))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
    print(peak_rss_mib(os.getpid()))


def micro_int8() -> list[str]:
    """ONNX fp32 vs dynamic int8 for the ECAPA network alone (6 s of features)."""
    import tempfile

    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from parlons.models.manager import ModelManager
    from parlons.services.diarization.embedding import EmbeddingSettings, SpeakerEmbedding, default_cache_dir

    SpeakerEmbedding(ModelManager().resolve("speechbrain-ecapa-voxceleb", kind="speaker-embedding"),
                     EmbeddingSettings(backend="onnx"))
    fp32 = sorted(default_cache_dir().glob("ecapa-*.onnx"), key=lambda p: p.stat().st_mtime)[-1]
    with tempfile.TemporaryDirectory() as tmp:
        int8 = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        sessions = {"fp32": ort.InferenceSession(str(fp32), options), "int8": ort.InferenceSession(str(int8), options)}
        feed = {"feats": np.random.default_rng(0).standard_normal((1, 601, 80)).astype(np.float32),
                "wav_lens": np.ones(1, np.float32)}
        outs = {k: s.run(None, feed)[0][0] for k, s in sessions.items()}
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(5):
            for k, s in sessions.items():
                started = time.process_time()
                s.run(None, feed)
                times[k].append(time.process_time() - started)
    a, b = outs["fp32"], outs["int8"]
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    return [
        "| embedding network, 6 s | CPU s (median of 5) | ratio | cosine to fp32 |",
        "|---|---|---|---|",
        f"| ONNX fp32 | {median(times['fp32']):.3f} | 1.00 | 1 |",
        f"| ONNX int8 (dynamic) | {median(times['int8']):.3f} | {median(times['int8']) / median(times['fp32']):.2f} | {cosine:.4f} |",
    ]


def sensitivity(audio, reference, strides=(1, 2, 3, 4, 5, 6, 8, 10),
                thresholds=(0.6, 0.65, 0.7045654963945799, 0.7153814381597874, 0.75, 0.8, 0.9)) -> list[str]:  # type: ignore[no-untyped-def]
    """DER (and speakers found) for embedding stride x clustering threshold, on one file.

    Segmentation and embeddings are computed once per stride and reused, so the table
    shows what the clustering threshold does to each set of embeddings.
    """
    import torch

    from parlons.services.diarization.engine import DiarizationEngine
    from parlons.services.diarization.results import finish

    engine = DiarizationEngine(build({}))
    pipeline = engine._pipeline
    file = {"waveform": torch.from_numpy(audio.samples), "sample_rate": 16000, "uri": "audio"}
    segmentations = pipeline.get_segmentations(file)
    cache = {}
    for stride in strides:
        pipeline.embedding_stride = stride
        cache[stride] = pipeline.get_embeddings(file, segmentations)
    lines = ["| threshold \\ stride | " + " | ".join(str(k) for k in strides) + " |",
             "|---|" + "---|" * len(strides)]
    base_params = engine.config.pyannote_parameters()
    for threshold in thresholds:
        cells = []
        for stride in strides:
            params = {**base_params, "clustering": {**base_params["clustering"], "threshold": threshold}}
            pipeline.instantiate(params)
            embeddings = cache[stride]
            pipeline.get_segmentations = lambda file, hook=None: segmentations  # type: ignore[method-assign]
            pipeline.get_embeddings = (  # type: ignore[method-assign]
                lambda file, binary_segmentations, exclude_overlap=False, hook=None: embeddings)
            applied = pipeline(dict(file))
            assert not isinstance(applied, Iterator)  # pyannote's __call__ iterates only over a list of files
            output = applied.speaker_diarization
            raw = [(float(s.start), float(s.end), str(label), -1) for s, _, label in output.itertracks(yield_label=True)]
            result = finish(raw, audio.duration_s, time.perf_counter(), "neural")
            cells.append(f"{der(result, reference):.1%} ({result.num_speakers})")
        lines.append(f"| {threshold:.4f} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(AUDIO / "sample.wav"))
    parser.add_argument("--rttm", default=str(AUDIO / "sample.rttm"))
    parser.add_argument("--runs", type=int, default=3, help="measured runs per configuration")
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    parser.add_argument("--micro", action="store_true", help="also ONNX fp32 vs int8")
    parser.add_argument("--sensitivity", action="store_true",
                        help="only the DER table of embedding stride x clustering threshold")
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--json", help="write the raw measurements here")
    parser.add_argument("--rss-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(args.rss_probe, Path(args.file))
        return 0

    import torch
    from pyannote.database.util import load_rttm

    from parlons.services.common.audio import decode_audio
    from parlons.services.diarization.engine import DiarizationEngine

    default_threads = torch.get_num_threads()
    table = dict(CONFIGS)
    if torch.cuda.is_available():
        table.update(GPU_CONFIGS)
    names = [n for n in args.only.split(",") if n] or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; known: {', '.join(table)}")

    audio = decode_audio(Path(args.file).read_bytes())
    reference = next(iter(load_rttm(args.rttm).values()))
    if args.sensitivity:
        print("\n".join(sensitivity(audio, reference)))
        return 0
    print(f"# {machine()}, torch {torch.__version__}, {datetime.date.today()}", file=sys.stderr)
    print(f"# {Path(args.file).name}: {audio.duration_s:.1f} s; load average {os.getloadavg()}", file=sys.stderr)

    engines = {}
    rows = {}
    for name in names:
        description, changes = table[name]
        config = build(changes)
        started = time.perf_counter()
        engines[name] = DiarizationEngine(config)
        rows[name] = Row(name, description, load_s=time.perf_counter() - started)

    def run_once(name: str) -> None:
        engine = engines[name]
        torch.set_num_threads(engine.config.threads or default_threads)
        wall, cpu = time.perf_counter(), time.process_time()
        result = engine.diarize(audio)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        row = rows[name]
        row.walls.append(wall)
        row.cpus.append(cpu)
        row.ders.append(der(result, reference))
        row.speakers.append(result.num_speakers)
        print(f"  {name:14s} {wall:7.2f} s wall {cpu:7.2f} s CPU  DER {row.ders[-1]:.2%}", file=sys.stderr, flush=True)

    print("# warm-up (ONNX export, caches)", file=sys.stderr)
    for name in names:
        run_once(name)
        rows[name].walls.clear(), rows[name].cpus.clear()  # type: ignore[func-returns-value]
        rows[name].ders.clear(), rows[name].speakers.clear()  # type: ignore[func-returns-value]
    for run in range(args.runs):
        print(f"# round {run + 1}/{args.runs}, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
        for name in names:
            run_once(name)

    base = rows[names[0]]
    lines = [
        f"Measured {datetime.date.today()} on {machine()}, torch {torch.__version__}; "
        f"{Path(args.file).name} ({audio.duration_s:.0f} s), {args.runs} interleaved runs per row, "
        f"load average at the end {os.getloadavg()[0]:.1f}. Speed-up = median wall of `{base.name}` / median wall.",
        "",
        "| configuration | what changes | wall s (median / best) | CPU s | RTF | DER | speakers | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        row = rows[name]
        lines.append(
            f"| `{name}` | {row.description} | {median(row.walls):.2f} / {min(row.walls):.2f} | "
            f"{median(row.cpus):.2f} | {median(row.walls) / audio.duration_s:.3f} | "
            f"{median(row.ders):.2%} | {max(set(row.speakers), key=row.speakers.count)} | "
            f"{median(base.walls) / median(row.walls):.1f}x |"
        )
    if not args.no_rss:
        lines += ["", "| configuration | peak RSS (MiB, fresh process: load + one run) |", "|---|---|"]
        for name in [n for n in ("baseline", "default") if n in table]:
            lines.append(f"| `{name}` | {rss_of(name):.0f} |")
    if args.micro:
        lines += [""] + micro_int8()
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({n: vars(r) for n, r in rows.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
