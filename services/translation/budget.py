"""What reading one document may cost: characters of text, time, and a way to stop.

A crafted file can be small and expensive: an ODT whose `<text:s text:c="400000000"/>`
asks for 400 million spaces, HTML nested thousands deep, a PDF whose pages take seconds
each. Limits checked after extraction come too late, so every format reader charges
this budget as it goes: characters *before* it builds them, and time at regular
checkpoints, where a cancelled call (client gone, deadline) also stops. Time and
cancellation are the shared `WorkBudget`'s; the characters are this reader's own.
"""

from __future__ import annotations

import threading

from parlons.services.common.budget import WorkBudget
from parlons.errors import Cancelled, InvalidArgument, ParlonsError


class ReadBudget(WorkBudget):
    def __init__(self, max_chars: int, time_budget_s: float, cancel: threading.Event | None = None) -> None:
        super().__init__(time_budget_s, cancel)
        self.max_chars = max_chars
        self.chars = 0

    def charge(self, n: int) -> None:
        """Account for `n` characters of text about to be built."""
        self.chars += n
        if self.chars > self.max_chars:
            raise InvalidArgument(
                f"the document holds more than {self.max_chars:,} characters of text (the limit): "
                "split it and retry")

    def cancelled(self) -> ParlonsError:
        return Cancelled("the document translation was cancelled")

    def over_time(self, where: str) -> ParlonsError:
        return InvalidArgument(
            f"the document is too complex to read within {self.time_budget_s:g} s"
            + (f" (stopped at {where})" if where else "") + "; simplify or split it and retry")
