"""Client commands without `--server`: the services they need, started in this process.

Same code path as against a remote server (a real gRPC server on a loopback port), so
the CLI behaves the same in both modes. This is the one client module that imports the
services (by design: it starts them); the commands reach the server configuration only
through it (`InProcessConfig`), so no other client depends on a service.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from parlons.clients.connection import Connection, connection_from_args
from parlons.services.common.config import ParlonsConfig, load_config
from rich.console import Console

#: The server configuration a command may adjust before its in-process services start.
InProcessConfig = ParlonsConfig


@contextlib.contextmanager
def in_process_server(config: ParlonsConfig, services: list[str], console: Console) -> Iterator[str]:
    """Start `services` on 127.0.0.1 (a free port) for the block; yields the address.

    A gateway started this way listens on loopback only, so it needs no API keys and
    opens no REST port."""
    from parlons.services.common.server import BackgroundServer

    from parlons.serve import build_modules

    config.server.host = "127.0.0.1"
    config.server.port = 0
    config.gateway.auth = "none"
    config.gateway.tenants_path = ""
    config.gateway.rest_enabled = False
    with console.status("loading models..."):
        server = BackgroundServer(config.server, build_modules(config, services)).start()
    try:
        yield server.address
    finally:
        server.stop()


@contextlib.contextmanager
def connect(args: argparse.Namespace, services: list[str], console: Console,
            configure: Callable[[ParlonsConfig], None] | None = None) -> Iterator[Connection]:
    """The Connection for a client command: `--server` and its credentials, or the
    `services` started in this process for the block (with `--config`, then `configure`)."""
    if args.server:
        yield connection_from_args(args)
        return
    config = load_config(getattr(args, "config", None))
    if configure is not None:
        configure(config)
    with in_process_server(config, services, console) as address:
        yield connection_from_args(args, address)
