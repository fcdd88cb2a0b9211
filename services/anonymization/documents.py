"""Documents anonymised with their layout kept: the translation service's readers
(docx, odt, html, srt, vtt, pdf, txt; bounded by the same limits and read budget) give
the text segments, the engine masks them as one conversation, the reader rebuilds.

The readers live with translation, which wrote them for the same job (text out, text
back in); this module only borrows `extract` and the format helpers.

A document holds as many characters as a text request may (`max_chars_per_request`): the
reader stops there. Its segments are bounded by the document limits instead of
`max_texts` (runs and cells are many and short: the work follows the characters). The
engine reads long segments (a TXT file is one) in bounded pieces, and the cancel event
and a time budget reach it as they reach the reader.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import PurePath

from parlons.services.common.budget import WorkBudget
from parlons.errors import InvalidArgument
from parlons.services.translation import documents
from parlons.services.translation.documents import DocFormat, DocumentLimits

from .engine import AnonymizationEngine, AnonymizeOptions


@dataclass
class AnonymizedDocument:
    content: bytes
    file_name: str
    mime_type: str
    format: str
    segments: int
    spans: int
    names_checked: bool
    characters: int
    mapping: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def anonymize_document(engine: AnonymizationEngine, data: bytes, limits: DocumentLimits, *, file_name: str = "",
                       mime_type: str = "", language: str = "fr", options: AnonymizeOptions | None = None,
                       pdf_output: str = "", cancel: threading.Event | None = None) -> AnonymizedDocument:
    """Blocking (a worker thread): read within the limits, mask, rebuild."""
    pdf_format = {"": DocFormat.DOCX, "docx": DocFormat.DOCX, "txt": DocFormat.TXT}.get(pdf_output.lower())
    if pdf_format is None:
        raise InvalidArgument(f"pdf_output_format must be docx or txt, got {pdf_output!r}", field="pdf_output_format")
    fmt = documents.detect_format(data, DocFormat.UNSPECIFIED, file_name, mime_type)
    out_fmt = documents.output_format(fmt, pdf_format)
    limits = dataclasses.replace(limits, max_chars=min(limits.max_chars, engine.limits.max_chars_per_request))
    extracted = documents.extract(data, fmt, limits, mime_type=mime_type, pdf_output=pdf_format,
                                  target_language=language, cancel=cancel)
    segments = extracted.segments
    budget = WorkBudget(engine.limits.time_budget_s, cancel, what="anonymising the document",
                        advice="split it and retry", field="content")
    result = engine.with_limits(max_texts=limits.max_segments).anonymize(segments, language, options, budget=budget)
    content = extracted.rebuild(result.texts)
    notes = []
    if fmt == DocFormat.PDF:
        notes.append(f"PDF input returned as {out_fmt.name}: the text is anonymised, the page layout is not kept")
    if fmt in (DocFormat.TXT, DocFormat.SRT, DocFormat.VTT) and documents.charset_of(mime_type):
        notes.append("text returned in UTF-8")
    return AnonymizedDocument(
        content=content, file_name=_output_name(file_name, out_fmt), mime_type=documents.MIME_TYPES[out_fmt],
        format=out_fmt.name.lower(), segments=len(segments), spans=sum(len(f) for f in result.findings),
        names_checked=result.names_checked, characters=sum(len(s) for s in segments), mapping=result.mapping,
        notes=notes)


def _output_name(file_name: str, fmt: DocFormat) -> str:
    """`entretien.docx` -> `entretien.anonymise.docx`; a PDF gets its new extension."""
    path = PurePath(file_name or "document")
    extension = {DocFormat.DOCX: ".docx", DocFormat.TXT: ".txt"}.get(fmt, path.suffix) \
        if path.suffix.lower() == ".pdf" or not path.suffix else path.suffix
    return f"{path.stem}.anonymise{extension}"
