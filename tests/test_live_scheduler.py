"""The live decode scheduler: batched model calls give single calls' results, finals
first, interims dropped when late, a cancelled session leaves the others alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from parlons.services.common.audio import DecodedAudio, decode_audio
from parlons.errors import Cancelled
from parlons.services.transcription.engine import TranscriptionEngine
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.scheduler import (
    DecodeKind,
    DecodeSkipped,
    LiveDecodeScheduler,
    decode_as,
)
from parlons.services.transcription.streaming import StreamEvent, StreamingSession
from speech import wer

FLEURS = Path(__file__).resolve().parents[2] / "shared" / "data" / "fleurs"


@pytest.fixture(scope="module")
def base(base_dir: Path) -> TranscriptionEngine:
    return TranscriptionEngine(base_dir, name="base")


@pytest.fixture()
def scheduler(base: TranscriptionEngine) -> Iterator[LiveDecodeScheduler]:
    # The tests that count batches use `gathering` below; these only need sharing.
    scheduler = base.live_scheduler(max_batch=8, wait_s=0.05)
    yield scheduler
    scheduler.close()


def _clip(name: str, seconds: float, start: float = 0.0) -> np.ndarray:
    samples = decode_audio((FLEURS / name).read_bytes()).mono()
    return samples[int(start * 16000) : int((start + seconds) * 16000)]


def _greedy(language: str, **extra: object) -> TranscriptionOptions:
    return TranscriptionOptions(language=language, beam_size=1, best_of=1, temperatures=(0.0,),
                                vad_filter=False, **extra)  # type: ignore[arg-type]


def _at_once(calls: list[tuple[TranscriptionEngine, np.ndarray, TranscriptionOptions]]) -> list[str]:
    """Run the transcriptions from as many threads at the same moment."""
    texts: list[str] = [""] * len(calls)
    errors: list[BaseException] = []
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        engine, clip, options = calls[index]
        start.wait()
        try:
            with decode_as(DecodeKind.FINAL):
                texts[index] = engine.transcribe(DecodedAudio.from_array(clip), options).text
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if errors:
        raise errors[0]
    return texts


@pytest.fixture()
def gathering(base: TranscriptionEngine) -> Iterator[Callable[[int], LiveDecodeScheduler]]:
    """A scheduler that runs a call only once `n` jobs wait (or after 20 s): batches form
    from the calls the test makes at once, whatever the machine's speed."""
    made: list[LiveDecodeScheduler] = []

    def make(n: int) -> LiveDecodeScheduler:
        made.append(base.live_scheduler(max_batch=n, wait_s=20.0))
        return made[-1]

    yield make
    for scheduler in made:
        scheduler.close()


@pytest.mark.slow
def test_batched_decodes_give_the_single_decodes_text(
    base: TranscriptionEngine, gathering: Callable[[int], LiveDecodeScheduler]
) -> None:
    """Sessions of different lengths and languages in one batch: the same text as each
    decoded alone (greedy), with word timestamps (the alignment is batched too). The
    clips (2.4, 2.1 and 1.9 s) share the window's 3-s floor, so the batch pads none of
    them: it must change nothing."""
    scheduler = gathering(3)
    view = base.through(scheduler)
    calls = [
        (_clip("fleurs-fr-000.ogg", 2.4, start=1.0), _greedy("fr", word_timestamps=True)),
        (_clip("fleurs-es-000.ogg", 2.1, start=1.0), _greedy("es", word_timestamps=True)),
        (_clip("fleurs-de-001.ogg", 1.9, start=1.0), _greedy("de", word_timestamps=True)),
    ]
    singles = [base.transcribe(DecodedAudio.from_array(clip), options).text for clip, options in calls]
    assert all(singles)
    batched = _at_once([(view, clip, options) for clip, options in calls])
    assert batched == singles
    # They did share model calls: fewer calls than jobs.
    assert scheduler.jobs > scheduler.batches


@pytest.mark.slow
def test_windows_of_nearby_lengths_share_a_batch(
    base: TranscriptionEngine, gathering: Callable[[int], LiveDecodeScheduler]
) -> None:
    """A 5-s and a 6-s utterance are encoded together, the shorter padded to the longer
    window: one encoder call, and the padded one's text stays the sentence it was."""
    scheduler = gathering(2)
    view = base.through(scheduler)
    calls = [(_clip("fleurs-fr-000.ogg", 6.0), _greedy("fr")), (_clip("fleurs-fr-001.ogg", 5.0), _greedy("fr"))]
    singles = [base.transcribe(DecodedAudio.from_array(clip), options).text for clip, options in calls]
    before = scheduler.batches
    batched = _at_once([(view, clip, options) for clip, options in calls])
    assert scheduler.batches - before <= 3  # encode, generate (and at most one more), not 4+
    for single, text in zip(singles, batched):
        assert wer(single, text) <= 0.2, (single, text)


@pytest.mark.slow
def test_language_identification_batched(base: TranscriptionEngine, scheduler: LiveDecodeScheduler) -> None:
    view = base.through(scheduler)
    clips = [_clip("fleurs-fr-001.ogg", 6.0), _clip("fleurs-es-001.ogg", 6.0)]
    results: list[str] = ["", ""]
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        barrier.wait()
        with decode_as(DecodeKind.LANGUAGE):
            results[index] = view.detect_language(clips[index]).language

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [base.detect_language(c).language for c in clips] == ["fr", "es"]


def test_finals_run_before_interims_and_late_interims_are_dropped(
    base: TranscriptionEngine,
) -> None:
    """While the model is busy, a final queued after an interim runs first; an interim
    that waited past its deadline gets DecodeSkipped, never a late result."""
    scheduler = base.live_scheduler(max_batch=1, wait_s=0.0)
    view = base.through(scheduler)
    clip = _clip("fleurs-fr-002.ogg", 3.0)
    order: list[str] = []
    lock = threading.Lock()
    gate = threading.Event()
    original = scheduler._call

    def held_call(method: str, batch: list) -> list:  # type: ignore[type-arg]
        gate.wait(timeout=60)  # the model is "busy" until the test lets it go
        return original(method, batch)

    scheduler._call = held_call  # type: ignore[method-assign]

    def decode(kind: DecodeKind, name: str, max_wait_s: float | None = None) -> None:
        try:
            with decode_as(kind, max_wait_s=max_wait_s):
                view.transcribe(DecodedAudio.from_array(clip), _greedy("fr"))
            with lock:
                order.append(name)
        except DecodeSkipped:
            with lock:
                order.append(f"{name} skipped")

    try:
        blocker = threading.Thread(target=decode, args=(DecodeKind.FINAL, "first"))
        blocker.start()
        _wait_for(lambda: scheduler.batches >= 1)
        late = threading.Thread(target=decode, args=(DecodeKind.INTERIM, "late interim", 0.05))
        interim = threading.Thread(target=decode, args=(DecodeKind.INTERIM, "interim", 600.0))
        late.start()
        interim.start()
        _wait_for(lambda: len(scheduler._pending) == 2)
        final = threading.Thread(target=decode, args=(DecodeKind.FINAL, "final"))
        final.start()
        _wait_for(lambda: len(scheduler._pending) == 3)
        time.sleep(0.1)  # the late interim's deadline passes while it waits
        assert scheduler.congested()
        gate.set()
        for thread in (blocker, late, interim, final):
            thread.join(timeout=300)
    finally:
        gate.set()
        scheduler.close()
    assert "late interim skipped" in order
    assert [name for name in order if "skipped" not in name] == ["first", "final", "interim"]


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.01)


@pytest.mark.slow
def test_a_cancelled_session_leaves_the_others_alone(
    base: TranscriptionEngine, scheduler: LiveDecodeScheduler
) -> None:
    """Two sessions share the scheduler; one is cancelled mid-stream: it stops with
    Cancelled, the other's finals equal what it gets alone."""
    view = base.through(scheduler)
    speech = np.concatenate([_clip("fleurs-fr-003.ogg", 8.0), np.zeros(16000, np.float32)])

    def run(engine: TranscriptionEngine, cancel: threading.Event | None, stop_at: int | None) -> list[StreamEvent]:
        session = StreamingSession(engine, _greedy("fr"), cancel=cancel, interim_results=False)
        events: list[StreamEvent] = []
        for index, start in enumerate(range(0, speech.shape[0], 1600)):
            if stop_at is not None and index == stop_at and cancel is not None:
                cancel.set()
            events.extend(session.feed(speech[start : start + 1600]))
        return events + session.finish()

    alone = [e.text for e in run(base, None, None) if e.is_final]
    cancel = threading.Event()
    outcome: dict[str, object] = {}

    def cancelled() -> None:
        try:
            outcome["cancelled"] = run(view, cancel, 40)
        except Cancelled:
            outcome["cancelled"] = "Cancelled"

    def kept() -> None:
        outcome["kept"] = [e.text for e in run(view, None, None) if e.is_final]

    threads = [threading.Thread(target=cancelled), threading.Thread(target=kept)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert outcome["cancelled"] == "Cancelled"
    assert outcome["kept"] == alone and alone
    assert not scheduler._pending


def test_a_cancelled_sessions_waiting_job_is_dropped(base: TranscriptionEngine) -> None:
    """A job still queued when its session is cancelled leaves without a model call."""
    scheduler = base.live_scheduler(max_batch=1, wait_s=0.0)
    view = base.through(scheduler)
    clip = _clip("fleurs-fr-002.ogg", 3.0)
    gate = threading.Event()
    calls: list[str] = []
    original = scheduler._call

    def held_call(method: str, batch: list) -> list:  # type: ignore[type-arg]
        gate.wait(timeout=60)
        calls.append(method)
        return original(method, batch)

    scheduler._call = held_call  # type: ignore[method-assign]
    cancel = threading.Event()
    outcome: list[str] = []

    def decode(name: str, event: threading.Event | None) -> None:
        try:
            with decode_as(DecodeKind.FINAL, cancel=event):
                view.transcribe(DecodedAudio.from_array(clip), _greedy("fr"))
            outcome.append(f"{name} done")
        except Cancelled:
            outcome.append(f"{name} cancelled")

    try:
        busy = threading.Thread(target=decode, args=("busy", None))
        busy.start()
        _wait_for(lambda: scheduler.batches >= 1)
        gone = threading.Thread(target=decode, args=("gone", cancel))
        gone.start()
        _wait_for(lambda: len(scheduler._pending) == 1)
        cancel.set()
        gate.set()
        for thread in (busy, gone):
            thread.join(timeout=300)
    finally:
        gate.set()
        scheduler.close()
    # The gone session's decode never reached the model: it was not run then cancelled
    # (its transcribe call was given no cancel event of its own).
    assert sorted(outcome) == ["busy done", "gone cancelled"]
