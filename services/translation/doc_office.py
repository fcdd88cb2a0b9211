"""DOCX and ODT: translate the text of every XML part, leave everything else byte for byte.

Both formats are zip containers of XML parts. Rather than rebuilding the document through
a high-level API (which drops what it does not model), the text nodes are edited in
place in the XML and every other zip entry is copied unchanged: styles, numbering,
images, headers, footers, footnotes and tables keep their exact layout.

DOCX: text lives in `w:t` elements of runs (`w:r`); consecutive runs with identical run
properties (`w:rPr`) in one paragraph form one segment, split at tabs, breaks, drawings
and fields. ODT: mixed content in `text:p`/`text:h`, grouped by doc_xml.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from collections.abc import Callable

from lxml import etree

from parlons.errors import InvalidArgument
from parlons.services.translation import doc_xml, safezip
from parlons.services.translation.budget import ReadBudget

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_W = f"{{{W}}}"
DOCX_TEXT_PARTS = ("word/document.xml", "word/header", "word/footer", "word/footnotes.xml",
                   "word/endnotes.xml")
# Run children that are neither text nor properties but do not break a segment.
_RUN_NEUTRAL = {f"{_W}rPr", f"{_W}lastRenderedPageBreak", f"{_W}softHyphen"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def refuse_ole(data: bytes, what: str) -> None:
    """Encrypted Office documents are OLE compound files, not zips: say so plainly."""
    if data.startswith(_OLE_MAGIC):
        raise InvalidArgument(
            f"this {what} is password-protected (encrypted) or an old binary Office file; "
            "remove the password / save it as .docx or .odt and retry")


@dataclass
class _Part:
    name: str
    root: etree._Element
    writers: list[Callable[[str], None]] = field(default_factory=list)


@dataclass
class ZipDocument:
    """Segments of a DOCX/ODT and how to write their translations back."""

    source: zipfile.ZipFile
    parts: list[_Part]
    segments: list[str]
    writers: list[Callable[[str], None]]
    what: str

    def rebuild(self, translations: list[str]) -> bytes:
        for write, text in zip(self.writers, translations, strict=True):
            write(text)
        changed = {p.name: p for p in self.parts}
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as dest:
            for info in self.source.infolist():
                if info.filename in changed:
                    data = etree.tostring(changed[info.filename].root, xml_declaration=True,
                                          encoding="UTF-8", standalone=True)
                else:
                    data = self.source.read(info.filename)
                # Same name, order and compression: ODT needs `mimetype` first and stored.
                dest.writestr(info, data, compress_type=info.compress_type)
        return out.getvalue()


# --- DOCX ------------------------------------------------------------------------------

def _docx_paragraphs(root: etree._Element, budget: ReadBudget) -> list[tuple[etree._Element, list[tuple[etree._Element, int]]]]:
    """Every paragraph (`w:p`) in document order with its own runs (those of text boxes
    belong to their nested paragraph), each with the hyperlink or simple field it is in
    (0: none); runs of deleted or moved-away text are left out. One walk of the tree, so
    the cost is linear in its size however deep it nests."""
    paragraphs: list[tuple[etree._Element, list[tuple[etree._Element, int]]]] = []
    # (element, paragraph's runs list or None, link id, inside deleted text)
    stack: list[tuple[etree._Element, list[tuple[etree._Element, int]] | None, int, bool]] = [(root, None, 0, False)]
    while stack:
        el, runs, link, deleted = stack.pop()
        budget.tick()
        tag = el.tag
        if not isinstance(tag, str):
            continue
        if tag == f"{_W}p":
            runs = []
            paragraphs.append((el, runs))
        elif tag in (f"{_W}del", f"{_W}moveFrom"):
            deleted = True
        elif tag in (f"{_W}hyperlink", f"{_W}fldSimple"):
            link = id(el)
        elif tag == f"{_W}r":
            if runs is not None and not deleted:
                runs.append((el, link))
        stack.extend((child, runs, link, deleted) for child in reversed(el))
    return paragraphs


def _docx_paragraph_segments(runs: list[tuple[etree._Element, int]],
                             budget: ReadBudget) -> list[tuple[str, list[etree._Element]]]:
    """(text, w:t elements) per segment of one paragraph's runs."""
    segments: list[tuple[str, list[etree._Element]]] = []
    current: list[etree._Element] = []
    current_key: object = None

    def close() -> None:
        nonlocal current, current_key
        if current and "".join(t.text or "" for t in current).strip():
            text = "".join(t.text or "" for t in current)
            budget.charge(len(text))
            segments.append((text, current))
        current, current_key = [], None

    for run, link in runs:
        rpr = run.find(f"{_W}rPr")
        key = (etree.tostring(rpr) if rpr is not None else b"", link)
        if key != current_key:
            close()
            current_key = key
        for child in run:
            if child.tag == f"{_W}t":
                current.append(child)
            elif child.tag not in _RUN_NEUTRAL:
                close()  # tab, break, drawing, field char, footnote reference ...
                current_key = key
    close()
    return segments


def _docx_writer(elements: list[etree._Element]) -> Callable[[str], None]:
    def write(text: str) -> None:
        first, rest = elements[0], elements[1:]
        first.text = text
        first.set(XML_SPACE, "preserve")
        for t in rest:
            t.text = ""
    return write


def open_docx(data: bytes, limits: safezip.ZipLimits, budget: ReadBudget) -> ZipDocument:
    refuse_ole(data, "DOCX")
    zf = safezip.open_checked(data, limits, "DOCX")
    names = zf.namelist()
    if "word/document.xml" not in names:
        raise InvalidArgument("not a DOCX: the zip has no word/document.xml (corrupt, or another format)")
    parts: list[_Part] = []
    segments: list[str] = []
    writers: list[Callable[[str], None]] = []
    for name in names:
        if not (name.startswith(DOCX_TEXT_PARTS) and name.endswith(".xml")):
            continue
        root = doc_xml.parse_xml(safezip.read_entry(zf, name, limits, "DOCX"), f"DOCX part {name}")
        part = _Part(name, root)
        for _, runs in _docx_paragraphs(root, budget):
            for text, elements in _docx_paragraph_segments(runs, budget):
                segments.append(text)
                writers.append(_docx_writer(elements))
        parts.append(part)
    return ZipDocument(zf, parts, segments, writers, "DOCX")


# --- ODT -------------------------------------------------------------------------------

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_T = f"{{{TEXT}}}"
ODT_MIMETYPES = (b"application/vnd.oasis.opendocument.text", b"application/vnd.oasis.opendocument.text-template")

ODT_RULES = doc_xml.Rules(
    is_block=lambda el: el.tag in (f"{_T}p", f"{_T}h"),
    is_barrier=lambda el: el.tag in (f"{_T}tab", f"{_T}line-break", f"{_T}note", f"{_T}bookmark-ref")
    or el.tag.startswith(f"{{{DRAW}}}") or el.tag.endswith("}field"),
    is_skipped=lambda el: el.tag in (f"{{{OFFICE}}}annotation", f"{{{OFFICE}}}annotation-end",
                                     f"{_T}tracked-changes", f"{_T}note-citation"),
    spaces=lambda el: _space_count(el.get(f"{_T}c", "1")) if el.tag == f"{_T}s" else None,
)


def _space_count(value: str) -> int:
    """`text:c` of an ODF `text:s`: a count of spaces, 1 when absent or not a number."""
    try:
        return max(1, int(value))
    except ValueError:
        return 1


def open_odt(data: bytes, limits: safezip.ZipLimits, budget: ReadBudget) -> ZipDocument:
    refuse_ole(data, "ODT")
    zf = safezip.open_checked(data, limits, "ODT")
    names = zf.namelist()
    if "content.xml" not in names:
        raise InvalidArgument("not an ODT: the zip has no content.xml (corrupt, or another format)")
    if "mimetype" in names and safezip.read_entry(zf, "mimetype", limits, "ODT").strip() not in ODT_MIMETYPES:
        raise InvalidArgument("this OpenDocument file is not a text document (.odt)")
    if "META-INF/manifest.xml" in names and b"encryption-data" in safezip.read_entry(
            zf, "META-INF/manifest.xml", limits, "ODT"):
        raise InvalidArgument("this ODT is password-protected (encrypted); remove the password and retry")
    parts: list[_Part] = []
    segments: list[str] = []
    writers: list[Callable[[str], None]] = []
    for name in ("content.xml", "styles.xml"):
        if name not in names:
            continue
        root = doc_xml.parse_xml(safezip.read_entry(zf, name, limits, "ODT"), f"ODT part {name}")
        for block in doc_xml.iter_blocks(root, ODT_RULES, budget):
            for group in doc_xml.groups_in_block(block, ODT_RULES, budget):
                segments.append(group.text)
                writers.append(group.write)
        parts.append(_Part(name, root))
    return ZipDocument(zf, parts, segments, writers, "ODT")
