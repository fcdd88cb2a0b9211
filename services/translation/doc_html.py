"""HTML pages and fragments: translate text and human-facing attributes, keep the markup.

The page is decoded with its declared charset (mime type parameter, byte-order mark or
`<meta charset>`; UTF-8 otherwise, strictly) and written back in the same encoding, so its
`<meta charset>` stays true. `translate="no"` and `class="notranslate"` are honoured
(the HTML standard's way to mark text a translator must leave alone), as are `<code>`,
`<script>` and `<style>`. The root `lang` attribute becomes the target language.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass
from collections.abc import Callable

import lxml.html
from lxml import etree

from parlons.errors import InvalidArgument
from parlons.services.translation import doc_xml
from parlons.services.translation.budget import ReadBudget

INLINE = frozenset(
    "a abbr b bdi bdo cite data dfn em font i mark q s small span strong sub sup time u "
    "label ins del big tt".split())
BARRIERS = frozenset("br img wbr input button select textarea hr iframe object embed video audio canvas".split())
SKIPPED = frozenset("script style noscript code kbd samp var template svg math textarea select".split())
TRANSLATED_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_IS_DOCUMENT = re.compile(r"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype|html)", re.IGNORECASE | re.DOTALL)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


def _tag(el: etree._Element) -> str:
    return el.tag.lower() if isinstance(el.tag, str) else ""


def _no_translate(el: etree._Element) -> bool:
    return (el.get("translate", "").lower() == "no") or "notranslate" in (el.get("class") or "").split()


RULES = doc_xml.Rules(
    is_block=lambda el: _tag(el) not in INLINE and _tag(el) not in BARRIERS and _tag(el) not in SKIPPED,
    is_barrier=lambda el: _tag(el) in BARRIERS,
    is_skipped=lambda el: _tag(el) in SKIPPED or _no_translate(el),
)


def detect_charset(data: bytes, declared: str | None) -> str:
    if declared:
        return declared
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return name
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii") if m else "utf-8"


@dataclass
class HtmlDocument:
    root: etree._Element
    fragment: bool
    doctype: str
    encoding: str
    segments: list[str]
    writers: list[Callable[[str], None]]
    target_language: str

    def rebuild(self, translations: list[str]) -> bytes:
        for write, text in zip(self.writers, translations, strict=True):
            write(text)
        if self.fragment:
            body = (self.root.text or "") + "".join(
                lxml.html.tostring(child, encoding="unicode", method="html") for child in self.root)
        else:
            if _tag(self.root) == "html" and self.target_language:
                self.root.set("lang", self.target_language)
            body = lxml.html.tostring(self.root, encoding="unicode", method="html")
            if self.doctype:
                body = self.doctype + "\n" + body
        codec = "utf-8" if self.encoding in ("utf-8-sig", "utf-16") else self.encoding
        return body.encode(codec, errors="xmlcharrefreplace")


def _attribute_elements(root: etree._Element, budget: ReadBudget) -> list[etree._Element]:
    """Elements whose attributes may be translated: not in (nor under) a skipped one. One
    walk, linear in the tree's size."""
    found: list[etree._Element] = []
    stack = [root]
    while stack:
        el = stack.pop()
        budget.tick()
        if not isinstance(el.tag, str) or RULES.is_skipped(el):
            continue
        found.append(el)
        stack.extend(reversed(el))
    return found


def _parse(text: str, fragment: bool) -> etree._Element:
    parser = doc_xml.safe_parser(html=True)
    try:
        if fragment:
            root = lxml.html.fragment_fromstring(text, create_parent="div", parser=parser)
        else:
            root = lxml.html.document_fromstring(text, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise InvalidArgument(f"cannot parse the HTML ({exc})") from exc
    # libxml2 stops at 256 levels of nesting and keeps what it read so far: text past the
    # limit would vanish from the translation without a word.
    if any(e.type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in e.message for e in parser.error_log):
        raise InvalidArgument("the HTML is nested deeper than 255 elements, more than the parser reads; "
                              "simplify its structure and retry")
    return root


def open_html(data: bytes, charset: str | None, target_language: str, budget: ReadBudget) -> HtmlDocument:
    encoding = detect_charset(data, charset)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidArgument(f"unknown character set {encoding!r} declared for the HTML") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InvalidArgument(
            f"the HTML is not valid {encoding} (byte {exc.start}); declare its charset in the mime type "
            "(text/html; charset=windows-1252) or in a <meta charset> tag") from None
    text = _XML_DECL.sub("", text, count=1)
    fragment = not _IS_DOCUMENT.match(text)
    root = _parse(text, fragment)
    budget.check("parsing")
    doctype = "" if fragment else (root.getroottree().docinfo.doctype or "")
    segments: list[str] = []
    writers: list[Callable[[str], None]] = []
    for block in doc_xml.iter_blocks(root, RULES, budget):
        for group in doc_xml.groups_in_block(block, RULES, budget):
            segments.append(group.text)
            writers.append(group.write)
    for el in _attribute_elements(root, budget):
        names = list(TRANSLATED_ATTRIBUTES)
        if _tag(el) == "meta" and (el.get("name") or "").lower() in ("description", "keywords"):
            names.append("content")
        if _tag(el) == "input" and (el.get("type") or "").lower() in ("submit", "button", "reset"):
            names.append("value")
        for name in names:
            value = el.get(name)
            if value and value.strip():
                budget.charge(len(value))
                segments.append(value)
                writers.append(functools.partial(_set_attribute, el, name))
    return HtmlDocument(root, fragment, doctype, encoding, segments, writers, target_language)


def _set_attribute(element: etree._Element, name: str, value: str) -> None:
    element.set(name, value)
