"""The archive side of `parlons transcribe`: which files, where their outputs go, which
are already done, writing outputs so that none is ever half there, and the run's report.

A file's outputs are written to temporary names beside their targets and renamed once
all of them are rendered, so an interrupted run leaves a file's outputs complete or
absent; the next run skips the files whose outputs are all there (resume) and does the
others again.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Iterable, Sequence

import av

#: What a directory is searched for when no --include is given.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".mp4", ".aiff", ".aif",
                    ".wma", ".amr", ".3gp", ".mkv", ".mov")


@dataclass(frozen=True)
class Item:
    """One recording and where its outputs go."""

    source: Path
    out_stem: Path  # outputs are out_stem + ".fmt" or ".lang.fmt"

    def outputs(self, fmts: Sequence[str], languages: Sequence[str]) -> list[Path]:
        paths = [self.out_stem.with_name(f"{self.out_stem.name}.{fmt}") for fmt in fmts]
        paths += [self.out_stem.with_name(f"{self.out_stem.name}.{language}.{fmt}")
                  for language in languages for fmt in fmts if fmt != "rttm"]
        return paths


def _matches(path: Path, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = path.name
    if include:
        if not any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(str(path), pattern) for pattern in include):
            return False
    elif path.suffix.lower() not in AUDIO_EXTENSIONS:
        return False
    return not any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(str(path), pattern) for pattern in exclude)


def discover(inputs: Iterable[str], *, list_files: Sequence[str] = (), output_dir: Path | None = None,
             include: Sequence[str] = (), exclude: Sequence[str] = ()) -> tuple[list[Item], list[str]]:
    """Files named, files of directories (recursive, filtered), files listed one per line
    in list files ('-' = stdin). Returns the items and the inputs that do not exist.
    A directory's files keep their relative folders under --output-dir."""
    items: list[Item] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(source: Path, root: Path | None) -> None:
        resolved = source.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        if output_dir is None:
            out_stem = source.with_suffix("")
        elif root is not None:
            out_stem = output_dir / source.relative_to(root).with_suffix("")
        else:
            out_stem = output_dir / source.stem
        items.append(Item(source, out_stem))

    named = list(inputs)
    for list_file in list_files:
        text = sys.stdin.read() if list_file == "-" else Path(list_file).read_text(encoding="utf-8")
        named += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for name in named:
        path = Path(name)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if _matches(child, include, exclude):
                    add(child, path)
        elif path.is_file():
            add(path, None)
        else:
            problems.append(name)
    return items, problems


def probe_duration_s(path: Path) -> float | None:
    """The recording's duration from its header (for the progress bar), None if unknown."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = next(iter(container.streams.audio), None)
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except Exception:
        return None
    return None


def write_together(outputs: dict[Path, str]) -> None:
    """Every output to a temporary file beside it, then all renamed: a crash or Ctrl-C
    leaves each output whole or absent, never cut."""
    staged: list[tuple[Path, Path]] = []
    try:
        for target, text in outputs.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            staged.append((Path(name), target))
        for part, target in staged:
            os.replace(part, target)
    finally:
        for part, _ in staged:
            part.unlink(missing_ok=True)


def remove_stale_parts(items: Iterable[Item]) -> int:
    """Temporary files a killed run left behind (a SIGKILL leaves no time to clean up)."""
    removed = 0
    for folder in {item.out_stem.parent for item in items}:
        if folder.is_dir():
            for part in folder.glob(".*.part"):
                part.unlink(missing_ok=True)
                removed += 1
    return removed


@dataclass
class FileReport:
    source: str
    status: str  # done | skipped | failed | interrupted
    reason: str = ""
    audio_s: float = 0.0
    processing_s: float = 0.0
    outputs: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    started: str
    server: str
    files: list[FileReport] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False
    retries: int = 0  # calls sent again after UNAVAILABLE (a server restarting)

    def counts(self) -> dict[str, int]:
        counts = {"done": 0, "skipped": 0, "failed": 0, "interrupted": 0}
        for report in self.files:
            counts[report.status] = counts.get(report.status, 0) + 1
        return counts

    def audio_done_s(self) -> float:
        return sum(f.audio_s for f in self.files if f.status == "done")

    def write(self, path: Path) -> None:
        body = asdict(self) | {"counts": self.counts(), "audio_done_s": round(self.audio_done_s(), 3),
                               "speed_x_realtime": round(self.audio_done_s() / self.wall_s, 3) if self.wall_s else 0.0}
        write_together({path: json.dumps(body, ensure_ascii=False, indent=2) + "\n"})


def run_stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
