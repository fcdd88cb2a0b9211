"""`parlons models list|pull|verify|path`: the model manager from a shell.

Tables go to stdout; progress bars and errors to stderr. Exit codes: 0 success, 1 a
model failed (not installable, corrupt, unknown), 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from parlons.errors import ParlonsError

from .manager import ModelManager


def add_models_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `models` and its subcommands; `args.func(args)` runs one and returns an exit code."""
    parser = subparsers.add_parser(
        "models",
        help="list, pull and verify model weights",
        description="Manage the model cache ($PARLONS_MODEL_CACHE, default ~/.cache/parlons/models).",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="model cache directory")
    parser.add_argument("--catalog", type=Path, default=None, help="catalog file (default: the packaged one)")
    parser.set_defaults(func=_usage(parser))
    commands = parser.add_subparsers(dest="models_command", metavar="COMMAND")

    p = commands.add_parser("list", help="every catalog model and whether it is installed")
    p.add_argument("--kind", help="only models of this kind (whisper, translation, ...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_list)

    p = commands.add_parser("pull", help="download, check and install models")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--force", action="store_true", help="reinstall even if already installed")
    p.add_argument("--offline", action="store_true", help="local sources only, no network")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=_pull)

    p = commands.add_parser("verify", help="hash installed files against the catalog")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every installed model")
    p.set_defaults(func=_verify)

    p = commands.add_parser("path", help="print the directory of an installed model")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--pull", action="store_true", help="pull it first when missing")
    p.set_defaults(func=_path)


register = add_models_command


def _manager(args: argparse.Namespace, *, allow_download: bool = True) -> ModelManager:
    return ModelManager(args.cache_dir, allow_download=allow_download, catalog=args.catalog)


def _usage(parser: argparse.ArgumentParser):
    def run(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return run


def _out() -> Console:
    """Stdout; wide when it is not a terminal, so piped tables are not squeezed to 80."""
    return Console(width=None if sys.stdout.isatty() else 160)


def _err() -> Console:
    return Console(file=sys.stderr)


def _error(message: str) -> None:
    _err().print("error: " + message, style="red", markup=False, highlight=False)


def _list(args: argparse.Namespace) -> int:
    manager = _manager(args)
    infos = [i for i in manager.list() if not args.kind or i.kind == args.kind]
    if args.json:
        rows = [
            {
                "name": i.name, "kind": i.kind, "languages": list(i.languages), "size": i.size,
                "licence": i.licence, "non_commercial": i.non_commercial,
                "status": i.status, "path": str(i.path) if i.installed else None,
                "installed_from": i.installed_from, "sources": list(i.sources),
            }
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Models (cache: {manager.cache_dir})")
    for column in ("Name", "Kind", "Languages", "Size", "Licence", "Status"):
        table.add_column(column, no_wrap=column != "Languages")
    for i in infos:
        licence = i.licence + (" [bold red](non-commercial)[/]" if i.non_commercial else "")
        status = {"ok": "[green]installed[/]", "unpinned": "[green]installed[/] (unpinned)",
                  "not-installed": "-"}.get(i.status, f"[red]{i.status}[/]")
        table.add_row(
            i.name, i.kind, " ".join(i.languages), i.size, licence, status,
        )
    _out().print(table)
    return 0


def _pull(args: argparse.Namespace) -> int:
    manager = _manager(args, allow_download=not args.offline)
    failed = 0
    for name in args.names:
        try:
            path = manager.pull(name, progress=not args.quiet, force=args.force)
        except ParlonsError as exc:
            _error(exc.message)
            failed += 1
            continue
        report = manager.verify(name)
        note = " (some digests pinned at first pull)" if report.status == "unpinned" else ""
        print(f"{manager.entry(name).name}\t{path}{note}")
    return 1 if failed else 0


def _verify(args: argparse.Namespace) -> int:
    manager = _manager(args)
    try:
        names = args.names or [i.name for i in manager.list() if i.installed]
        reports = [manager.verify(name) for name in names]
    except ParlonsError as exc:
        _error(exc.message)
        return 1
    if not reports:
        _err().print("no model installed in " + str(manager.cache_dir))
        return 0
    table = Table(title="Model verification")
    for column in ("Name", "Status", "Detail"):
        table.add_column(column)
    for r in reports:
        colour = {"ok": "green", "unpinned": "yellow"}.get(r.status, "red")
        table.add_row(r.name, f"[{colour}]{r.status}[/]", r.message)
    _out().print(table)
    return 0 if all(r.ok for r in reports) else 1


def _path(args: argparse.Namespace) -> int:
    manager = _manager(args)
    try:
        if args.pull:
            path = manager.pull(args.name, progress=True)
        else:
            info = manager.info(args.name)
            if not info.installed:
                _error(f"model {info.name!r} is not installed; run `parlons models pull {info.name}`")
                return 1
            path = manager.resolve(info.name)
    except ParlonsError as exc:
        _error(exc.message)
        return 1
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m parlons.models.cli ...`), same as `parlons models ...`."""
    parser = argparse.ArgumentParser(prog="parlons")
    add_models_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
