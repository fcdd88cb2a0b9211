"""The micro-batcher: gathering, routing back, token limits, cancellation, overload."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Hashable

import ctranslate2
import pytest
import sentencepiece as spm

from parlons.errors import ResourceExhausted, Unavailable
from parlons.services.translation.batcher import BatchItem, MicroBatcher
from translation_models import CORPUS, translation_model_dirs  # noqa: F401


class Recorder:
    """A blocking batch function that reverses tokens and remembers every call."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[tuple[list[list[str]], Hashable]] = []
        self.delay_s = delay_s
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, sources: list[list[str]], prefixes: list[list[str] | None], options: Hashable) -> list[list[str]]:
        self.entered.set()
        self.gate.wait(10)
        time.sleep(self.delay_s)
        self.calls.append(([list(s) for s in sources], options))
        return [list(reversed(s)) for s in sources]


def item(*tokens: str, options: Hashable = None) -> BatchItem:
    return BatchItem(list(tokens), None, options)


async def test_concurrent_callers_share_one_batch_and_get_their_own_results() -> None:
    rec = Recorder()
    batcher = MicroBatcher(rec, max_wait_ms=50, max_batch_tokens=10_000)
    results = await asyncio.gather(*(batcher.translate([item(f"a{i}", f"b{i}")]) for i in range(20)))
    assert [r[0] for r in results] == [[f"b{i}", f"a{i}"] for i in range(20)]
    assert len(rec.calls) == 1 and len(rec.calls[0][0]) == 20
    await batcher.aclose()


async def test_batches_respect_the_token_limit_and_options() -> None:
    rec = Recorder()
    batcher = MicroBatcher(rec, max_wait_ms=20, max_batch_tokens=25)
    ten = [f"t{i}" for i in range(10)]
    out = await asyncio.gather(
        batcher.translate([item(*ten) for _ in range(5)]),
        batcher.translate([item("x", options=4)]),
    )
    assert len(out[0]) == 5 and out[1] == [["x"]]
    for sources, _options in rec.calls:
        assert sum(len(s) for s in sources) <= 25
        assert len({len(s) for s in sources}) == 1  # beam-4 item never mixed with the others
    assert sorted(len(c[0]) for c in rec.calls) == [1, 1, 2, 2]
    await batcher.aclose()


async def test_a_cancelled_caller_is_removed_before_its_batch_runs() -> None:
    rec = Recorder()
    rec.gate.clear()  # the first batch blocks in the worker thread
    batcher = MicroBatcher(rec, max_wait_ms=1, max_batch_tokens=1000)
    first = asyncio.create_task(batcher.translate([item("first")]))
    await asyncio.to_thread(rec.entered.wait, 5)
    leaving = asyncio.create_task(batcher.translate([item("leaving", "soon")]))
    staying = asyncio.create_task(batcher.translate([item("staying")]))
    await asyncio.sleep(0.02)
    leaving.cancel()
    await asyncio.sleep(0)
    rec.gate.set()
    assert await first == [["first"]]
    assert await staying == [["staying"]]
    with pytest.raises(asyncio.CancelledError):
        await leaving
    sent = [tok for sources, _ in rec.calls for s in sources for tok in s]
    assert "leaving" not in sent and "soon" not in sent
    assert batcher.stats.dropped_cancelled >= 1
    await batcher.aclose()


async def test_overload_is_refused_at_once() -> None:
    rec = Recorder()
    rec.gate.clear()
    batcher = MicroBatcher(rec, max_wait_ms=1, max_pending=3)
    running = asyncio.create_task(batcher.translate([item("a")]))
    await asyncio.to_thread(rec.entered.wait, 5)
    queued = asyncio.create_task(batcher.translate([item("b"), item("c")]))
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(ResourceExhausted):
        await batcher.translate([item("d"), item("e")])
    assert time.perf_counter() - started < 0.5  # refused, not queued behind the blocked batch
    rec.gate.set()
    await asyncio.gather(running, queued)
    await batcher.aclose()


async def test_a_failing_batch_fails_every_caller_and_the_batcher_recovers() -> None:
    calls = {"n": 0}

    def flaky(sources, prefixes, options):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("device lost")
        return sources

    batcher = MicroBatcher(flaky, max_wait_ms=20)
    results = await asyncio.gather(batcher.translate([item("a")]), batcher.translate([item("b")]),
                                   return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    assert await batcher.translate([item("c")]) == [["c"]]
    await batcher.aclose()
    with pytest.raises(Unavailable):
        await batcher.translate([item("d")])


async def test_real_model_batched_results_match_one_by_one(translation_model_dirs) -> None:  # noqa: F811
    """Routing back is exact: each caller gets what translating its sentence alone gives."""
    model_dir = translation_model_dirs["fr-en"]
    translator = ctranslate2.Translator(str(model_dir), device="cpu", compute_type="float32")
    sp = spm.SentencePieceProcessor(model_file=str(model_dir / "source.spm"))
    sentences = [sp.encode(s, out_type=str) + ["</s>"] for s in CORPUS[:12]]

    def run(sources, prefixes, options):  # type: ignore[no-untyped-def]
        results = translator.translate_batch(sources, beam_size=1, max_decoding_length=12,
                                             max_batch_size=4096, batch_type="tokens")
        return [r.hypotheses[0] for r in results]

    alone = [translator.translate_batch([s], beam_size=1, max_decoding_length=12)[0].hypotheses[0]
             for s in sentences]
    batcher = MicroBatcher(run, max_wait_ms=30)
    together = await asyncio.gather(*(batcher.translate([BatchItem(s)]) for s in sentences))
    assert [t[0] for t in together] == alone
    assert batcher.stats.batches < len(sentences)
    await batcher.aclose()
