"""PDF: extract the text page by page (pypdf) and return it translated as DOCX or text.

A PDF is a page description, not an editable document: rewriting text in place breaks
its layout more often than not. So the translation is delivered as a new document (DOCX
by default, one section per page, page breaks kept) or as plain text, and the response
says so. Lines that pypdf returns hard-wrapped are joined back into paragraphs.

Bounded work: the page count is checked before any text is extracted, extraction stops
at a time budget, and PDFs encrypted with a user password are refused with a clear
message (an empty user password, common for "no copy" restrictions, is opened).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from parlons.errors import Cancelled, FailedPrecondition, InvalidArgument
from parlons.services.translation.budget import ReadBudget

log = logging.getLogger("parlons.translation.pdf")
logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-PDF chatter is not news

_SENTENCE_END = re.compile(r"[.:!?;»”)\]]$")


@dataclass
class PdfDocument:
    pages: list[list[str]]
    output: str  # "docx" or "txt"
    segments: list[str]

    def rebuild(self, translations: list[str]) -> bytes:
        it = iter(translations)
        translated = [[next(it) for _ in page] for page in self.pages]
        if self.output == "txt":
            return "\n\f\n".join("\n\n".join(page) for page in translated).encode("utf-8")
        import docx

        document = docx.Document()
        for number, page in enumerate(translated):
            if number:
                document.add_page_break()
            for paragraph in page or [""]:
                document.add_paragraph(paragraph)
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()


def paragraphs(page_text: str) -> list[str]:
    """Join hard-wrapped lines into paragraphs: blank lines and short sentence-final lines end one."""
    lines = [line.rstrip() for line in page_text.splitlines()]
    widest = max((len(line) for line in lines), default=0)
    out: list[str] = []
    current = ""
    for line in lines:
        stripped = line.strip()
        if not stripped:
            if current:
                out.append(current)
            current = ""
            continue
        if current.endswith("-") and not current.endswith(" -") and stripped[:1].islower():
            current = current[:-1] + stripped  # hyphenated at the line end
        else:
            current = f"{current} {stripped}" if current else stripped
        if _SENTENCE_END.search(stripped) and len(line) < 0.8 * widest:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def open_pdf(data: bytes, *, max_pages: int, output: str, budget: ReadBudget) -> PdfDocument:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError, PdfStreamError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise FailedPrecondition(f"this PDF is encrypted with AES and the server lacks its decryption support ({exc})") from exc
            if not opened:
                raise InvalidArgument("this PDF is password-protected; remove the password and retry")
        count = len(reader.pages)
        if count > max_pages:
            raise InvalidArgument(
                f"the PDF has {count} pages; at most {max_pages} are translated per request: split it and retry")
        if count == 0:
            raise InvalidArgument("the PDF has no pages")
        pages: list[list[str]] = []
        for number, page in enumerate(reader.pages, start=1):
            budget.check(f"page {number}")
            text = page.extract_text() or ""
            budget.charge(len(text))
            pages.append(paragraphs(text))
    except (InvalidArgument, FailedPrecondition, Cancelled):
        raise
    except FileNotDecryptedError:
        raise InvalidArgument("this PDF is password-protected; remove the password and retry") from None
    except LimitReachedError as exc:  # pypdf's own bounds on decompression (flate bombs)
        raise InvalidArgument(f"the PDF holds a stream that inflates beyond the reader's limits ({exc}); "
                              "it is corrupt or hostile") from None
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, RecursionError, OSError, AssertionError, ZeroDivisionError) as exc:
        # pypdf signals broken files through many exception types.
        raise InvalidArgument(f"cannot read the PDF: it is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if not any(pages):
        raise InvalidArgument(
            "the PDF has no extractable text (a scanned image?); run OCR first, then translate the text")
    return PdfDocument(pages, output, [p for page in pages for p in page])
