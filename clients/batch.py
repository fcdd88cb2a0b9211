"""The archive side of `parlons transcribe`: which files, where their outputs go, which
are already done, writing outputs so that none is ever half there, and the run's report.

A file's outputs are written to temporary names beside their targets and renamed once
all of them are rendered, so an interrupted run leaves a file's outputs complete or
absent. Each recording's sidecar (`.NAME.parlons.json`, beside its outputs) records, per
output, a digest of the options that shaped it; the next run skips a file only when
every output it would write is there with the digest of the options asked now (resume),
so a run again with `--anonymize` redoes the clear transcripts. The sidecar entries are
dropped before an output is replaced and written after, so a crash in between makes the
next run redo the file, never keep it.

Outputs may hold personal data: they are created 0600 (mkstemp: O_EXCL, a private random
name) and renamed over their targets, so a planted link is replaced, never followed.
Inputs with the same stem (`rdv.wav`, `rdv.flac`) keep their extension in their outputs'
names (`rdv.wav.txt`, `rdv.flac.txt`); two inputs that would still share outputs are
refused, with the reason.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

from parlons.private_files import private_part

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

    @property
    def sidecar(self) -> Path:
        """Where the digests of the options behind each output are recorded."""
        return self.out_stem.with_name(f".{self.out_stem.name}.parlons.json")


def _matches(path: Path, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = path.name
    if include:
        if not any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(str(path), pattern) for pattern in include):
            return False
    elif path.suffix.lower() not in AUDIO_EXTENSIONS:
        return False
    return not any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(str(path), pattern) for pattern in exclude)


def _stem_key(out_stem: Path) -> str:
    """Output stems compared as a case-insensitive file system would."""
    return os.path.normpath(str(out_stem)).casefold()


def _distinct_outputs(items: list[Item]) -> tuple[list[Item], list[tuple[str, str]]]:
    """Items whose outputs would land on the same names (`rdv.wav` and `rdv.flac`) keep
    their extension in them (`rdv.wav.txt`): the names depend only on the inputs, so a
    resumed run finds the same ones. Items that would still share outputs (the same
    name from two folders into one --output-dir) are refused, the first one kept."""
    def with_extension(item: Item) -> Item:
        return Item(item.source, item.out_stem.with_name(item.out_stem.name + item.source.suffix))

    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(_stem_key(item.out_stem), []).append(item)
    renamed: dict[Item, Item] = {}
    for group in groups.values():
        if len(group) > 1 and len({_stem_key(with_extension(item).out_stem) for item in group}) == len(group):
            renamed.update((item, with_extension(item)) for item in group)
    kept: list[Item] = []
    owners: dict[str, Item] = {}
    refused: list[tuple[str, str]] = []
    for item in (renamed.get(item, item) for item in items):
        owner = owners.setdefault(_stem_key(item.out_stem), item)
        if owner is item:
            kept.append(item)
        else:
            refused.append((str(item.source), f"its outputs ({item.out_stem}.*) would overwrite those of "
                                              f"{owner.source}: give their folder, or run them apart"))
    return kept, refused


def discover(inputs: Iterable[str], *, list_files: Sequence[str] = (), output_dir: Path | None = None,
             include: Sequence[str] = (), exclude: Sequence[str] = ()) -> tuple[list[Item], list[tuple[str, str]]]:
    """Files named, files of directories (recursive, filtered), files listed one per line
    in list files ('-' = stdin). Returns the items and the inputs refused, with why (not
    there, or outputs that another input would overwrite). A directory's files keep
    their relative folders under --output-dir."""
    items: list[Item] = []
    problems: list[tuple[str, str]] = []
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
            problems.append((name, "no such file or directory"))
    items, collisions = _distinct_outputs(items)
    return items, problems + collisions


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


def write_together(outputs: Mapping[Path, str | bytes]) -> None:
    """Every output to a private temporary file beside it, then all renamed: a crash or
    Ctrl-C leaves each output whole or absent, never cut; each output is 0600."""
    staged: list[tuple[Path, Path]] = []
    try:
        for target, content in outputs.items():
            handle, part = private_part(target)
            staged.append((part, target))
            with os.fdopen(handle, "wb") as out:
                out.write(content.encode("utf-8") if isinstance(content, str) else content)
        for part, target in staged:
            os.replace(part, target)
    finally:
        for part, _ in staged:
            part.unlink(missing_ok=True)


SIDECAR_VERSION = 1


def options_fingerprint(options: Mapping[str, object]) -> str:
    """A digest of the options that shape an output (canonical JSON, sha256): kept in the
    sidecar instead of the options themselves, which may hold names (hotwords, prompts)."""
    canonical = json.dumps({"parlons-outputs": SIDECAR_VERSION, **options}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _recorded(item: Item) -> dict[str, str]:
    """Output name -> options digest, from the item's sidecar ({} when absent or unreadable)."""
    try:
        data = json.loads(item.sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    outputs = data.get("outputs") if isinstance(data, dict) and data.get("version") == SIDECAR_VERSION else None
    if not isinstance(outputs, dict):
        return {}
    return {str(k): str(v) for k, v in outputs.items()}


def _write_sidecar(item: Item, recorded: Mapping[str, str]) -> None:
    write_together({item.sidecar: json.dumps({"version": SIDECAR_VERSION, "outputs": dict(sorted(recorded.items()))},
                                             indent=2) + "\n"})


def outputs_done(item: Item, expected: Sequence[Sequence[Path]], fingerprint: str) -> bool:
    """Whether every expected output (each one of its alternative paths) is there and was
    made with the options whose digest is `fingerprint`. Outputs nobody recorded (a run
    before sidecars, a file put there by hand) are made again."""
    recorded = _recorded(item)
    return all(any(path.exists() and recorded.get(path.name) == fingerprint for path in alternatives)
               for alternatives in expected)


def forget_outputs(item: Item, paths: Iterable[Path]) -> None:
    """Before `paths` are replaced: a crash before `record_outputs` leaves them unrecorded,
    so the next run makes them again instead of trusting outputs of other options."""
    recorded = _recorded(item)
    names = {path.name for path in paths}
    if names & recorded.keys():
        _write_sidecar(item, {name: digest for name, digest in recorded.items() if name not in names})


def record_outputs(item: Item, paths: Iterable[Path], fingerprint: str) -> None:
    """After `paths` are written with the options whose digest is `fingerprint`."""
    _write_sidecar(item, _recorded(item) | {path.name: fingerprint for path in paths})


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
    options_digest: str = ""  # of the options that shaped this run's outputs (batch.options_fingerprint)

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
