"""Open zip containers (DOCX, ODT, argos packages) without trusting their headers.

A zip bomb declares small compressed sizes that inflate to gigabytes. The central
directory says how big each entry claims to be; we refuse archives whose claimed total,
entry count or compression ratio break the limits *before* inflating anything, and we
read each entry through a counting reader so a lying header cannot get past either.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from parlons.errors import InvalidArgument


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 10_000
    max_total_bytes: int = 200 * 1024 * 1024
    max_entry_bytes: int = 100 * 1024 * 1024
    # Inflated / compressed, per entry of at least `ratio_floor_bytes` inflated.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1024 * 1024


def open_checked(data: bytes | Path, limits: ZipLimits, what: str) -> zipfile.ZipFile:
    """A ZipFile whose central directory passed the limits; InvalidArgument otherwise."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InvalidArgument(f"{what} is not a valid zip container ({exc}); the file is corrupt or truncated") from exc
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise InvalidArgument(f"{what} has {len(infos)} entries; at most {limits.max_entries} are accepted")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > limits.max_entry_bytes:
            raise InvalidArgument(
                f"{what}: part {info.filename!r} inflates to {info.file_size:,} bytes; "
                f"the limit is {limits.max_entry_bytes:,} (zip bomb?)")
        if info.file_size >= limits.ratio_floor_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise InvalidArgument(
                    f"{what}: part {info.filename!r} has a compression ratio of {ratio:.0f}:1; "
                    f"the limit is {limits.max_ratio:.0f}:1 (zip bomb?)")
        if info.flag_bits & 0x1:
            raise InvalidArgument(f"{what} is encrypted (password-protected); remove the password and retry")
    if total > limits.max_total_bytes:
        raise InvalidArgument(
            f"{what} inflates to {total:,} bytes; the limit is {limits.max_total_bytes:,} (zip bomb?)")
    return zf


def read_entry(zf: zipfile.ZipFile, name: str, limits: ZipLimits, what: str) -> bytes:
    """Read one entry, stopping at the limit even if the header lied about its size."""
    try:
        with zf.open(name) as fh:
            data = fh.read(limits.max_entry_bytes + 1)
    except KeyError:
        raise InvalidArgument(f"{what} has no {name!r} part; the file is corrupt or not a {what}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise InvalidArgument(f"{what}: cannot read part {name!r} ({exc}); the file is corrupt") from exc
    if len(data) > limits.max_entry_bytes:
        raise InvalidArgument(f"{what}: part {name!r} is larger than its header says (zip bomb?)")
    return data


def extract_all(zf: zipfile.ZipFile, dest: Path, limits: ZipLimits, what: str) -> None:
    """Extract every entry under `dest`, refusing absolute paths and `..` (zip slip)."""
    dest = dest.resolve()
    for info in zf.infolist():
        name = PurePosixPath(info.filename)
        if name.is_absolute() or ".." in name.parts:
            raise InvalidArgument(f"{what}: entry {info.filename!r} points outside the package")
        target = (dest / Path(*name.parts)).resolve()
        if not target.is_relative_to(dest):
            raise InvalidArgument(f"{what}: entry {info.filename!r} points outside the package")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_entry(zf, info.filename, limits, what))
