"""`parlons serve`: every service in one process on one port, or one service alone.

The embedded default (`parlons serve`) is what a single machine at a prefecture runs;
`parlons serve transcription` etc. are the split deployment behind the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Callable

from parlons.services.common.config import ParlonsConfig, load_config
from parlons.services.common.logs import configure_logging
from parlons.services.common.server import ServiceModule, serve_forever

# service name -> (module path, factory name); each factory takes the whole config.
SERVICES: dict[str, tuple[str, str]] = {
    "transcription": ("parlons.services.transcription.servicer", "module_from_config"),
    "diarization": ("parlons.services.diarization.servicer", "module_from_config"),
    "translation": ("parlons.services.translation.servicer", "module_from_config"),
    "anonymization": ("parlons.services.anonymization.servicer", "module_from_config"),
    # Fronts the others: with them in one process it holds the public port and they run
    # on a private socket behind it (see services/gateway/servicer.py).
    "gateway": ("parlons.services.gateway.servicer", "module_from_config"),
}


def available_services() -> list[str]:
    return list(SERVICES)


def _factory(name: str) -> Callable[..., ServiceModule]:
    module_path, factory_name = SERVICES[name]
    return getattr(importlib.import_module(module_path), factory_name)


def build_modules(config: ParlonsConfig, names: list[str]) -> list[ServiceModule]:
    """The modules to serve. With "gateway" among the names, the gateway is the one
    public module and the others become its in-process backends."""
    from parlons.models.manager import ModelManager

    models = ModelManager()  # one for the process, handed to every module that loads models
    modules = [_factory(name)(config, models) for name in names if name != "gateway"]
    if "gateway" in names:
        return [_factory("gateway")(config, modules)]
    return modules


def enabled_services(config: ParlonsConfig) -> list[str]:
    """The embedded default: every service its config section enables."""
    return [name for name in SERVICES if getattr(config, name).enabled]


def add_common_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (see docs/operations.md)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="gRPC port (default 50051)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0 = off)")


def config_from_args(args: argparse.Namespace) -> ParlonsConfig:
    config = load_config(args.config)
    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port
    if getattr(args, "metrics_port", None) is not None:
        config.server.metrics_port = args.metrics_port
    return config


def run_serve(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    configure_logging(config.server.log_level, config.server.log_json)
    names = [args.service] if args.service else enabled_services(config)
    asyncio.run(serve_forever(config.server, build_modules(config, names)))
    return 0


def add_serve_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC services (all in one process by default)",
        description="Run every enabled service on one port, or one service for a split deployment.",
    )
    parser.add_argument("service", nargs="?", choices=sorted(SERVICES), help="run only this service")
    add_common_server_options(parser)
    parser.set_defaults(func=run_serve)
