"""Crafted documents that once cost a server gigabytes or minutes: each one reproduced,
and its outcome bounded (status, time, peak memory of the reader).

The findings (issue 10): an ODT whose `<text:s text:c="N"/>` built N spaces before any
limit; HTML and DOCX readers that walked every element's ancestors (elements x depth);
HTML nested deeper than libxml2's 256 levels losing its text silently; document reading
in the default thread pool, unbounded and uncancellable.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from parlons.errors import Cancelled, InvalidArgument, ResourceExhausted
from parlons.services.common.workqueue import WorkQueue
from parlons.services.translation import documents
from parlons.services.translation.documents import DocFormat, DocumentLimits
from parlons.services.translation.engine import TranslationEngine
from crafted import crafted_docx, crafted_odt, flate_bomb_pdf, measured, nested_html



def test_odt_asking_for_400_million_spaces_is_refused_before_building_them() -> None:
    odt = crafted_odt('<text:p>Bonjour<text:s text:c="400000000"/>madame</text:p>')
    assert len(odt) < 1000
    outcome, seconds, peak = measured(lambda: documents.extract(odt, DocFormat.ODT, DocumentLimits()))
    assert isinstance(outcome, InvalidArgument) and "1,000,000 characters" in str(outcome), outcome
    assert seconds < 1.0 and peak < 20, (seconds, peak)
    # A real run of spaces is kept, and a count that is not a number is one space.
    doc = documents.extract(crafted_odt('<text:p>Nom :<text:s text:c="3"/>Dupont<text:s text:c="x"/>Jean</text:p>'),
                            DocFormat.ODT, DocumentLimits())
    assert doc.segments == ["Nom :   Dupont Jean"]


def test_many_space_elements_are_charged_together() -> None:
    spaces = '<text:s text:c="9000"/>'
    odt = crafted_odt(f"<text:p>a{spaces * 200}b</text:p>")  # 1.8 M spaces from 5 KB of XML
    with pytest.raises(InvalidArgument, match="characters"):
        documents.extract(odt, DocFormat.ODT, DocumentLimits())


def test_html_reading_is_linear_in_its_elements_not_elements_times_depth() -> None:
    # 50,000 elements 250 deep and no text: the old reader walked 12.5 M ancestors.
    page = nested_html(250, 200)
    assert len(page) > 500_000
    outcome, seconds, _ = measured(lambda: documents.extract(page, DocFormat.HTML, DocumentLimits()), memory=False)
    assert not isinstance(outcome, Exception), outcome
    assert seconds < 3.0, seconds
    # The same markup with a word at the bottom of each tower: every word found.
    doc = documents.extract(nested_html(250, 200, "mot"), DocFormat.HTML, DocumentLimits())
    assert len(doc.segments) == 200


def test_docx_reading_is_linear_in_its_runs_not_runs_times_depth() -> None:
    # Runs 200 levels deep inside smart tags (w:smartTag nests): each run once.
    run = "<w:r><w:t>mot</w:t></w:r>"
    tower = "<w:smartTag>" * 200 + run * 50 + "</w:smartTag>" * 200
    data = crafted_docx(f"<w:p>{tower * 40}</w:p>")
    outcome, seconds, _ = measured(lambda: documents.extract(data, DocFormat.DOCX, DocumentLimits()), memory=False)
    assert not isinstance(outcome, Exception), outcome
    assert seconds < 3.0, seconds
    assert "".join(outcome.segments) == "mot" * 2000  # type: ignore[union-attr]


def test_html_nested_deeper_than_the_parser_reads_is_refused_not_silently_cut() -> None:
    with pytest.raises(InvalidArgument, match="nested deeper than 255"):
        documents.extract(nested_html(300, 1, "texte perdu"), DocFormat.HTML, DocumentLimits())
    assert documents.extract(nested_html(200, 1, "texte gardé"), DocFormat.HTML, DocumentLimits()).segments == ["texte gardé"]


def test_reading_stops_at_its_time_budget_and_when_cancelled() -> None:
    page = nested_html(100, 2000, "mot")
    outcome, seconds, _ = measured(lambda: documents.extract(page, DocFormat.HTML, DocumentLimits(time_budget_s=0.05)),
                                    memory=False)
    assert isinstance(outcome, InvalidArgument) and "too complex to read within 0.05 s" in str(outcome), outcome
    assert seconds < 2.0, seconds
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        documents.extract(page, DocFormat.HTML, DocumentLimits(), cancel=cancel)


def test_a_pdf_flate_bomb_is_not_inflated_whole() -> None:
    """300 MiB of deflated spaces in a 300 KB PDF: pypdf (>= 6) bounds what it inflates."""
    pdf = flate_bomb_pdf(300)
    assert len(pdf) < 400_000
    outcome, seconds, peak = measured(lambda: documents.extract(pdf, DocFormat.PDF, DocumentLimits()))
    assert isinstance(outcome, InvalidArgument), outcome
    assert peak < 100 and seconds < 10, (peak, seconds)


async def test_documents_are_read_in_the_bounded_document_queue() -> None:
    """The engine's document queue full: RESOURCE_EXHAUSTED at once, no thread started."""
    queue = WorkQueue("test-documents", 1, 0)
    engine = TranslationEngine([], document_queue=queue)
    release = threading.Event()
    holder = asyncio.create_task(queue.run(release.wait, 30))
    await asyncio.sleep(0.05)
    try:
        started = time.perf_counter()
        with pytest.raises(ResourceExhausted, match="busy"):
            await engine.translate_document(b"Bonjour.", "en", "fr", file_name="a.txt")
        assert time.perf_counter() - started < 1.0
    finally:
        release.set()
        await holder
        queue.shutdown()
