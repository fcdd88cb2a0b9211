"""`parlons desk`: serve the reception-desk page, on the embedded default or a gateway.

Without `--server` the services start in this process (as `parlons transcribe` does);
with it, the desk connects to a running gateway with an API key and TLS options.
Loopback by default; bound to another address it needs HTTPS (browsers give the
microphone to secure pages only) and a desk key.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import webbrowser

from parlons.clients.connection import Connection, add_connection_arguments
from parlons.hosts import is_loopback

DEFAULT_PORT = 8765
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
    parser.add_argument("--desk-key", help="key the page must present (default: $PARLONS_DESK_KEY); "
                                           "required off loopback; open the page as https://HOST:PORT/?cle=KEY")
    parser.add_argument("--open", action="store_true", help="open the page in the browser")
    parser.set_defaults(func=run_desk)


def run_desk(args: argparse.Namespace) -> int:
    desk_key = args.desk_key or os.environ.get("PARLONS_DESK_KEY", "")
    https = bool(args.https_cert and args.https_key)
    if not is_loopback(args.host) and not (https and desk_key):
        print("parlons desk: hors de la boucle locale, la page exige HTTPS (--https-cert, --https-key) "
              "et une clé de poste (--desk-key) : les navigateurs ne donnent le microphone qu'aux pages "
              "sécurisées.", file=sys.stderr)
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
        return build_app(Desk(GatewayConnection(connection), desk_key=desk_key))

    scheme = "https" if ssl_context else "http"
    url = f"{scheme}://{args.host}:{args.port}/" + (f"?cle={desk_key}" if desk_key else "")
    print(f"Poste d'accueil : {url}  (Ctrl+C pour arrêter)", file=sys.stderr, flush=True)
    if args.open:
        webbrowser.open(url)
    web.run_app(make_app(), host=args.host, port=args.port, ssl_context=ssl_context, print=None,
                access_log=None)  # no access log: URLs carry the desk key
    return 0
