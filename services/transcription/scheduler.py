"""One live decode scheduler per replica: the model calls of every live session, batched.

Why: each live session (each desk, each party of a LiveConversation) decodes on its own
(interims, early and real finals, language identification), and N sessions cost N
encoder and decoder passes. CTranslate2 runs a batch of windows in one call for much
less than as many single calls (on a 2-core CPU, six-second windows: a batch of 2 / 4 /
8 costs 1.5x / 2.8x / 3.2x less than singles with beam 5; on a GPU far more).

How: faster-whisper's decoding loop stays as it is. It calls four methods of the
CTranslate2 model, always with a batch of one: `encode`, `detect_language`, `generate`
and `align`. `BatchedWhisper` stands in for the model in the sessions' `WhisperModel`;
each call becomes a job on the scheduler and the session's thread waits for its result.
The scheduler's one thread waits a few milliseconds for calls to gather, then, among the
jobs of the most urgent kind (finals, then language identification, then interims), takes
the call that the most waiting jobs can share (the oldest job's once it waited 0.3 s),
and makes ONE model call for them:

* `encode`: windows of nearby lengths (the longest at most 4/3 of the shortest), each
  padded to the longest (the cut window is already padded; a little more silence in the
  window changes the text far less than a missed batch costs);
* `generate`: the same encoder length, the same decoding options and the
  <|startoftranscript|> at the same place in the prompt (a CTranslate2 rule), prompts
  otherwise free (each session its own language, prefix and prompt);
* `detect_language`: the same encoder length; `align`: the same length and start tokens.

A session has at most one decode waiting (its feed is sequential), so a client that
sends faster than real time gets one slot in a batch like every other: the per-stream
share. An interim that waited past its deadline is dropped (`DecodeSkipped`), a newer
one will come; finals never are. Where the windows match, results are the single
calls' results: the same windows, prompts and options (a test holds batched text equal
to single text, greedy, for sessions of different lengths and languages in one batch);
a window padded to a longer one in its batch decodes as with a little more silence.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final

import ctranslate2
import numpy as np
from parlons.services.common import metrics
from parlons.errors import Cancelled, ParlonsError

# A window joins a batch when the longest is at most this times the shortest.
MAX_PAD_RATIO: Final = 4 / 3
# An interim that waited this long is dropped: a newer hypothesis is on its way.
INTERIM_DEADLINE_S: Final = 1.0
# The oldest job's call runs first once it has waited this long, whatever else batches
# better (no job waits behind bigger batches for ever).
STARVE_S: Final = 0.3


class DecodeKind(enum.IntEnum):
    """What a decode is for; the lower, the sooner it runs."""

    FINAL = 0
    LANGUAGE = 1
    INTERIM = 2


class DecodeSkipped(ParlonsError):
    """An interim decode dropped by the scheduler (it waited past its deadline)."""


@dataclass
class _Context:
    kind: DecodeKind = DecodeKind.FINAL
    deadline: float | None = None
    cancel: threading.Event | None = None


_local = threading.local()


@contextlib.contextmanager
def decode_as(kind: DecodeKind, *, max_wait_s: float | None = None,
              cancel: threading.Event | None = None) -> Iterator[None]:
    """Mark the model calls made in this thread inside the block as `kind`; an interim
    may be dropped once it has waited `max_wait_s` (default INTERIM_DEADLINE_S); a job
    still waiting when `cancel` is set is dropped (a desk gone costs no decode)."""
    previous = getattr(_local, "context", None)
    if kind is DecodeKind.INTERIM and max_wait_s is None:
        max_wait_s = INTERIM_DEADLINE_S
    _local.context = _Context(kind, None if max_wait_s is None else max_wait_s, cancel)
    try:
        yield
    finally:
        _local.context = previous


def _current() -> _Context:
    return getattr(_local, "context", None) or _Context()


@dataclass
class _Job:
    method: str
    key: tuple[Any, ...]
    features: Any  # one item: numpy (CPU) or torch (CUDA) array, batch axis first
    item: Any  # the per-item argument: prompt, text tokens, nothing
    kwargs: dict[str, Any]
    kind: DecodeKind
    deadline: float | None
    cancel: threading.Event | None = None
    queued: float = field(default_factory=time.monotonic)
    future: Future[Any] = field(default_factory=Future)

    @property
    def frames(self) -> int:
        """The window's mel frames (encode; other calls batch only equal shapes)."""
        return int(self.features.shape[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.features.shape[1:])

    def order(self) -> tuple[int, float]:
        return (int(self.kind), self.queued)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


class _Arrays:
    """StorageView <-> arrays on the model's device (numpy on CPU, torch on CUDA), so
    items can be stacked into a batch and a batch split into items."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"

    def to_array(self, view: ctranslate2.StorageView) -> Any:
        if self.cuda:
            import torch

            return torch.as_tensor(view, device="cuda")
        return np.asarray(view)

    def stack(self, arrays: Sequence[Any], frames: int | None = None) -> ctranslate2.StorageView:
        """One batch; with `frames`, each item zero-padded on its last axis to it."""
        if self.cuda:
            import torch

            items = [torch.nn.functional.pad(a, (0, frames - a.shape[-1])) if frames else a for a in arrays]
            return ctranslate2.StorageView.from_array(torch.cat(items).contiguous())
        if frames:
            arrays = [np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, frames - a.shape[-1])]) for a in arrays]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(arrays)))

    def split(self, view: ctranslate2.StorageView, n: int) -> list[ctranslate2.StorageView]:
        batch = self.to_array(view)
        if self.cuda:
            return [ctranslate2.StorageView.from_array(batch[i : i + 1].contiguous()) for i in range(n)]
        return [ctranslate2.StorageView.from_array(np.ascontiguousarray(batch[i : i + 1])) for i in range(n)]


class LiveDecodeScheduler:
    """The thread that runs every live session's model calls, in batches (see module
    docstring). `wait_s`: how long it waits for more jobs once one is ready."""

    def __init__(
        self,
        model: ctranslate2.models.Whisper,
        *,
        max_batch: int = 8,
        wait_s: float = 0.005,
        service: str = "transcription",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.model = model
        self.max_batch = max_batch
        self.wait_s = max(0.0, wait_s)
        self.service = service
        self._arrays = _Arrays(model.device)
        self._pending: list[_Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0
        self.jobs = 0
        self._thread = threading.Thread(target=self._loop, name="live-decode-scheduler", daemon=True)
        self._thread.start()

    # -- what sessions see -----------------------------------------------------------

    def submit(self, method: str, key: tuple[Any, ...], features: ctranslate2.StorageView,
               item: Any, kwargs: dict[str, Any]) -> Any:
        """Queue one model call of a batch of one and wait for its result."""
        context = _current()
        deadline = None if context.deadline is None else time.monotonic() + context.deadline
        job = _Job(method, key, self._arrays.to_array(features), item, kwargs, context.kind, deadline,
                   context.cancel)
        with self._cond:
            if self._closed:
                raise RuntimeError("the live decode scheduler is closed")
            self._pending.append(job)
            self._cond.notify()
        return job.future.result()

    def congested(self) -> bool:
        """Whether finals are waiting or the oldest job waited long: interims should
        make room (fewer of them)."""
        with self._cond:
            finals = any(j.kind is DecodeKind.FINAL for j in self._pending)
            return finals or self._oldest_wait_s() > INTERIM_DEADLINE_S / 2

    def _oldest_wait_s(self) -> float:
        """Age of the oldest waiting job, 0 when none waits (call with the lock held)."""
        now = time.monotonic()
        return now - min((j.queued for j in self._pending), default=now)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            pending, self._pending = self._pending, []
            self._cond.notify_all()
        for job in pending:
            job.future.set_exception(RuntimeError("the live decode scheduler is closed"))
        self._thread.join(timeout=30)

    # -- the scheduler's thread --------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            # Other sessions' calls are often a few milliseconds behind: wait for them
            # (all of `wait_s`, not only until the next one comes), unless the batch is full.
            gather_until = time.monotonic() + self.wait_s
            while len(self._pending) < self.max_batch and not self._closed:
                left = gather_until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._closed:
                return None
            self._drop_unwanted()
            if not self._pending:
                return []
            self._pending.sort(key=_Job.order)
            batch = self._choose()
            chosen = {id(j) for j in batch}
            self._pending = [j for j in self._pending if id(j) not in chosen]
            metrics.LIVE_BACKLOG_SECONDS.labels(self.service).set(self._oldest_wait_s())
            return batch

    def _choose(self) -> list[_Job]:
        """The batch to run: among the jobs of the most urgent kind, the one whose call
        can take the most waiting jobs along (sessions are at different steps of their
        decodes, so the oldest job's call is often one that no other job shares); the
        oldest job's call once it has waited STARVE_S. `_pending` is sorted."""
        head = self._pending[0]
        if time.monotonic() - head.queued >= STARVE_S:
            return self._gather(head)
        best: list[_Job] = []
        seen: set[tuple[Any, ...]] = set()
        for job in self._pending:
            if job.kind is not head.kind:
                break
            group = (job.method, job.key, job.shape if job.method != "encode" else ())
            if group in seen:
                continue
            seen.add(group)
            batch = self._gather(job)
            if len(batch) > len(best):
                best = batch
        return best

    def _gather(self, head: _Job) -> list[_Job]:
        """`head` and the waiting jobs that can share its call (any kind, most urgent
        first), at most `max_batch`."""
        batch = [head]
        low = high = head.frames
        for job in self._pending:
            if len(batch) >= self.max_batch:
                break
            if job is head or job.method != head.method or job.key != head.key:
                continue
            if head.method != "encode" and job.shape != head.shape:
                continue
            if max(high, job.frames) > MAX_PAD_RATIO * min(low, job.frames):
                continue
            batch.append(job)
            low, high = min(low, job.frames), max(high, job.frames)
        return batch

    def _drop_unwanted(self) -> None:
        """Interims past their deadline (DecodeSkipped) and the jobs of cancelled
        sessions (Cancelled) leave the queue without a model call."""
        now = time.monotonic()
        kept: list[_Job] = []
        for job in self._pending:
            if job.cancel is not None and job.cancel.is_set():
                job.future.set_exception(Cancelled("the stream was cancelled"))
            elif job.deadline is not None and now > job.deadline:
                job.future.set_exception(DecodeSkipped("interim skipped: the model is busy with finals"))
            else:
                kept.append(job)
        self._pending = kept

    def _run(self, batch: list[_Job]) -> None:
        if not batch:
            return
        head = batch[0]
        metrics.LIVE_BATCH_SIZE.labels(self.service, head.kind.name.lower()).observe(len(batch))
        self.batches += 1
        self.jobs += len(batch)
        try:
            results = self._call(head.method, batch)
        except Exception as exc:  # each waiting session gets the model's error
            for job in batch:
                job.future.set_exception(exc)
            return
        for job, result in zip(batch, results):
            job.future.set_result(result)

    def _call(self, method: str, batch: list[_Job]) -> list[Any]:
        head = batch[0]
        frames = max(j.frames for j in batch)
        features = self._arrays.stack([j.features for j in batch], frames if method == "encode" else None)
        if method == "encode":
            output = self.model.encode(features, **head.kwargs)
            return self._arrays.split(output, len(batch))
        if method == "detect_language":
            return list(self.model.detect_language(features))
        if method == "generate":
            return self._generate(features, batch)
        if method == "align":
            start_sequence = list(head.key[1])
            return list(self.model.align(features, start_sequence, [j.item for j in batch],
                                         [j.kwargs["num_frames"] for j in batch], **head.kwargs["options"]))
        raise ValueError(f"unknown model call {method!r}")

    def _generate(self, features: ctranslate2.StorageView, batch: list[_Job]) -> list[Any]:
        """One `generate` for jobs whose token budgets (max_length) differ: it runs to the
        largest. A decode that ends on its own is the same either way; one that reaches
        its budget was looping: it writes a few more tokens here and is refused by the
        same budget guard (window.acceptable: tokens >= budget - 1)."""
        kwargs = dict(batch[0].kwargs)
        limits = [j.kwargs.get("max_length") for j in batch]
        if all(limit is not None for limit in limits):
            kwargs["max_length"] = max(limits)  # type: ignore[type-var]
        else:
            kwargs.pop("max_length", None)  # one has no budget: the model's own limit
        return list(self.model.generate(features, [j.item for j in batch], **kwargs))


class BatchedWhisper:
    """Stands in for a `ctranslate2.models.Whisper` in a WhisperModel: the four calls
    faster-whisper makes go through the scheduler; everything else is the model's."""

    def __init__(self, model: ctranslate2.models.Whisper, scheduler: LiveDecodeScheduler, sot_id: int) -> None:
        self._model = model
        self._scheduler = scheduler
        self._sot_id = sot_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _single(self, features: ctranslate2.StorageView) -> bool:
        return int(features.shape[0]) == 1

    def encode(self, features: ctranslate2.StorageView, to_cpu: bool = False) -> ctranslate2.StorageView:
        if not self._single(features):
            return self._model.encode(features, to_cpu=to_cpu)
        return self._scheduler.submit("encode", ("encode", to_cpu, int(features.shape[1])), features,
                                      None, {"to_cpu": to_cpu})

    def detect_language(self, features: ctranslate2.StorageView) -> list[Any]:
        if not self._single(features):
            return list(self._model.detect_language(features))
        return [self._scheduler.submit("detect_language", ("detect_language",), features, None, {})]

    def generate(self, features: ctranslate2.StorageView, prompts: list[list[int]], **kwargs: Any) -> list[Any]:
        if not self._single(features) or len(prompts) != 1 or kwargs.get("asynchronous"):
            return list(self._model.generate(features, prompts, **kwargs))
        prompt = list(prompts[0])
        # CTranslate2 batches prompts only with <|startoftranscript|> at the same place.
        sot = prompt.index(self._sot_id) if self._sot_id in prompt else -1
        # Each clip has its own token budget (max_length): not part of the key, the batch
        # runs to the largest (see LiveDecodeScheduler._generate).
        shared = {k: v for k, v in kwargs.items() if k != "max_length"}
        key = ("generate", sot, _freeze(shared))
        return [self._scheduler.submit("generate", key, features, prompt, kwargs)]

    def align(self, features: ctranslate2.StorageView, start_sequence: list[int],
              text_tokens: list[list[int]], num_frames: int | list[int], **options: Any) -> list[Any]:
        if not self._single(features) or len(text_tokens) != 1:
            return list(self._model.align(features, start_sequence, text_tokens, num_frames, **options))
        frames = num_frames[0] if isinstance(num_frames, list) else num_frames
        key = ("align", tuple(start_sequence), _freeze(options))
        return [self._scheduler.submit("align", key, features, list(text_tokens[0]),
                                       {"num_frames": int(frames), "options": options})]

