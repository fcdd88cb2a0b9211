"""`parlons transcribe`: the batch CLI for archives of recordings.

Against `--server` it is a plain gRPC client; without one it starts the services
in-process on a loopback port, so one code path serves both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from collections.abc import Iterator

import grpc
from parlons.clients import formats
from parlons.clients.inprocess import in_process_server
from parlons.clients.sdk import TranscriptionClient, open_channel, wait_until_serving
from parlons.services.common.config import load_config
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from parlons.v1 import transcription_pb2

console = Console(stderr=True)


def options_from_args(args: argparse.Namespace) -> transcription_pb2.TranscriptionOptions:
    options = transcription_pb2.TranscriptionOptions(
        model=args.model or "",
        language=args.language or "",
        task=transcription_pb2.TRANSLATE_TO_ENGLISH if args.task == "translate" else transcription_pb2.TRANSCRIBE,
        beam_size=args.beam_size,
        word_timestamps=args.word_timestamps or args.diarize,
        initial_prompt=args.initial_prompt or "",
        hotwords=args.hotwords or "",
        temperatures=args.temperature or [],
        per_channel=args.per_channel,
        language_per_segment=args.language_per_segment,
    )
    if args.vad is not None:
        options.vad_filter = args.vad
    return options


@contextlib.contextmanager
def server_address(args: argparse.Namespace) -> Iterator[str]:
    """The given --server, or an in-process server for the duration of the command."""
    if args.server:
        yield args.server
        return
    config = load_config(args.config)
    if args.model:
        config.transcription.model = args.model
    # --diarize goes through the gateway's TranscribeConversation (word-level merge of
    # transcription and diarisation); in-process it needs no key and no REST port.
    # With --per-channel each channel is one speaker: no diarisation model needed.
    names = ["transcription"]
    if args.diarize:
        names += [] if args.per_channel else ["diarization"]
        names += ["translation"] if args.translate_to else []
        names += ["gateway"]
    with in_process_server(config, names, console) as address:
        yield address


def available_targets(channel: grpc.Channel, wanted: list[str] | None, metadata: tuple[tuple[str, str], ...]) -> list[str]:
    """The target languages some installed translation model can produce; says what to
    install for the others instead of failing the whole transcription."""
    if not wanted:
        return []
    from parlons.clients.sdk import TranslationClient

    pairs = TranslationClient(channel, metadata=metadata).list_languages().pairs
    reachable = {pair.target_language for pair in pairs}
    for language in wanted:
        if language not in reachable:
            console.print(
                f"[yellow]no translation model into {language!r} is installed: the transcript comes "
                f"without its translation. Install one, e.g. `parlons models pull opus-mt-en-{language}` "
                f"(needs access to the model hub; see docs/models.md), and add it to \\[translation] models."
            )
    return [language for language in wanted if language in reachable]


def output_paths(source: Path, output_dir: Path | None, fmts: list[str]) -> dict[str, Path]:
    folder = output_dir or source.parent
    return {fmt: folder / f"{source.stem}.{fmt}" for fmt in fmts}


def run_transcribe(args: argparse.Namespace) -> int:
    fmts = list(formats.FORMATS) if args.format == "all" else args.format.split(",")
    unknown = [f for f in fmts if f not in formats.FORMATS]
    if unknown:
        console.print(f"[red]unknown format(s) {', '.join(unknown)}; choose from {', '.join(formats.FORMATS)} or all")
        return 2
    if args.translate_to and not args.diarize:
        console.print("[red]--translate-to works with --diarize (a speaker-attributed, translated transcript)")
        return 2
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        console.print(f"[red]not a file: {', '.join(missing)}")
        return 2
    if args.output_dir:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    options = options_from_args(args)
    failures = 0
    with server_address(args) as address:
        channel = open_channel(address)
        wait_until_serving(channel)
        api_key = args.api_key or os.environ.get("PARLONS_API_KEY") or None
        auth = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        client = TranscriptionClient(channel, metadata=auth)
        diarizer = None
        targets: list[str] = []
        if args.diarize:
            from parlons.clients.conversation import ConversationClient

            diarizer = ConversationClient(channel, num_speakers=args.num_speakers, metadata=auth)
            targets = available_targets(channel, args.translate_to, auth)
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task("transcribing", total=len(files))
            for path in files:
                progress.update(task, description=f"transcribing {path.name}")
                try:
                    extra: dict[str, str] = {}
                    translated: dict[str, transcription_pb2.TranscribeResponse] = {}
                    if diarizer is not None:
                        response, extra["rttm"], translated = diarizer.transcribe_with_speakers(
                            path, options, per_channel=args.per_channel, target_languages=targets,
                            timeout_s=args.timeout,
                        )
                    else:
                        response = client.transcribe_file(path, options, timeout_s=args.timeout)
                except grpc.RpcError as exc:
                    failures += 1
                    console.print(f"[red]{path}: {exc.code().name}: {exc.details()}")
                    progress.advance(task)
                    continue
                for fmt, target in output_paths(path, Path(args.output_dir) if args.output_dir else None, fmts).items():
                    target.write_text(formats.render(response, fmt), encoding="utf-8")
                for fmt, text in extra.items():
                    target = output_paths(path, Path(args.output_dir) if args.output_dir else None, [fmt])[fmt]
                    target.write_text(text, encoding="utf-8")
                for language, version in translated.items():
                    folder = Path(args.output_dir) if args.output_dir else path.parent
                    for fmt in fmts:
                        (folder / f"{path.stem}.{language}.{fmt}").write_text(formats.render(version, fmt), encoding="utf-8")
                if args.print:
                    sys.stdout.write(formats.to_txt_with_translations(response, translated))
                progress.advance(task)
        channel.close()
    return 1 if failures else 0


def add_transcribe_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files to txt, json, srt and vtt",
        description="Transcribe files with the transcription service (in-process unless --server is given).",
    )
    parser.add_argument("files", nargs="+", help="audio files (any format ffmpeg/PyAV decodes)")
    parser.add_argument("--server", help="gRPC address of a running parlons server (default: in-process)")
    parser.add_argument("--api-key", help="gateway API key (default: $PARLONS_API_KEY)")
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
    parser.add_argument("--diarize", action="store_true",
                        help="attribute speakers through the gateway (writes .rttm too); with --per-channel, "
                             "one speaker per channel")
    parser.add_argument("--num-speakers", type=int, default=0)
    parser.add_argument("--translate-to", action="append", metavar="LANG",
                        help="with --diarize: translate each turn into LANG (BCP-47; repeat for several); "
                             "writes FILE.LANG.{txt,srt,...}")
    parser.add_argument("--format", default="all", help="comma-separated txt,json,srt,vtt or all")
    parser.add_argument("--output-dir", help="where to write outputs (default: beside each file)")
    parser.add_argument("--print", action="store_true", help="also print the text")
    parser.add_argument("--timeout", type=float, default=None, help="per-file deadline in seconds")
    parser.set_defaults(func=run_transcribe)
