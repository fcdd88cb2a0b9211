"""Replacing what was found: typed placeholders consistent across a conversation
([PERSONNE_1] each time the same name comes back), redaction, or pseudonyms.

A `Replacer` lives for one request: one conversation, one document. Its mapping
(placeholder -> original) is handed to the caller only when asked and never stored.
"""

from __future__ import annotations

import re
import unicodedata
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
        if kind != PERSON or len(key) < 3:
            return None
        for (other_kind, other_key), value in self._by_key.items():
            if other_kind == PERSON and len(other_key) >= 3 and (key in other_key or other_key in key):
                return value
        return None

    def apply(self, text: str, findings: list[Finding]) -> tuple[str, list[str]]:
        """`text` with each finding replaced (findings do not overlap), and the
        replacement of each finding in start order."""
        out, used, last = [], [], 0
        for f in sorted(findings, key=lambda f: f.start):
            out.append(text[last:f.start])
            used.append(self.replacement(f.entity_type, text[f.start:f.end]))
            out.append(used[-1])
            last = f.end
        out.append(text[last:])
        return "".join(out), used


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
