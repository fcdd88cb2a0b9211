"""Time and a way to stop, for a job that runs in a worker thread.

asyncio cannot interrupt a thread: when a caller goes away (deadline, client gone,
SIGTERM), `WorkQueue.run` sets the job's cancel event and the job must notice by itself.
A `WorkBudget` is what such a job checks between its units of work (a text, a batch of
paragraphs, an element of a document): the cancel event, and a time budget of its own so
that one request cannot hold a worker for long even with a patient client.
"""

from __future__ import annotations

import threading
import time

from parlons.errors import Cancelled, InvalidArgument, ParlonsError

# Units of work between two reads of the clock (`tick`): cheap enough for every element
# of a tree, often enough for a cancel to be honoured well within a second.
CHECK_EVERY = 256


class WorkBudget:
    """A time budget and a cancel event, checked between units of work.

    `what` names the job in its errors ("the anonymisation"), `advice` says what the
    client can do when the time runs out, and `field` names the request field at fault."""

    def __init__(self, time_budget_s: float, cancel: threading.Event | None = None, *,
                 what: str = "the request", advice: str = "split it and retry", field: str = "") -> None:
        self.time_budget_s = time_budget_s
        self.cancel = cancel
        self.what = what
        self.advice = advice
        self.field = field
        self._started = time.monotonic()
        self._ticks = 0

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def tick(self) -> None:
        """One small unit of work; every `CHECK_EVERY`, the clock and the cancel flag."""
        self._ticks += 1
        if self._ticks % CHECK_EVERY == 0:
            self.check()

    def check(self, where: str = "") -> None:
        """Raise if the job was cancelled or has used its time."""
        if self.cancel is not None and self.cancel.is_set():
            raise self.cancelled()
        if self.elapsed_s > self.time_budget_s:
            raise self.over_time(where)

    def cancelled(self) -> ParlonsError:
        return Cancelled(f"{self.what} was cancelled")

    def over_time(self, where: str) -> ParlonsError:
        return InvalidArgument(
            f"{self.what} took more than {self.time_budget_s:g} s (the limit)"
            + (f", stopped at {where}" if where else "") + f"; {self.advice}", field=self.field)
