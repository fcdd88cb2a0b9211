"""Documents: recognise the format, check the limits, hand out segments, rebuild the file.

Every format module gives the same thing: a list of text segments in document order and
a `rebuild(translations) -> bytes` that writes them back into a copy of the original
(doc_office: DOCX/ODT, doc_html: HTML, doc_subtitles: SRT/VTT, doc_pdf: PDF -> DOCX or
text; plain text here). The engine translates the segments in between.

Limits are checked before any heavy work: the byte size, the zip central directory of
DOCX/ODT (zip bombs), the PDF page count. The characters of text and the time spent
reading are charged as the reader goes (budget.ReadBudget), so a small crafted file
stops at the limit instead of after building gigabytes or holding a CPU for minutes.
"""

from __future__ import annotations

import codecs
import enum
import re
import threading
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Protocol

from parlons.errors import InvalidArgument
from parlons.services.translation import doc_html, doc_office, doc_pdf, doc_subtitles, safezip
from parlons.services.translation.budget import ReadBudget


class DocFormat(enum.IntEnum):
    """Same numbers as the proto's DocumentFormat."""

    UNSPECIFIED = 0
    TXT = 1
    DOCX = 2
    ODT = 3
    HTML = 4
    SRT = 5
    VTT = 6
    PDF = 7


MIME_TYPES: dict[DocFormat, str] = {
    DocFormat.TXT: "text/plain; charset=utf-8",
    DocFormat.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    DocFormat.ODT: "application/vnd.oasis.opendocument.text",
    DocFormat.HTML: "text/html",
    DocFormat.SRT: "application/x-subrip",
    DocFormat.VTT: "text/vtt",
    DocFormat.PDF: "application/pdf",
}
_EXTENSIONS = {".txt": DocFormat.TXT, ".text": DocFormat.TXT, ".docx": DocFormat.DOCX, ".odt": DocFormat.ODT,
               ".html": DocFormat.HTML, ".htm": DocFormat.HTML, ".xhtml": DocFormat.HTML, ".srt": DocFormat.SRT,
               ".vtt": DocFormat.VTT, ".pdf": DocFormat.PDF}
_MIMES = {"text/plain": DocFormat.TXT, MIME_TYPES[DocFormat.DOCX]: DocFormat.DOCX,
          MIME_TYPES[DocFormat.ODT]: DocFormat.ODT, "text/html": DocFormat.HTML,
          "application/xhtml+xml": DocFormat.HTML, "application/x-subrip": DocFormat.SRT,
          "text/srt": DocFormat.SRT, "text/vtt": DocFormat.VTT, "application/pdf": DocFormat.PDF}
_SRT_START = re.compile(r"^\s*\d+\s*\r?\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s*-->")
_UNSUPPORTED = {b"\xd0\xcf\x11\xe0": "an old binary Office file (.doc) or a password-protected DOCX",
                b"{\\rtf": "RTF", b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image"}


@dataclass(frozen=True)
class DocumentLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pdf_pages: int = 200
    max_chars: int = 1_000_000
    max_segments: int = 200_000
    zip: safezip.ZipLimits = field(default_factory=safezip.ZipLimits)
    # Reading one document (any format), before its translation.
    time_budget_s: float = 60.0


class Extracted(Protocol):
    @property
    def segments(self) -> list[str]: ...

    def rebuild(self, translations: list[str]) -> bytes: ...


@dataclass
class PlainText:
    text: str

    @property
    def segments(self) -> list[str]:
        return [self.text] if self.text.strip() else []

    def rebuild(self, translations: list[str]) -> bytes:
        return (translations[0] if translations else self.text).encode("utf-8")


def charset_of(mime_type: str) -> str | None:
    m = re.search(r"charset\s*=\s*\"?([A-Za-z0-9_.:-]+)", mime_type or "", re.IGNORECASE)
    return m.group(1) if m else None


def decode_text(data: bytes, mime_type: str, what: str) -> str:
    """Text formats: the declared charset, a BOM, or strict UTF-8; nothing guessed."""
    declared = charset_of(mime_type)
    encoding = declared or "utf-8"
    if not declared:
        for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
            if data.startswith(bom):
                encoding = name
                break
    try:
        return data.decode(encoding)
    except LookupError:
        raise InvalidArgument(f"unknown character set {encoding!r} in the mime type") from None
    except UnicodeDecodeError as exc:
        raise InvalidArgument(
            f"the {what} is not valid {encoding} (bad byte at offset {exc.start}); convert it to UTF-8, "
            "or declare its encoding in the mime type, e.g. 'text/plain; charset=windows-1252'") from None


def detect_format(data: bytes, declared: DocFormat = DocFormat.UNSPECIFIED, file_name: str = "",
                  mime_type: str = "") -> DocFormat:
    """The declared format, else the mime type, else the file extension, else the content."""
    if declared != DocFormat.UNSPECIFIED:
        return declared
    base_mime = (mime_type or "").split(";")[0].strip().lower()
    if base_mime in _MIMES:
        return _MIMES[base_mime]
    suffix = PurePath(file_name).suffix.lower() if file_name else ""
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    head = data[:2048]
    if head.startswith(b"%PDF-"):
        return DocFormat.PDF
    if head.startswith(b"PK\x03\x04"):
        if b"mimetypeapplication/vnd.oasis.opendocument.text" in head:
            return DocFormat.ODT
        return DocFormat.DOCX
    for magic, what in _UNSUPPORTED.items():
        if head.startswith(magic):
            raise InvalidArgument(f"unsupported document: this looks like {what}; supported: "
                                  "TXT, DOCX, ODT, HTML, SRT, VTT, PDF")
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    if text.lstrip().startswith("WEBVTT"):
        return DocFormat.VTT
    if _SRT_START.match(text):
        return DocFormat.SRT
    if re.match(r"\s*(?:<\?xml[^>]*>\s*)?<(?:!doctype html|html|body|div|p|h1)\b", text, re.IGNORECASE):
        return DocFormat.HTML
    return DocFormat.TXT


def output_format(fmt: DocFormat, pdf_output: DocFormat) -> DocFormat:
    if fmt != DocFormat.PDF:
        return fmt
    if pdf_output in (DocFormat.UNSPECIFIED, DocFormat.DOCX):
        return DocFormat.DOCX
    if pdf_output == DocFormat.TXT:
        return DocFormat.TXT
    raise InvalidArgument("a PDF can be returned as DOCX or TXT only (pdf_output_format)")


def extract(data: bytes, fmt: DocFormat, limits: DocumentLimits, *, mime_type: str = "",
            pdf_output: DocFormat = DocFormat.DOCX, target_language: str = "",
            cancel: threading.Event | None = None) -> Extracted:
    """Parse the document (blocking: call in a worker thread) within its limits; `cancel`
    set stops it at its next checkpoint."""
    if not data:
        raise InvalidArgument("the document is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise InvalidArgument(
            f"the document is {len(data):,} bytes; the limit is {limits.max_bytes:,}")
    budget = ReadBudget(limits.max_chars, limits.time_budget_s, cancel)
    doc: Extracted
    if fmt == DocFormat.DOCX:
        doc = doc_office.open_docx(data, limits.zip, budget)
    elif fmt == DocFormat.ODT:
        doc = doc_office.open_odt(data, limits.zip, budget)
    elif fmt == DocFormat.HTML:
        doc = doc_html.open_html(data, charset_of(mime_type), target_language, budget)
    elif fmt == DocFormat.SRT:
        doc = doc_subtitles.open_srt(decode_text(data, mime_type, "SRT file"))
    elif fmt == DocFormat.VTT:
        doc = doc_subtitles.open_vtt(decode_text(data, mime_type, "VTT file"))
    elif fmt == DocFormat.PDF:
        out = "txt" if output_format(fmt, pdf_output) == DocFormat.TXT else "docx"
        doc = doc_pdf.open_pdf(data, max_pages=limits.max_pdf_pages, output=out, budget=budget)
    elif fmt == DocFormat.TXT:
        doc = PlainText(decode_text(data, mime_type, "text file"))
    else:
        raise InvalidArgument(f"unsupported document format {fmt!r}")
    if len(doc.segments) > limits.max_segments:
        raise InvalidArgument(f"the document has {len(doc.segments):,} text segments; the limit is {limits.max_segments:,}")
    chars = sum(len(s) for s in doc.segments)
    if chars > limits.max_chars:
        raise InvalidArgument(
            f"the document holds {chars:,} characters of text; the limit is {limits.max_chars:,}: split it and retry")
    return doc


def output_name(file_name: str, fmt: DocFormat, target_language: str) -> str:
    """`lettre.docx` -> `lettre.en.docx`; PDFs get their new extension."""
    if not file_name:
        return ""
    path = PurePath(file_name)
    suffix = {DocFormat.DOCX: ".docx", DocFormat.TXT: ".txt"}.get(fmt, path.suffix) if path.suffix.lower() == ".pdf" else path.suffix
    return f"{path.stem}.{target_language}{suffix}"
