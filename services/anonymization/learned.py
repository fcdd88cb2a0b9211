"""A learned recogniser beside the rules: a small spaCy NER for the eleven types.

Why: rules plateau on text nobody tuned them on: each blind file brings shapes they have
not met (a name in lower case in a note, an address abroad, a number said over a
correction). A NER trained on the annotated counter dialogues generalises differently;
on the four newest blind files (2,154 entities) the rules alone found 0.912-0.958 of the
personal data per file, with this recogniser 0.955-0.989 (docs/anonymization.md, "The
learned recogniser" and "Precision round").

How it joins the rules (chosen on holdout11, measured once on holdout12): a learned span
is added only where no rule span overlaps it (the rules' boundaries and types win), and
only when the rules' own look-alike cues do not rule it out (a place, a company, an
office's address, a number named as another kind, an e-mail without "@", a date answering
another event's question) nor its shape, whatever type the model gave it (`lookalike`).

The weights: the component's own CNN encoder plus fr_core_news_md's static vectors
(shared with the NER the engine already loads, never copied), about 6 MB, trained on the
repository's annotated dialogues by `scripts/train_counter_ner.py` (deterministic: fixed
seed; nineteen annotated files) into the model cache as `counter-ner-fr`, with a manifest of sha256 digests that
is checked at every load (an altered file is refused, as for every model).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from parlons.errors import ModelCorrupt, ModelNotFound

from .entities import (
    ADDRESS,
    CAF_NUMBER,
    DATE_OF_BIRTH,
    EMAIL,
    ID_DOCUMENT,
    LICENSE_PLATE,
    NIR,
    PERSON,
    PHONE,
    TAX_NUMBER,
    Finding,
)
from .lexicon import FrenchWords
from .names import NAME_WORD_RE, TIME_OF_DAY, no_name_word, not_a_person_name
from .numbers import token_runs
from .rules import AMOUNT_UNITS, amount_after, another_event_date, names_another_number, office_address

MODEL_NAME: Final = "counter-ner-fr"
RECOGNIZER: Final = "counter_ner"
SCORE: Final = 0.8
LABELS: Final = ("PERSON", "NIR", "IBAN", "PHONE", "EMAIL", "ADDRESS", "DATE_OF_BIRTH", "CAF_NUMBER",
                 "TAX_NUMBER", "ID_DOCUMENT", "LICENSE_PLATE")
# The manifest the trainer writes (the model manager's, so `parlons models verify` reads it).
MANIFEST: Final = ".parlons-model.json"

NER_CONFIG: Final[dict[str, Any]] = {
    "model": {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": 64,
        "maxout_pieces": 2,
        "use_upper": True,
        "nO": None,
        "tok2vec": {
            "@architectures": "spacy.Tok2Vec.v2",
            "embed": {
                "@architectures": "spacy.MultiHashEmbed.v2",
                "width": 96,
                "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                "rows": [5000, 1000, 2500, 2500],
                "include_static_vectors": True,
            },
            "encode": {
                "@architectures": "spacy.MaxoutWindowEncoder.v2",
                "width": 96,
                "depth": 4,
                "window_size": 1,
                "maxout_pieces": 3,
            },
        },
    },
}


def blank_pipeline(vocab: Any) -> Any:
    """An empty French pipeline on `vocab` (fr_core_news_md's, for its vectors) with the
    untrained NER component."""
    import spacy

    nlp = spacy.blank("fr", vocab=vocab)
    ner: Any = nlp.add_pipe("ner", config=NER_CONFIG)
    for label in LABELS:
        ner.add_label(label)
    return nlp


def verify(directory: Path) -> None:
    """Every file the manifest lists is there with its digest (the model manager's check
    of a directory outside the catalog); ModelCorrupt otherwise."""
    from parlons.models.manager import NOT_INSTALLED, OK, UNPINNED, verify_directory

    report = verify_directory(directory)
    retrain = "train it again (scripts/train_counter_ner.py)"
    if report.status == NOT_INSTALLED:
        raise ModelCorrupt(f"{MODEL_NAME} in {directory.name}: no readable manifest; {retrain}")
    if "ner/model" not in {check.name for check in report.files}:
        raise ModelCorrupt(f"{MODEL_NAME}: the manifest lists no ner/model; {retrain}")
    bad = [f"{check.name} ({check.detail})" for check in report.files if check.status not in (OK, UNPINNED)]
    if bad:
        raise ModelCorrupt(f"{MODEL_NAME}: missing or altered (the manifest's sha256 differs): "
                           f"{', '.join(bad)}; {retrain}")


class LearnedRecognizer:
    """The trained NER, loaded on a given vocabulary (with vectors)."""

    def __init__(self, directory: Path, nlp: Any, words: FrenchWords | None = None) -> None:
        """`nlp`: the loaded French pipeline (fr_core_news_md), for its vocabulary and
        vectors and for its lemmatizer's dictionary (`words`, built from it when not given)."""
        if not (directory / "ner" / "model").is_file():
            raise ModelNotFound(f"{MODEL_NAME} is not installed in {directory.name}; "
                                "train it with scripts/train_counter_ner.py")
        verify(directory)
        self.nlp = blank_pipeline(nlp.vocab)
        self.nlp.get_pipe("ner").from_disk(directory / "ner", exclude=["vocab"])
        self.words = words if words is not None else FrenchWords(nlp)

    def find(self, texts: Sequence[str], before: Sequence[str] | None = None,
             batch_size: int = 64) -> list[list[Finding]]:
        """The learned spans of each text, look-alikes by the rules' cues left out.
        `before`: the turn said before each text (a date given as an answer)."""
        found = []
        previous = before if before is not None else [""] * len(texts)
        for text, doc, turn in zip(texts, self.nlp.pipe(texts, batch_size=batch_size), previous, strict=True):
            spans = [Finding(e.start_char, e.end_char, e.label_, SCORE, RECOGNIZER) for e in doc.ents]
            found.append([f for f in spans if not lookalike(text, f, self.words, turn)])
        return found


# A France Travail identifier ("5236442D", "1505862 V"): a look-alike by the conventions,
# whatever type the model gave it (no document, plate or name has this shape).
_JOB_SEEKER_ID_RE = re.compile(r"\d{7}[^\S\n]?[A-Za-z]\.?")
# A file's reference: a prefix, or a year, then digits ("OT-2024-118204", "RDV-31555-7781",
# "2023RP26214", "2025-FR-00371"); a registration document's "formule" ("2979PA30261").
_REFERENCE_RE = re.compile(r"(?!(?:19|20)\d\d-[01]?\d-[0-3]?\d\Z)"  # not a date, "1985-03-12"
                           r"(?:[A-Za-z]{2,}-|(?:19|20)\d\d(?:[A-Z]{2}|-))[\dA-Z-]*\d|\d{4}[A-Z]{2}\d{5}")
# A vehicle's serial number (VIN, 17 characters): no person's identifier.
_VIN_RE = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
# A web site: "ants.gouv.fr", "histovec.interieur.gouv.fr".
_WEB_SITE_RE = re.compile(r"(?i:\w\.(?:gouv\.fr|fr|com|org|net|eu|info)(?!\w))")
# An e-mail address, written or said, whatever type the model gave it.
_EMAIL_SHAPE_RE = re.compile(r"(?i:@|(?<!\w)arobase(?!\w))")
# A word of letters and digits mixed, which no name has.
_CODE_WORD_RE = re.compile(r"(?=[\w-]*[^\W\d_])(?=[\w-]*\d)[\w-]*\w")
# An office's post box: "CS 30012", "TSA 71152", "BP 318".
_POST_BOX_RE = re.compile(r"(?<!\w)(?:CS|TSA|BP|B\.P\.)[^\S\n]*\d")
# A spelling aid: "K comme Kilo".
_SPELLING_AID_RE = re.compile(r"(?<![\w'’])([A-Za-z])[^\S\n]+comme[^\S\n]+[\w'’-]+")
# Types made of digits only: a span of them holds a number, written or said.
_DIGITS_ONLY = frozenset({NIR, PHONE, CAF_NUMBER, TAX_NUMBER})
# Types made of digits and letters, the letters spelled ("D Z 59", "K comme Kilo").
_SPELLED_OR_DIGITS = frozenset({LICENSE_PLATE, ID_DOCUMENT})
# Digits as a SIRET has them (14): no personal identifier has that many.
_SIRET_LENGTH = 14


# Units of an amount, a quantity (the rules') or a duration, inside a span or right after
# it; or an approximation ("deux mille trois cents et quelques").
_UNITS = rf"(?i:{AMOUNT_UNITS}|heures?|jours?|ans|années|mois|semaines?|minutes?|secondes?|chevaux)"
_UNIT_RE = re.compile(rf"(?<!\w){_UNITS}(?!\w)")
_UNIT_AT_END_RE = re.compile(rf"(?<!\w){_UNITS}[\s.,]*$")
_UNIT_AFTER_RE = re.compile(rf"[^\S\n]*(?:{_UNITS}(?!\w)|(?i:et)[^\S\n]+quelques(?!\w))")
# Types whose span holds only a number, a unit said inside is a quantity (not a plate or a
# document, whose letters may read as one: "GH 458 KM").
_NUMBER_ONLY = frozenset({NIR, PHONE, CAF_NUMBER, TAX_NUMBER, DATE_OF_BIRTH})
# The word right before a span ("Nettoyage" before "Delcroix").
_WORD_BEFORE_RE = re.compile(r"(?<![\w'’-])([^\W\d_][\w'’-]*)[^\S\n]+$")
# A time of day that opens a span: "9h22", "10 h 30", "14h".
_TIME_OF_DAY_RE = re.compile(TIME_OF_DAY)


def lookalike(text: str, finding: Finding, words: FrenchWords | None = None, previous_turn: str = "") -> bool:
    """A learned span the rules' own look-alike cues say is no personal data, or whose
    shape no personal data of any type has (the model's type is not trusted for this:
    a span it calls a name may be a number it saw right but typed wrong)."""
    kind, span = finding.entity_type, text[finding.start:finding.end]
    if _EMAIL_SHAPE_RE.search(span):
        return False  # an e-mail address, whatever type the model gave it
    digits = sum(c.isdigit() for c in span)
    runs = token_runs(span)
    said = runs[0].alnum()[0] if len(runs) == 1 else ""  # "7, 5, 2, 8, 9, 5, 8, Z comme Zoé": 7528958Z
    if (_JOB_SEEKER_ID_RE.fullmatch(span.strip()) or _JOB_SEEKER_ID_RE.fullmatch(said)
            or _REFERENCE_RE.fullmatch(span.strip()) or _VIN_RE.fullmatch(span.strip())
            or (digits == _SIRET_LENGTH and not any(c.isalpha() for c in span))
            or _WEB_SITE_RE.search(span)):
        return True
    if kind in _DIGITS_ONLY and not runs:
        return True  # a number type with no number in it ("nouvel", "adoma")
    if kind in (CAF_NUMBER, PHONE, TAX_NUMBER) and _CODE_WORD_RE.search(span):
        return True  # digits glued to letters ("BCGW6HB6Z1", "S3704"): a code, not these numbers
    if _POST_BOX_RE.search(text, max(0, finding.start - 6), finding.end):
        return True  # an office's post box and its postcode: "CS 30012, 38045 Grenoble cedex"
    if kind in _SPELLED_OR_DIGITS and not any(c.isdigit() for c in said) and re.search(
            r"[a-zà-ÿ]{2}", _SPELLING_AID_RE.sub(r"\1", span)):
        return True  # a plate or a document is digits or spelled capitals, not a word ("cni", "drm")
    if kind not in (PERSON, EMAIL) and _UNIT_AFTER_RE.match(text, finding.end) or (
            kind in _NUMBER_ONLY and _UNIT_RE.search(span)) or (
            kind == ADDRESS and _quantity(span)):
        # a quantity, however said: "quarante-huit heures", "vingt-deux euros cinquante"
        # (an address only when it ends on the unit: "rue des Beaux Jours" is a street)
        return True
    if kind == PERSON and _CODE_WORD_RE.search(span):
        return True  # a "name" with a word of letters and digits ("EY16K3SK"): a code
    if kind == PERSON and digits < 3:
        # the word before counts too: "Nettoyage Delcroix", "Aristide Briand", "centre
        # hospitalier lucien hussel" (the model took the last word alone)
        word_before = _WORD_BEFORE_RE.search(text, max(0, finding.start - 40), finding.start)
        if word_before is not None and not no_name_word(word_before.group(1)) \
                and not_a_person_name(text, word_before.start(1), finding.end):
            return True
        # dictionary words only count in lower case (a note): "Rossignol." may be a surname
        return not_a_person_name(text, finding.start, finding.end) or (
            words is not None and span.islower() and _common_words_only(span, words))
    if kind == ADDRESS:
        if _TIME_OF_DAY_RE.match(span):
            return True  # a note's time stamp, "9h22 appel mme"
        return office_address(text, finding.start, finding.end) or amount_after(text, finding.end)
    if kind == EMAIL:
        return "@" not in span and "arobase" not in span.lower()
    if kind == DATE_OF_BIRTH:
        # the date's own line, and the line before it (in this text, or the previous turn)
        before = text[:finding.start]
        line_start = before.rfind("\n")
        if line_start >= 0:
            previous_turn = before[:line_start].rsplit("\n", 1)[-1]
        return another_event_date(before[line_start + 1:], previous_turn)
    return names_another_number(text, finding.start, finding.end)


def _quantity(span: str) -> bool:
    """The span is a number and its unit, nothing else: "quarante-huit heures", "12 jours"."""
    unit = _UNIT_AT_END_RE.search(span)
    if unit is None:
        return False
    number = span[:unit.start()].strip()
    runs = token_runs(number)
    return bool(runs) and len(runs) == 1 and runs[0].start == 0 and runs[0].end >= len(number)


def _common_words_only(span: str, words: FrenchWords) -> bool:
    """Every word of a would-be name is a common word, a civility or a word of the notes
    ("jumeaux", "directrice de", "mr", "iban"): no name in it."""
    found = NAME_WORD_RE.findall(span)
    return bool(found) and all(no_name_word(w) or words.common(w) for w in found)


def union(rules: Sequence[Finding], learned: Sequence[Finding]) -> list[Finding]:
    """The rules' findings plus the learned ones that overlap no rule finding."""
    added = [f for f in learned if not any(r.overlaps(f) for r in rules)]
    return sorted([*rules, *added])


__all__ = ["LABELS", "MODEL_NAME", "NER_CONFIG", "LearnedRecognizer", "blank_pipeline", "lookalike", "union",
           "verify"]
