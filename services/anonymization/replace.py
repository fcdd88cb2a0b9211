"""Replacing what was found: typed placeholders consistent across a conversation
([PERSONNE_1] each time the same name comes back), redaction, or pseudonyms.

A `Replacer` lives for one request: one conversation, one document. Its mapping
(placeholder -> original) is handed to the caller only when asked and never stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from .entities import (
    ADDRESS,
    CAF_NUMBER,
    DATE_OF_BIRTH,
    EMAIL,
    IBAN,
    ID_DOCUMENT,
    LICENSE_PLATE,
    NIR,
    PERSON,
    PHONE,
    PLACEHOLDER_LABELS,
    TAX_NUMBER,
    Finding,
)

PLACEHOLDER: Final = "placeholder"
REDACT: Final = "redact"
PSEUDONYM: Final = "pseudonym"
POLICIES: Final = (PLACEHOLDER, REDACT, PSEUDONYM)
REDACTION: Final = "[…]"


def normalise(text: str) -> str:
    """The key under which two mentions are the same: case, accents and spacing aside
    ("06 12 34 56 78" = "06.12.34.56.78", "BENALI" = "Benali")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^0-9a-z]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


@dataclass
class Replacer:
    policy: str = PLACEHOLDER
    seed: int = 0
    _numbers: dict[str, int] = field(default_factory=dict)  # per kind: placeholders handed out
    _by_key: dict[tuple[str, str], str] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # replacement -> first original
    # A person's key -> the key of the first person before it who is the same one
    # ("Benali" after "Fatima Benali"), from `apply_all`.
    _same: dict[str, str] = field(default_factory=dict)

    def replacement(self, kind: str, original: str) -> str:
        if self.policy == REDACT:
            return REDACTION
        key = (kind, normalise(original))
        known = self._by_key.get(key) or self._same_person(kind, key[1])
        if known is None:
            self._numbers[kind] = self._numbers.get(kind, 0) + 1
            number = self._numbers[kind]
            known = (_pseudonym(kind, number, self.seed) if self.policy == PSEUDONYM
                     else f"[{PLACEHOLDER_LABELS.get(kind, kind)}_{number}]")
            self.mapping[known] = original
        self._by_key[key] = known
        return known

    def _same_person(self, kind: str, key: str) -> str | None:
        """'Benali' after 'Fatima Benali' (or the other way round) is the same person."""
        if kind != PERSON or key not in self._same:
            return None
        return self._by_key.get((PERSON, self._same[key]))

    def apply(self, text: str, findings: list[Finding]) -> tuple[str, list[str]]:
        """`text` with each finding replaced (findings do not overlap), and the
        replacement of each finding in start order. For the texts of a conversation,
        `apply_all`: who is the same person is then worked out once for all of them."""
        return self.apply_all([text], [findings])[0]

    def apply_all(self, texts: Sequence[str], findings: Sequence[list[Finding]]) -> list[tuple[str, list[str]]]:
        """`apply` on each text in order, one conversation: who is the same person is
        worked out for all the names at once (linear in their characters), not by
        comparing each new name with every name before it."""
        ordered = [sorted(fs, key=lambda f: f.start) for fs in findings]
        self._link_people([text[f.start:f.end] for text, fs in zip(texts, ordered, strict=True)
                           for f in fs if f.entity_type == PERSON])
        out = []
        for text, fs in zip(texts, ordered, strict=True):
            parts, used, last = [], [], 0
            for f in fs:
                parts.append(text[last:f.start])
                used.append(self.replacement(f.entity_type, text[f.start:f.end]))
                parts.append(used[-1])
                last = f.end
            parts.append(text[last:])
            out.append(("".join(parts), used))
        return out

    def _link_people(self, originals: Sequence[str]) -> None:
        """Each new person key (three characters or more) linked to the first key, seen
        before it, that contains it or that it contains."""
        keys = [k for k in dict.fromkeys(normalise(o) for o in originals) if len(k) >= 3
                and (PERSON, k) not in self._by_key]
        earlier = [k for kind, k in self._by_key if kind == PERSON and len(k) >= 3]
        everyone = earlier + keys
        for i, first in enumerate(first_related(everyone)):
            if i >= len(earlier) and first is not None:
                self._same[everyone[i]] = everyone[first]


def first_related(keys: Sequence[str]) -> list[int | None]:
    """For each of `keys` (distinct, in order), the index of the first key before it
    that contains it or that it contains, or None.

    Aho-Corasick's automaton over the keys, read once: a key's trie path visits every
    prefix of it, and the keys it contains are those on the suffix (failure) chains of
    that path. Minima propagated over the trie and over the failure tree give, per key,
    the first key it contains and the first key that contains it."""
    children: list[dict[str, int]] = [{}]
    parent = [0]
    ends = []
    for key in keys:
        node = 0
        for char in key:
            nxt = children[node].get(char)
            if nxt is None:
                nxt = len(children)
                children[node][char] = nxt
                children.append({})
                parent.append(node)
            node = nxt
        ends.append(node)
    order, fail = _breadth_first(children)
    none = len(keys)
    own = [none] * len(children)  # the key that ends at a node
    for i, node in enumerate(ends):
        own[node] = min(own[node], i)
    inside = own[:]  # the first key that is a suffix of the node's string
    for node in order:
        inside[node] = min(own[node], inside[fail[node]]) if node else own[node]
    through = own[:]  # the first key whose path goes through the node (trie subtree)
    for node in reversed(order):
        if node:
            through[parent[node]] = min(through[parent[node]], through[node])
    outside = through[:]  # the first key containing the node's string (failure subtree)
    for node in reversed(order):
        if node:
            outside[fail[node]] = min(outside[fail[node]], outside[node])
    related: list[int | None] = []
    for i, end in enumerate(ends):
        first = outside[end]  # the key itself at least: only an earlier one counts
        node = end
        while node:  # the key's own path: every prefix of it
            first = min(first, inside[node])
            node = parent[node]
        related.append(first if first < i else None)
    return related


def _breadth_first(children: list[dict[str, int]]) -> tuple[list[int], list[int]]:
    """The trie's nodes in breadth-first order (the root left out), and each node's
    failure link: the node of its longest proper suffix in the trie."""
    fail = [0] * len(children)
    order: list[int] = []
    queue = deque(children[0].values())
    while queue:
        node = queue.popleft()
        order.append(node)
        for char, child in children[node].items():
            link = fail[node]
            while link and char not in children[link]:
                link = fail[link]
            fail[child] = children[link].get(char, 0)
            queue.append(child)
    return order, fail
def _pseudonym(kind: str, number: int, seed: int) -> str:
    """A made-up value of the same kind, French in form, the same for the same (number,
    seed): a reader sees a plausible conversation, not one person's data."""
    from faker import Faker

    fake = Faker("fr_FR")
    fake.seed_instance(seed * 1000 + number * 31 + sum(map(ord, kind)))
    makers = {
        PERSON: fake.name,
        PHONE: fake.phone_number,
        EMAIL: fake.free_email,
        ADDRESS: lambda: fake.address().replace("\n", ", "),
        DATE_OF_BIRTH: lambda: fake.date_of_birth(minimum_age=18, maximum_age=90).strftime("%d/%m/%Y"),
        IBAN: fake.iban,
        NIR: fake.ssn,
        LICENSE_PLATE: fake.license_plate,
        CAF_NUMBER: lambda: fake.numerify("#######"),
        TAX_NUMBER: lambda: fake.numerify("# ## ## ### ### ###"),
        ID_DOCUMENT: lambda: fake.bothify("##??#####").upper(),
    }
    maker = makers.get(kind)
    return str(maker()) if maker else f"[{PLACEHOLDER_LABELS.get(kind, kind)}_{number}]"
