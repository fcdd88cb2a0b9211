"""Inputs that once held an anonymisation worker for minutes (issue 25), each reproduced
(or a smaller one of the same shape) and its cost bounded by counting, by memory or by a
ratio against an ordinary input of the same size, never by this machine's speed alone.

The findings: dictated numbers with a correction after every digit copied the whole run
per correction; every name found was searched in every text with a fresh regex, and
placeholders compared every new name with all names before it; always-mask terms were
compiled and scanned per text; nothing stopped a request whose caller had gone; a TXT
document was one spaCy call and documents had five times the text limit; a name pattern
without a left anchor read a 100 KB word of capitals from each letter; "double ſept"
raised a KeyError that put the word in the log.

Most tests use the rules alone (no spaCy model: `ner_models={}`); the one that needs
the real model is marked slow.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from parlons.services.anonymization.documents import anonymize_document
from parlons.services.anonymization.engine import (
    MAX_PIECE_CHARS,
    NER_BATCH_CHARS,
    AnonymizationEngine,
    AnonymizeLimits,
    AnonymizeOptions,
    compiled_terms,
    pieces_of,
)
from parlons.services.anonymization.entities import Finding
from parlons.services.anonymization.evaluation import read_corpus
from parlons.services.anonymization.names import BORN_NAME_RE, find_names
from parlons.services.anonymization.numbers import READINGS_PER_TOKEN, token_runs
from parlons.services.anonymization.replace import Replacer, first_related
from parlons.services.anonymization.servicer import AnonymizationFault, AnonymizationServicer, without_content
from parlons.services.common.config import AnonymizationSettings
from parlons.errors import Cancelled, InvalidArgument
from parlons.services.common.logs import JsonFormatter
from parlons.services.common.workqueue import WorkQueue
from parlons.services.translation.documents import DocumentLimits
from parlons.v1 import anonymization_pb2 as apb

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def rules() -> AnonymizationEngine:
    """The engine without a NER model: the rules, the names' follow-up, the replacer."""
    engine = AnonymizationEngine(ner_models={})
    engine.anonymize(["Bonjour Madame Dupont."])  # warm: gazetteer, stop words
    return engine


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return [line.text for line in read_corpus(sorted(DATA.glob("anonymization_fr_*.txt")))]


def ordinary(lines: list[str], size: int) -> str:
    text = "\n".join(lines)
    return text[:size]


def seconds(fn: Callable[[], object], runs: int = 3) -> float:
    """The best of a few runs: a busy machine (CI, a full suite beside other work) slows
    one run, rarely all; the bounds below are ratios far from the old code's."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------ 1. corrections


@pytest.mark.parametrize("unit", ["1 non ", "cinquante huit 1 "])
def test_a_dictation_full_of_corrections_is_read_a_bounded_number_of_ways(unit: str) -> None:
    """1.8 KB of "1 non 1 non ..." gave 596 runs and 177,908 tokens (each correction a
    copy of the whole run: 12.7 s); its other readings now hold at most a few times the
    run's own tokens."""
    text = (unit * 400)[:3600]
    runs = token_runs(text)
    own = [r for r in runs if r.said is None]
    readings = sum(len(r.tokens) for r in runs if r.said is not None)
    assert readings <= READINGS_PER_TOKEN * sum(len(r.tokens) for r in own) + 64 * len(own)  # was 790 times
    assert peak_mib(lambda: token_runs((unit * 4000)[:48_000])) < 50  # was +1 GB


def test_a_correction_is_still_read_far_into_a_long_run(rules: AnonymizationEngine) -> None:
    """The window around a correction holds what an identifier can use: the corrected
    phone is found after a long run of digits, and its span covers the whole dictation."""
    said = "06 12 34 56 78, non pardon, 79"
    text = "la référence 12 " + "34 " * 40 + f"et mon numéro {said}, voilà"
    found = {text[f.start:f.end]: f.entity_type for f in rules.analyze(text)}
    assert found.get(said) == "PHONE", found
    readings = {r.alnum()[0] for r in token_runs("427 19 35, non pardon, 53")}
    assert {"427193553", "4271953"} <= readings
    long_run = token_runs(" ".join(["12"] * 50) + ", non, 13 14")
    assert all((r.start, r.end) == (long_run[0].start, long_run[0].end) for r in long_run)


def test_corrections_cost_a_few_times_an_ordinary_text(rules: AnonymizationEngine, lines: list[str]) -> None:
    """12 KB of corrections: minutes before (quadratic; 3.6 KB took 50 s); now about 5x
    ordinary talk with the rules alone (with spaCy, 1.5x)."""
    pathological = [("1 non " * 2000)[:12_000]]
    plain = [ordinary(lines, 12_000)]
    rules.anonymize(plain)
    assert seconds(lambda: rules.anonymize(pathological)) <= 10 * seconds(lambda: rules.anonymize(plain)) + 0.5


# ------------------------------------------------------------------ 2. names across texts


def distinct_names(count: int) -> list[str]:
    rng = random.Random(7)
    names: set[str] = set()
    while len(names) < count:
        names.add(rng.choice("BDFGKLMNPRST") + "".join(rng.choices("aeiouylmnrst", k=rng.randint(5, 8))))
    return sorted(names)


def test_many_distinct_names_cost_as_much_as_one_name_said_many_times(rules: AnonymizationEngine) -> None:
    """2,000 short turns with distinct names took 132 s against 7 s for one repeated
    name: every name was searched in every text with its own regex. Now one regex for all
    names, each text read once."""
    names = distinct_names(1500)
    distinct = [f"Bonjour, je suis Madame {n}." for n in names]
    repeated = [f"Bonjour, je suis Madame {names[0]}." for _ in names]
    rules.anonymize(repeated)
    assert seconds(lambda: rules.anonymize(distinct)) <= 10 * seconds(lambda: rules.anonymize(repeated)) + 0.5  # was 220x
    result = rules.anonymize(distinct[:3] + [f"{names[1]} est venu hier, et {names[2].upper()} aussi."])
    assert result.texts[3] == "[PERSONNE_2] est venu hier, et [PERSONNE_3] aussi."


def test_the_same_person_is_found_for_all_names_at_once() -> None:
    """Who is the same person ("Benali" after "Fatima Benali") compared every new name
    with every name before it; now one automaton over all of them, same answers."""
    rng = random.Random(3)
    for _ in range(200):
        keys = list(dict.fromkeys("".join(rng.choices("abc", k=rng.randint(3, 7))) for _ in range(rng.randint(1, 25))))
        expected = [next((j for j in range(i) if keys[j] in k or k in keys[j]), None) for i, k in enumerate(keys)]
        assert first_related(keys) == expected, keys
    small = ["".join(rng.choices(string.ascii_lowercase, k=10)) for _ in range(1000)]
    large = ["".join(rng.choices(string.ascii_lowercase, k=10)) for _ in range(10_000)]
    first_related(small)
    # linear: ten times the names, about ten times the time (quadratic: a hundred)
    assert seconds(lambda: first_related(large)) <= 30 * seconds(lambda: first_related(small)) + 0.2
    replacer = Replacer()
    texts = ["Fatima Benali", "Benali", "Mme Ali", "Karim Haddad"]
    findings = [[Finding(0, len(t), "PERSON", 0.9)] for t in texts]
    findings[2] = [Finding(4, 7, "PERSON", 0.9)]
    assert [r[0] for r in replacer.apply_all(texts, findings)] == [
        "[PERSONNE_1]", "[PERSONNE_1]", "Mme [PERSONNE_1]", "[PERSONNE_2]"]


# ------------------------------------------------------------------ 3. always / never mask


def test_always_mask_terms_are_compiled_once_and_read_once_per_text(rules: AnonymizationEngine,
                                                                     lines: list[str]) -> None:
    """2,000 terms x 100 texts took 31 s (a regex per term per text, case-insensitive,
    past the regex cache, 70x the same texts without terms); now within 10x (1.0x here, compiled once and cached)."""
    rng = random.Random(5)
    terms = tuple(" ".join("".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(2)) for _ in range(2000))
    texts = lines[:150]
    compiled_terms.cache_clear()
    rules.anonymize(texts)
    plain = seconds(lambda: rules.anonymize(texts))
    with_terms = seconds(lambda: rules.anonymize(texts, options=AnonymizeOptions(always_mask=terms)))
    assert with_terms <= 10 * plain + 0.5, (with_terms, plain)  # was 70x
    assert compiled_terms.cache_info().misses == 2  # none, then the 2,000 terms: once for 150 texts


def test_terms_keep_their_meaning(rules: AnonymizationEngine) -> None:
    options = AnonymizeOptions(always_mask=("Jean Moulin", "moulin rouge", " Crêt "), never_mask=(" DUPONT ",))
    text = "Au Jean Moulin Rouge, près du crêt, avec Madame Dupont ; jean moulinet non."
    masked = {text[f.start:f.end] for f in rules.analyze(text, options=options)}
    assert masked == {"Jean Moulin Rouge", "crêt"}, masked
    with pytest.raises(InvalidArgument, match="over 200 characters"):
        rules.check(["x"], AnonymizeOptions(always_mask=("a" * 201,)))


# ------------------------------------------------------------------ 4. cancellation, time budget


def conversation(lines: list[str], chars: int) -> list[str]:
    texts: list[str] = []
    total = 0
    while total < chars:
        line = lines[len(texts) % len(lines)]
        texts.append(line)
        total += len(line)
    return texts


def test_a_cancelled_request_stops_within_a_second(rules: AnonymizationEngine, lines: list[str]) -> None:
    """No check existed: a request ran to its end whatever happened to its caller."""
    texts = conversation(lines, 190_000)
    engine = rules.with_limits(max_texts=len(texts))
    cancel = threading.Event()
    outcome: list[BaseException] = []
    stopped = threading.Event()

    def work() -> None:
        try:
            engine.anonymize(texts, cancel=cancel)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)
        stopped.set()

    threading.Thread(target=work, daemon=True).start()
    time.sleep(0.3)
    cancel.set()
    asked = time.perf_counter()
    assert stopped.wait(5)
    assert time.perf_counter() - asked < 1.0
    assert outcome and isinstance(outcome[0], Cancelled), outcome


def test_a_request_stops_at_its_time_budget(rules: AnonymizationEngine, lines: list[str]) -> None:
    texts = conversation(lines, 190_000)
    engine = rules.with_limits(max_texts=len(texts), time_budget_s=0.2)
    started = time.perf_counter()
    with pytest.raises(InvalidArgument, match=r"took more than 0.2 s") as info:
        engine.anonymize(texts)
    assert info.value.field == "texts"
    assert time.perf_counter() - started < 1.2


async def test_a_client_that_gives_up_frees_the_worker(rules: AnonymizationEngine, lines: list[str]) -> None:
    """After two timed-out requests a one-sentence request waited 15 s: the abandoned
    jobs ran on. Now the queue's cancel event reaches the engine, which stops."""
    texts = conversation(lines, 190_000)
    engine = rules.with_limits(max_texts=len(texts))
    queue = WorkQueue("test-anonymization", 1, 1)
    module = SimpleNamespace(ready_engine=lambda: engine, settings=AnonymizationSettings(), queue=queue,
                             document_limits=DocumentLimits())
    servicer = AnonymizationServicer(module)  # type: ignore[arg-type]
    try:
        big = asyncio.create_task(servicer.AnonymizeText(apb.AnonymizeTextRequest(texts=texts), None))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        big.cancel()  # what grpc.aio does when the deadline passes or the client cancels
        given_up = time.perf_counter()
        with pytest.raises(asyncio.CancelledError):
            await big
        while queue.admitted and time.perf_counter() - given_up < 5:
            await asyncio.sleep(0.02)
        assert queue.admitted == 0 and time.perf_counter() - given_up < 1.0
        small = await asyncio.wait_for(servicer.AnonymizeText(
            apb.AnonymizeTextRequest(texts=["Je suis Madame Benali."]), None), 5)  # type: ignore[arg-type]
        assert small.texts[0].text == "Je suis Madame [PERSONNE_1]."
    finally:
        queue.shutdown()


# ------------------------------------------------------------------ 5. documents


class _RecordingAnalyzer:
    """Stands for Presidio's analyzer over spaCy: records what reaches the model."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.nlp_engine = self

    def process_batch(self, texts: list[str], language: str, batch_size: int = 1) -> Iterator[tuple[str, object]]:
        self.batches.append(list(texts))
        return ((text, object()) for text in texts)

    def analyze(self, text: str, language: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
        assert nlp_artifacts is not None, "the text went to the model whole, not through the batches"
        return [SimpleNamespace(start=m, end=m + 9, score=0.85) for m in _all(text, "Zorglubio")]


def _all(text: str, word: str) -> list[int]:
    out, at = [], text.find(word)
    while at >= 0:
        out.append(at)
        at = text.find(word, at + 1)
    return out


def test_a_txt_document_reaches_the_model_in_bounded_batches(lines: list[str]) -> None:
    """A 1 MB TXT was one spaCy call (40 s, +3.3 GB). Now pieces cut at line ends,
    batched through nlp.pipe up to a bound, names found at their place in the file."""
    engine = AnonymizationEngine(ner_models={}, limits=AnonymizeLimits(max_chars_per_request=60_000))
    analyzer = _RecordingAnalyzer()
    engine._analyzers["fr"] = analyzer
    text = ordinary(lines, 25_000) + "\nBonjour Zorglubio, ça va ?\n" + ordinary(lines, 25_000)
    document = anonymize_document(engine, text.encode(), DocumentLimits(), file_name="entretien.txt")
    assert document.names_checked and b"Zorglubio" not in document.content
    assert document.content.decode().count("\n") == text.count("\n")
    assert sum(len(b) for b in analyzer.batches) > 10
    assert all(sum(map(len, batch)) <= NER_BATCH_CHARS for batch in analyzer.batches)
    assert all(len(piece) <= MAX_PIECE_CHARS for batch in analyzer.batches for piece in batch)
    assert "".join(piece for batch in analyzer.batches for piece in batch) == text


def test_documents_have_the_text_limit(lines: list[str]) -> None:
    """Documents had five times the text limit (1,000,000 characters against 200,000)."""
    engine = AnonymizationEngine(ner_models={}, limits=AnonymizeLimits(max_chars_per_request=20_000))
    data = ordinary(lines, 30_000).encode()
    started = time.perf_counter()
    with pytest.raises(InvalidArgument, match="20,000"):
        anonymize_document(engine, data, DocumentLimits(), file_name="a.txt")
    assert time.perf_counter() - started < 1.0
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        anonymize_document(engine, ordinary(lines, 10_000).encode(), DocumentLimits(), file_name="a.txt",
                           cancel=cancel)


def test_long_texts_are_cut_at_line_ends_then_sentences_then_spaces() -> None:
    text = "a" * 3000 + "\n" + "b" * 3000 + ". " + "c" * 3000 + " " + "d" * 5000
    pieces = pieces_of(text, 4000)
    assert [p[:1] for _, p in pieces] == ["a", "b", "c", "d", "d"]
    assert "".join(p for _, p in pieces) == text and all(text[o:o + len(p)] == p for o, p in pieces)
    assert pieces_of("court") == [(0, "court")]


@pytest.mark.slow
def test_a_large_document_with_spacy_stays_bounded_in_memory_and_time(lines: list[str]) -> None:
    """The real model on a 100 KB TXT (once +3.3 GB for 1 MB in one call) and a DOCX of
    1,500 names (once 76 s) beside one of 1,500 ordinary paragraphs."""
    from crafted import crafted_docx

    engine = AnonymizationEngine()
    data = ordinary(lines, 100_000).encode()
    assert peak_mib(lambda: anonymize_document(engine, data, DocumentLimits(), file_name="a.txt")) < 200

    def docx(paragraphs: list[str]) -> bytes:
        return crafted_docx("".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs))

    names = docx([f"M. {n}" for n in distinct_names(1500)])
    plain = docx([line[:12].replace("&", "et").replace("<", "").replace(">", "") for line in lines[:1500]])
    anonymize_document(engine, plain, DocumentLimits(), file_name="a.docx")
    named = seconds(lambda: anonymize_document(engine, names, DocumentLimits(), file_name="a.docx"))
    assert named <= 10 * seconds(lambda: anonymize_document(engine, plain, DocumentLimits(), file_name="a.docx")) + 1  # was 100x


# ------------------------------------------------------------------ 6. a word of capitals


def test_a_long_word_of_capitals_is_read_once() -> None:
    """BORN_NAME_RE had no left anchor: 100 KB of capitals took 21 s (20 KB: 0.7 s)."""
    word = "A" * 50_000
    assert seconds(lambda: list(BORN_NAME_RE.finditer(word))) < 1.0  # 0.06 s here; 21 s before
    assert seconds(lambda: find_names(word)) < 2.0
    for text, name in [("Aaruran, il est né le 3 mai", "Aaruran"), ("Nila, née le 12 juin", "Nila"),
                       ("avec d'Artagnan, né en 1611", "Artagnan"), ("O'Brien, né le 2 mai", "O'Brien")]:
        assert [m.group("name") for m in BORN_NAME_RE.finditer(text)] == [name], text
    assert not list(BORN_NAME_RE.finditer("xAaruran, né le 3 mai"))


# ------------------------------------------------------------------ 7. case folding, errors in logs


def test_unicode_case_folding_of_spoken_digits(rules: AnonymizationEngine) -> None:
    """"double ſept": the regex matched "ſept" as "sept" (IGNORECASE) but the lookup used
    lower(): KeyError, INTERNAL."""
    assert [r.alnum()[0] for r in token_runs("double ſept, DOUBLE SEPT, Triple Zéro")] == ["7777000"]
    rules.analyze("mon code c'est double ſept")
    assert rules.anonymize(["le 06 12 34 double ſept 89"]).texts == ["le [TELEPHONE_1]"]


async def test_an_unexpected_error_leaves_no_text_in_the_log() -> None:
    """A bug's message (KeyError('ſept')) quoted the text into the error log; now the
    client gets INTERNAL and the log the traceback, without the message."""

    said = "Fatima Benali, double ſept"

    def buggy(*_: object, **__: object) -> object:
        raise KeyError(said)

    engine = SimpleNamespace(check=lambda *_: None, anonymize=buggy)
    queue = WorkQueue("test-anonymization-fault", 1, 0)
    module = SimpleNamespace(ready_engine=lambda: engine, settings=AnonymizationSettings(), queue=queue,
                             document_limits=DocumentLimits())
    servicer = AnonymizationServicer(module)  # type: ignore[arg-type]
    request = apb.AnonymizeTextRequest(texts=[said])  # (source lines appear in a traceback: none with text)
    try:
        with pytest.raises(AnonymizationFault) as info:
            await servicer.AnonymizeText(request, None)  # type: ignore[arg-type]
    finally:
        queue.shutdown()
    record = logging.LogRecord("parlons", logging.ERROR, __file__, 1, "internal error", None,
                               (type(info.value), info.value, info.value.__traceback__))
    logged = JsonFormatter().format(record)
    assert "KeyError" in logged and "buggy" in logged  # where it failed is kept
    assert "Benali" not in logged and "ſept" not in logged

    def refused() -> None:
        raise InvalidArgument("the limit is 2000", field="texts")

    with pytest.raises(InvalidArgument):  # what a client can act on passes as it is
        without_content(refused)()
