"""Progress of a pull, as events: a rich bar for people, a callback for programs.

Why events rather than a bar object passed around: the sources only say what they are
doing (stage, file, bytes); whether that becomes a terminal bar, a log line or a gRPC
status update is the caller's choice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import TaskID


@dataclass(frozen=True)
class ProgressEvent:
    model: str
    stage: str  # "download" | "extract" | "convert" | "copy" | "verify" | "done"
    detail: str  # a file name or a source description
    done: int  # bytes (or steps) done so far
    total: int | None  # None when unknown


ProgressCallback = Callable[[ProgressEvent], None]


class Reporter(Protocol):
    def update(self, stage: str, detail: str, done: int, total: int | None) -> None: ...

    def close(self) -> None: ...


class SilentReporter:
    def update(self, stage: str, detail: str, done: int, total: int | None) -> None:
        pass

    def close(self) -> None:
        pass


class CallbackReporter:
    def __init__(self, model: str, callback: ProgressCallback) -> None:
        self._model = model
        self._callback = callback

    def update(self, stage: str, detail: str, done: int, total: int | None) -> None:
        self._callback(ProgressEvent(self._model, stage, detail, done, total))

    def close(self) -> None:
        pass


class RichReporter:
    """One bar per stage on stderr (stdout stays clean for scripts).

    Files are summed into their stage's bar: its total grows as each file starts, which
    keeps a 20-file model to three lines instead of sixty.
    """

    def __init__(self, model: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._model = model
        self._console = Console(file=sys.stderr)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._tasks: dict[str, TaskID] = {}
        self._done: dict[str, dict[str, int]] = {}
        self._totals: dict[str, dict[str, int | None]] = {}
        self._progress.start()

    def update(self, stage: str, detail: str, done: int, total: int | None) -> None:
        if stage == "done":
            self._progress.console.print(f"{self._model}: installed from {detail}", highlight=False)
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(f"{self._model}: {stage}", total=None)
            self._done[stage], self._totals[stage] = {}, {}
        self._done[stage][detail] = done
        self._totals[stage][detail] = total
        totals = self._totals[stage].values()
        self._progress.update(
            self._tasks[stage],
            description=f"{self._model}: {stage} {detail}",
            completed=sum(self._done[stage].values()),
            total=None if None in totals else sum(t or 0 for t in totals),
        )

    def close(self) -> None:
        for stage, task in self._tasks.items():
            self._progress.update(task, description=f"{self._model}: {stage}")
        self._progress.stop()


def make_reporter(model: str, progress: bool | ProgressCallback) -> Reporter:
    if callable(progress):
        return CallbackReporter(model, progress)
    if progress:
        return RichReporter(model)
    return SilentReporter()
