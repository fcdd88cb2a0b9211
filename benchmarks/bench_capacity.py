"""Live capacity: N desks streaming at once to one transcription server, the live decode
scheduler on vs off, side by side in one run (issue 23).

    python benchmarks/bench_capacity.py                                  # base, every set, N = 1,2,3,4
    python benchmarks/bench_capacity.py --sets fr,en --desks 1,3 --runs 3
    python benchmarks/bench_capacity.py --sets "" --gpu-model large-v3-turbo   # the GPU part alone

Two `parlons serve transcription` subprocesses, the same but for
PARLONS_TRANSCRIPTION_LIVE_BATCHING: "on" (true) sends every live session's decodes to the
shared scheduler, which batches them across sessions; "off" (false) lets each session
call the model alone. PARLONS_TRANSCRIPTION_MAX_STREAMS is set high enough that admission
refuses nothing. Each measurement runs on both servers one after the other, the order
flipping every time, so that other work on the machine hits both modes alike.

Sets (`--sets`): one desk's audio, streamed as 100-ms LINEAR16 chunks at real-time pace.
  fr       the 5 FLEURS French read-speech clips (../shared/data/fleurs/fleurs-fr-00[0-4].ogg),
           each followed by 1.2 s of silence; language given (fr)
  fr-auto  the same, automatic language
  en       the English phone dialogue: the 13 turns of sample.wav, each followed by 1.2 s
           (bench_transcription.desk_dialogue); automatic language
  live     LiveConversation, two parties on two channels (bench_gateway.desk_audio: French
           agent from espeak-ng, visitor turns of sample.wav with "detect") through a gateway
           run in this process, translation by the test models (tests/translation_models.py),
           in front of the transcription server under test
N desks (`--desks`) stream the same set at once, each starting `--stagger-s` after the one before.

Figures per set, N and scheduler mode; median over `--runs`, the spread of the runs in brackets:
  finals       final results with text, all the desks of a run together
  p50/p95/max  latency of the finals. StreamingTranscribe: end of the final's last word
               (`words[-1].end_s`; the final's end without word timestamps) to the arrival of
               the response; the audio went out at real-time pace, so audio time is send time.
               LiveConversation: end of the utterance to the arrival of its translated final.
               Both include the end-of-utterance wait (0.5 s of silence).
  WER          of each desk's finals against the reference, mean over the desks. English:
               tests/speech.py `wer`; French: lower case, punctuation removed, apostrophes
               kept. live: the agent (French) and the visitor (English) apart.
  backlog max  the largest `parlons_live_backlog_seconds` (age of the oldest live decode
               waiting for the model), sampled every second: near 0 while the server keeps up
  batch mean   decodes per model call over the run (`parlons_live_batch_size`, every kind)
  CPU/audio s  CPU seconds of the transcription server (utime + stime) per second of audio
               it received (a live desk sends two channels: two seconds each second)
  n/a          the server does not export the metric (no scheduler yet, or the mode off)
After each table: the largest N whose p95 is <= 2.5 s (and that of every smaller N), per
mode, and on/off ratios of p50 and p95 per N (below 1: the scheduler is faster).

GPU: when CTranslate2 sees a CUDA device, the fr set on `--gpu-model` (default
large-v3-turbo) on the GPU, N = 1, 10, 50, 100, 200 up to `--max-gpu-desks`, starts
`--gpu-stagger-s` apart, both modes; a mode whose p95 passes 10 s is not run at larger N.
Otherwise one line says that GPU figures are not measured.

The desks are threads of this process (and the live set's gateway and translation): on a
2-core machine they take some CPU from the server, alike in both modes. The load average
printed first tells what else was running.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc
import jiwer
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_transcription import desk_dialogue, pcm_chunks  # noqa: E402
from common import AUDIO, DATA, free_port, french_normalise, machine, median, percentile, server_process  # noqa: E402
from speech import stm_text, wer  # noqa: E402

from parlons.clients.sdk import GatewayClient, TranscriptionClient, open_channel  # noqa: E402
from parlons.services.common.audio import decode_audio  # noqa: E402
from parlons.services.gateway.live_audio import pcm16  # noqa: E402
from parlons.v1 import audio_pb2, gateway_pb2, transcription_pb2  # noqa: E402

FLEURS = DATA / "fleurs"
PAUSE_S = 1.2
CHUNK_MS = 100
P95_LIMIT_S = 2.5
GPU_STEPS = (1, 10, 50, 100, 200)
GPU_GIVE_UP_P95_S = 10.0
MODES = ("on", "off")
ALL_SETS = ("fr", "fr-auto", "en", "live")
BACKLOG = "parlons_live_backlog_seconds"
BATCH = "parlons_live_batch_size"


# --------------------------------------------------------------------------- data types


@dataclass
class DeskResult:
    """One desk's stream: latency of each final, WER per language ("" when one)."""

    latencies: list[float]
    wers: dict[str, float]
    failed: str = ""  # the gRPC status that ended it early, if any


@dataclass
class Run:
    """One measurement: N desks of a set on one server."""

    finals: int
    p50: float
    p95: float
    worst: float
    wers: dict[str, float]
    backlog_max: float | None
    batch_mean: float | None
    cpu_per_audio_s: float
    failed: int


@dataclass(frozen=True)
class Server:
    mode: str  # "on" or "off"
    address: str  # the transcription server under test
    pid: int
    metrics_url: str
    gateway: str = ""  # LiveConversation gateway in front of it (live set)


@dataclass(frozen=True)
class DeskSet:
    name: str
    title: str
    seconds: float  # one desk's audio
    streams: int  # transcription streams one desk opens (live: one per party)
    run: Callable[[Server], DeskResult]


@dataclass
class Results:
    """Runs per (set, N, mode), in the order measured."""

    runs: dict[tuple[str, int, str], list[Run]] = field(default_factory=dict)

    def add(self, name: str, n: int, mode: str, run: Run) -> None:
        self.runs.setdefault((name, n, mode), []).append(run)

    def get(self, name: str, n: int, mode: str) -> list[Run]:
        return self.runs.get((name, n, mode), [])


# --------------------------------------------------------------------------- scoring


def french_wer(reference: str, hypothesis: str) -> float:
    hypothesis = french_normalise(hypothesis)
    return float(jiwer.wer(french_normalise(reference), hypothesis)) if hypothesis else 1.0


def english_wer(reference: str, hypothesis: str) -> float:
    return wer(reference, hypothesis) if hypothesis.strip() else 1.0


# --------------------------------------------------------------------------- sets


def fleurs_dialogue() -> tuple[bytes, str]:
    """The 5 French clips, each followed by a pause, as 16 kHz LINEAR16; their reference."""
    clips = sorted(FLEURS.glob("fleurs-fr-00[0-4].ogg"))
    if len(clips) != 5:
        raise SystemExit(f"expected 5 French clips in {FLEURS}, found {len(clips)}")
    silence = np.zeros(int(PAUSE_S * 16000), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for clip in clips:
        pieces += [decode_audio(clip.read_bytes()).mono(), silence]
    reference = " ".join(clip.with_suffix(".txt").read_text(encoding="utf-8").strip() for clip in clips)
    return pcm16(np.concatenate(pieces)), reference


def streaming_config(language: str, beam: int, word_timestamps: bool) -> transcription_pb2.StreamingConfig:
    return transcription_pb2.StreamingConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=1),
        options=transcription_pb2.TranscriptionOptions(language=language, beam_size=beam, word_timestamps=word_timestamps),
    )


def stream_desk(address: str, config: transcription_pb2.StreamingConfig, pcm: bytes,
                score: Callable[[str], float]) -> DeskResult:
    """One desk on StreamingTranscribe at real-time pace (as bench_transcription.stream_latencies)."""
    channel = open_channel(address)
    latencies: list[float] = []
    finals: list[str] = []
    try:
        started = time.monotonic()
        for response in TranscriptionClient(channel).streaming_transcribe(pcm_chunks(pcm, CHUNK_MS), config, timeout_s=900):
            arrived = time.monotonic() - started
            for result in response.results:
                if result.is_final and result.text.strip():
                    end_s = result.words[-1].end_s if result.words else result.end_s
                    latencies.append(arrived - end_s)
                    finals.append(result.text)
    finally:
        channel.close()
    return DeskResult(latencies, {"": score(" ".join(finals))})


def transcription_set(name: str, title: str, pcm: bytes, config: transcription_pb2.StreamingConfig,
                      score: Callable[[str], float]) -> DeskSet:
    return DeskSet(name, title, len(pcm) / 32000, 1, lambda server: stream_desk(server.address, config, pcm, score))


def live_set(workdir: Path, beam: int) -> DeskSet:
    """Two parties through LiveConversation (bench_gateway.py --parts live)."""
    from bench_gateway import AGENT_LINES, desk_audio, paced, visitor_turns

    audio, seconds, _ = desk_audio(workdir)
    pcm = pcm16(audio.T)
    config = gateway_pb2.LiveConversationConfig(
        config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=16000, channels=2),
        parties=[gateway_pb2.Party(name="agent", language="fr", channel=0),
                 gateway_pb2.Party(name="visitor", language="detect", channel=1)],
        transcription=transcription_pb2.TranscriptionOptions(beam_size=beam),
    )
    references: dict[str, tuple[str, Callable[[str, str], float]]] = {
        "agent": (" ".join(AGENT_LINES), french_wer),
        "visitor": (" ".join(turn[3] for turn in visitor_turns()), english_wer),
    }

    def run(server: Server) -> DeskResult:
        t0 = [0.0]
        latencies: list[float] = []
        texts: dict[str, list[str]] = {party: [] for party in references}
        channel = open_channel(server.gateway)
        try:
            chunks = paced(pcm, 2 * 2 * 16 * CHUNK_MS, t0)
            for response in GatewayClient(channel).live_conversation(chunks, config, timeout_s=seconds + 600):
                now = time.monotonic()
                for utterance in response.utterances:
                    if utterance.is_final and utterance.text.strip():
                        # Its last audio left at t0 + end_s (real-time pace).
                        latencies.append(now - (t0[0] + min(utterance.end_s, seconds)))
                        texts.setdefault(utterance.party, []).append(utterance.text)
        finally:
            channel.close()
        return DeskResult(latencies, {party: score(reference, " ".join(texts[party]))
                                      for party, (reference, score) in references.items()})

    title = "LiveConversation, two parties (agent fr, visitor en with detect), test translation models"
    return DeskSet("live", title, seconds, 2, run)


def build_sets(names: list[str], beam: int, word_timestamps: bool, workdir: Path) -> list[DeskSet]:
    sets: list[DeskSet] = []
    if "fr" in names or "fr-auto" in names:
        french, french_reference = fleurs_dialogue()

        def score_fr(text: str) -> float:
            return french_wer(french_reference, text)

        if "fr" in names:
            sets.append(transcription_set("fr", "French read speech (5 FLEURS clips + 1.2 s pauses), language given (fr)",
                                          french, streaming_config("fr", beam, word_timestamps), score_fr))
        if "fr-auto" in names:
            sets.append(transcription_set("fr-auto", "French read speech (5 FLEURS clips + 1.2 s pauses), automatic language",
                                          french, streaming_config("", beam, word_timestamps), score_fr))
    if "en" in names:
        english_reference = stm_text(AUDIO / "sample.stm")
        sets.append(transcription_set("en", "English phone dialogue (13 turns of sample.wav + 1.2 s pauses), automatic language",
                                      desk_dialogue(PAUSE_S), streaming_config("", beam, word_timestamps),
                                      lambda text: english_wer(english_reference, text)))
    if "live" in names:
        sets.append(live_set(workdir, beam))
    return sets


# --------------------------------------------------------------------------- server side


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_samples(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the server's /metrics; none when it does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return []
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def metric_values(samples: list[tuple[str, dict[str, str], float]], name: str) -> list[float]:
    return [value for sample_name, labels, value in samples
            if sample_name == name and labels.get("service", "transcription") == "transcription"]


def batch_totals(url: str) -> tuple[float, float] | None:
    """(sum, count) of the live batch-size histogram, every kind; None when absent."""
    samples = metric_samples(url)
    counts = metric_values(samples, f"{BATCH}_count")
    return (sum(metric_values(samples, f"{BATCH}_sum")), sum(counts)) if counts else None


class BacklogSampler:
    """Samples the live backlog gauge every `period_s` while the `with` block runs."""

    def __init__(self, url: str, period_s: float = 1.0) -> None:
        self.url, self.period_s = url, period_s
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> BacklogSampler:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self.values += metric_values(metric_samples(self.url), BACKLOG)
            if self._stop.wait(self.period_s):
                return

    @property
    def peak(self) -> float | None:
        """The largest age seen (an age: never below 0)."""
        return max(0.0, *self.values) if self.values else None


def server_env(model: str, device: str, mode: str, max_streams: int) -> dict[str, str]:
    return {"PARLONS_TRANSCRIPTION_MODEL": model, "PARLONS_TRANSCRIPTION_DEVICE": device,
            "PARLONS_TRANSCRIPTION_LIVE_BATCHING": "true" if mode == "on" else "false",
            "PARLONS_TRANSCRIPTION_MAX_STREAMS": str(max_streams), "PARLONS_TRANSCRIPTION_MAX_QUEUED": "256"}


def extra_env(args: argparse.Namespace, mode: str) -> dict[str, str]:
    """`--env-on` / `--env-off` settings (KEY=VALUE) for one mode's server: to compare
    other settings side by side in one run (e.g. the live finals' levers)."""
    pairs = (args.env_on if mode == "on" else args.env_off) or []
    return dict(pair.split("=", 1) for pair in pairs)


def start_gateway(stack: ExitStack, transcription: str, workdir: Path) -> str:
    """Gateway + translation (test models) in this process, transcription remote."""
    from bench_gateway import _config
    from translation_models import build_bilingual_model

    from parlons.serve import build_modules
    from parlons.services.common.server import BackgroundServer

    config = _config("base")  # the transcription model is the remote server's
    config.gateway.transcription = [transcription]
    config.translation.models = [str(build_bilingual_model(workdir / "fr-en", "fr", "en")),
                                 str(build_bilingual_model(workdir / "en-fr", "en", "fr", seed=5))]
    server = BackgroundServer(config.server, build_modules(config, ["translation", "gateway"])).start(timeout_s=900)
    stack.callback(server.stop)
    return server.address


def start_server(stack: ExitStack, mode: str, env: dict[str, str], workdir: Path | None) -> Server:
    """A transcription server (and a gateway in front of it when `workdir` is given),
    warmed up with one Transcribe."""
    metrics_port = free_port()
    address, pid = stack.enter_context(server_process("transcription", env, metrics_port))
    channel = open_channel(address)
    TranscriptionClient(channel).transcribe((AUDIO / "jfk.flac").read_bytes(), timeout_s=600)
    channel.close()
    gateway = start_gateway(stack, address, workdir) if workdir is not None else ""
    return Server(mode, address, pid, f"http://127.0.0.1:{metrics_port}/metrics", gateway)


# --------------------------------------------------------------------------- measuring


def one_desk(desk_set: DeskSet, server: Server, delay_s: float) -> DeskResult:
    time.sleep(delay_s)
    try:
        return desk_set.run(server)
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else None
        return DeskResult([], {}, failed=code.name if code is not None else str(error))


def measure(server: Server, desk_set: DeskSet, n: int, stagger_s: float) -> Run:
    """N desks of a set on one server, starts `stagger_s` apart."""
    cpu_before, batch_before = cpu_seconds(server.pid), batch_totals(server.metrics_url)
    with BacklogSampler(server.metrics_url) as backlog, ThreadPoolExecutor(n) as pool:
        desks = list(pool.map(lambda k: one_desk(desk_set, server, k * stagger_s), range(n)))
    cpu = cpu_seconds(server.pid) - cpu_before
    batch_after = batch_totals(server.metrics_url)
    batch_mean = None
    if batch_after is not None:
        before = batch_before or (0.0, 0.0)
        calls = batch_after[1] - before[1]
        batch_mean = (batch_after[0] - before[0]) / calls if calls > 0 else None
    latencies = [x for desk in desks for x in desk.latencies]
    finished = [desk for desk in desks if not desk.failed]
    wers = {key: sum(desk.wers[key] for desk in finished) / len(finished) for key in (finished[0].wers if finished else {})}
    return Run(finals=len(latencies), p50=percentile(latencies, 50), p95=percentile(latencies, 95),
               worst=max(latencies, default=float("nan")), wers=wers, backlog_max=backlog.peak, batch_mean=batch_mean,
               cpu_per_audio_s=cpu / (n * desk_set.seconds * desk_set.streams), failed=len(desks) - len(finished))


def ordered(servers: list[Server], flip: bool) -> list[Server]:
    return servers[::-1] if flip else servers


def progress(label: str, run: Run, elapsed_s: float) -> None:
    print(f"  {label}: finals {run.finals}, p50 {run.p50:.2f} s, p95 {run.p95:.2f} s, max {run.worst:.2f} s, "
          f"backlog max {optional(run.backlog_max)}, batch mean {optional(run.batch_mean)}, "
          f"CPU/audio s {run.cpu_per_audio_s:.2f}, failed {run.failed} ({elapsed_s:.0f} s)", file=sys.stderr, flush=True)


def run_matrix(servers: list[Server], desk_sets: list[DeskSet], desks: list[int], stagger_s: float, runs: int,
               give_up_p95_s: float | None = None) -> Results:
    """Every (run, set, N) on both servers, the mode that goes first alternating. With
    `give_up_p95_s`, a mode whose p95 passed it is not run at larger N."""
    results = Results()
    turn = 0
    for run_index in range(runs):
        for desk_set in desk_sets:
            saturated: set[str] = set()
            for n in desks:
                for server in ordered(servers, flip=turn % 2 == 1):
                    if server.mode in saturated:
                        continue
                    started = time.monotonic()
                    run = measure(server, desk_set, n, stagger_s)
                    results.add(desk_set.name, n, server.mode, run)
                    progress(f"run {run_index + 1}/{runs} {desk_set.name} N={n} scheduler {server.mode}", run,
                             time.monotonic() - started)
                    if give_up_p95_s is not None and not run.p95 <= give_up_p95_s:
                        saturated.add(server.mode)
                    time.sleep(1.0)
                turn += 1
    return results


# --------------------------------------------------------------------------- report


def optional(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def spread(values: list[float], digits: int = 2) -> str:
    """Median, and the range of the runs when there are several."""
    present = [v for v in values if v == v]
    if not present:
        return "-"
    text = f"{median(present):.{digits}f}"
    if len(present) > 1:
        text += f" ({min(present):.{digits}f}-{max(present):.{digits}f})"
    return text


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None and v == v]
    return median(present) if present else None


def wer_cell(runs: list[Run]) -> str:
    keys = runs[0].wers.keys() if runs else []
    cells = [(key, spread([run.wers.get(key, float("nan")) for run in runs], 3)) for key in keys]
    return ", ".join(f"{key} {value}" if key else value for key, value in cells) or "-"


def table_row(n: int, mode: str, runs: list[Run]) -> str:
    failed = sum(run.failed for run in runs)
    finals = f"{median([float(run.finals) for run in runs]):.0f}" + (f" ({failed} desks failed)" if failed else "")
    return (f"| {n} | {mode} | {finals} | {spread([r.p50 for r in runs])} | {spread([r.p95 for r in runs])} | "
            f"{spread([r.worst for r in runs])} | {wer_cell(runs)} | {optional(median_of([r.backlog_max for r in runs]))} | "
            f"{optional(median_of([r.batch_mean for r in runs]))} | {spread([r.cpu_per_audio_s for r in runs])} |")


def largest_within(results: Results, name: str, desks: list[int], mode: str, limit_s: float) -> str:
    """The largest N whose median p95, and that of every smaller N measured, is within the limit."""
    best = "none"
    for n in sorted(desks):
        runs = results.get(name, n, mode)
        p95 = median_of([run.p95 for run in runs])
        if p95 is None or p95 > limit_s:
            break
        best = str(n)
    return best


def ratio(results: Results, name: str, n: int, pick: Callable[[Run], float]) -> str:
    on = median_of([pick(run) for run in results.get(name, n, "on")])
    off = median_of([pick(run) for run in results.get(name, n, "off")])
    return f"{on / off:.2f}x" if on is not None and off else "-"


def print_table(results: Results, desk_set: DeskSet, desks: list[int], note: str = "") -> None:
    print(f"\n### {desk_set.title}{note}\n")
    print(f"One desk: {desk_set.seconds:.1f} s of audio. Median of the runs (range of the runs).\n")
    print("| N | scheduler | finals | p50 (s) | p95 (s) | max (s) | WER of finals | backlog max (s) | batch mean "
          "| server CPU s / audio s |")
    print("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for n in desks:
        for mode in MODES:
            runs = results.get(desk_set.name, n, mode)
            if runs:
                print(table_row(n, mode, runs))
    within = ", ".join(f"{mode} {largest_within(results, desk_set.name, desks, mode, P95_LIMIT_S)}" for mode in MODES)
    print(f"\nLargest N within p95 <= {P95_LIMIT_S} s: {within}.\n")
    print("| N | p50 on/off | p95 on/off |")
    print("|---:|---:|---:|")
    for n in desks:
        print(f"| {n} | {ratio(results, desk_set.name, n, lambda r: r.p50)} | {ratio(results, desk_set.name, n, lambda r: r.p95)} |")


# --------------------------------------------------------------------------- parts


def cpu_part(args: argparse.Namespace, names: list[str], desks: list[int]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="parlons-bench-capacity-"))
    try:
        desk_sets = build_sets(names, args.beam, args.word_timestamps, workdir)
        max_streams = max(16, 2 * max(desks) + 2)
        with ExitStack() as stack:
            servers = [start_server(stack, mode, {**server_env(args.model, args.device, mode, max_streams),
                                                  **extra_env(args, mode)},
                                    workdir if "live" in names else None) for mode in MODES]
            results = run_matrix(servers, desk_sets, desks, args.stagger_s, args.runs)
        for desk_set in desk_sets:
            print_table(results, desk_set, desks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def gpu_name() -> str:
    try:
        reply = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30)
        return reply.stdout.strip().splitlines()[0] if reply.returncode == 0 and reply.stdout.strip() else "CUDA device"
    except (OSError, subprocess.TimeoutExpired):
        return "CUDA device"


def gpu_part(args: argparse.Namespace) -> None:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        print(f"\n## GPU\n\nNo CUDA device here: GPU figures ({args.gpu_model}, up to {args.max_gpu_desks} desks) "
              "are not measured.")
        return
    desks = [n for n in GPU_STEPS if n <= args.max_gpu_desks]
    if not desks or desks[-1] != args.max_gpu_desks:
        desks.append(args.max_gpu_desks)
    print(f"\n## GPU: {gpu_name()}, {args.gpu_model}, N = {', '.join(map(str, desks))}, "
          f"starts {args.gpu_stagger_s} s apart; a mode is not run at larger N once its p95 passes {GPU_GIVE_UP_P95_S} s",
          flush=True)
    french, reference = fleurs_dialogue()
    desk_set = transcription_set("fr-gpu", f"French read speech, language given (fr), {args.gpu_model} on {gpu_name()}",
                                 french, streaming_config("fr", args.beam, args.word_timestamps),
                                 lambda text: french_wer(reference, text))
    with ExitStack() as stack:
        servers = [start_server(stack, mode, server_env(args.gpu_model, "cuda", mode, args.max_gpu_desks + 8), None)
                   for mode in MODES]
        results = run_matrix(servers, [desk_set], desks, args.gpu_stagger_s, args.runs, GPU_GIVE_UP_P95_S)
    print_table(results, desk_set, desks)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base", help="the CPU part's model (default base)")
    parser.add_argument("--device", default="cpu", help="the CPU part's device (cpu, cuda, auto; default cpu)")
    parser.add_argument("--sets", default=",".join(ALL_SETS), help=f"of {', '.join(ALL_SETS)}; empty: the GPU part only")
    parser.add_argument("--desks", default="1,2,3,4", help="numbers of simultaneous desks")
    parser.add_argument("--stagger-s", type=float, default=4.0, help="between two desks' starts")
    parser.add_argument("--runs", type=int, default=2, help="repeats of each measurement (median and range)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--word-timestamps", action=argparse.BooleanOptionalAction, default=True,
                        help="ask for word times (latency from the last word's end; without: from the final's end)")
    parser.add_argument("--env-on", action="append", metavar="KEY=VALUE",
                        help="an extra environment setting of the 'on' server (repeatable)")
    parser.add_argument("--env-off", action="append", metavar="KEY=VALUE",
                        help="an extra environment setting of the 'off' server (repeatable)")
    parser.add_argument("--gpu-model", default="large-v3-turbo")
    parser.add_argument("--max-gpu-desks", type=int, default=200)
    parser.add_argument("--gpu-stagger-s", type=float, default=0.1)
    args = parser.parse_args()
    unknown = {name for name in args.sets.split(",") if name} - set(ALL_SETS)
    if unknown:
        parser.error(f"unknown sets: {', '.join(sorted(unknown))}")
    return args


def main() -> int:
    args = parse_args()
    load = os.getloadavg()
    names = [name for name in ALL_SETS if name in args.sets.split(",")]
    desks = sorted({int(x) for x in args.desks.split(",") if x})
    print(f"# parlons live capacity benchmark, {datetime.date.today()}, {machine()}")
    print(f"\nLoad average before starting: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min).")
    print(f"Model {args.model} on {args.device}, beam {args.beam}, word timestamps {'on' if args.word_timestamps else 'off'}, "
          f"{CHUNK_MS}-ms LINEAR16 chunks at real-time pace, N = {', '.join(map(str, desks))} desks starting "
          f"{args.stagger_s} s apart, {args.runs} run(s). Scheduler on/off: PARLONS_TRANSCRIPTION_LIVE_BATCHING=true/false.",
          flush=True)
    for mode in MODES:
        if extra_env(args, mode):
            print(f"Extra settings of the '{mode}' server: {' '.join(f'{k}={v}' for k, v in extra_env(args, mode).items())}")
    if names:
        cpu_part(args, names, desks)
    gpu_part(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
