"""The kinds of personal data parlons finds, and what a finding is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

PERSON: Final = "PERSON"
NIR: Final = "NIR"
IBAN: Final = "IBAN"
PHONE: Final = "PHONE"
EMAIL: Final = "EMAIL"
ADDRESS: Final = "ADDRESS"
DATE_OF_BIRTH: Final = "DATE_OF_BIRTH"
CAF_NUMBER: Final = "CAF_NUMBER"
TAX_NUMBER: Final = "TAX_NUMBER"
ID_DOCUMENT: Final = "ID_DOCUMENT"
LICENSE_PLATE: Final = "LICENSE_PLATE"
CUSTOM: Final = "CUSTOM"  # a tenant's term to always mask

ENTITY_TYPES: Final = (PERSON, NIR, IBAN, PHONE, EMAIL, ADDRESS, DATE_OF_BIRTH, CAF_NUMBER,
                       TAX_NUMBER, ID_DOCUMENT, LICENSE_PLATE)

# The placeholder's label, in French: what a reader of an anonymised transcript sees.
PLACEHOLDER_LABELS: Final = {
    PERSON: "PERSONNE",
    NIR: "NIR",
    IBAN: "IBAN",
    PHONE: "TELEPHONE",
    EMAIL: "EMAIL",
    ADDRESS: "ADRESSE",
    DATE_OF_BIRTH: "DATE_NAISSANCE",
    CAF_NUMBER: "NUMERO_CAF",
    TAX_NUMBER: "NUMERO_FISCAL",
    ID_DOCUMENT: "PIECE_IDENTITE",
    LICENSE_PLATE: "PLAQUE",
    CUSTOM: "MASQUE",
}


@dataclass(frozen=True, order=True)
class Finding:
    """A span of personal data: [start, end) in the text, its kind, how sure, and who said so."""

    start: int
    end: int
    entity_type: str
    score: float
    recognizer: str = ""

    def overlaps(self, other: Finding) -> bool:
        return self.start < other.end and other.start < self.end


# The types found in the texts just before one, with how many texts back (1 = the one
# just before): context for the rules ("559 66 78 ?" read back after a CAF number).
Recent = Mapping[str, int]
NOTHING_RECENT: Recent = MappingProxyType({})
