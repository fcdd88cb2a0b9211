"""What reading one document may cost: characters of text, time, and a way to stop.

A crafted file can be small and expensive: an ODT whose `<text:s text:c="400000000"/>`
asks for 400 million spaces, HTML nested thousands deep, a PDF whose pages take seconds
each. Limits checked after extraction come too late, so every format reader charges
this budget as it goes: characters *before* it builds them, and time at regular
checkpoints, where a cancelled call (client gone, deadline) also stops.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from parlons.services.common.errors import Cancelled, InvalidArgument

# Checkpoints between two clock reads: cheap enough for every element of a tree.
_CHECK_EVERY = 256


@dataclass
class ReadBudget:
    max_chars: int
    time_budget_s: float
    cancel: threading.Event | None = None
    chars: int = 0
    _started: float = field(default_factory=time.monotonic)
    _ticks: int = 0

    def charge(self, n: int) -> None:
        """Account for `n` characters of text about to be built."""
        self.chars += n
        if self.chars > self.max_chars:
            raise InvalidArgument(
                f"the document holds more than {self.max_chars:,} characters of text (the limit): "
                "split it and retry")

    def tick(self) -> None:
        """One unit of work (an element, a page); every few, the clock and the cancel flag."""
        self._ticks += 1
        if self._ticks % _CHECK_EVERY == 0:
            self.check()

    def check(self, where: str = "") -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("the document translation was cancelled")
        if time.monotonic() - self._started > self.time_budget_s:
            raise InvalidArgument(
                f"the document is too complex to read within {self.time_budget_s:g} s"
                + (f" (stopped at {where})" if where else "") + "; simplify or split it and retry")
