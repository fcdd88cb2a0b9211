"""`parlons tenants create|revoke|list`: API keys for the gateway.

Edits the tenants file (or directory) the gateway reads; a running gateway picks the
change up within `[gateway] tenants_reload_s`, no restart. A new key is printed once, on
stdout (so it can be piped into a secret store), and only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from parlons.errors import ParlonsError
from parlons.services.gateway.tenants import TenantStore

console = Console(stderr=True)


def _tenants_path(args: argparse.Namespace) -> Path:
    if args.tenants:
        return Path(args.tenants)
    from parlons.services.common.config import load_config

    path = load_config(args.config).gateway.tenants_path
    if not path:
        raise ParlonsError(
            "no tenants file: pass --tenants PATH or set [gateway] tenants_path in the config "
            "(PARLONS_GATEWAY_TENANTS_PATH)"
        )
    return Path(path)


def _create(args: argparse.Namespace) -> int:
    store = TenantStore(_tenants_path(args))
    quotas = {
        "audio_seconds_per_minute": args.audio_seconds_per_minute,
        "characters_per_minute": args.characters_per_minute,
        "concurrent_streams": args.concurrent_streams,
    }
    key, key_id = store.create_key(
        args.name, display_name=args.display_name or "", label=args.label or "",
        quotas={k: v for k, v in quotas.items() if v is not None},
        mtls_identities=args.mtls_identity or [],
    )
    console.print(
        f"key [bold]{key_id}[/] created for tenant [bold]{args.name}[/] in {store.path}. "
        "It is shown once: store it now."
    )
    sys.stdout.write(key + "\n")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store = TenantStore(_tenants_path(args))
    revoked = store.revoke(args.name, args.key_id)
    what = f"key {args.key_id}" if args.key_id else f"tenant {args.name} (all keys; tenant disabled)"
    console.print(f"revoked {what}: {', '.join(revoked) or 'already revoked'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    tenants = TenantStore(_tenants_path(args)).load().tenants
    if args.json:
        out = [
            {
                "name": t.name, "display_name": t.display_name, "enabled": t.enabled,
                "keys": [{"id": k.id, "created": k.created, "revoked": k.revoked, "label": k.label} for k in t.keys],
                "mtls_identities": list(t.mtls_identities),
                "quotas": {
                    "audio_seconds_per_minute": t.quotas.audio_seconds_per_minute,
                    "characters_per_minute": t.quotas.characters_per_minute,
                    "concurrent_streams": t.quotas.concurrent_streams,
                },
                "glossaries": sorted(t.glossaries),
            }
            for t in tenants.values()
        ]
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return 0
    table = Table("tenant", "enabled", "keys (active/revoked)", "audio s/min", "chars/min", "streams", "glossaries")
    for t in tenants.values():
        active = sum(not k.revoked for k in t.keys)
        q = t.quotas
        table.add_row(
            t.name, "yes" if t.enabled else "no", f"{active}/{len(t.keys) - active}",
            f"{q.audio_seconds_per_minute:g}" if q.audio_seconds_per_minute else "-",
            str(q.characters_per_minute or "-"), str(q.concurrent_streams or "-"),
            ", ".join(sorted(t.glossaries)) or "-",
        )
    Console().print(table)
    return 0


def _guarded(func):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ParlonsError as exc:
            console.print(f"[red]{exc.message}")
            return 2

    return run


def add_tenants_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tenants", help="create, revoke and list the gateway's API keys",
        description="Manage the tenants file the gateway reads (reloaded without restart).",
    )
    commands = parser.add_subparsers(dest="tenants_command", metavar="ACTION", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--tenants", help="tenants file or directory (default: [gateway] tenants_path)")
        sub.add_argument("--config", help="config file to read [gateway] tenants_path from")

    create = commands.add_parser("create", help="add a key (and the tenant if new); prints the key once")
    create.add_argument("name", help="tenant name (lowercase letters, digits, . _ -)")
    create.add_argument("--display-name")
    create.add_argument("--label", help="note stored with the key (where it is used)")
    create.add_argument("--audio-seconds-per-minute", type=float)
    create.add_argument("--characters-per-minute", type=int)
    create.add_argument("--concurrent-streams", type=int)
    create.add_argument("--mtls-identity", action="append",
                        help="client certificate CN or SAN that identifies this tenant (repeatable)")
    common(create)
    create.set_defaults(func=_guarded(_create))

    revoke = commands.add_parser("revoke", help="revoke a key, or every key of a tenant")
    revoke.add_argument("name")
    revoke.add_argument("--key-id", help="the key to revoke (default: all, and disable the tenant)")
    common(revoke)
    revoke.set_defaults(func=_guarded(_revoke))

    listing = commands.add_parser("list", help="tenants, keys (ids only), quotas, glossaries")
    listing.add_argument("--json", action="store_true")
    common(listing)
    listing.set_defaults(func=_guarded(_list))
