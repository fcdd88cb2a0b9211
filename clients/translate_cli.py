"""`parlons translate`: text or documents, against --server or in-process.

    parlons translate --to en "Bonjour, votre dossier est complet."
    parlons translate --to ar --file courrier.docx            # writes courrier.ar.docx
    echo "texte" | parlons translate --to uk -
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from collections.abc import Iterator

import grpc
from parlons.clients.inprocess import in_process_server
from parlons.clients.sdk import TranslationClient, open_channel, wait_until_serving
from parlons.services.common.config import load_config
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


@contextlib.contextmanager
def server_address(args: argparse.Namespace) -> Iterator[str]:
    if args.server:
        yield args.server
        return
    config = load_config(args.config)
    if args.models:
        config.translation.models = args.models
    if not config.translation.models:
        raise SystemExit(
            "no translation model configured: pass --models NAME_OR_DIR (see `parlons models list --kind translation`) "
            "or set [translation] models in the config file"
        )
    with in_process_server(config, ["translation"], console) as address:
        yield address


def run_translate(args: argparse.Namespace) -> int:
    glossary = glossary_from_file(args.glossary)
    with server_address(args) as address:
        channel = open_channel(address)
        wait_until_serving(channel)
        client = TranslationClient(channel)
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
                for translation in response.translations:
                    print(translation.text)
        except grpc.RpcError as exc:
            console.print(f"[red]{exc.code().name}: {exc.details()}")
            return 1
        finally:
            channel.close()
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
    parser.add_argument("--server", help="gRPC address of a running parlons server")
    parser.add_argument("--config", help="config file for the in-process server")
    parser.add_argument("--timeout", type=float, default=None)
    parser.set_defaults(func=run_translate)
