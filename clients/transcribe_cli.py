"""`parlons transcribe`: the batch CLI for archives of recordings.

Files, directories (recursive, `--include`/`--exclude` patterns) or list files; `--jobs`
files at a time; a progress bar in audio hours with the speed (x real time) and the time
left; outputs written whole or not at all, so an interrupted run resumes where it
stopped (finished files are skipped when they were made with the options asked now: a
run again with `--anonymize` redoes clear transcripts); UNAVAILABLE retried with
backoff, so a server that restarts mid-run only slows it; a summary and a JSON report
per run; exit status 1 when any file failed, with the reason per file.

Against `--server` (with `--api-key`, `--tls`, `--ca`, `--cert`, `--key`) it is a plain
gRPC client; without, the services start in this process on a loopback port.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from parlons import anonymized, transcripts
from parlons.audio_mask import mask_recording
from parlons.clients.batch import (
    FileReport,
    Item,
    RunReport,
    discover,
    forget_outputs,
    options_fingerprint,
    outputs_done,
    probe_duration_s,
    record_outputs,
    remove_stale_parts,
    run_stamp,
    write_together,
)
from parlons.clients.connection import Connection, add_connection_arguments
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.inprocess import InProcessConfig, connect
from parlons.clients.retry import RetryPolicy
from parlons.clients.sdk import (
    GatewayClient,
    TranscriptionClient,
    TranslationClient,
    wait_until_serving,
)
from parlons.transcripts import SubtitleShape
from parlons.v1 import anonymization_pb2, diarization_pb2, transcription_pb2

console = Console(stderr=True)
ANONYMIZATION_POLICIES = anonymized.POLICIES


def options_from_args(args: argparse.Namespace) -> transcription_pb2.TranscriptionOptions:
    options = transcription_pb2.TranscriptionOptions(
        model=args.model or "",
        language=args.language or "",
        task=transcription_pb2.TRANSLATE_TO_ENGLISH if args.task == "translate" else transcription_pb2.TRANSCRIBE,
        beam_size=args.beam_size,
        word_timestamps=args.word_timestamps or args.diarize or bool(args.anonymize_audio),
        initial_prompt=args.initial_prompt or "",
        hotwords=args.hotwords or "",
        temperatures=args.temperature or [],
        per_channel=args.per_channel and not args.diarize,
        language_per_segment=args.language_per_segment,
    )
    if args.vad is not None:
        options.vad_filter = args.vad
    return options


def services_for(args: argparse.Namespace) -> list[str]:
    """What the in-process server starts: speakers, translations and anonymisation come
    from the gateway's TranscribeConversation (with --per-channel, or without --diarize,
    no diarisation model is needed)."""
    names = ["transcription"]
    if args.translate_to:
        names.append("translation")
    if anonymizing(args):
        names.append("anonymization")
    if args.diarize and not args.per_channel:
        names.append("diarization")
    if composing(args):
        names.append("gateway")
    return names


def composing(args: argparse.Namespace) -> bool:
    """Whether a file needs more than a transcript: then the gateway composes it."""
    return bool(args.diarize or args.translate_to or anonymizing(args))


def anonymizing(args: argparse.Namespace) -> bool:
    return bool(args.anonymize or args.anonymize_audio)


def anonymization_from_args(args: argparse.Namespace) -> anonymization_pb2.AnonymizationOptions | None:
    if not anonymizing(args):
        return None
    return anonymization_pb2.AnonymizationOptions(policy=ANONYMIZATION_POLICIES[args.anonymize_policy],
                                                  language=args.language or "")


def available_targets(client: TranslationClient, wanted: list[str]) -> list[str]:
    """The target languages some installed translation model can produce; says what to
    install for the others instead of failing the whole run."""
    if not wanted:
        return []
    reachable = {pair.target_language for pair in client.list_languages().pairs}
    for language in wanted:
        if language not in reachable:
            console.print(
                f"[yellow]no translation model into {language!r} is installed: the transcripts come "
                f"without that translation. Install one, e.g. `parlons models pull "
                f"opus-mt-{'en' if language == 'fr' else 'fr'}-{language}` "
                f"(see docs/models.md): installed models are served at the next start.")
    return [language for language in wanted if language in reachable]


@dataclass
class Job:
    """What every file of the run shares: clients, options, formats. A transcript alone
    comes from the transcription service; speakers, translations and anonymisation from
    the gateway's TranscribeConversation, which composes them (`gateway`)."""

    transcription: TranscriptionClient
    gateway: GatewayClient | None
    options: transcription_pb2.TranscriptionOptions
    diarization: diarization_pb2.DiarizationOptions | None  # None: no speakers
    targets: list[str]
    fmts: list[str]
    shape: SubtitleShape
    timeout_s: float | None
    anonymization: anonymization_pb2.AnonymizationOptions | None = None
    mask_audio: str = ""  # "tone" or "silence": also write the recording with the spans masked

    def fingerprint(self) -> str:
        """The digest of every option that shapes this run's outputs: resume compares it
        with the one recorded beside each output (batch.outputs_done)."""
        def plain(message: Message | None) -> object:
            return None if message is None else json_format.MessageToDict(message, preserving_proto_field_name=True)

        return options_fingerprint({
            "transcription": plain(self.options), "diarization": plain(self.diarization),
            "anonymization": plain(self.anonymization), "mask_audio": self.mask_audio,
            "through_gateway": self.gateway is not None,
            "subtitles": [self.shape.line_chars, self.shape.lines, self.shape.max_cue_s],
        })

    def masked_path(self, item: Item) -> Path:
        return item.out_stem.with_name(f"{item.out_stem.name}.anonymise{item.source.suffix.lower()}")

    def expected(self, item: Item) -> list[list[Path]]:
        """What a finished file leaves on disk, each with its alternative names: every
        output, and the masked recording (its own format, or FLAC where that cannot be
        encoded)."""
        expected = [[path] for path in item.outputs(self.fmts, self.targets)]
        if self.mask_audio:
            target = self.masked_path(item)
            expected.append([target, target.with_suffix(".flac")])
        return expected

    def run(self, item: Item) -> tuple[dict[Path, str], float, str, list[Path]]:
        """Transcribe (and diarise, translate) one file: its outputs, rendered, its duration,
        the text with its translations for the terminal, and the files already written
        (the masked recording)."""
        uri = item.source.stem
        masked: list[tuple[float, float]] = []
        if self.gateway is not None:
            speakers = self.diarization or diarization_pb2.DiarizationOptions(mode=diarization_pb2.NONE)
            conversation = self.gateway.transcribe_conversation_file(
                item.source, self.options, diarization=speakers, target_languages=self.targets,
                uri=uri, timeout_s=self.timeout_s, anonymization=self.anonymization)
            main, translations, rttm = conversation.transcript, conversation.translations, conversation.to_rttm()
            masked = [(m.start_s, m.end_s) for m in conversation.proto.anonymization.masked]
            if self.anonymization is not None:
                self._warn_names(conversation.proto.anonymization.names_checked, item)
        else:
            main = self.transcription.transcribe_file(item.source, self.options, timeout_s=self.timeout_s)
            translations, rttm = {}, ""
        written: list[Path] = []
        if self.mask_audio:
            target = self.masked_path(item)
            target.parent.mkdir(parents=True, exist_ok=True)
            written.append(mask_recording(item.source, target, masked, self.mask_audio))
        outputs: dict[Path, str] = {}
        for fmt in self.fmts:
            path = item.out_stem.with_name(f"{item.out_stem.name}.{fmt}")
            outputs[path] = rttm if fmt == "rttm" else main.render(fmt, shape=self.shape, uri=uri)
        for language, version in translations.items():
            for fmt in self.fmts:
                if fmt != "rttm":
                    path = item.out_stem.with_name(f"{item.out_stem.name}.{language}.{fmt}")
                    outputs[path] = version.render(fmt, shape=self.shape, uri=uri)
        printable = transcripts.to_txt_with_translations(main.proto, {k: v.proto for k, v in translations.items()})
        return outputs, main.duration_s, printable, written

    def _warn_names(self, names_checked: bool, item: Item) -> None:
        if not names_checked:
            console.print(f"[yellow]{item.source}: no name model for this language: identifiers were masked, "
                          "person names were NOT checked", highlight=False)


class _SpeedColumn(ProgressColumn):
    """Audio done (h), speed (x real time) and time left, from the audio durations."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started

    def render(self, task: Task) -> Text:
        elapsed = time.monotonic() - self.started
        done, total = task.completed, task.total or 0.0
        speed = done / elapsed if elapsed > 0 and done else 0.0
        left = (total - done) / speed if speed else float("nan")
        left_text = time.strftime("%H:%M:%S", time.gmtime(left)) if left == left else "--:--:--"
        return Text(f"{done / 3600:.2f}/{total / 3600:.2f} h audio  x{speed:.2f}  left {left_text}")


def _check_args(args: argparse.Namespace) -> tuple[list[str], SubtitleShape] | str:
    fmts = [f for f in transcripts.FORMATS if f != "rttm" or args.diarize] if args.format == "all" \
        else [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in fmts if f not in transcripts.FORMATS]
    if unknown:
        return f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(transcripts.FORMATS)} or all"
    if "rttm" in fmts and not args.diarize:
        return "--format rttm needs speakers: add --diarize"
    if args.jobs < 1:
        return "--jobs must be at least 1"
    try:
        shape = SubtitleShape(line_chars=args.line_width, lines=args.lines)
    except ValueError as exc:
        return str(exc)
    return fmts, shape


def run_transcribe(args: argparse.Namespace) -> int:
    checked = _check_args(args)
    if isinstance(checked, str):
        console.print(f"[red]{checked}")
        return 2
    fmts, shape = checked
    output_dir = Path(args.output_dir) if args.output_dir else None
    items, problems = discover(args.inputs, list_files=args.from_list or [], output_dir=output_dir,
                               include=args.include or [], exclude=args.exclude or [])
    for problem, reason in problems:
        console.print(f"[red]{problem}: {reason}", highlight=False)
    if not items:
        console.print("[red]no recording to transcribe" + ("" if problems else " (check --include/--exclude)"))
        return 2
    remove_stale_parts(items)

    def configure(config: InProcessConfig) -> None:
        if args.model:
            config.transcription.model = args.model
        config.transcription.max_queued = max(config.transcription.max_queued, args.jobs * 2)

    with connect(args, services_for(args), console, configure) as connection:
        return _run(args, connection, items, problems, fmts, shape)


def _run(args: argparse.Namespace, connection: Connection, items: list[Item], problems: list[tuple[str, str]],
         fmts: list[str], shape: SubtitleShape) -> int:
    report = RunReport(started=run_stamp(), server=args.server or "in-process",
                       files=[FileReport(p, "failed", reason) for p, reason in problems])
    lock = threading.Lock()

    def on_retry(error: ParlonsRpcError, delay_s: float) -> None:
        with lock:
            report.retries += 1
        console.print(f"[yellow]{error.status.name}: {error.message}; retrying in {delay_s:.1f} s", highlight=False)

    job = _job(args, connection, fmts, shape, RetryPolicy(attempts=args.retries + 1, max_backoff_s=30.0,
                                                          on_retry=on_retry))
    fingerprint = report.options_digest = job.fingerprint()
    todo = _not_done(args, job, items, fingerprint, report)
    started = time.monotonic()
    try:
        _transcribe_all(args, job, todo, len(items) - len(todo), fingerprint, report, lock)
    finally:
        report.wall_s = round(time.monotonic() - started, 3)
        _finish(args, report)
        job.transcription.close()
    if report.interrupted:
        return 130
    return 1 if report.counts()["failed"] else 0


def _job(args: argparse.Namespace, connection: Connection, fmts: list[str], shape: SubtitleShape,
         retry: RetryPolicy) -> Job:
    """The run's clients (once the server answers) and options."""
    transcription = TranscriptionClient(connection, retry=retry)
    wait_until_serving(transcription.channel, metadata=connection.metadata)
    translation = TranslationClient(transcription.channel, metadata=connection.metadata, retry=retry) \
        if args.translate_to else None
    targets = available_targets(translation, args.translate_to) if translation is not None else []
    diarization = None
    if args.diarize:
        diarization = diarization_pb2.DiarizationOptions(
            mode=diarization_pb2.CHANNEL if args.per_channel else diarization_pb2.NEURAL,
            num_speakers=args.num_speakers, min_speakers=args.min_speakers, max_speakers=args.max_speakers)
    gateway = GatewayClient(transcription.channel, metadata=connection.metadata, retry=retry) \
        if composing(args) else None
    return Job(transcription, gateway, options_from_args(args), diarization, targets, fmts, shape,
               args.timeout, anonymization_from_args(args), args.anonymize_audio or "")


def _not_done(args: argparse.Namespace, job: Job, items: list[Item], fingerprint: str,
              report: RunReport) -> list[Item]:
    """The files to transcribe; those whose outputs exist with the same options are
    reported skipped (unless --overwrite)."""
    todo: list[Item] = []
    for item in items:
        expected = job.expected(item)
        if not args.overwrite and outputs_done(item, expected, fingerprint):
            report.files.append(FileReport(str(item.source), "skipped", "outputs already there, same options",
                                           outputs=[str(p) for paths in expected for p in paths if p.exists()]))
        else:
            todo.append(item)
    return todo


def _transcribe_all(args: argparse.Namespace, job: Job, todo: list[Item], skipped: int, fingerprint: str,
                    report: RunReport, lock: threading.Lock) -> None:
    """`args.jobs` files at a time, each reported as it ends; Ctrl-C keeps the finished
    ones and reports the others interrupted."""
    durations = {item: probe_duration_s(item.source) or 0.0 for item in todo}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), _SpeedColumn(time.monotonic()),
                        TimeElapsedColumn(), console=console, disable=args.quiet)

    def process(item: Item) -> FileReport:
        began = time.monotonic()
        forget_outputs(item, [path for paths in job.expected(item) for path in paths])
        outputs, duration, printable, written = job.run(item)
        write_together(outputs)
        record_outputs(item, [*outputs, *written], fingerprint)
        if args.print:
            with lock:
                sys.stdout.write(printable)
                sys.stdout.flush()
        return FileReport(str(item.source), "done", audio_s=round(duration, 3),
                          processing_s=round(time.monotonic() - began, 3),
                          outputs=[str(p) for p in [*outputs, *written]])

    pool = ThreadPoolExecutor(max_workers=args.jobs, thread_name_prefix="transcribe")
    pending: dict[Future[FileReport], Item] = {}
    queue = list(todo)
    try:
        with progress:
            task = progress.add_task(f"{len(todo)} file(s), {skipped} already done",
                                     total=sum(durations.values()) or None)
            while queue or pending:
                while queue and len(pending) < args.jobs:
                    item = queue.pop(0)
                    pending[pool.submit(process, item)] = item
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    item = pending.pop(future)
                    report.files.append(_file_report(item, future))
                    progress.advance(task, durations.get(item, 0.0))
    except KeyboardInterrupt:
        report.interrupted = True
        for future, item in pending.items():
            future.cancel()
            report.files.append(FileReport(str(item.source), "interrupted", "Ctrl-C: no output written"))
        for item in queue:
            report.files.append(FileReport(str(item.source), "interrupted", "not started"))
        console.print("[yellow]interrupted: finished files are kept; run the same command again to resume")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _file_report(item: Item, future: Future[FileReport]) -> FileReport:
    """A finished file's report; a failure is said, and the run goes on."""
    try:
        return future.result()
    except ParlonsRpcError as exc:
        console.print(f"[red]{item.source}: {exc}")
        return FileReport(str(item.source), "failed", str(exc))
    except (OSError, ValueError) as exc:
        console.print(f"[red]{item.source}: {exc}")
        return FileReport(str(item.source), "failed", f"{type(exc).__name__}: {exc}")


def _finish(args: argparse.Namespace, report: RunReport) -> None:
    path = Path(args.report) if args.report else (Path(args.output_dir) if args.output_dir else Path.cwd()) \
        / f"parlons-transcribe-{report.started}.json"
    report.write(path)
    counts = report.counts()
    speed = report.audio_done_s() / report.wall_s if report.wall_s else 0.0
    console.print(
        f"{counts['done']} transcribed, {counts['skipped']} already done, {counts['failed']} failed"
        + (f", {counts['interrupted']} interrupted" if counts["interrupted"] else "")
        + f"; {report.audio_done_s() / 3600:.2f} h of audio in {report.wall_s:.0f} s (x{speed:.2f}); report: {path}")
    for file_report in report.files:
        if file_report.status == "failed":
            console.print(f"  [red]failed[/red] {file_report.source}: {file_report.reason}", highlight=False)


def add_transcribe_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe recordings (files, folders, lists) to txt, json, srt, vtt, rttm",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="*", help="audio files or folders (searched recursively)")
    parser.add_argument("--from-list", action="append", metavar="FILE",
                        help="a file listing recordings, one per line ('-' = stdin); repeatable")
    parser.add_argument("--include", action="append", metavar="PATTERN",
                        help="in folders, only files matching (e.g. '*.mp3'; default: audio extensions)")
    parser.add_argument("--exclude", action="append", metavar="PATTERN", help="in folders, skip files matching")
    parser.add_argument("--jobs", type=int, default=1, help="files transcribed at the same time (default 1)")
    add_connection_arguments(parser)
    parser.add_argument("--config", help="config file for the in-process server")
    parser.add_argument("--model", help="catalog name or model directory (default from config: 'auto', "
                                        "i.e. base on a CPU, large-v3-turbo on a GPU when installed)")
    parser.add_argument("--language", help="BCP-47 code; default: identify automatically")
    parser.add_argument("--task", choices=["transcribe", "translate"], default="transcribe",
                        help="translate = transcribe into English (whisper's own translation)")
    parser.add_argument("--beam-size", type=int, default=0)
    parser.add_argument("--word-timestamps", action="store_true")
    parser.add_argument("--vad", action=argparse.BooleanOptionalAction, default=None,
                        help="skip non-speech with Silero VAD (server default: on)")
    parser.add_argument("--initial-prompt")
    parser.add_argument("--hotwords")
    parser.add_argument("--temperature", type=float, action="append", help="repeat for a fallback list")
    parser.add_argument("--per-channel", action="store_true", help="one speaker per channel")
    parser.add_argument("--language-per-segment", action="store_true")
    speakers = parser.add_argument_group("speakers")
    speakers.add_argument("--diarize", action="store_true",
                          help="attribute speakers through the gateway (and write .rttm); with --per-channel, "
                               "one speaker per channel")
    speakers.add_argument("--num-speakers", type=int, default=0, help="exact number of speakers, when known")
    speakers.add_argument("--min-speakers", type=int, default=0)
    speakers.add_argument("--max-speakers", type=int, default=0)
    privacy = parser.add_argument_group("personal data")
    privacy.add_argument("--anonymize", action="store_true",
                         help="mask personal data (names, NIR, IBAN, phones, e-mails, addresses, dates of birth, "
                              "CAF/tax/ID numbers, plates) in every output, before translation")
    privacy.add_argument("--anonymize-policy", choices=list(ANONYMIZATION_POLICIES), default="placeholder",
                         help="placeholder ([PERSONNE_1], consistent in a file), redact ([…]) or pseudonym")
    privacy.add_argument("--anonymize-audio", choices=["tone", "silence"], nargs="?", const="tone",
                         help="also write NAME.anonymise.EXT, the recording with the personal data replaced by "
                              "a tone (default) or silence (implies --anonymize)")
    parser.add_argument("--translate-to", action="append", metavar="LANG", default=[],
                        help="also translate the transcript into LANG (BCP-47; repeatable): FILE.LANG.{txt,srt,...}")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--format", default="all",
                         help="comma-separated txt,json,srt,vtt,rttm or all (rttm with --diarize)")
    outputs.add_argument("--output-dir", help="where to write outputs (default: beside each file; folders keep "
                                              "their layout under it)")
    outputs.add_argument("--line-width", type=int, default=transcripts.MAX_LINE_CHARS,
                         help=f"subtitle characters per line (default {transcripts.MAX_LINE_CHARS})")
    outputs.add_argument("--lines", type=int, default=transcripts.MAX_LINES,
                         help=f"subtitle lines per cue (default {transcripts.MAX_LINES})")
    outputs.add_argument("--overwrite", action="store_true", help="transcribe again files whose outputs exist")
    outputs.add_argument("--report", help="the run's JSON report (default: OUTPUT_DIR/parlons-transcribe-STAMP.json)")
    outputs.add_argument("--print", action="store_true", help="also print each text")
    outputs.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--retries", type=int, default=8,
                        help="retries of a file while the server is unavailable, with backoff up to 30 s (default 8)")
    parser.add_argument("--timeout", type=float, default=None, help="per-file deadline in seconds")
    parser.set_defaults(func=run_transcribe)
