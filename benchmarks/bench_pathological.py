"""Pathological inputs of the anonymisation review (issue 25), each beside an ordinary
input of the same size and shape: what each costs the service now.

    python benchmarks/bench_pathological.py [--only NAME ...]

For each case: the outcome (the error a client gets, or how many spans were found), the
wall time of one run, and the peak memory Python allocated while it ran (tracemalloc,
a second run: tracing slows Python several times). Ordinary inputs are the annotated
counter dialogues (tests/data/anonymization_fr_*.txt) cut to the same size. The engine is
the real one (spaCy fr_core_news_md through the model manager).

The cases: dictated numbers with a correction after every digit ("1 non 1 non ...") or
tens and units written apart ("cinquante huit 1 ..."); 2,000 short turns each with a new
name; 2,000 always-mask terms over 100 and 1,000 texts; a 1 MB TXT document (refused at
the text limit), a 200 KB one (the largest accepted) and a 10 KB DOCX holding 1,500
names; one 100 KB word of capitals; "double ſept" (once a KeyError); and how long a
cancel takes to stop a 200 KB request.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402
from crafted import crafted_docx, measured  # noqa: E402
from parlons.services.anonymization.evaluation import read_corpus  # noqa: E402

DATA = ROOT / "tests" / "data"
# One case: (label, its input, how it is run) -> outcome; the runner is given the engine
# and the document function so that another engine (an older one) can be measured alike.
Runner = Callable[[Any, Callable[..., Any]], object]


def corpus_lines() -> list[str]:
    return [line.text for line in read_corpus(sorted(DATA.glob("anonymization_fr_*.txt")))]


def ordinary_text(size: int) -> str:
    """Counter dialogue, one turn a line, cut to `size` characters."""
    text = "\n".join(corpus_lines())
    while len(text) < size:
        text += "\n" + text
    return text[:size]


def repeated(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def distinct_names(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < count:
        names.add(rng.choice(string.ascii_uppercase) + "".join(rng.choices("aeiouybcdfglmnrst", k=rng.randint(5, 9))))
    return sorted(names)


def texts_case(texts: list[str], **options: Any) -> Runner:
    def run(engine: Any, _: Callable[..., Any]) -> object:
        from parlons.services.anonymization.engine import AnonymizeOptions

        return engine.anonymize(texts, "fr", AnonymizeOptions(**options))

    return run


def document_case(data: bytes, file_name: str) -> Runner:
    def run(engine: Any, anonymize_document: Callable[..., Any]) -> object:
        from parlons.services.translation.documents import DocumentLimits

        return anonymize_document(engine, data, DocumentLimits(), file_name=file_name)

    return run


def docx_of(paragraphs: list[str]) -> bytes:
    body = "".join(f"<w:p><w:r><w:t xml:space=\"preserve\">{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    return crafted_docx(body)


def cases() -> dict[str, list[tuple[str, Runner]]]:
    """Each finding's pathological input(s) and the ordinary one of the same size."""
    lines = corpus_lines()
    names = distinct_names(2000)
    terms = [f"{w} {names[i - 1]}" for i, w in enumerate(names)]
    short = [line for line in lines if len(line) < 80]
    names_docx = docx_of([f"M. {n}" for n in names[:1500]])
    plain_docx = docx_of([w[:len(names[i]) + 3] for i, w in enumerate(short[:1500])])
    return {
        "corrections": [
            ("'1 non ' x 600 (3.6 KB, one text)", texts_case([repeated("1 non ", 3600)])),
            ("'cinquante huit 1 ' (3.6 KB, one text)", texts_case([repeated("cinquante huit 1 ", 3600)])),
            ("  ordinary 3.6 KB, one text", texts_case([ordinary_text(3600)])),
            ("'1 non ' (48 KB, one text)", texts_case([repeated("1 non ", 48_000)])),
            ("  ordinary 48 KB, one text", texts_case([ordinary_text(48_000)])),
        ],
        "names": [
            ("2,000 short turns, a new name in each", texts_case([f"Bonjour, je suis Madame {n}." for n in names])),
            ("  2,000 ordinary short turns", texts_case(short[:2000])),
        ],
        "always_mask": [
            ("2,000 always-mask terms x 100 texts", texts_case(lines[:100], always_mask=tuple(terms))),
            ("  the same 100 texts, no terms", texts_case(lines[:100])),
            ("2,000 always-mask terms x 1,000 texts", texts_case(lines[:1000], always_mask=tuple(terms))),
            ("  the same 1,000 texts, no terms", texts_case(lines[:1000])),
        ],
        "documents": [
            ("TXT of 1 MB (over the text limit)", document_case(ordinary_text(1_000_000).encode(), "a.txt")),
            ("TXT of 200 KB (the largest accepted)", document_case(ordinary_text(200_000).encode(), "a.txt")),
            (f"DOCX of {len(names_docx) // 1024} KB, 1,500 names", document_case(names_docx, "a.docx")),
            (f"  DOCX of {len(plain_docx) // 1024} KB, 1,500 ordinary paragraphs", document_case(plain_docx, "a.docx")),
        ],
        "capitals": [
            ("one 100 KB word of capitals", texts_case(["A" * 100_000])),
            ("  ordinary 100 KB, one text", texts_case([ordinary_text(100_000)])),
        ],
        "folding": [("'double ſept'", texts_case(["mon code c'est double ſept"]))],
    }


def outcome(result: object) -> str:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {str(result)[:80]}"
    findings = getattr(result, "findings", None)
    if findings is not None:
        return f"ok, {sum(len(f) for f in findings)} spans"
    return f"ok, {getattr(result, 'spans', '?')} spans"


def measure(label: str, run: Runner, engine: Any, anonymize_document: Callable[..., Any]) -> None:
    result, seconds, _ = measured(lambda: run(engine, anonymize_document), memory=False)
    _, _, peak = measured(lambda: run(engine, anonymize_document))
    print(f"{label:<52} {seconds:8.2f} s {peak:9.1f} MiB   {outcome(result)}", flush=True)


def cancel_delay(engine: Any) -> float:
    """Seconds between setting the cancel event of a running 200 KB request and its end."""
    cancel = threading.Event()
    done = threading.Event()

    def work() -> None:
        try:
            engine.anonymize([ordinary_text(200_000)], "fr", cancel=cancel)
        except Exception:
            pass
        done.set()

    threading.Thread(target=work, daemon=True).start()
    time.sleep(2.0)
    cancel.set()
    started = time.perf_counter()
    done.wait(60)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case groups to run (default: all)")
    args = parser.parse_args()
    from parlons.services.anonymization.documents import anonymize_document
    from parlons.services.anonymization.engine import AnonymizationEngine

    print(f"anonymisation, pathological inputs, {time.strftime('%Y-%m-%d')}, {machine()}")
    engine = AnonymizationEngine()
    engine.anonymize(["Bonjour Madame Dupont."])  # warm: gazetteer, stop words
    print(f"{'case':<52} {'time':>10} {'peak':>13}   outcome")
    for group, items in cases().items():
        if args.only and group not in args.only:
            continue
        for label, run in items:
            measure(label, run, engine, anonymize_document)
    if not args.only or "cancel" in args.only:
        print(f"{'cancel of a running 200 KB request, honoured after':<52} {cancel_delay(engine):8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
