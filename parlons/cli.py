"""The `parlons` command: serve, models, transcribe, translate, anonymize, listen, desk, tenants, health.

Each command lives next to the code it drives and registers itself here; this module
only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (module, function adding the sub-command). Modules are imported only to build the
# parser, so `parlons --help` stays quick and each command loads only what it needs.
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("parlons.serve", "add_serve_command"),
    ("parlons.models.cli", "add_models_command"),
    ("parlons.clients.transcribe_cli", "add_transcribe_command"),
    ("parlons.clients.translate_cli", "add_translate_command"),
    ("parlons.clients.anonymize_cli", "add_anonymize_command"),
    ("parlons.clients.listen_cli", "add_listen_command"),
    ("parlons.clients.desk.cli", "add_desk_command"),
    ("parlons.clients.check_gateway_cli", "add_check_gateway_command"),
    ("parlons.services.gateway.cli", "add_tenants_command"),
    ("parlons.health", "add_health_command"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parlons",
        description="Speech and translation services for French public services (gRPC).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name, function_name in _COMMANDS:
        getattr(importlib.import_module(module_name), function_name)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except TimeoutError as exc:  # a server that never came up (wait_until_serving)
        print(f"parlons {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
