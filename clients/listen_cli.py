"""`parlons listen`: live transcription of a microphone, or of a file played at real-time
pace, printing interim text as it forms and each final line (with its translations).

    parlons listen                                  # the default microphone
    parlons listen guichet.wav --translate-to en     # a recording, as if spoken now
    parlons listen guichet.wav --fast --server gw:50051 --tls --api-key …
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from rich.console import Console

from parlons.clients.audio_source import file_chunks, microphone_chunks
from parlons.clients.connection import add_connection_arguments
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.inprocess import InProcessConfig, connect
from parlons.clients.sdk import TranscriptionClient, TranslationClient, wait_until_serving
from parlons.v1 import transcription_pb2

console = Console(stderr=True)


def _chunks(args: argparse.Namespace) -> Iterator[bytes]:
    if args.file:
        return file_chunks(args.file, realtime=not args.fast)
    return microphone_chunks(device=args.device)


def run_listen(args: argparse.Namespace) -> int:
    def configure(config: InProcessConfig) -> None:
        if args.model:
            config.transcription.model = args.model

    services = ["transcription"] + (["translation"] if args.translate_to else [])
    interim_shown = args.interim and sys.stdout.isatty()
    with connect(args, services, console, configure) as connection, TranscriptionClient(connection) as client:
        wait_until_serving(client.channel, metadata=connection.metadata)
        translator = TranslationClient(client.channel, metadata=connection.metadata) if args.translate_to else None
        options = transcription_pb2.TranscriptionOptions(model=args.model or "", language=args.language or "")
        if not args.file:
            console.print("[green]à l'écoute… (Ctrl+C pour arrêter)")
        try:
            for result in client.stream(_chunks(args), options, interim=args.interim):
                if not result.is_final:
                    if interim_shown:
                        sys.stdout.write("\r\033[K… " + result.text.strip())
                        sys.stdout.flush()
                    elif args.interim:
                        print(f"… {result.text.strip()}", flush=True)
                    continue
                text = result.text.strip()
                if not text:
                    continue
                prefix = "\r\033[K" if interim_shown else ""
                print(f"{prefix}[{result.start_s:6.1f}s] {text}", flush=True)
                if translator is not None:
                    for language in args.translate_to:
                        translated = translator.translate([text], language, result.language or "").texts[0]
                        print(f"{'':10}{language}: {translated}", flush=True)
        except ParlonsRpcError as exc:
            console.print(f"[red]{exc}")
            return 1
        except RuntimeError as exc:  # no microphone
            console.print(f"[red]{exc}")
            return 2
    return 0


def add_listen_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("listen", help="live transcription of a microphone or a file (real-time pace)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", help="a recording to stream (default: the microphone)")
    parser.add_argument("--fast", action="store_true", help="send the file as fast as the server takes it")
    parser.add_argument("--device", help="input device name or number (default: the system's)")
    parser.add_argument("--language", help="BCP-47 code; default: identify automatically")
    parser.add_argument("--model", help="transcription model (in-process default from config)")
    parser.add_argument("--translate-to", action="append", metavar="LANG", default=[],
                        help="also print each final line translated into LANG (repeatable)")
    parser.add_argument("--no-interim", dest="interim", action="store_false", help="print final lines only")
    add_connection_arguments(parser)
    parser.add_argument("--config", help="config file for the in-process server")
    parser.set_defaults(func=run_listen)
