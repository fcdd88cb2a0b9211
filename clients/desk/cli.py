"""`parlons desk`: serve the reception-desk page, on the embedded default or a gateway.

Without `--server` the services start in this process (as `parlons transcribe` does);
with it, the desk connects to a running gateway with an API key and TLS options.
Loopback by default; bound to another address it needs HTTPS (browsers give the
microphone to secure pages only) and a desk key of at least 16 characters. The page
answers only to the desk's own names (its address, loopback names on loopback, this
machine's name off it) and to `--allowed-origin` (a reverse proxy's public origin).
Keys come from the environment or a file: a key in argv is visible to every user (ps).
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
import webbrowser
from pathlib import Path

from parlons.clients.connection import Connection, add_connection_arguments, warn_secret_in_argv
from parlons.hosts import is_loopback

DEFAULT_PORT = 8765
DESK_KEY_ENV = "PARLONS_DESK_KEY"
# Off loopback the key is all that keeps other machines out: long enough that trying
# keys (5 a minute per address, app.KeyAttempts) finds nothing.
MIN_DESK_KEY_CHARS = 16
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}
# What the embedded default starts: the diarisation service attributes a shared
# microphone's utterances by voice.
EMBEDDED_SERVICES = ["transcription", "translation", "diarization", "gateway"]


def add_desk_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("desk", help="the reception-desk translation page (browser)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_arguments(parser, what="gateway")
    parser.add_argument("--config", help="config file for the in-process services")
    parser.add_argument("--host", default="127.0.0.1", help="address the page is served on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--https-cert", help="certificate (PEM) to serve the page over HTTPS")
    parser.add_argument("--https-key", help="its key (PEM)")
    parser.add_argument("--desk-key", help=f"key the page must present (default: ${DESK_KEY_ENV}; prefer it or "
                                           "--desk-key-file: argv is visible to other users); required off "
                                           f"loopback, {MIN_DESK_KEY_CHARS} characters at least; open the page as "
                                           "https://HOST:PORT/?cle=KEY")
    parser.add_argument("--desk-key-file", help="a file holding the desk key (first line)")
    parser.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                        help="another origin the page is served from, e.g. a reverse proxy's "
                             "https://accueil.prefecture.example (repeatable); the desk's own names need none")
    parser.add_argument("--open", action="store_true", help="open the page in the browser")
    parser.set_defaults(func=run_desk)


def desk_key_from_args(args: argparse.Namespace) -> str:
    """--desk-key (warned about: argv is public), else --desk-key-file, else $PARLONS_DESK_KEY."""
    if args.desk_key:
        warn_secret_in_argv("--desk-key", DESK_KEY_ENV, "--desk-key-file")
        return str(args.desk_key)
    if args.desk_key_file:
        lines = Path(args.desk_key_file).read_text(encoding="utf-8").splitlines()
        return lines[0].strip() if lines else ""
    return os.environ.get(DESK_KEY_ENV, "")


def host_names(host: str) -> list[str]:
    """The desk's own names besides the address it is reached on: `--host` when it is a
    name or an address, and this machine's name when it serves other machines."""
    names = [] if host in _WILDCARDS else [host]
    if not is_loopback(host):
        names.append(socket.gethostname())
    return names


def _refusal(args: argparse.Namespace, desk_key: str, https: bool) -> str | None:
    """Why the desk must not start as asked, in French; None when it may."""
    if is_loopback(args.host):
        return None
    if not (https and desk_key):
        return ("hors de la boucle locale, la page exige HTTPS (--https-cert, --https-key) et une clé de poste "
                f"(${DESK_KEY_ENV} ou --desk-key-file) : les navigateurs ne donnent le microphone qu'aux pages "
                "sécurisées.")
    if len(desk_key) < MIN_DESK_KEY_CHARS:
        return (f"la clé de poste doit compter au moins {MIN_DESK_KEY_CHARS} caractères hors de la boucle locale ; "
                "par exemple : python -c 'import secrets; print(secrets.token_urlsafe(24))'")
    return None


def run_desk(args: argparse.Namespace) -> int:
    try:
        desk_key = desk_key_from_args(args)
        from parlons.clients.desk.app import normalise_origin

        for origin in args.allowed_origin:
            normalise_origin(origin)
    except (OSError, ValueError) as exc:
        print(f"parlons desk: {exc}", file=sys.stderr)
        return 2
    https = bool(args.https_cert and args.https_key)
    refusal = _refusal(args, desk_key, https)
    if refusal is not None:
        print(f"parlons desk: {refusal}", file=sys.stderr)
        return 2
    ssl_context = None
    if https:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.https_cert, args.https_key)
    from rich.console import Console

    from parlons.clients.inprocess import connect

    with connect(args, EMBEDDED_SERVICES, Console(stderr=True)) as connection:
        return serve(connection, args, desk_key, ssl_context)


def serve(connection: Connection, args: argparse.Namespace, desk_key: str, ssl_context: ssl.SSLContext | None) -> int:
    from aiohttp import web

    from parlons.clients.desk.app import Desk, build_app
    from parlons.clients.desk.bridge import GatewayConnection

    async def make_app() -> web.Application:
        return build_app(Desk(GatewayConnection(connection), desk_key=desk_key, allowed_origins=args.allowed_origin,
                              host_names=host_names(args.host)))

    scheme = "https" if ssl_context else "http"
    url = f"{scheme}://{args.host}:{args.port}/"  # never with the key: stderr ends up in logs
    print(f"Poste d'accueil : {url}  (Ctrl+C pour arrêter)", file=sys.stderr, flush=True)
    if desk_key:
        print(f"Clé de poste requise : ouvrez {url}?cle=CLÉ (la clé de --desk-key-file, de ${DESK_KEY_ENV} "
              "ou de --desk-key).", file=sys.stderr, flush=True)
    if args.open:
        webbrowser.open(url)  # without the key: a browser's command line is visible to every user
    web.run_app(make_app(), host=args.host, port=args.port, ssl_context=ssl_context, print=None,
                access_log=None)  # no access log: URLs carry the desk key
    return 0
