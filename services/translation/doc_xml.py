"""Text runs inside XML documents (ODT, HTML): find them, translate them, put them back.

Mixed content (`<p>Le <b>dossier</b> est prêt</p>`) keeps its text in `.text` and
`.tail` slots. A *group* is a run of consecutive slots under the same inline formatting
with nothing in between that breaks the line (a tab, a line break, an image, a note):
"Le ", "dossier" and " est prêt" are three groups. Each group is translated as one
segment and its translation written into the group's first slot, the other slots of
the group emptied: markup, styles and attributes are never touched.

Translating formatted pieces separately loses some context, but it keeps every style
exactly where it was, which is what a visitor's letter or form needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable, Iterator

from lxml import etree

from parlons.errors import InvalidArgument
from parlons.services.translation.budget import ReadBudget


def safe_parser(*, html: bool = False) -> etree.XMLParser:
    """No entity expansion, no network, no huge trees: XML bombs fail fast."""
    if html:
        from lxml import html as lxml_html

        return lxml_html.HTMLParser(no_network=True, remove_comments=False, huge_tree=False)
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           remove_blank_text=False, load_dtd=False)


def parse_xml(data: bytes, what: str) -> etree._Element:
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidArgument(f"{what}: the XML is malformed ({exc}); the file is corrupt") from exc
    if root is None:
        raise InvalidArgument(f"{what}: empty XML part; the file is corrupt")
    return root


@dataclass
class Slot:
    element: etree._Element
    attr: str  # "text" or "tail"

    def get(self) -> str:
        return getattr(self.element, self.attr) or ""

    def set(self, value: str) -> None:
        setattr(self.element, self.attr, value)


@dataclass
class Group:
    slots: list[Slot] = field(default_factory=list)
    #: Elements standing for spaces (ODF text:s) inside the group: removed on write.
    spacers: list[etree._Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def write(self, translation: str) -> None:
        self.slots[0].set(translation)
        for slot in self.slots[1:]:
            slot.set("")
        for spacer in self.spacers:
            parent = spacer.getparent()
            if parent is not None:
                # Keep the tail (already emptied or not part of the group) in place.
                tail = spacer.tail or ""
                prev = spacer.getprevious()
                if tail:
                    if prev is not None:
                        prev.tail = (prev.tail or "") + tail
                    else:
                        parent.text = (parent.text or "") + tail
                parent.remove(spacer)


@dataclass(frozen=True)
class Rules:
    """What each element means for grouping; all take an element."""

    #: Elements whose content is its own block (handled on its own, a barrier here).
    is_block: Callable[[etree._Element], bool]
    #: Elements that end a group (tab, line break, image, note).
    is_barrier: Callable[[etree._Element], bool]
    #: Elements never translated nor entered (script, code, annotations).
    is_skipped: Callable[[etree._Element], bool]
    #: Elements that stand for spaces; return how many, or None. A count, not the
    #: spaces: the budget is charged before they are built.
    spaces: Callable[[etree._Element], int | None] = lambda el: None


def groups_in_block(block: etree._Element, rules: Rules, budget: ReadBudget) -> list[Group]:
    """Groups of one block element (paragraph, heading, list item ...)."""
    groups: list[Group] = []
    current: Group | None = None
    current_ctx: tuple[int, ...] | None = None

    def slot(el: etree._Element, attr: str, ctx: tuple[int, ...]) -> None:
        nonlocal current, current_ctx
        value = getattr(el, attr)
        if not value:
            return
        if not value.isspace():  # blank slots are already in the parsed tree, bounded by its size
            budget.charge(len(value))
        if current is None or current_ctx != ctx:
            current = Group()
            current_ctx = ctx
            groups.append(current)
        current.slots.append(Slot(el, attr))
        current.parts.append(value)

    def barrier() -> None:
        nonlocal current, current_ctx
        current, current_ctx = None, None

    def visit(el: etree._Element, ctx: tuple[int, ...]) -> None:
        slot(el, "text", ctx)
        for child in el:
            budget.tick()
            if not isinstance(child.tag, str):  # comments, processing instructions
                slot(child, "tail", ctx)
                continue
            spaces = rules.spaces(child)
            if spaces is not None:
                if current is not None and current_ctx == ctx:
                    budget.charge(spaces)
                    current.spacers.append(child)
                    current.parts.append(" " * spaces)
                slot(child, "tail", ctx)
                continue
            if rules.is_skipped(child) or rules.is_block(child) or rules.is_barrier(child):
                barrier()
            else:
                visit(child, ctx + (id(child),))
                if current_ctx != ctx:
                    barrier()
            slot(child, "tail", ctx)

    visit(block, ())
    return [g for g in groups if g.text.strip()]


def iter_blocks(root: etree._Element, rules: Rules, budget: ReadBudget) -> Iterator[etree._Element]:
    """Every block element in document order, nested blocks included, skipped ones not."""
    stack = [root]
    while stack:
        el = stack.pop()
        budget.tick()
        if not isinstance(el.tag, str) or rules.is_skipped(el):
            continue
        if rules.is_block(el):
            yield el
        stack.extend(reversed(list(el)))
