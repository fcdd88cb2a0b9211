"""Glossaries: forced translations and do-not-translate terms, per request and per tenant.

An entry matches whole words only ("RSA" does not match inside "RSAP"), longest entry
first, case-insensitively unless the entry says otherwise. A match becomes a `Span` whose
replacement is the forced target term (or the matched source text, for do-not-translate);
the engine then guarantees the replacement appears verbatim in the output.

Tenant glossaries live in a `GlossaryStore`: a tenant only ever sees its own.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from parlons.errors import InvalidArgument, NotFound
from parlons.services.common.trie_regex import trie_pattern
from parlons.services.translation.text import Span

MAX_ENTRIES = 10_000
MAX_TERM_CHARS = 200


@dataclass(frozen=True)
class GlossaryEntry:
    source: str
    #: Forced translation; None keeps the source term (do not translate).
    target: str | None = None
    case_sensitive: bool = False

    @property
    def do_not_translate(self) -> bool:
        return self.target is None


@dataclass(frozen=True)
class Glossary:
    entries: tuple[GlossaryEntry, ...] = ()
    #: Languages it applies to; None = any.
    source_language: str | None = None
    target_language: str | None = None
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _pattern_cs: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _lookup: dict[str, GlossaryEntry] = field(default_factory=dict, compare=False, repr=False)
    _lookup_cs: dict[str, GlossaryEntry] = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def build(entries: list[GlossaryEntry], source_language: str | None = None,
              target_language: str | None = None) -> Glossary:
        """Validate entries and compile one regex per case mode (matching stays linear)."""
        if len(entries) > MAX_ENTRIES:
            raise InvalidArgument(f"glossary has {len(entries)} entries; at most {MAX_ENTRIES}")
        for entry in entries:
            if not entry.source.strip():
                raise InvalidArgument("glossary entry with an empty source term")
            if len(entry.source) > MAX_TERM_CHARS or len(entry.target or "") > MAX_TERM_CHARS:
                raise InvalidArgument(f"glossary term longer than {MAX_TERM_CHARS} characters: {entry.source[:40]!r}...")
        # Later entries override earlier ones with the same source (request over tenant).
        unique: dict[tuple[str, bool], GlossaryEntry] = {}
        for entry in entries:
            key = (entry.source if entry.case_sensitive else entry.source.casefold(), entry.case_sensitive)
            unique[key] = entry
        kept = tuple(unique.values())
        folded = [e for e in kept if not e.case_sensitive]
        exact = [e for e in kept if e.case_sensitive]
        return Glossary(kept, source_language, target_language,
                        _compile(folded, re.IGNORECASE), _compile(exact, 0),
                        {e.source.casefold(): e for e in folded}, {e.source: e for e in exact})

    def applies_to(self, source: str, target: str) -> bool:
        return (self.source_language in (None, source)) and (self.target_language in (None, target))

    def spans(self, text: str) -> list[Span]:
        """Whole-word matches, longest first, as spans carrying the forced replacement."""
        found: list[Span] = []
        for pattern, table, fold in ((self._pattern_cs, self._lookup_cs, False), (self._pattern, self._lookup, True)):
            if pattern is None:
                continue
            for m in pattern.finditer(text):
                matched = m.group(0)
                entry = table.get(matched.casefold() if fold else matched)
                if entry is None:
                    continue
                replacement = matched if entry.target is None else entry.target
                found.append(Span(m.start(), m.end(), replacement, "glossary"))
        return found

    def merged(self, other: Glossary | None) -> Glossary:
        """This glossary with `other`'s entries winning on conflicts."""
        if other is None or not other.entries:
            return self
        return Glossary.build([*self.entries, *other.entries], self.source_language, self.target_language)


def _compile(entries: list[GlossaryEntry], flags: int) -> re.Pattern[str] | None:
    """One regex for all terms, factored as a trie of their characters (`trie_regex`):
    the longest whole-word term wins, one scan of the text for all of them."""
    if not entries:
        return None
    fold = bool(flags & re.IGNORECASE)
    terms = (entry.source.lower() if fold else entry.source for entry in entries)
    return re.compile(rf"(?<!\w)(?:{trie_pattern(terms)})(?!\w)", flags)


class GlossaryStore:
    """Named glossaries per tenant, loaded from a directory and/or set at run time.

    Directory layout: `<root>/<tenant>/<name>.json`, each file
    `{"source_language": "fr", "target_language": "en", "entries": [{"source": "CAF",
    "do_not_translate": true}, {"source": "titre de séjour", "target": "residence permit"}]}`.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._glossaries: dict[tuple[str, str], Glossary] = {}
        if root is not None:
            self.load_directory(root)

    def load_directory(self, root: Path) -> None:
        for path in sorted(Path(root).glob("*/*.json")):
            self.put(path.parent.name, path.stem, parse_json(path.read_text(encoding="utf-8"), str(path)))

    def put(self, tenant: str, name: str, glossary: Glossary) -> None:
        with self._lock:
            self._glossaries[(tenant, name)] = glossary

    def get(self, tenant: str, name: str) -> Glossary:
        with self._lock:
            glossary = self._glossaries.get((tenant, name))
        if glossary is None:
            # Same answer whether the name exists for another tenant or not at all.
            raise NotFound(f"no glossary named {name!r} for this tenant")
        return glossary

    def names(self, tenant: str) -> list[str]:
        with self._lock:
            return sorted(n for t, n in self._glossaries if t == tenant)


def parse_json(text: str, origin: str = "glossary") -> Glossary:
    try:
        data = json.loads(text)
        entries = [
            GlossaryEntry(
                source=str(item["source"]),
                target=None if item.get("do_not_translate") or not item.get("target") else str(item["target"]),
                case_sensitive=bool(item.get("case_sensitive", False)),
            )
            for item in data.get("entries", [])
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidArgument(f"{origin}: not a glossary file ({exc})") from exc
    return Glossary.build(entries, data.get("source_language"), data.get("target_language"))
