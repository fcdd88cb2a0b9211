"""Crafted inputs from the hardening review (issue 10): what each costs the server now.

    python benchmarks/bench_hardening.py

For each input: the outcome (the error a client gets, or the result), the median time of
3 runs with min-max, and the peak memory Python allocated while handling it (tracemalloc,
a separate run: tracing slows Python several times). The old figures, measured on the
code before the fix, are in docs/benchmarks.md beside these.
"""

from __future__ import annotations

import random
import statistics
import string
import sys
import time
from pathlib import Path
from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402
from parlons.services.common.audio import decode_audio  # noqa: E402
from parlons.services.translation import documents  # noqa: E402
from parlons.services.translation.documents import DocFormat, DocumentLimits  # noqa: E402
from parlons.services.translation.glossary import Glossary, GlossaryEntry  # noqa: E402
from crafted import crafted_docx, crafted_odt, crafted_wav, measured, nested_html  # noqa: E402


def _outcome(fn: Callable[[], object]) -> str:
    try:
        result = fn()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:70]}"
    return f"ok ({type(result).__name__})"


def _measure(label: str, fn: Callable[[], object], runs: int = 3) -> None:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        outcome = _outcome(fn)
        times.append(time.perf_counter() - started)
    peak = measured(fn)[2]
    print(f"{label}\n  {outcome}\n  {statistics.median(times) * 1000:.1f} ms "
          f"({min(times) * 1000:.1f}-{max(times) * 1000:.1f}), peak {peak:.1f} MiB")


def main() -> int:
    print(f"hardening benchmark, {time.strftime('%Y-%m-%d')}, {machine()}")
    limits = DocumentLimits()
    odt = crafted_odt('<text:p>Bonjour<text:s text:c="400000000"/>madame</text:p>')
    _measure(f"ODT of {len(odt)} bytes asking for 400 M spaces", lambda: documents.extract(odt, DocFormat.ODT, limits))
    html = nested_html(250, 200)
    _measure(f"HTML of {len(html) // 1024} KB, 50,000 elements 250 deep, no text",
             lambda: documents.extract(html, DocFormat.HTML, limits))
    tower = "<w:smartTag>" * 200 + "<w:r><w:t>mot</w:t></w:r>" * 50 + "</w:smartTag>" * 200
    docx_file = crafted_docx(f"<w:p>{tower * 40}</w:p>")
    _measure("DOCX, 2,000 runs 200 deep", lambda: documents.extract(docx_file, DocFormat.DOCX, limits))
    deep = nested_html(300, 1, "texte")
    _measure("HTML nested 300 deep", lambda: documents.extract(deep, DocFormat.HTML, limits))
    wav = crafted_wav(b"\x01\x02" * 4800, rate=1, channels=8)
    _measure(f"WAV of {len(wav) // 1024} KB at 1 Hz, 8 channels (kept)", lambda: decode_audio(wav, keep_channels=True))
    float16 = crafted_wav(b"\x01\x02" * 16000, format_tag=3)
    _measure("WAV declaring 16-bit floating point", lambda: decode_audio(float16))
    rng = random.Random(1)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 12))) for _ in range(10_000)]
    entries = [GlossaryEntry(f"{w} {words[i - 1]}", "x") for i, w in enumerate(words)]
    _measure("request glossary of 10,000 entries: compile", lambda: Glossary.build(entries), runs=1)
    glossary = Glossary.build(entries)
    text = " ".join(rng.choices(words, k=15_000))[:100_000]
    _measure("... and scan 100,000 characters", lambda: glossary.spans(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
