"""Lint and types run with the tests (issue 10), so that CI's one test command enforces
them: ruff with the project's rule set on everything, mypy on the shipped code, the tests
and the benchmarks.

mypy cannot follow pyproject.toml's `package-dir` (`parlons.services` is the folder
services/, and so on), and with `ignore_missing_imports` every `parlons.*` import would
silently become Any. So the test lays out the installed package as a tree of symlinks
(built from `package-dir`, so it follows the packaging) and checks it as `parlons`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout[-8000:] + result.stderr[-2000:]


def test_ruff_finds_nothing_with_the_project_rule_set() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, _output(result)


def package_tree(root: Path, tree: Path) -> Path:
    """Symlink the packages of `root` under `tree` as they are installed, following
    [tool.setuptools] package-dir: a package mapped to its own folder is one link; a
    package with sub-packages mapped elsewhere is a folder of links to its entries."""
    package_dir: dict[str, str] = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert "" not in package_dir, "a root package-dir is not laid out by this test"
    for name in sorted(package_dir, key=lambda n: n.count(".")):
        source, target = root / package_dir[name], tree.joinpath(*name.split("."))
        assert target.parent.is_dir() and not target.is_symlink(), f"{name}: its parent package must be mapped first"
        children = {n.rpartition(".")[2] for n in package_dir if n.rpartition(".")[0] == name}
        if not children:
            target.symlink_to(source, target_is_directory=True)
            continue
        target.mkdir()
        for entry in source.iterdir():
            if entry.name not in children:
                (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return tree


@pytest.fixture(scope="module")
def mypy_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(tree, cache): the package tree, with tests/ and benchmarks/ beside it, and a mypy
    cache that the runs of this module share."""
    tree = package_tree(ROOT, tmp_path_factory.mktemp("tree"))
    for folder in ("tests", "benchmarks"):
        (tree / folder).symlink_to(ROOT / folder, target_is_directory=True)
    return tree, tmp_path_factory.mktemp("mypy-cache")


def _mypy(tree: Path, cache: Path, *targets: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(tree)}
    return _run("mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(cache), *targets, cwd=cwd, env=env)


def test_mypy_resolves_parlons_imports(mypy_tree: tuple[Path, Path], tmp_path: Path) -> None:
    """Regression: a call to a function the gateway's compose module lacks is an error,
    so `parlons.*` imports are checked, not silently Any."""
    tree, cache = mypy_tree
    probe = tmp_path / "probe_parlons_imports.py"
    probe.write_text("from parlons.services.gateway import compose\n\ncompose.no_such_function()\n")
    result = _mypy(tree, cache, str(probe), cwd=tmp_path)
    assert result.returncode == 1, _output(result)
    assert f'{probe.name}:3: error: Module has no attribute "no_such_function"' in result.stdout, _output(result)


def test_mypy_finds_nothing_in_the_code_tests_and_benchmarks(mypy_tree: tuple[Path, Path]) -> None:
    # From the tree, so paths read parlons/services/..., tests/..., and [tool.mypy] exclude applies.
    tree, cache = mypy_tree
    result = _mypy(tree, cache, "parlons", "tests", "benchmarks", cwd=tree)
    assert result.returncode == 0, _output(result)
