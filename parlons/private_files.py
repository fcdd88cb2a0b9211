"""Files that may hold personal data, written whole and private.

Each is written to a new temporary file beside its target, created 0600 with O_EXCL under
a random name (tempfile.mkstemp), so nothing planted there (a link, another user's file)
can be opened through it; renamed over the target once complete, it replaces a link there
rather than following it, and a crash leaves the target whole or absent, never cut. One
mechanism for the batch CLI's outputs, the masked recording and the tenants file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def private_part(target: Path) -> tuple[int, Path]:
    """A new private temporary file beside `target`: its descriptor and path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    return handle, Path(name)


@contextlib.contextmanager
def replaced_privately(target: Path) -> Iterator[BinaryIO]:
    """A binary file to write `target` through: renamed over it when the block ends
    without an error, removed otherwise."""
    handle, part = private_part(target)
    try:
        with os.fdopen(handle, "w+b") as file:
            yield file
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


__all__ = ["private_part", "replaced_privately"]
