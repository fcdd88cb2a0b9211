"""Where a client reaches parlons and how it proves who it is: one `Connection` for the
SDK's sync and asyncio clients and for every client command's `--server`, `--api-key`,
`--tls`, `--ca`, `--cert`, `--key` options.

An API key is read from `$PARLONS_API_KEY` or `--api-key-file`: `--api-key` still works
but is warned about, since a command line is visible to every user of the machine (ps).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import grpc
from grpc import aio

API_KEY_ENV = "PARLONS_API_KEY"


@dataclass(frozen=True)
class Connection:
    """A gRPC address with its credentials. TLS is on when asked or when a CA or a client
    certificate is given (system roots without `ca`); `cert` and `key` make it mutual."""

    address: str
    api_key: str | None = None
    tls: bool = False
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    max_message_mb: int = 64
    # A server that restarts is found again within seconds (gRPC's default backoff grows
    # to two minutes while a desk agent or a batch run waits).
    reconnect_backoff_ms: tuple[int, int] = (500, 5_000)

    def __post_init__(self) -> None:
        if not self.address:
            raise ValueError("a server address is needed (host:port)")
        if bool(self.cert) != bool(self.key):
            raise ValueError("mutual TLS needs both a client certificate and its key")

    @classmethod
    def from_files(cls, address: str, *, api_key: str | None = None, tls: bool = False, ca: str | None = None,
                   cert: str | None = None, key: str | None = None) -> Connection:
        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return cls(address, api_key=api_key or None, tls=tls, ca=read(ca), cert=read(cert), key=read(key))

    @property
    def secure(self) -> bool:
        return self.tls or bool(self.ca) or bool(self.cert)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def _options(self) -> list[tuple[str, int]]:
        size = self.max_message_mb * 1024 * 1024
        first, most = self.reconnect_backoff_ms
        return [("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size),
                ("grpc.initial_reconnect_backoff_ms", first), ("grpc.max_reconnect_backoff_ms", most)]

    def _credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)

    def channel(self) -> grpc.Channel:
        if self.secure:
            return grpc.secure_channel(self.address, self._credentials(), options=self._options())
        return grpc.insecure_channel(self.address, options=self._options())

    def aio_channel(self) -> aio.Channel:
        if self.secure:
            return aio.secure_channel(self.address, self._credentials(), options=self._options())
        return aio.insecure_channel(self.address, options=self._options())


def add_connection_arguments(parser: argparse.ArgumentParser, *, what: str = "parlons server or gateway") -> None:
    """The options every client command takes to reach a production gateway."""
    group = parser.add_argument_group("connection")
    group.add_argument("--server", help=f"gRPC address (host:port) of a running {what} "
                                        "(default: the services, started in this process)")
    group.add_argument("--api-key", help=f"the tenant's API key (default: ${API_KEY_ENV}; prefer it or "
                                         "--api-key-file: a command line is visible to other users)")
    group.add_argument("--api-key-file", help="a file holding the API key (first line)")
    group.add_argument("--tls", action="store_true", help="TLS to the server (the system's CAs unless --ca)")
    group.add_argument("--ca", help="CA certificate (PEM) the server's certificate is checked against")
    group.add_argument("--cert", help="client certificate (PEM), for mutual TLS")
    group.add_argument("--key", help="the client certificate's private key (PEM)")


def warn_secret_in_argv(option: str, env: str, file_option: str) -> None:
    """Say that a secret given as `option` can be read by anyone on the machine (ps,
    /proc/PID/cmdline), and where to put it instead."""
    print(f"warning: {option} on the command line is visible to every user of this machine (ps); "
          f"use ${env} or {file_option} instead", file=sys.stderr, flush=True)


def api_key_from_args(args: argparse.Namespace) -> str | None:
    """--api-key (warned about), else --api-key-file's first line, else $PARLONS_API_KEY."""
    if getattr(args, "api_key", None):
        warn_secret_in_argv("--api-key", API_KEY_ENV, "--api-key-file")
        return str(args.api_key)
    if getattr(args, "api_key_file", None):
        lines = Path(args.api_key_file).read_text(encoding="utf-8").splitlines()
        return lines[0].strip() if lines and lines[0].strip() else None
    return os.environ.get(API_KEY_ENV) or None


def connection_from_args(args: argparse.Namespace, address: str | None = None) -> Connection:
    """The Connection the options describe; `address` for an in-process server (loopback,
    no credentials needed)."""
    if address is not None:
        return Connection(address)
    return Connection.from_files(
        args.server, api_key=api_key_from_args(args), tls=args.tls,
        ca=args.ca, cert=args.cert, key=args.key,
    )


class StubClient:
    """A stub on a channel (given, or opened from a Connection and closed with the client)
    and the metadata every call carries: what the sync SDK (`sdk.py`) and the asyncio SDK
    (`aio.py`) share; each adds its own calls, retries and closing."""

    #: Open an asyncio channel (aio.py) rather than a blocking one (sdk.py).
    asyncio_channel: ClassVar[bool] = False

    def __init__(self, target: Any, stub: Callable[[Any], Any], *, metadata: Iterable[tuple[str, str]] = ()) -> None:
        if isinstance(target, Connection):
            self.channel = target.aio_channel() if self.asyncio_channel else target.channel()
            self._owned = True
            metadata = (*target.metadata, *metadata)
        else:
            self.channel = target
            self._owned = False
        self.stub = stub(self.channel)
        self.metadata = tuple(metadata)
