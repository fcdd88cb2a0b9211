"""`parlons translate`: text or documents, against --server or in-process.

    parlons translate --to en "Bonjour, votre dossier est complet."
    parlons translate --to ar --file courrier.docx            # writes courrier.ar.docx
    echo "texte" | parlons translate --to uk -
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from collections.abc import Callable

from parlons.clients.connection import add_connection_arguments
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.inprocess import InProcessConfig, connect
from parlons.clients.sdk import TranslationClient, wait_until_serving
from rich.console import Console

from parlons.v1 import translation_pb2

console = Console(stderr=True)

_EXTENSIONS = {
    translation_pb2.TXT: ".txt", translation_pb2.DOCX: ".docx", translation_pb2.ODT: ".odt",
    translation_pb2.HTML: ".html", translation_pb2.SRT: ".srt", translation_pb2.VTT: ".vtt",
    translation_pb2.PDF: ".pdf",
}


def glossary_from_file(path: str | None) -> translation_pb2.Glossary | None:
    """A glossary JSON file (same shape as the server's tenant glossaries)."""
    if not path:
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return translation_pb2.Glossary(
        entries=[
            translation_pb2.GlossaryEntry(
                source=str(item["source"]),
                target=str(item.get("target") or ""),
                do_not_translate=bool(item.get("do_not_translate")) or not item.get("target"),
                case_sensitive=bool(item.get("case_sensitive", False)),
            )
            for item in data.get("entries", [])
        ]
    )


def _configure(args: argparse.Namespace) -> Callable[[InProcessConfig], None]:
    def configure(config: InProcessConfig) -> None:
        if args.models:  # else every translation model installed in the cache
            config.translation.models = args.models
    return configure


def run_translate(args: argparse.Namespace) -> int:
    glossary = glossary_from_file(args.glossary)
    with connect(args, ["translation"], console, _configure(args)) as connection, \
            TranslationClient(connection) as client:
        wait_until_serving(client.channel, metadata=connection.metadata)
        try:
            if args.file:
                source = Path(args.file)
                pdf_out = translation_pb2.TXT if args.pdf_as == "txt" else translation_pb2.DOCX
                response = client.translate_document(
                    source.read_bytes(), source.name, args.to, args.source or "",
                    glossary=glossary, pdf_output_format=pdf_out, timeout_s=args.timeout,
                )
                suffix = _EXTENSIONS.get(response.format, source.suffix)
                target = Path(args.output) if args.output else source.with_name(f"{source.stem}.{args.to}{suffix}")
                target.write_bytes(response.content)
                for note in response.notes:
                    console.print(f"[yellow]{note}")
                console.print(f"{target} ({response.segments_translated} segments, "
                              f"source {response.detected_source_language})")
            else:
                texts = args.texts
                if texts == ["-"]:
                    texts = [sys.stdin.read()]
                if not texts:
                    console.print("[red]nothing to translate: give texts, '-' for stdin, or --file")
                    return 2
                response = client.translate(texts, args.to, args.source or "", glossary=glossary,
                                            model=args.model or "", timeout_s=args.timeout)
                for text in response.texts:
                    print(text)
        except ParlonsRpcError as exc:
            console.print(f"[red]{exc}")
            return 1
    return 0


def add_translate_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "translate",
        help="translate text or a document (txt, docx, odt, html, srt, vtt, pdf)",
        description="Translate with the translation service (in-process unless --server is given).",
    )
    parser.add_argument("texts", nargs="*", help="texts to translate ('-' reads stdin)")
    parser.add_argument("--to", required=True, help="target language (BCP-47, e.g. fr, en, ar, uk)")
    parser.add_argument("--from", dest="source", help="source language; default: detect")
    parser.add_argument("--file", help="a document to translate")
    parser.add_argument("--output", help="where to write the translated document")
    parser.add_argument("--pdf-as", choices=["docx", "txt"], default="docx", help="output format for PDF input")
    parser.add_argument("--glossary", help="glossary JSON file (forced translations, do-not-translate terms)")
    parser.add_argument("--model", help="model name to use (default: chosen for the pair)")
    parser.add_argument("--models", nargs="+", help="in-process: translation models to load (names or dirs)")
    parser.add_argument("--config", help="config file for the in-process server")
    add_connection_arguments(parser)
    parser.add_argument("--timeout", type=float, default=None)
    parser.set_defaults(func=run_translate)
