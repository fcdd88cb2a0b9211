"""`parlons anonymize`: personal data out of text, against --server or in-process.

    parlons anonymize "Je suis Mme Benali, mon numéro c'est le 06 12 34 56 78."
    parlons anonymize --file entretien.txt          # writes entretien.anonymise.txt
    parlons anonymize --file courrier.docx          # writes courrier.anonymise.docx, layout kept
    echo "texte" | parlons anonymize -
    parlons anonymize --policy redact --types PHONE,EMAIL --file notes.txt

A text file is sent as one request, one text per line, so a name keeps its placeholder
from line to line and the lines stay as they were. Documents (docx, odt, html, srt, vtt,
pdf) keep their layout; a PDF comes back as DOCX (`--pdf-as txt` for text).

The mapping (`--mapping`: placeholders back to the personal data) and the anonymised
file are written 0600 to a new private file beside their target, then renamed over it
(batch.write_together): a link planted at the target is replaced, never followed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console

from parlons import anonymized
from parlons.clients.batch import write_together
from parlons.clients.connection import add_connection_arguments
from parlons.clients.errors import ParlonsRpcError
from parlons.clients.inprocess import connect
from parlons.clients.sdk import AnonymizationClient, wait_until_serving
from parlons.v1 import anonymization_pb2

console = Console(stderr=True)

POLICIES = anonymized.POLICIES


def _terms(values: list[str] | None) -> list[str]:
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


def options_from_args(args: argparse.Namespace) -> anonymization_pb2.AnonymizationOptions:
    return anonymization_pb2.AnonymizationOptions(
        policy=POLICIES[args.policy], entity_types=_terms(args.types), always_mask=_terms(args.always),
        never_mask=_terms(args.never), return_mapping=bool(args.mapping), language=args.language or "fr",
        seed=args.seed,
    )


DOCUMENT_SUFFIXES = {".docx", ".odt", ".html", ".htm", ".xhtml", ".srt", ".vtt", ".pdf"}


def run_anonymize(args: argparse.Namespace) -> int:
    if args.file and Path(args.file).suffix.lower() in DOCUMENT_SUFFIXES:
        return _run_document(args)
    if args.file:
        source = Path(args.file)
        texts = source.read_text(encoding="utf-8").split("\n")
    else:
        texts = [sys.stdin.read()] if args.texts == ["-"] else list(args.texts)
        if not texts:
            console.print("[red]nothing to anonymise: give texts, '-' for stdin, or --file")
            return 2
    options = options_from_args(args)
    with connect(args, ["anonymization"], console) as connection, AnonymizationClient(connection) as client:
        wait_until_serving(client.channel, metadata=connection.metadata)
        try:
            response = client.anonymize(texts, options, timeout_s=args.timeout)
        except ParlonsRpcError as exc:
            console.print(f"[red]{exc}")
            return 1
    if not response.names_checked:
        console.print(f"[yellow]no name model for language {response.language!r}: identifiers were masked, "
                      "person names were NOT checked")
    out = [t.text for t in response.texts]
    spans = sum(len(t.spans) for t in response.texts)
    if args.file:
        target = Path(args.output) if args.output else source.with_name(f"{source.stem}.anonymise{source.suffix}")
        write_together({target: "\n".join(out)})
        console.print(f"{target} ({spans} spans masked)")
    else:
        for text in out:
            print(text)
    _write_mapping(args, response.mapping)
    return 0


def _run_document(args: argparse.Namespace) -> int:
    source = Path(args.file)
    options = options_from_args(args)
    with connect(args, ["anonymization"], console) as connection, AnonymizationClient(connection) as client:
        wait_until_serving(client.channel, metadata=connection.metadata)
        try:
            response = client.anonymize_document(source.read_bytes(), source.name, options,
                                                 pdf_output_format=args.pdf_as, timeout_s=args.timeout)
        except ParlonsRpcError as exc:
            console.print(f"[red]{exc}")
            return 1
    if not response.names_checked:
        console.print("[yellow]no name model for this language: identifiers were masked, person names were NOT "
                      "checked")
    for note in response.notes:
        console.print(f"[yellow]{note}")
    target = Path(args.output) if args.output else source.with_name(response.file_name)
    write_together({target: response.content})
    console.print(f"{target} ({response.spans} spans masked in {response.segments} segments)")
    _write_mapping(args, response.mapping)
    return 0


def _write_mapping(args: argparse.Namespace, mapping: Iterable[anonymization_pb2.MappingEntry]) -> None:
    if args.mapping:
        write_together({Path(args.mapping): json.dumps({m.replacement: m.original for m in mapping},
                                                       ensure_ascii=False, indent=2)})
        console.print(f"[yellow]{args.mapping}: the mapping back to the personal data; keep it safe or delete it")


def add_anonymize_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "anonymize",
        help="mask personal data in text (names, NIR, IBAN, phones, e-mails, addresses, ...)",
        description="Anonymise with the anonymisation service (in-process unless --server is given).",
    )
    parser.add_argument("texts", nargs="*", help="texts to anonymise ('-' reads stdin)")
    parser.add_argument("--file", help="a text file (one text per line, lines kept) or a document "
                                       "(docx, odt, html, srt, vtt, pdf; layout kept)")
    parser.add_argument("--output", help="where to write the anonymised file (default: NAME.anonymise.EXT)")
    parser.add_argument("--pdf-as", choices=["docx", "txt"], default="docx", help="output format for PDF input")
    parser.add_argument("--policy", choices=list(POLICIES), default="placeholder",
                        help="placeholder ([PERSONNE_1], consistent), redact ([…]) or pseudonym (made-up values)")
    parser.add_argument("--types", action="append",
                        help="entity types to mask, comma-separated (default: all): PERSON, NIR, IBAN, PHONE, "
                             "EMAIL, ADDRESS, DATE_OF_BIRTH, CAF_NUMBER, TAX_NUMBER, ID_DOCUMENT, LICENSE_PLATE")
    parser.add_argument("--always", action="append", help="terms always masked (comma-separated)")
    parser.add_argument("--never", action="append", help="terms never masked (comma-separated)")
    parser.add_argument("--language", default="fr", help="language of the texts (default fr)")
    parser.add_argument("--seed", type=int, default=0, help="pseudonym policy: same seed, same made-up values")
    parser.add_argument("--mapping", help="write the placeholder -> original mapping to this JSON file")
    parser.add_argument("--config", help="config file for the in-process server")
    add_connection_arguments(parser)
    parser.add_argument("--timeout", type=float, default=None)
    parser.set_defaults(func=run_anonymize)
