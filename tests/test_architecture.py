"""The dependency graph docs/architecture.md draws, held by a test: the core at the bottom,
no cycle between the top-level packages, engines without gRPC.

Every `import` in the shipped code counts, those inside functions included (a lazy import
is still a dependency). Layers, bottom up:

- core: the modules directly in `parlons/` (errors, languages, audio constants, transcript
  formats...) and the generated `parlons.v1`; they import only each other;
- models: the catalog and the model manager; the core only;
- services: the core and models;
- clients: the core only, except `clients/inprocess.py`, which starts services in the
  client's process by design;
- entry points (`parlons.cli`, `parlons.serve`): anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"parlons": ROOT / "parlons", "parlons.services": ROOT / "services",
           "parlons.models": ROOT / "models", "parlons.clients": ROOT / "clients"}
ENTRY_POINTS = {"parlons.cli", "parlons.serve"}
ALLOWED = {
    "core": {"core"},
    "models": {"core", "models"},
    "services": {"core", "models", "services"},
    "clients": {"core", "clients"},
}
BY_DESIGN = {("parlons.clients.inprocess", "services"), ("parlons.clients.inprocess", "entry")}


def _modules() -> Iterator[tuple[str, Path]]:
    for prefix, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            if prefix == "parlons" and path.parent != folder:
                continue  # parlons/v1 is generated; services etc. are their own folders
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            yield ".".join([prefix, *parts]), path


def _imports(path: Path) -> set[str]:
    """The parlons modules (or packages) a file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in names if n.split(".")[0] == "parlons")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "parlons")
    return found


def _grpc_imported(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "grpc":
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "grpc" for a in node.names):
            return True
    return False


def layer(module: str) -> str:
    if module in ENTRY_POINTS:
        return "entry"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("services", "models", "clients"):
        return parts[1]
    return "core"  # parlons.<module>, parlons.v1


GRAPH = {module: _imports(path) for module, path in _modules()}
PATHS = dict(_modules())


def _resolve(name: str) -> str | None:
    """The module a dotted import name lands in (`parlons.errors.InvalidArgument` -> `parlons.errors`)."""
    while name and name not in GRAPH:
        name = name.rpartition(".")[0]
    return name or None


def test_every_import_respects_the_layers() -> None:
    wrong = []
    for module, imported in GRAPH.items():
        source = layer(module)
        if source == "entry":
            continue
        for name in imported:
            target = layer(name)
            if target not in ALLOWED[source] and (module, target) not in BY_DESIGN:
                wrong.append(f"{module} ({source}) imports {name} ({target})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_cycle_between_top_level_packages() -> None:
    edges: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        for name in imported:
            a, b = layer(module), layer(name)
            if a != b:
                edges.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(f"{a} -> {b} -> ... -> {a}" for a, bs in edges.items() for b in bs if reaches(b, a, {b}))
    assert not cycles, cycles


def test_engines_import_no_grpc_even_indirectly() -> None:
    """Engines are plain Python (docs/architecture.md): gRPC stays in servicers and the runtime."""
    engines = [m for m in GRAPH if m.startswith("parlons.services.") and m.endswith(".engine")]
    assert len(engines) >= 4, engines
    for engine in engines:
        seen, todo = set(), [engine]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            assert not module.startswith("parlons.v1"), f"{engine} reaches the generated gRPC code through {module}"
            assert not _grpc_imported(PATHS[module]), f"{engine} reaches grpc through {module}"
            todo.extend(r for r in (_resolve(n) for n in GRAPH[module]) if r is not None and r in PATHS)


def test_the_graph_is_read_at_all() -> None:
    """The checks above would pass on an empty graph: make sure they see the code."""
    assert layer("parlons.errors") == "core" and layer("parlons.services.gateway.core") == "services"
    assert "parlons.errors" in GRAPH["parlons.services.transcription.engine"] or any(
        n.startswith("parlons.errors") for n in GRAPH["parlons.services.transcription.engine"])
    assert any(n.startswith("parlons.services") for n in GRAPH["parlons.clients.inprocess"])
    assert len(GRAPH) > 100
