"""The model manager: catalog names to verified local directories.

`ModelManager().resolve("base")` is how every service finds its weights: it returns the
cached directory, pulling it first when it is missing. A pull tries the entry's sources
in order, stages the files in a temporary directory inside the cache, checks every
file's sha256, records what it installed in a manifest (`.parlons-model.json`) and
renames the directory into place, so a crash never leaves a half-installed model that
looks whole. A file lock per model keeps two processes from pulling the same model at
once; the second one waits and then finds it installed.

Integrity, and what it costs:
- `pull` and `verify` hash every file (about 1 s per GB).
- `resolve` runs at every service start, so it does not hash everything: it stats each
  file against the manifest (existence, size, mtime) and hashes only a file whose size
  or mtime changed since it was verified. A truncated, replaced or edited file is caught
  at resolve; silent bit rot that keeps size and mtime is left to `verify` (run it from
  cron, or pass `full_verify=True`).
- Files whose digest the catalog does not know (converted translation models) are
  pinned on first pull: the manifest's digest becomes the reference ("unpinned" status).
"""

from __future__ import annotations

import builtins

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from parlons.errors import ModelCorrupt, ModelNotFound, Unavailable

from .catalog import Catalog, FileSpec, ModelEntry, load_catalog
from .progress import ProgressCallback, Reporter, SilentReporter, make_reporter
from .sources import SourceError, SourceSkipped, fetch, is_network

log = logging.getLogger("parlons.models")

ENV_CACHE = "PARLONS_MODEL_CACHE"
MANIFEST = ".parlons-model.json"
_CHUNK = 8 * 1024 * 1024

# Statuses, best first. "unpinned" is healthy: digests recorded at first pull.
OK, UNPINNED, OUTDATED, CORRUPT, MISSING, NOT_INSTALLED = (
    "ok", "unpinned", "outdated", "corrupt", "missing", "not-installed",
)
_HEALTHY = (OK, UNPINNED)
_SEVERITY = {OK: 0, UNPINNED: 1, OUTDATED: 2, CORRUPT: 3, MISSING: 4, NOT_INSTALLED: 5}


def default_cache_dir() -> Path:
    """$PARLONS_MODEL_CACHE, else ~/.cache/parlons/models."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "parlons" / "models"


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class FileRecord:
    """One installed file as verified at install time."""

    name: str
    sha256: str
    size: int
    mtime_ns: int
    pinned: bool  # the digest came from the catalog (False: trust on first use)


@dataclass(frozen=True)
class InstallRecord:
    """The manifest written next to an installed model's files."""

    name: str
    kind: str
    source: str
    installed_at: str
    files: tuple[FileRecord, ...]

    def to_json(self) -> str:
        data = asdict(self)
        data["schema"] = 1
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def read(cls, directory: Path) -> InstallRecord | None:
        """The manifest of `directory`, or None when absent or unreadable."""
        try:
            data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            return cls(
                name=data["name"],
                kind=data["kind"],
                source=data["source"],
                installed_at=data["installed_at"],
                files=tuple(FileRecord(**f) for f in data["files"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class FileCheck:
    name: str
    status: str  # ok | unpinned | outdated | corrupt | missing
    expected: str  # the reference sha256 (catalog or manifest)
    actual: str | None  # None when not hashed (stat-only check) or missing
    detail: str = ""


@dataclass(frozen=True)
class VerifyReport:
    name: str
    path: Path
    status: str  # ok | unpinned | outdated | corrupt | missing | not-installed
    files: tuple[FileCheck, ...]
    message: str

    @property
    def ok(self) -> bool:
        return self.status in _HEALTHY


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str
    languages: tuple[str, ...]
    size: str
    licence: str
    non_commercial: bool
    description: str
    sources: tuple[str, ...]
    aliases: tuple[str, ...]
    source_languages: tuple[str, ...]
    target_languages: tuple[str, ...]
    path: Path
    installed: bool
    status: str  # as VerifyReport.status, from the cheap check
    installed_from: str | None


# ------------------------------------------------------------------------------ manager


class ModelManager:
    """Catalog names to verified local model directories (see the module docstring)."""

    _thread_locks: dict[str, threading.Lock] = {}
    _thread_locks_guard = threading.Lock()

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        allow_download: bool = True,
        catalog: Catalog | Path | str | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.allow_download = allow_download
        self.catalog = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)

    # ---------------------------------------------------------------- queries

    def entry(self, name: str) -> ModelEntry:
        """The catalog entry for a name or alias; ModelNotFound lists the known names."""
        entry = self.catalog.get(name)
        if entry is None:
            raise ModelNotFound(
                f"unknown model {name!r}: not in the catalog. "
                f"Known models: {', '.join(self.catalog.names())}"
            )
        return entry

    def path_for(self, name: str) -> Path:
        """Where the model is (or would be) installed, without checking anything."""
        return self.cache_dir / self.entry(name).name

    def list(self) -> list[ModelInfo]:
        """Every catalog model with its install state (cheap check: no full hashing)."""
        return [self._info(entry) for entry in self.catalog]

    def info(self, name: str) -> ModelInfo:
        return self._info(self.entry(name))

    def installed(self, kind: str) -> builtins.list[ModelInfo]:
        """Catalog models of `kind` present in the cache, healthy or not (`status` says;
        a half-downloaded or altered one is `missing`/`corrupt`): what a service serves
        when its configuration names none."""
        return [info for info in self.list() if info.kind == kind and info.installed]

    def foreign_entries(self) -> builtins.list[Path]:
        """What sits in the cache under no catalog name: models converted or unpacked by
        hand (`<cache>/my-opus-mt-fr-de/`, `<cache>/en_fr.argosmodel`). The service that
        reads them decides what they are."""
        if not self.cache_dir.is_dir():
            return []
        known = {entry.name for entry in self.catalog}
        return sorted(
            path for path in self.cache_dir.iterdir()
            if path.name not in known and not path.name.startswith(".") and not path.name.endswith((".part", ".lock"))
            and (path.is_dir() or path.suffix == ".argosmodel")
        )

    def _info(self, entry: ModelEntry) -> ModelInfo:
        directory = self.cache_dir / entry.name
        record = InstallRecord.read(directory)
        status = self._check(entry, directory, record, full=False).status
        return ModelInfo(
            name=entry.name,
            kind=entry.kind,
            languages=entry.languages,
            size=entry.size,
            licence=entry.licence,
            non_commercial=entry.non_commercial,
            description=entry.description,
            sources=tuple(s.describe() for s in entry.sources),
            aliases=entry.aliases,
            source_languages=entry.source_languages,
            target_languages=entry.target_languages,
            path=directory,
            installed=record is not None,
            status=status,
            installed_from=record.source if record else None,
        )

    # ---------------------------------------------------------------- resolve

    def resolve(
        self, name_or_path: str | os.PathLike[str], *, kind: str | None = None, full_verify: bool = False
    ) -> Path:
        """A local directory with the model's files.

        A path (anything with a separator, or an existing file or directory that is not
        a catalog name) is used as it is; for kind "whisper" it must hold model.bin. A
        catalog name gives its cached directory, pulled first when missing (network
        sources only when `allow_download`). Raises ModelNotFound for unknown names and
        models that cannot be found, ModelCorrupt for files that fail their checks.
        """
        text = os.fspath(name_or_path).strip()
        if not text:
            raise ModelNotFound(f"empty model name; known models: {', '.join(self.catalog.names())}")
        entry = None if _looks_like_path(text) else self.catalog.get(text)
        if entry is None:
            path = Path(text).expanduser()
            if _looks_like_path(text) or path.exists():
                return self._resolve_path(path, kind)
            known = [e.name for e in self.catalog if kind in (None, e.kind)]
            what = f"{kind} models" if kind else "Known models"
            raise ModelNotFound(
                f"unknown model {text!r}: not in the catalog and not a path. "
                f"{what}: {', '.join(known)}"
            )
        if kind is not None and entry.kind != kind:
            same_kind = [e.name for e in self.catalog if e.kind == kind]
            raise ModelNotFound(
                f"{entry.name!r} is a {entry.kind} model, not a {kind} model. "
                f"{kind} models: {', '.join(same_kind) or 'none'}"
            )
        directory = self.cache_dir / entry.name
        report = self._check(entry, directory, InstallRecord.read(directory), full=full_verify)
        if report.status in _HEALTHY:
            return directory
        if report.status == NOT_INSTALLED:
            log.info("model %s is not installed in %s: pulling it", entry.name, self.cache_dir)
            return self.pull(entry.name, progress=False)
        raise ModelCorrupt(report.message)

    def _resolve_path(self, path: Path, kind: str | None) -> Path:
        if not path.exists():
            raise ModelNotFound(f"model path {path} does not exist")
        if kind == "whisper" and not (path / "model.bin").is_file():
            raise ModelNotFound(
                f"{path} is not a CTranslate2 Whisper model directory: it has no model.bin"
            )
        if path.is_dir():  # a copied cache directory: held to its own manifest when it has one
            report = verify_directory(path, full=False)
            if report.status not in (*_HEALTHY, NOT_INSTALLED):
                raise ModelCorrupt(report.message)
        return path.resolve()

    # ------------------------------------------------------------------- pull

    def pull(
        self, name: str, *, progress: bool | ProgressCallback = True, force: bool = False
    ) -> Path:
        """Install `name` into the cache (a no-op when already installed and healthy).

        `progress`: True for a rich bar on stderr, False for silence, or a callable that
        receives ProgressEvents. `force` re-installs even a healthy model.
        """
        entry = self.entry(name)
        directory = self.cache_dir / entry.name
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._locked(entry.name):
            if not force:
                report = self._check(entry, directory, InstallRecord.read(directory), full=False)
                if report.status in _HEALTHY:
                    return directory
            reporter = make_reporter(entry.name, progress)
            try:
                return self._install(entry, directory, reporter)
            finally:
                reporter.close()

    def _install(self, entry: ModelEntry, directory: Path, reporter: Reporter) -> Path:
        for stale in self.cache_dir.glob(f".staging+{entry.name}+*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed pull (we hold the lock)
        failures: list[str] = []
        mismatch = False
        for source in entry.sources:
            what = source.describe()
            if is_network(source) and not self.allow_download:
                failures.append(f"{what}: skipped (downloads disabled)")
                continue
            staging = self.cache_dir / f".staging+{entry.name}+{uuid.uuid4().hex[:8]}"
            files_dir, work_dir = staging / "files", staging / "work"
            try:
                started = time.monotonic()
                specs = fetch(source, entry, files_dir, work_dir, reporter)
                shutil.rmtree(work_dir, ignore_errors=True)
                records, problems = _verify_staged(files_dir, specs, reporter)
                if problems:
                    mismatch = True
                    failures.append(f"{what}: {'; '.join(problems)}")
                    log.warning("model %s from %s failed verification: %s", entry.name, what, problems)
                    continue
                record = InstallRecord(
                    name=entry.name,
                    kind=entry.kind,
                    source=what,
                    installed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    files=records,
                )
                (files_dir / MANIFEST).write_text(record.to_json(), encoding="utf-8")
                _swap_into_place(files_dir, directory)
                reporter.update("done", what, 1, 1)
                log.info(
                    "installed model %s from %s in %.1f s", entry.name, what, time.monotonic() - started
                )
                return directory
            except SourceSkipped as exc:
                failures.append(str(exc))
            except SourceError as exc:
                failures.append(str(exc))
                log.info("model %s: %s", entry.name, exc)
            except Exception as exc:
                failures.append(f"{what}: {type(exc).__name__}: {exc}")
                log.warning("model %s: %s failed", entry.name, what, exc_info=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        message = f"could not install model {entry.name!r}: " + " | ".join(failures)
        if mismatch:
            raise ModelCorrupt(message)
        if not self.allow_download:
            raise ModelNotFound(
                f"model {entry.name!r} is not installed in {self.cache_dir} and downloads are "
                f"disabled; run `parlons models pull {entry.name}` ({' | '.join(failures)})"
            )
        raise Unavailable(message)

    # ----------------------------------------------------------------- verify

    def verify(self, name: str) -> VerifyReport:
        """Hash every installed file of `name` against the catalog and the manifest."""
        entry = self.entry(name)
        directory = self.cache_dir / entry.name
        # Best effort: a read-only cache cannot hold a lock file, and nobody pulls into it.
        with self._locked(entry.name, best_effort=True):
            return self._check(entry, directory, InstallRecord.read(directory), full=True)

    def remove(self, name: str) -> bool:
        """Delete an installed model; True when there was one."""
        entry = self.entry(name)
        directory = self.cache_dir / entry.name
        with self._locked(entry.name):
            if not directory.exists():
                return False
            trash = self.cache_dir / f".staging+{entry.name}+rm{uuid.uuid4().hex[:8]}"
            os.rename(directory, trash)
            shutil.rmtree(trash, ignore_errors=True)
            return True

    @staticmethod
    def _check(
        entry: ModelEntry | None, directory: Path, record: InstallRecord | None, *, full: bool
    ) -> VerifyReport:
        """Compare installed files with their manifest and, when given, the catalog.

        full=False stats files and hashes only those whose size or mtime changed.
        """
        name = entry.name if entry else directory.name
        if record is None:
            message = f"model {name!r} is not installed in {directory.parent}"
            if directory.exists():
                message += f" ({directory} has no {MANIFEST}: an interrupted or manual copy)"
            return VerifyReport(name, directory, NOT_INSTALLED, (), message)
        checks: list[FileCheck] = []
        for f in record.files:
            path = directory / f.name
            try:
                stat = path.stat()
            except OSError:
                checks.append(FileCheck(f.name, MISSING, f.sha256, None, "file is missing"))
                continue
            actual: str | None = None
            if stat.st_size != f.size:
                checks.append(
                    FileCheck(f.name, CORRUPT, f.sha256, None, f"size {stat.st_size} != {f.size}")
                )
                continue
            if full or stat.st_mtime_ns != f.mtime_ns:
                actual = sha256_file(path)
                if actual != f.sha256:
                    checks.append(FileCheck(f.name, CORRUPT, f.sha256, actual, "sha256 mismatch"))
                    continue
            known = entry.known_digests(f.name) if entry else set()
            if known and f.sha256 not in known:
                checks.append(
                    FileCheck(f.name, OUTDATED, f.sha256, actual, "not the catalog's digest")
                )
            elif not known and not (entry is None and f.pinned):
                checks.append(FileCheck(f.name, UNPINNED, f.sha256, actual, "pinned at first pull"))
            else:
                checks.append(FileCheck(f.name, OK, f.sha256, actual))
        status = max((c.status for c in checks), key=_SEVERITY.__getitem__, default=OK)
        return VerifyReport(name, directory, status, tuple(checks), _message(name, status, checks))

    # ------------------------------------------------------------------ locks

    def _locked(self, name: str, *, best_effort: bool = False) -> _ModelLock:
        key = str(self.cache_dir.absolute() / name)
        with ModelManager._thread_locks_guard:
            thread_lock = ModelManager._thread_locks.setdefault(key, threading.Lock())
        lock_dir = self.cache_dir / ".locks"
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            if not best_effort:
                raise
        return _ModelLock(thread_lock, FileLock(str(lock_dir / f"{name}.lock")), best_effort)


class _ModelLock:
    """A thread lock (same process) plus a file lock (other processes), in that order."""

    def __init__(self, thread_lock: threading.Lock, file_lock: FileLock, best_effort: bool) -> None:
        self._thread_lock = thread_lock
        self._file_lock = file_lock
        self._best_effort = best_effort
        self._held = False

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            self._file_lock.acquire()
            self._held = True
        except OSError:
            if not self._best_effort:
                self._thread_lock.release()
                raise
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._held:
                self._file_lock.release()
                self._held = False
        finally:
            self._thread_lock.release()


# ------------------------------------------------------------------------------ helpers


def verify_directory(directory: Path, *, full: bool = True) -> VerifyReport:
    """A model directory outside the catalog held to its own manifest (status
    NOT_INSTALLED when it has none); `full=False` hashes only the files whose size or
    mtime changed."""
    return ModelManager._check(None, directory, InstallRecord.read(directory), full=full)


def sha256_file(path: Path, on_progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if on_progress:
                on_progress(done)
    return digest.hexdigest()


def _verify_staged(
    files_dir: Path, specs, reporter: Reporter | None = None
) -> tuple[tuple[FileRecord, ...], list[str]]:
    """Hash every staged file; problems name the file and both digests."""
    reporter = reporter or SilentReporter()
    records: list[FileRecord] = []
    problems: list[str] = []
    for spec in specs:
        path = files_dir / spec.name
        stat = path.stat()
        def verified(n: int, s: FileSpec = spec, t: int = stat.st_size) -> None:
            reporter.update("verify", s.name, n, t)

        actual = sha256_file(path, verified)
        reporter.update("verify", spec.name, stat.st_size, stat.st_size)
        if spec.sha256 and actual != spec.sha256:
            problems.append(f"{spec.name}: sha256 {actual} does not match the catalog's {spec.sha256}")
        elif spec.size is not None and stat.st_size != spec.size:
            problems.append(f"{spec.name}: {stat.st_size} bytes, the catalog says {spec.size}")
        records.append(
            FileRecord(spec.name, actual, stat.st_size, stat.st_mtime_ns, pinned=bool(spec.sha256))
        )
    return tuple(records), problems


def _swap_into_place(staged: Path, directory: Path) -> None:
    """Rename the staged directory to its final name, replacing any previous install."""
    old = None
    if directory.exists():
        old = directory.with_name(f".staging+{directory.name}+old{uuid.uuid4().hex[:8]}")
        os.rename(directory, old)
    os.rename(staged, directory)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.startswith(("~", "."))


def _message(name: str, status: str, checks: list[FileCheck]) -> str:
    if status == OK:
        return f"model {name!r}: every file matches the catalog's sha256"
    if status == UNPINNED:
        unpinned = [c.name for c in checks if c.status == UNPINNED]
        return (
            f"model {name!r}: files match the digests recorded at first pull; "
            f"not pinned in the catalog: {', '.join(unpinned)}"
        )
    bad = [f"{c.name} ({c.detail})" for c in checks if c.status not in _HEALTHY]
    if status == OUTDATED:
        return (
            f"model {name!r}: installed files no longer match the catalog (updated since "
            f"install): {', '.join(bad)}; run `parlons models pull --force {name}`"
        )
    return (
        f"model {name!r} is corrupt: {', '.join(bad)}; "
        f"run `parlons models pull --force {name}` to reinstall it"
    )
