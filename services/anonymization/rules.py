"""French rule recognisers: identifiers with their checksums, phones, e-mails, addresses,
dates of birth, plates, written and spoken as Whisper writes them.

Each `find_*` takes the text (and the number runs of `numbers.token_runs`, computed once)
and returns `Finding`s. Scores: 0.95 for a checksum that holds, 0.85 for a shape with its
context ("numéro allocataire" before a 7-digit number), lower for a shape alone; the
engine keeps what reaches its threshold (0.5).
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable

from stdnum import iban as stdnum_iban
from stdnum.fr import nif as stdnum_nif
from stdnum.fr import nir as stdnum_nir

from .entities import (
    ADDRESS,
    CAF_NUMBER,
    DATE_OF_BIRTH,
    EMAIL,
    IBAN,
    ID_DOCUMENT,
    LICENSE_PLATE,
    NIR,
    PHONE,
    NOTHING_RECENT,
    TAX_NUMBER,
    Finding,
    Recent,
)
from .names import ELIDED
from .numbers import MAX_IDENTIFIER_CHARS, NUMBER_WORDS, Run, glued, token_runs

# ------------------------------------------------------------------ context

CONTEXT_WINDOW = 160  # characters before a candidate where its context words count

SOCIAL_CONTEXT = ("sécurité sociale", "securite sociale", "sécu", "secu", "carte vitale", "nir", "insee",
                  "numéro social", "assuré", "ameli", "cpam")
TAX_CONTEXT = ("fiscal", "fiscale", "impôt", "impot", "spi", "imposition", "finances publiques")
CAF_CONTEXT = ("allocataire", "alloc", "caf", "msa")  # "numéro alloc" in a note
# The household's number said right after the word: "aide cantine pour le foyer 4608798" (a
# CCAS note: the CAF number is the household's).
_HOUSEHOLD_BEFORE_RE = re.compile(r"(?i:(?<!\w)foyer(?:[^\S\n]+(?:n°|no|numéro))?[^\S\n]*$)")
ID_CONTEXT = ("passeport", "carte d'identité", "carte d’identité", "carte nationale", "cni", "pièce d'identité",
              "pièce d’identité", "titre de séjour", "récépissé", "numéro de titre", "carte de séjour",
              "carte de résident", "document", "titre", "carte", "numéro étranger", "agdref", "demande d'asile",
              "attestation de demande")
PLATE_CONTEXT = ("plaque", "immatricul", "voiture", "véhicule", "vehicule", "moto", "carte grise", "scooter",
                 "camionnette", "cession", "siv")
IBAN_CONTEXT = ("iban", "rib", "compte", "bancaire", "banque", "virement")
BIRTH_CONTEXT = ("né", "née", "nés", "nées", "naissance", "naît", "nait", "naquit", "naître")


def context_before(text: str, start: int, window: int = CONTEXT_WINDOW, end: int | None = None) -> str:
    """The `window` characters before `start`, lowercased; up to `end` when given (a
    run's own capitals count: "la CAF, 93 89 432")."""
    return text[max(0, start - window):start if end is None else end].lower()


# Context words read as whole words although longer than four letters: "réside" is not
# "résident" ("la carte résident"), nor "résidence".
WHOLE_WORDS = frozenset({"réside", "reside", "alloc"})


@functools.cache
def _context_re(words: tuple[str, ...]) -> re.Pattern[str]:
    """Context words as word starts ("immatricul" finds "immatriculation"); words of up to
    four letters ("né", "caf", "nir", "sécu") only as whole words ("année" is not "née"),
    and those of `WHOLE_WORDS`."""
    parts = []
    for word in sorted({w.strip() for w in words}, key=len, reverse=True):
        escaped = re.escape(word).replace(r"\ ", r"\s+")
        parts.append(escaped + (r"(?!\w)" if len(word) <= 4 or word in WHOLE_WORDS else ""))
    return re.compile(rf"(?<!\w)(?:{'|'.join(parts)})")


def has_context(text: str, start: int, words: tuple[str, ...], window: int = CONTEXT_WINDOW,
                end: int | None = None) -> bool:
    return _context_re(words).search(context_before(text, start, window, end)) is not None


# ------------------------------------------------------------------ number runs

# A stretch is never longer than an identifier (`MAX_IDENTIFIER_CHARS`), which keeps a
# run of thousands of tokens linear.


def aligned_matches(run: Run, pattern: re.Pattern[str],
                    accept: Callable[[str], float | None]) -> list[tuple[int, int, str, float]]:
    """Longest token-aligned stretches of the run whose characters fully match `pattern`
    and that `accept` scores (None = no): (first token, end token, characters, score).
    A stretch never starts or ends inside a token or a written word ("0612345678" is
    not cut out of a longer digit group, nor "2B45KL917" out of "0A2B45KL917").

    A start where `pattern` matches nothing at all is skipped without trying its ends:
    the patterns here have no anchor, word boundary or negative lookaround, so a stretch
    that matches in full is also a match of the pattern at its start."""
    chars, _ = run.alnum()
    tokens = run.tokens
    offsets = [0]
    for token in tokens:
        offsets.append(offsets[-1] + len(token.value))
    # joined[i]: token i is glued to the next one (one written word: no stretch ends there)
    joined = [glued(left, right) for left, right in zip(tokens, tokens[1:], strict=False)] + [False]
    last_end = 0  # the last end whose stretch from `first` is short enough to be an identifier
    found: list[tuple[int, int, str, float]] = []
    first = 0
    while first < len(tokens):
        best: tuple[int, int, str, float] | None = None
        if first and joined[first - 1]:
            first += 1
            continue
        last_end = max(last_end, first + 1)
        while last_end < len(tokens) and offsets[last_end + 1] - offsets[first] <= MAX_IDENTIFIER_CHARS:
            last_end += 1
        start = offsets[first]
        if pattern.match(chars, start, offsets[last_end]) is not None:
            for end in range(last_end, first, -1):
                if joined[end - 1] or not pattern.fullmatch(chars, start, offsets[end]):
                    continue
                candidate = chars[start:offsets[end]]
                score = accept(candidate)
                if score is not None:
                    best = (first, end, candidate, score)
                    break
        if best is None:
            first += 1
        else:
            found.append(best)
            first = best[1]
    return found


# "décret n° 2019-1234", "article 12", "Cerfa 10840": numbers of texts and forms.
_LEGAL_REFERENCE_RE = re.compile(
    r"(?i:n°|no\.|numéro\s+d['’]article|décret|decret|article|art\.|loi|arrêté|arrete|circulaire|cerfa|"
    r"formulaire|ordonnance|directive|règlement)\s*(?:n°\s*)?$")


def _nir_structure(chars: str) -> bool:
    """Sex 1 or 2, month 01-12 (or 20-42, 50-99 for unknown months), a department."""
    month = int(chars[3:5])
    department = chars[5:7]
    return (chars[0] in "12" and (1 <= month <= 12 or 20 <= month <= 42 or month >= 50)
            and (department in ("2A", "2B") or department.isdigit() and department != "00"))


def _inside_longer_number(text: str, run: Run, first: int, end: int) -> bool:
    """Digits said on, with only a space, before or after the stretch: "069 122 25 08 43
    11" is one longer number, not a phone and four more digits ("06 12 34 56 78, 06..."
    are two phones)."""
    tokens = run.tokens
    before = first > 0 and tokens[first - 1].value.isdigit() and text[tokens[first - 1].end:tokens[first].start].isspace()
    after = end < len(tokens) and tokens[end].value.isdigit() and text[tokens[end - 1].end:tokens[end].start].isspace()
    return before or after


# "Votre demande est enregistrée sous le numéro 0312847765": a file's number, written in one
# group, where no telephone is spoken of (a phone is dictated in pairs).
_FILE_CUE_RE = re.compile(
    r"(?i:(?<!\w)(?:dossier|demande|référence|enregistrée?s?|suivi|commande|contrat|facture|récépissé|plainte|"
    r"ticket|réclamation|convocation|adhérent|adhésion)s?(?!\w))")
_PHONE_CUE_RE = re.compile(
    r"(?i:(?<!\w)(?:téléphone|tél|tel|portable|mobile|fixe|joindre|joignable|appel\w*|rappel\w*|contacter|sms|"
    r"whatsapp|standard|ligne)(?!\w))")


def _file_number(text: str, run: Run, first: int, end: int) -> bool:
    if end - first != 1 or run.tokens[first].spoken:
        return False
    sentence = _sentence_before(text, run.tokens[first].start)
    return _FILE_CUE_RE.search(sentence) is not None and _PHONE_CUE_RE.search(sentence) is None


def _span(run: Run, first: int, end: int) -> tuple[int, int]:
    return run.tokens[first].start, run.tokens[end - 1].end


# 08 numbers are the numbering plan's special numbers (free or shared-cost service lines:
# "0 809 401 401", "0 892 705 705"), never a person's line or mobile, nor any other identifier.
_SERVICE_LINE_RE = re.compile(r"(?:0|0033|33)8\d{8}")
NIR_RE = re.compile(r"[12378]\d{2}(?:0[1-9]|1[0-2]|[2-9]\d)(?:\d{2}|2A|2B)\d{6}(?:\d{2})?")
PHONE_RE = re.compile(r"0[1-9]\d{8}|(?:0033|33)0?[1-9]\d{8}")
IBAN_RE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}")
CAF_RE = re.compile(r"\d{6,8}")
CAF_RECENT_RE = re.compile(r"\d{7}")
# The units of an amount or a quantity ("148 320 kilomètres", "12 500 km"), case ignored.
AMOUNT_UNITS = r"(?:euros?|€|eur\b|centimes|%|pour[ \t]*cent|kilomètres?\b|km\b|kilos?\b|kg\b|mètres?\b|m²|m2\b)"
# "1 084,43 euros", "12 500 €": an amount, whatever the context.
_AMOUNT_AFTER_RE = re.compile(rf"(?i:(?:[ \t,]*+(?:(?:et|ou)[ \t]++)?\d[\d \t.,]*+)*+[ \t]*{AMOUNT_UNITS})")
# Numbers that belong to no one: "le numéro de l'envoi, c'est 1A 195 862 4403 7", "le SIRET".
_OTHER_NUMBER_RE = re.compile(
    r"(?i:(?<!\w)(?:envoi|suivie?|colis|recommandée?|siret|siren|ine|facture|commande|contrat|référence|"
    r"ticket|guichet|bureau|salle|ligne|vol|train|numéro\s+unique|enregistrement|électeur|neph)s?(?!\w))")
TAX_RE = re.compile(r"[0-3]\d{12}")
PASSPORT_RE = re.compile(r"\d{2}[A-Z]{2}\d{5}")
NEW_ID_RE = re.compile(r"(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*\d)[A-Z0-9]{9}")
DIGITS_ID_RE = re.compile(r"\d{10}|\d{12}")
PLATE_SIV_RE = re.compile(r"[A-HJ-NP-TV-Z]{2}\d{3}[A-HJ-NP-TV-Z]{2}")
PLATE_FNI_RE = re.compile(r"\d{1,4}[A-Z]{1,3}(?:\d{2}|2A|2B|97\d)")
# Plates from abroad, said as a number of their own where a vehicle is spoken of: Belgium
# "2-HXL-705", Turkey "06 BV 2741", Germany "HD-RT 4418", Switzerland "VS 318240", Poland
# "PO 51827", Spain "7314 HKD", the United Kingdom "KT21 BXU", Romania "B 123 ABC" (Italy's
# are SIV-shaped).
PLATE_FOREIGN_RE = re.compile(
    r"(?=[A-Z0-9]{5,9}$)(?=(?:\d*[A-Z]){2})(?=(?:[A-Z]*\d){2})"
    r"(?:\d{1,2}[A-Z]{1,3}\d{1,4}|\d{4}[A-Z]{3}|[A-Z]{2,5}\d{1,6}[A-Z]?|[A-Z]{2}\d{2}[A-Z]{2,3}|[A-Z]{1,2}\d{2,3}[A-Z]{3})")
# What makes a number near a vehicle word something else, when said after it: "le ticket de
# stationnement porte le numéro AB 1234", "l'avis de contravention", "la ligne C 12".
_NOT_PLATE_RE = re.compile(
    r"(?i:(?<!\w)(?:numéro|n°|ticket|pv|fps|amende|contravention|avis|formule|badge|horodateur|ligne|bus|salle|dossier|"
    r"facture|contrat|devis|commande|récépissé|plainte|vin|série|châssis|chassis|siret|siren|télépaiement|"
    r"code\s+(?:de\s+)?cession)s?(?!\w))")


def _other_than_plate(text: str, at: int) -> bool:
    """A law or form reference just before the number, or a cue of another number said
    after the last vehicle word of its sentence (the nearest cue counts)."""
    if _LEGAL_REFERENCE_RE.search(text[max(0, at - 30):at]) is not None:
        return True
    return _named_as_another(text, at, PLATE_CONTEXT, (_NOT_PLATE_RE,))


# A foreign passport: "FE 418273" (Ukraine), "B1427963", or digits alone ("382716459",
# "271 904 386": many countries give nine digits).
FOREIGN_PASSPORT_RE = re.compile(r"[A-Z]{1,2}\d{6,8}|\d{8,9}")
# A new identity card spelled letter by letter may hold no digit: "K T R M W X B H A".
SPELLED_CARD_RE = re.compile(r"[A-Z]{9}")
CARD_CONTEXT = ("carte d'identité", "carte d’identité", "carte nationale", "cni", "pièce d'identité",
                "pièce d’identité")
# A spelled name is no card number: "le nom sur la carte d'identité, D U P O N T..."
_NAME_SPELLING_RE = re.compile(r"(?i:(?<!\w)(?:nom|prénom|épel\w*|s['’]écrit)(?!\w))")
PASSPORT_CONTEXT = ("passeport", "passport")
_CODE_PREFIX_RE = re.compile(r"[A-Za-z]{2,}-\Z")
# A code's capitals before a phone or a NIR ("RC-33-2024-06612"); not a word ("portable-06...").
_CAPITAL_CODE_PREFIX_RE = re.compile(r"(?<![a-zà-ÿ])[A-Z]{2,}-\Z")
# What makes a number near an identity word something else, when said after it: "j'instruis
# votre dossier, le 2023-031-N-04418", "lettre suivie, numéro 1L 004..." (but "la facture
# EDF et ma carte, l'ancienne, 1411..." is the card's number: the nearest cue counts).
_NOT_IDENTITY_RE = re.compile(
    r"(?i:(?<!\w)(?:dossier|demande|pré-demande|avis|convocation|plainte|réclamation)s?(?!\w))")
# What else a counter numbers, said before a number: "la réclamation 5810232", "le plan porte
# le numéro 3942587", "identifiant France Travail 6250091", "le décompte 2169 6604 94038".
# Not "dossier" nor "avis": a CAF file is named by its allocataire number ("dossier
# 9241803"), and the tax number is read off the notice ("j'ai l'avis : 36 38 30...").
_ANOTHER_NUMBER_RE = re.compile(
    r"(?i:(?<!\w)(?:demande|pré-demande|convocation|plainte|réclamation|plan|échéancier|quittance|"
    r"abonnement|offre|session|recours|courrier|acte|constat|décompte|devis|convention|bail|jugement|"
    r"adhérent|enregistrée?s?\s+sous|france\s+travail|pôle\s+emploi)s?(?!\w))")


def _named_as_another(text: str, at: int, own: tuple[str, ...],
                      others: tuple[re.Pattern[str], ...] = (_OTHER_NUMBER_RE, _ANOTHER_NUMBER_RE)) -> bool:
    """The last cue said before the number in its sentence names another kind of number
    (`others`) rather than this kind (`own`): "numéro allocataire 3981017 ... plan de
    remboursement 2473727"."""
    sentence = _sentence_before(text, at).lower()
    other = max((m.end() for pattern in others for m in pattern.finditer(sentence)), default=-1)
    if other < 0:
        return False
    # a cue of another number that ends with an own word ("code de cession") is the other
    return max((m.end() for m in _context_re(own).finditer(sentence)), default=-1) <= other


def _other_than_identity(text: str, at: int) -> bool:
    """A law or form reference just before the number, or a cue of another number
    (tracking, invoice, file...) said after the last identity word of its sentence."""
    sentence = _sentence_before(text, at).lower()
    reference = _LEGAL_REFERENCE_RE.search(text[max(0, at - 30):at])
    if reference is not None:
        # "mon titre de séjour, n° 9912345678": a document's number, not a text's
        if not (reference.group().strip().lower() in ("n°", "no.") and _context_re(ID_CONTEXT).search(sentence)):
            return True
    return _named_as_another(text, at, ID_CONTEXT, (_OTHER_NUMBER_RE, _NOT_IDENTITY_RE))


def _run_matches(run: Run, pattern: re.Pattern[str], kind: str, how: str,
                 score: Callable[[str], float | None]) -> list[Finding]:
    """`aligned_matches` of the run as findings of `kind`."""
    found = []
    for first, end, _, value in aligned_matches(run, pattern, score):
        start, stop = _span(run, first, end)
        found.append(Finding(start, stop, kind, value, how))
    return found


def find_in_runs(text: str, runs: list[Run], recent: Recent = NOTHING_RECENT) -> list[Finding]:
    """NIR, IBAN, phones, CAF and tax numbers, document numbers and plates in the runs.

    `recent`: the types found in the turns just before; they stand for context words
    (an agent reading back "559 66 78 ?" after the visitor's CAF number)."""
    return [f for run in runs for f in _find_in_run(text, run, recent)]


def _find_in_run(text: str, run: Run, recent: Recent) -> list[Finding]:
    """Every identifier one run of number-like tokens holds, by type (`_RunIdentifiers`);
    none in a service line's number."""
    if _SERVICE_LINE_RE.fullmatch(run.alnum()[0]):
        return []
    found = _RunIdentifiers(text, run, recent)
    findings = [*found.nir(), *found.iban(), *found.phone(), *found.caf(), *found.tax(), *found.identity()]
    # a code glued to letters ("ANEF-2024-13-0578812", "L2024-0611") is a file's reference,
    # and so is a number with a slash ("01834/2024", "94/70598"): no document nor CAF number has one
    findings = [f for f in findings if f.entity_type not in (TAX_NUMBER, CAF_NUMBER, ID_DOCUMENT, PHONE, NIR)
                or ((_CODE_PREFIX_RE if f.entity_type not in (PHONE, NIR) else _CAPITAL_CODE_PREFIX_RE).search(
                    text, max(0, f.start - 12), f.start) is None
                    and not (f.entity_type in (ID_DOCUMENT, CAF_NUMBER) and "/" in text[f.start:f.end]))]
    return [*findings, *found.plates()]


class _RunIdentifiers:
    """The identifier rules for one run, each a method that returns its findings; what
    several rules read of the run's surroundings (social-security or tax talk) is read once."""

    def __init__(self, text: str, run: Run, recent: Recent) -> None:
        self.text, self.run, self.recent, self.at = text, run, recent, run.start
        self.social = self.context(SOCIAL_CONTEXT, NIR)
        self.tax_talk = self.context(TAX_CONTEXT, TAX_NUMBER)

    def context(self, words: tuple[str, ...], kind: str) -> bool:
        """This type was found in recent turns, or its words are said around the run."""
        return kind in self.recent or has_context(self.text, self.at, words, end=self.run.end)

    def _matches(self, pattern: re.Pattern[str], kind: str, how: str,
                 score: Callable[[str], float | None]) -> list[Finding]:
        return _run_matches(self.run, pattern, kind, how, score)

    def nir(self) -> list[Finding]:
        another = _named_as_another(self.text, self.at, SOCIAL_CONTEXT)

        def score(chars: str) -> float | None:
            if len(chars) == 15:
                return 0.95 if stdnum_nir.is_valid(chars) else (0.7 if self.social and not another else 0.45)
            if another:
                return None
            if self.tax_talk and not self.social:
                return None
            if self.social:
                return 0.85
            # without its key and without context: a NIR's structure (sex, month, place)
            # that is not a valid tax number is still most likely a NIR
            return 0.55 if _nir_structure(chars) and not stdnum_nif.is_valid(chars) else 0.4

        return self._matches(NIR_RE, NIR, "nir", score)

    def iban(self) -> list[Finding]:
        def score(chars: str) -> float | None:
            if stdnum_iban.is_valid(chars, check_country=False):  # mod 97; national keys vary
                return 0.95
            if chars.startswith("FR") and len(chars) == 27 and self.context(IBAN_CONTEXT, IBAN):
                return 0.7
            return None

        return self._matches(IBAN_RE, IBAN, "iban", score)

    def phone(self) -> list[Finding]:
        def score(chars: str) -> float | None:
            if len(chars) == 10 and self.context(ID_CONTEXT, ID_DOCUMENT) and not chars.startswith("0"):
                return None
            return 0.9

        found = []
        for first, end, _, value in aligned_matches(self.run, PHONE_RE, score):
            if not _inside_longer_number(self.text, self.run, first, end) and not _file_number(
                    self.text, self.run, first, end):
                start, stop = _span(self.run, first, end)
                found.append(Finding(start, stop, PHONE, value, "phone"))
        return found

    def caf(self) -> list[Finding]:
        """Said with its context, 6 to 8 digits; only after a CAF number, its 7 digits;
        never a legal reference, another number named before, or an amount."""
        text, at = self.text, self.at
        reference = (_LEGAL_REFERENCE_RE.search(text[max(0, at - 30):at]) is not None
                     or _named_as_another(text, at, (*CAF_CONTEXT, "foyer")))
        amount = _AMOUNT_AFTER_RE.match(text, self.run.end, self.run.end + 80) is not None
        if reference or amount:
            return []
        caf_re = CAF_RE if (has_context(text, at, CAF_CONTEXT, end=self.run.end)
                            or _HOUSEHOLD_BEFORE_RE.search(text, max(0, at - 20), at)) else CAF_RECENT_RE
        if caf_re is not CAF_RE and CAF_NUMBER not in self.recent:
            return []
        # glued to a letter ("6250091a", "5041391j"): a France Travail identifier or a code
        return [f for f in self._matches(caf_re, CAF_NUMBER, "caf", lambda chars: 0.85)
                if not text[f.end:f.end + 1].isalpha() and not text[max(0, f.start - 1):f.start].isalpha()]

    def tax(self) -> list[Finding]:
        # "Vous avez le numéro unique d'enregistrement ?": the question names the answer's
        # number, unless the answer names it itself ("... numéro fiscal 0462...")
        same_turn, question = _turns_before(self.text, self.at)
        asked_another = (_OTHER_NUMBER_RE.search(question) is not None
                         and not _context_re(TAX_CONTEXT).search(question.lower())
                         and not _context_re(TAX_CONTEXT).search(same_turn.lower()))
        other_number = asked_another or _named_as_another(self.text, self.at, TAX_CONTEXT)

        def score(chars: str) -> float | None:
            if other_number:
                return None
            if self.tax_talk:
                return 0.9 if stdnum_nif.is_valid(chars) else 0.85
            # 13 digits from 0 cannot be a NIR (sex 1 or 2, 7/8 for a temporary one), nor from 3
            # where no one spoke of social security
            if chars[0] == "0" or (not self.social and (chars[0] == "3" or stdnum_nif.is_valid(chars))):
                return 0.6
            return None

        return self._matches(TAX_RE, TAX_NUMBER, "tax", score)

    def identity(self) -> list[Finding]:
        text, at, run = self.text, self.at, self.run
        identity = self.context(ID_CONTEXT, ID_DOCUMENT) and not _other_than_identity(text, at)
        found = self._matches(PASSPORT_RE, ID_DOCUMENT, "passport", lambda chars: 0.85 if identity else 0.6)
        if not identity:
            return found
        found += self._matches(NEW_ID_RE, ID_DOCUMENT, "id-card", lambda chars: 0.8)
        found += self._matches(DIGITS_ID_RE, ID_DOCUMENT, "id-digits", lambda chars: 0.8)
        # a foreign passport: "FE 418273" (Ukraine), "B1427963", "R0418873"
        if has_context(text, at, PASSPORT_CONTEXT, end=run.end):
            found += self._matches(FOREIGN_PASSPORT_RE, ID_DOCUMENT, "passport-foreign", lambda chars: 0.8)
        if (len(run.tokens) == 9 and all(len(t.value) == 1 for t in run.tokens) and run.said is None
                and SPELLED_CARD_RE.fullmatch(run.alnum()[0]) and has_context(text, at, CARD_CONTEXT, end=run.end)
                and not _NAME_SPELLING_RE.search(_sentence_before(text, at))):
            start, stop = _span(run, 0, 9)
            found.append(Finding(start, stop, ID_DOCUMENT, 0.75, "id-card-spelled"))
        return found

    def plates(self) -> list[Finding]:
        found = self._matches(PLATE_SIV_RE, LICENSE_PLATE, "plate", lambda chars: 0.85)
        if self.context(PLATE_CONTEXT, LICENSE_PLATE):
            found += self._matches(PLATE_FNI_RE, LICENSE_PLATE, "plate-fni", lambda chars: 0.8)
            if _whole_run_plate(self.run, PLATE_FOREIGN_RE) and not _other_than_plate(self.text, self.at):
                start, stop = _span(self.run, 0, len(self.run.tokens))
                found.append(Finding(start, stop, LICENSE_PLATE, 0.75, "plate-foreign"))
        return found


def _whole_run_plate(run: Run, pattern: re.Pattern[str]) -> bool:
    """The run, all of it, is a plate of `pattern`: a plate from abroad has no key nor fixed
    shape, so only a number said on its own counts ("OT-2023-551902" holds "OT2023", but it
    is one reference)."""
    chars = run.alnum()[0]
    return (run.said is None and pattern.fullmatch(chars) is not None
            and _ROAD_NUMBER_RE.fullmatch(chars) is None and _DATE_RUN_RE.search(chars) is None)


# A road's number is no plate: "contrôle rn 137", "accident sur la d 938", "l'a 10".
_ROAD_NUMBER_RE = re.compile(r"(?:RN|RD|CD|RC|VC|N|D|A)\d{1,4}")
# A date read as one run of letters and digits: "commission le 15 mai 4 places", "le 12 mai 2021".
_DATE_RUN_RE = re.compile(r"(?<!\d)\d{1,2}(?:JANV|FÉVR|FEVR|MARS|AVR|MAI|JUIN|JUIL|AOÛT|AOUT|SEPT|OCT|NOV|DÉC|DEC)")


# A plate with its two hyphens, in lower case: a shape nothing else has ("xr-246-zh").
_HYPHENATED_PLATE_RE = re.compile(r"(?<![\w-])[a-hj-np-tv-z]{2}-\d{3}-[a-hj-np-tv-z]{2}(?![\w-])")
# An old plate in lower case: two or three letters ("4417 wxb 71"), never one ("14 h 30").
PLATE_FNI_LOWER_RE = re.compile(r"\d{1,4}[A-Z]{2,3}(?:\d{2}|2A|2B|97\d)")


def find_lower_case_identifiers(text: str, runs: list[Run], recent: Recent = NOTHING_RECENT) -> list[Finding]:
    """Plates, passports, IBANs and Corsican NIRs in an agent's note written in lower case ("véhicule enlevé cn
    318 wz", "plaque gh604tr", "f b tiret 417 tiret c x", "2 mzr 317", "passeport malien
    b4827716"), where a vehicle or a passport is spoken of: `runs` read with
    `lower_letters` (`numbers.token_runs`); only runs with letters in lower case (the
    others are read as capitals already)."""
    found: list[Finding] = []
    for run in runs:
        if not any(text[t.start:t.end].islower() for t in run.tokens if not t.spoken):
            continue
        dated = _DATE_RUN_RE.search(run.alnum()[0]) is not None  # "depuis le 12 mai 2021 ok"
        if (not dated and has_context(text, run.start, ID_CONTEXT, end=run.end)
                and not _other_than_identity(text, run.start)):
            patterns = [NEW_ID_RE, PASSPORT_RE]
            if has_context(text, run.start, PASSPORT_CONTEXT, end=run.end):
                patterns.append(FOREIGN_PASSPORT_RE)
            for pattern in patterns:
                for first, end, _, score in aligned_matches(run, pattern, lambda chars: 0.8):
                    start, stop = _span(run, first, end)
                    if "/" not in text[start:stop]:
                        found.append(Finding(start, stop, ID_DOCUMENT, score, "id-lower-case"))
        # an IBAN or a Corsican NIR in lower case ("nouveau rib fr76 1130 ...", "nir 2 87 03 2b
        # 033 784 21"): the checksum is the proof, as in capitals
        found += _run_matches(run, IBAN_RE, IBAN, "iban-lower-case",
                              lambda chars: 0.95 if stdnum_iban.is_valid(chars, check_country=False) else None)
        found += _run_matches(run, NIR_RE, NIR, "nir-lower-case",
                              lambda chars: 0.95 if len(chars) == 15 and stdnum_nir.is_valid(chars) else None)
        if dated or not (LICENSE_PLATE in recent or has_context(text, run.start, PLATE_CONTEXT, end=run.end)
                         or _HYPHENATED_PLATE_RE.search(text, run.start, run.end)):
            continue
        found += _run_matches(run, PLATE_SIV_RE, LICENSE_PLATE, "plate-lower-case", lambda chars: 0.8)
        if (_whole_run_plate(run, PLATE_FNI_LOWER_RE) or _whole_run_plate(run, PLATE_FOREIGN_RE)) \
                and not _other_than_plate(text, run.start):
            found.append(Finding(run.start, run.end, LICENSE_PLATE, 0.75, "plate-lower-case"))
    return found


# ------------------------------------------------------------------ numbers said over two turns

# A turn that stops on a number ("C'est le sept, six, neuf, cinq..."), the other side's
# prompt ("Oui ?", "Ensuite ?"), and the rest of the number ("quatre, six, huit."): the
# two parts together are one identifier.
_SAID_ON_RE = re.compile(r"(?:\.\.\.|…)\s*$")
_PROMPT_MAX_CHARS = 40
_OPENING_MAX_WORDS = 3


def continued_numbers(units: list[str]) -> list[tuple[int, Finding]]:
    """(turn, finding) for each part of a NIR or a CAF number said over two turns: the
    first part ends its turn with "..." and the second opens the next turn, or the one
    after a short prompt without digits; the digits together must be a NIR (with its
    key, or 13 digits where social security was spoken of) or a CAF number (6 to 8
    digits where the CAF was). Each turn's number runs are read once."""
    found: list[tuple[int, Finding]] = []
    for u, unit in enumerate(units):
        if not _SAID_ON_RE.search(unit[-12:]):
            continue
        runs = token_runs(unit)
        if not runs or unit[runs[-1].end:].strip(" \t,.…") or len(runs[-1].tokens) > 40:
            continue
        head = runs[-1]
        for v in (u + 1, u + 2):
            if v >= len(units):
                break
            if v == u + 2 and (len(units[u + 1]) > _PROMPT_MAX_CHARS or any(c.isdigit() for c in units[u + 1])):
                break
            tail_runs = token_runs(units[v][:200])
            if not tail_runs or len(units[v][:tail_runs[0].start].split()) > _OPENING_MAX_WORDS:
                continue
            tail = tail_runs[0]
            chars = head.alnum()[0] + tail.alnum()[0]
            context = " ".join(units[max(0, u - 2):v + 1])
            kind = None
            if NIR_RE.fullmatch(chars) and (
                    (len(chars) == 15 and stdnum_nir.is_valid(chars))
                    or (len(chars) == 13 and has_context(context, len(context), SOCIAL_CONTEXT, window=len(context)))):
                kind = NIR
            elif CAF_RE.fullmatch(chars) and has_context(context, len(context), CAF_CONTEXT, window=len(context)):
                kind = CAF_NUMBER
            if kind is not None:
                found.append((u, Finding(head.start, head.end, kind, 0.85, "continued")))
                found.append((v, Finding(tail.start, tail.end, kind, 0.85, "continued")))
            break
    return found


# ------------------------------------------------------------------ e-mail

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_AT_WORDS = r"(?:arobase|arrobase|arobas|at|@)"
# Each space belongs to one place only ([ \t]*+(?:,[ \t]*+)?): "a point b" read one way,
# never the exponential many ways two optional space runs side by side would allow.
_SPACES_COMMA = r"[ \t]*+(?:,[ \t]*+)?"
_CONNECTOR = (rf"(?:{_SPACES_COMMA}(?:point|tiret[ \t]+(?:du[ \t]+)?bas|tiret[ \t]+du[ \t]+milieu|tiret|underscore|"
              rf"moins)\b{_SPACES_COMMA}|[._-]"
              r"|[ \t]*+,[ \t]*+(?=(?:[A-Za-z](?:[ \t]+[A-Za-z](?![\w'’]))*|\d+(?:-\d+)*)[ \t]*,?[ \t]*"
              r"(?:point|arobase|arrobase|arobas|at|\d)\b))")
# A part: a word, or letters or digits spelled with hyphens ("j-o-a-n-a", "8-1") or
# spaces ("cris.rodrigues, C R I S point R O D R I G U E S, arobase...").
_PART = r"(?:[A-Za-z](?![\w'’])(?:[ \t]++[A-Za-z](?![\w'’])){2,40}+|\w++(?:-\w++)*+)"
TLDS = r"(?:fr|com|net|org|eu|info|be|ch|de|es|it|pt|uk|ma|dz|tn|sn|io|gouv|re|ro|pl|ua)"


def _number_words(*extra: str) -> str:
    """The French number words (and "et": "vingt et un") as one alternation, longest first."""
    return "|".join(sorted((re.escape(w) for w in NUMBER_WORDS | {"et", *extra}), key=len, reverse=True))


_NUMBER_WORDS_RE = _number_words()
# A part may end with a number said in words and a letter: "kovalenko quatre-vingt-six",
# "mendes deux a"; a domain may be a number ("cent soixante-trois point com").
_SPOKEN_DIGITS = rf"(?:{_NUMBER_WORDS_RE})(?!\w)(?:[ \t-]++(?:{_NUMBER_WORDS_RE})(?!\w)){{0,9}}+"
# ... or with digits said as digits ("julie point fabre 76", "ousmane underscore sow 1990").
_LOCAL_PART = rf"{_PART}(?:[ \t]++(?:{_SPOKEN_DIGITS}|\d{{1,4}}+(?!\w))(?:[ \t]++[a-z](?![\w'’]))?+)?+"
_DOMAIN_PART = rf"(?:{_SPOKEN_DIGITS}(?=[ \t]*(?:point|\.))|{_PART})"
# Spaces only, never a line break: a spoken address stays in its turn.
# "leila.bouaziz, tout attaché, arobase...": said to be written as one word.
_ALL_ONE_WORD = r"(?:[ \t]*+,?[ \t]*+(?:tout|en[ \t]+un[ \t]+seul[ \t]+mot)[ \t]++(?:attachée?s?|attachee?s?|collée?s?)\b)"
SPOKEN_EMAIL_RE = re.compile(
    rf"\b{_LOCAL_PART}(?:{_CONNECTOR}{_LOCAL_PART}){{0,12}}{_ALL_ONE_WORD}?(?:[ \t]*+,)?[ \t]++{_AT_WORDS}[ \t]++{_DOMAIN_PART}"
    rf"(?:{_CONNECTOR}{_PART}){{0,8}}?[ \t]*+(?:point|\.)[ \t]*+{TLDS}\b",
    re.IGNORECASE | re.UNICODE,
)


_AT_RE = re.compile(rf"(?i:\b{_AT_WORDS}\b|@)")
# How far a spoken address reaches on either side of its "arobase".
_EMAIL_REACH = 160


def find_emails(text: str) -> list[Finding]:
    found = []
    end = 0
    for at in re.finditer("@", text):  # around each "@" only: a long word without one costs nothing
        if at.start() < end:
            continue
        offset = max(end, at.start() - _EMAIL_REACH)
        for m in EMAIL_RE.finditer(text[offset:at.end() + _EMAIL_REACH]):
            if offset + m.start() <= at.start() < offset + m.end():
                found.append(Finding(offset + m.start(), offset + m.end(), EMAIL, 0.95, "email"))
                end = offset + m.end()
    # spoken ones only around an "arobase": the pattern never scans a long text for one
    seen: set[tuple[int, int]] = set()
    for at in _AT_RE.finditer(text):
        offset = max(0, at.start() - _EMAIL_REACH)
        window = text[offset:at.end() + _EMAIL_REACH]
        for m in SPOKEN_EMAIL_RE.finditer(window):
            span = (offset + m.start(), offset + m.end())
            if span[0] <= at.start() < span[1] and span not in seen:
                seen.add(span)
                found.append(Finding(span[0], span[1], EMAIL, 0.9, "email-spoken"))
    return found


# ------------------------------------------------------------------ dates of birth

MONTHS = ("janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|"
          "décembre|decembre")
_NUMBER_WORD = _number_words("premier")
# At most ten words: "mille neuf cent quatre-vingt-dix-neuf" is seven; a bound keeps a
# long run of number words linear.
_SPOKEN_NUMBER = rf"(?i:(?:{_NUMBER_WORD})(?!\w)(?:[\s-]++(?:{_NUMBER_WORD})(?!\w)){{0,9}}+)"
DAY = rf"(?:\d{{1,2}}|1er|{_SPOKEN_NUMBER})"
YEAR = rf"(?:\d{{4}}|\d{{2}}|{_SPOKEN_NUMBER})"
DATE_RE = re.compile(
    rf"\b(?:{DAY}\s+(?:{MONTHS})(?:\s+{YEAR})?|\d{{1,2}}\s*[/.-]\s*\d{{1,2}}\s*[/.-]\s*\d{{2,4}})\b",
    re.IGNORECASE,
)


# What makes a date a birth date: "née le", "né à Kinshasa le", "date de naissance, c'est
# le", "naissance : le" (not "acte de naissance, pour mon mariage le 14 juin").
_BIRTH_CUE_RE = re.compile(
    r"(?i:(?<!\w)(?:née?s?|date\s+de\s+naissance)(?!\w)(?P<gap>(?:[\s,:]+[\w'’-]+){0,5}?)[\s,:]*$"
    r"|(?<!acte de )(?<!extrait de )(?<!certificat de )(?<!congé de )(?<!prime de )(?<!\w)naissance(?!\w)"
    r"(?P<short>(?:[\s,:]+[\w'’-]+){0,3}?)[\s,:]*$)")
# A birth mentioned in the previous turn: "Votre date de naissance ?", "Date et lieu de
# naissance ?", "Vous êtes née en novembre 92 ? Le combien ?", "Leurs dates de naissance ?"
# (not "un acte de naissance").
_BIRTH_WORD_RE = re.compile(
    r"(?i:(?<!acte de )(?<!extrait de )(?<!certificat de )(?<!congé de )(?<!prime de )(?<!\w)"
    r"(?:née?s?|naissances?|naît|nait|naquit|naître)(?!\w))")
# What makes a date in that answer something else: "rendez-vous le", "arrivée en France le".
_NOT_BIRTH_RE = re.compile(
    r"(?i:(?<!\w)(?:rendez-vous|rdv|convoca|convoqu|depuis|arrivée?s?|entrée?s?|mariée?s?|mariage|pacs|"
    r"divorc|décès|décédée?|embauch|licenci|contrat|jusqu|avant|après|à\s+partir|expire|valable|délivrée?|"
    r"signée?|déposée?|envoyée?|reçue?|payée?|versée?|fin|début|prochaine?|créée?|immatricul\w*)(?!\w))")
# "le 14 janvier à 10 h": an appointment.
_TIME_AFTER_RE = re.compile(r"(?i:,?\s*(?:à|a|vers)\s+\d{1,2}\s*(?:h|heures?)\b)")
_YEAR_RE = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")


def _turns_before(text: str, start: int) -> tuple[str, str]:
    """The current turn up to `start`, and the previous turn (turns are lines)."""
    before = text[max(0, start - 400):start]
    newline = before.rfind("\n")
    if newline < 0:
        return before, ""
    previous = before[:newline]
    return before[newline + 1:], previous[previous.rfind("\n") + 1:]


def another_event_date(turn_before: str, previous_turn: str) -> bool:
    """A date said as another event's: no birth cue just before it in its turn, and its
    turn or the question before it names another event ("décédé quand ?", "arrivé en
    France quand ?", "le 4 août" after "le décès"): a learned date that is no birth date."""
    if _BIRTH_CUE_RE.search(turn_before):
        return False
    return _NOT_BIRTH_RE.search(turn_before) is not None or (
        _NOT_BIRTH_RE.search(previous_turn) is not None and _BIRTH_WORD_RE.search(previous_turn) is None)


def _is_birth_date(text: str, start: int, end: int, year: int | None, recent: Recent) -> bool:
    """`year`: the year said with the date (0 when said in words or in two digits), None
    without one."""
    """A birth cue just before the date in its turn; or the previous turn speaks of a
    birth, or gave a birth date (an enumeration: "Timéo, le 12 mai 2019", then "Lison, le
    27 juin 2022"), the date is an answer, and nothing in this turn makes it another event."""
    same_turn, previous_turn = _turns_before(text, start)
    if _BIRTH_CUE_RE.search(same_turn):
        return True
    if year is not None and year > datetime.date.today().year:
        return False
    if _NOT_BIRTH_RE.search(same_turn) or _TIME_AFTER_RE.match(text, end):
        return False
    # an answer: a full date (an appointment is said without its year), or a date that
    # opens the turn ("Le 6 novembre.")
    answer = year is not None or len(same_turn.strip()) <= 12
    return answer and (_BIRTH_WORD_RE.search(previous_turn) is not None or recent.get(DATE_OF_BIRTH) == 1)


# Birth dates listed in one turn: "Tiago né le 12 avril 2014 et Leonor le 1er septembre 2017".
_LISTED_BIRTH_RE = re.compile(r"(?i:[^\S\n]*[,;]?[^\S\n]*(?:et[^\S\n]+)?(?:[\w'’-]+[^\S\n]*,?[^\S\n]+){0,3}?"
                              r"(?:le|en)[^\S\n]+)")


def find_dates_of_birth(text: str, runs: list[Run], recent: Recent = NOTHING_RECENT) -> list[Finding]:
    """Dates said as someone's birth date (see `_is_birth_date`)."""
    found = []
    last_birth_end = -1
    for m in DATE_RE.finditer(text):
        year = _YEAR_RE.search(m.group())
        said = m.group().lower()
        said_year = int(year.group(1)) if year else (0 if "mille" in said or re.search(r"\s\d{2}$", said) else None)
        listed = (last_birth_end >= 0 and m.start() - last_birth_end <= 60
                  and _LISTED_BIRTH_RE.fullmatch(text, last_birth_end, m.start()) is not None
                  and not _NOT_BIRTH_RE.search(text, last_birth_end, m.start())
                  and not (said_year is not None and said_year > datetime.date.today().year))
        if listed or _is_birth_date(text, m.start(), m.end(), said_year, recent):
            found.append(Finding(m.start(), m.end(), DATE_OF_BIRTH, 0.85, "birth-date"))
            last_birth_end = m.end()
    # dictated digits: "douze zéro quatre quatre-vingt-dix", "12 04 1990"
    for run in runs:
        for first, end, chars, score in aligned_matches(run, re.compile(r"\d{6}|\d{8}"), _date_digits):
            start, stop = _span(run, first, end)
            if _is_birth_date(text, start, stop, int(chars[4:]) if len(chars) == 8 else None, recent):
                found.append(Finding(start, stop, DATE_OF_BIRTH, score, "birth-date-digits"))
    return found


def _date_digits(chars: str) -> float | None:
    day, month = int(chars[:2]), int(chars[2:4])
    return 0.8 if 1 <= day <= 31 and 1 <= month <= 12 else None


# ------------------------------------------------------------------ addresses

STREET_TYPES = (r"route\s+départementale|route\s+nationale|route\s+communale|chemin\s+rural|chemin\s+vicinal|"
                r"rue|avenue|av\.|boulevard|bd|allée|allee|impasse|place|chemin|route|quai|cours|square|"
                r"passage|voie|résidence|residence|lotissement|lieu-dit|lieudit|hameau|cité|cite|sentier|"
                r"rond-point|faubourg|esplanade|promenade|villa|parvis|montée|traverse|ruelle|chaussée|clos|"
                r"domaine|sente|venelle|square|mail|parc|quartier|"
                # overseas, a locality: "section Boisvin, 97139 Les Abymes"
                r"section|"
                # abroad: Portugal, Spain, Italy, Germany, the Netherlands, Poland...
                r"rua|avenida|travessa|largo|praça|calle|carrer|plaza|viale|piazza|strada|straße|strasse|weg|"
                r"laan|straat|ulica")
# Each alternative ends at a word's end (or an apostrophe): with the possessive loops
# below, "de" must not stop inside "des".
_PARTICLE = (r"(?:(?:de\s+la|de|du|des|la|le|les|aux|au|et|sur|sous|saint|sainte|das|dos|da|do|del|della|degli|di|"
             r"von|vom|der|van|den)\b|(?:de\s+l|d|l)['’])")
# A word of a street's name: capitalised (an abbreviation keeps its full stop, a sentence's
# does not end the name: "avenue Henri-Barbusse. Vous"), or a number ("rue du 8 Mai").
# Loops are possessive (*+): a name read one way is never re-read another way, which
# would take exponential time on a long run of capitalised words.
# (never an elided pronoun and its verb: "J'habite", "C'est", "Qu'il")
_NAME_WORD = (rf"(?:(?:St|Ste|Dr|Gal|Mal|Pdt|Pr)\.|(?!{ELIDED})[A-ZÀ-ÖØ-Ý][\w'’]*+(?:-[\w'’]++){{0,6}}+"
              r"|\d{1,4}\b)")
STREET_NAME = rf"(?:(?:{_PARTICLE}\s*){{0,3}}+{_NAME_WORD})(?:[\s-]++(?:{_PARTICLE}\s*){{0,3}}+{_NAME_WORD}){{0,8}}+"
HOUSE_NUMBER = rf"(?:\d{{1,4}}|{_SPOKEN_NUMBER})(?:\s*(?:bis|ter|quater|[A-D]\b))?"
# The number after the name, as abroad or said late: "Rua de São Vicente, 87", "rue des
# Écoles, numéro 5 bis".
_NUMBER_AFTER = r"(?:,?\s*(?:(?i:numéro|n°)\s*)?\d{1,4}(?:\s*(?:bis|ter|quater))?(?=\s*,))"
_CITY_WORD = r"[A-ZÀ-ÖØ-Ý][\w'’]*+(?:-[\w'’]++){0,6}+"
_CITY = rf"{_CITY_WORD}(?:\s++(?:{_PARTICLE}\s*){{0,3}}+{_CITY_WORD}){{0,5}}+"
# Four digits: Belgium, Switzerland, Luxembourg ("Chaussée de Louvain 212, 1030 Schaerbeek").
_POSTCODE = rf"(?:\d{{5}}|\d{{2}}\s\d{{3}}|\d{{4}}-\d{{3}}|\d{{4}}(?=\s+[A-ZÀ-Ý])|{_SPOKEN_NUMBER})"
# Postcodes of letters and digits, said after the city: the United Kingdom ("LS6 2AB"),
# Canada ("H7N 2K9"), the Netherlands ("1012 AB").
_FOREIGN_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d|\d{4}\s?[A-Z]{2})\b"
COUNTRIES = (r"France|Belgique|Suisse|Luxembourg|Allemagne|Espagne|Portugal|Italie|Royaume-Uni|Pays-Bas|Pologne|"
             r"Roumanie|Maroc|Algérie|Tunisie|Sénégal|Mali|Côte\s+d['’]Ivoire|Cameroun|Turquie|Canada|"
             r"États-Unis|Brésil|Chine|Vietnam|Viêt\s+Nam|Ukraine|Comores|Madagascar|Haïti")
_COUNTRY = rf"(?:,?\s*(?:{COUNTRIES}))"
# A city after its postal code ("91230 Montgeron", "quatre-vingt-onze deux cent trente,
# Montgeron"), "à City", or a city abroad followed by its country ("Casablanca, Maroc").
# Abroad, the city, a region and the postcode after it: "Laval, Québec, H7N 2K9, Canada",
# "Leeds, LS6 2AB, Royaume-Uni".
# A town alone closes the sentence: "au 45, boulevard de la Liberté, Lille."
POSTCODE_CITY = (rf"(?:(?:,?\s*{_POSTCODE},?\s+{_CITY}|,?\s+à\s+{_CITY}){_COUNTRY}?"
                 rf"|(?:,\s*{_CITY}){{1,2}},\s*{_FOREIGN_POSTCODE}{_COUNTRY}?"
                 rf"|,\s*{_CITY}{_COUNTRY}|,[^\S\n]*{_CITY}(?=[^\S\n]*(?:[.?!…\n]|$)))")
_COMPLEMENT_WORDS = (rf"(?:(?i:bâtiment|batiment|bât\.|bat\.|immeuble|lieu-dit|lieudit|section|hameau)\s+{STREET_NAME}"
                     r"|(?i:escalier|esc\.|appartement|appart|appt|étage|porte|entrée|logement|chambre|boîte|lot|"
                     r"tour|bloc|emplacement|villa|maison|parcelle|studio|pavillon|box|cellule)\s+[\w-]++"
                     r"|\d{1,2}\s*(?:e|è|ème|eme|er|ère)\s+étage|\d{1,2}\s*[º°]\s*[A-Z]?\b|(?i:rez-de-chaussée))"
                     # the side of a landing: "3e étage droite", "porte B, au fond"
                     r"(?:,?[^\S\n]+(?i:(?:à[^\S\n]+|au[^\S\n]+)?(?:gauche|droite|fond|face)\b))?")
COMPLEMENT = rf"(?:,?\s*{_COMPLEMENT_WORDS})"
# What may come before the street: "Foyer Adoma, chambre 27, 2 rue...", "camping Les Ormes,
# emplacement 28, route de Branne", "village de Santa-Maria, lieu-dit Funtanella".
_LEADING = rf"(?:(?i:foyer|camping|village|résidence|residence|domaine|hameau|cité|cite)\s+{STREET_NAME}|{_COMPLEMENT_WORDS})"
# "résidence universitaire Jean-Zay", "cité administrative"
_TYPE_ADJECTIVE = r"(?:\s+(?:universitaire|étudiante|sociale|services|seniors|principale|neuve|vieille|haute|basse))?"
# A post-office box: "BP 318, 97310 Kourou", "boîte postale 12".
POST_BOX = rf"\b(?:BP|B\.P\.|CS|TSA|(?i:boîte\s+postale))\s*\d{{1,6}}{POSTCODE_CITY}"
ADDRESS_RE = re.compile(
    rf"(?P<leading>(?:\b{_LEADING}(?:,\s*|\s+)){{0,4}})(?P<number>\b{HOUSE_NUMBER},?\s+)?\b(?P<type>(?i:{STREET_TYPES}))"
    rf"{_TYPE_ADJECTIVE}\s+(?P<name>{STREET_NAME})(?P<after>{_NUMBER_AFTER})?{COMPLEMENT}{{0,5}}+(?P<city>{POSTCODE_CITY})?"
    rf"|(?P<box>{POST_BOX})",
    re.UNICODE,
)
# A named place with its postal code and city: "Les Quatre-Vents, 86360 Chasseneuil-du-
# Poitou" after "adresse"; "Les Hauts de Beauregard, bâtiment B, appartement 12, 73000
# Chambéry" (its complements say it is a home).
NAMED_PLACE_ADDRESS_RE = re.compile(
    rf"\b{STREET_NAME}(?P<complements>{COMPLEMENT}{{0,5}}+),?\s+"
    rf"\d{{5}}\s+{_CITY}{_COUNTRY}?")
# German and Dutch streets are one word, the number after: "Lindenstraße 41, 66119 Saarbrücken".
COMPOUND_STREET_RE = re.compile(
    rf"\b[A-ZÄÖÜ][\w-]{{0,40}}?(?:straße|strasse|str\.|weg|platz|gasse|allee|ring|damm|straat|laan|plein)\s+"
    rf"\d{{1,4}}[a-z]?{COMPLEMENT}{{0,5}}+{POSTCODE_CITY}")
# Streets in English, the number before: "27 Station Road, Leeds, LS6 2AB, Royaume-Uni"
# (with the city after it).
ENGLISH_STREET_RE = re.compile(
    rf"\b\d{{1,4}}[^\S\n]+(?:[A-Z][a-z]++[^\S\n]+){{1,3}}+(?:Street|Road|Grove|Lane|Avenue|Drive|Close|Way|"
    rf"Crescent|Terrace|Gardens|Court|Square|Row|Hill|Place|Mews|Walk|Boulevard)\b{POSTCODE_CITY}")
# An agent's note in lower case: "domiciliée 3 impasse du moulin 59100 roubaix", "a déménagé
# au résidence les érables bâtiment b 69200 vénissieux" (a number or a named place, the
# postal code and the town close it).
# A number in words in a note: "trois rue de la forge appartement deux 25000 besançon".
# The building may come first: "bâtiment 4 résidence les peupliers 2 avenue...".
_SPOKEN_HOUSE_NUMBER = rf"(?:{_NUMBER_WORD})(?!\w)(?:[\t -]++(?:{_NUMBER_WORD})(?!\w)){{0,4}}+"
_LOWER_LEADING = r"(?:(?:bâtiment|batiment|bât|immeuble|escalier|appartement|appt|étage)[^\S\n]+[\w-]{1,12}+[^\S\n]+){0,3}+"
# A town in lower case, its words apart as Whisper writes them: "saint quentin", "le mans",
# "ailly sur noye", "les côtes-d'arey".
_LOWER_TOWN = (r"(?:(?:le|la|les|saint|sainte|st|ste)[^\S\n]+)?[a-zà-öø-ÿ][\w'’-]*+"
               r"(?:[^\S\n]+(?:sur|sous|lès|lez|en|de|du|des|aux|au|et|la|le|les)[^\S\n]+[a-zà-öø-ÿ][\w'’-]*+){0,2}+")
LOWER_ADDRESS_RE = re.compile(
    rf"(?i:(?<![\w'’]){_LOWER_LEADING}(?:(?:\d{{1,4}}|{_SPOKEN_HOUSE_NUMBER})(?:[^\S\n]+(?:bis|ter))?[^\S\n]+(?:{STREET_TYPES})"
    rf"|résidence|residence|lieu-dit|lieudit|lotissement|hameau)"
    rf"(?:[^\S\n]+[\w'’-]+){{1,12}}?[^\S\n]+\d{{5}}[^\S\n]+{_LOWER_TOWN})")
# A home's postal code and town said without a street: "j'habite à 69008 Lyon", "code
# postal 59200 Tourcoing" (with a personal address cue just before).
POSTCODE_TOWN_RE = re.compile(rf"(?<![\w'’])\d{{5}}[^\S\n]+(?:{_CITY}|[a-zà-öø-ÿ][\w'’]*+(?:-[\w'’]++){{0,6}}+)")
_POSTCODE_CONTEXT = ("code postal", "cp")
# A postal code said in words, then its town, answering where: "Quatre-vingt-quatorze cent, Créteil."
SPOKEN_POSTCODE_TOWN_RE = re.compile(rf"(?m:^[^\S\n]*(?P<code>{_SPOKEN_NUMBER}),?[^\S\n]+{_CITY})")
_POSTCODE_DIGITS_RE = re.compile(r"\d{5}")
# The previous turn asks where: "Dans quelle commune ?", "La ville ?", "Le code postal ?"
_WHERE_QUESTION_RE = re.compile(r"(?i:(?<!\w)(?:commune|ville|localité|code\s+postal|adresse)(?!\w)[^\n]*\?\s*$)")
ADDRESS_CONTEXT = ("habite", "adresse", "domicil", "vis", "vit", "demeure", "réside", "reside", "déménag",
                   "demenag", "logement", "loge", "hébergé", "heberge", "chez moi")
# A person's own address, not an office's: "j'habite", "votre adresse" (not "l'adresse du CCAS").
PERSONAL_ADDRESS_CONTEXT = ("habite", "domicil", "vis", "vit", "demeure", "réside", "reside", "déménag", "demenag",
                            "hébergé", "heberge", "chez moi", "mon adresse", "votre adresse", "ma nouvelle adresse",
                            "notre adresse", "son adresse", "leur adresse", "l'adresse, c'est", "l’adresse, c’est")


# An office's or a service's address, not a person's: "la fourrière est ouverte [...] au 4
# rue de l'Industrie", "la mairie se trouve 2 place...".
_SERVICE_ADDRESS_RE = re.compile(
    r"(?i:(?<!\w)(?:ouverte?s?|situées?|situés?|se\s+trouve(?:nt)?|présentez-vous|rendez-vous|adressez-vous|"
    r"guichet|accueil|permanence|fourrière|mairie|préfecture|sous-préfecture|agence|antenne|bureau|tribunal|"
    r"commissariat|gendarmerie|centre|service|maison\s+france\s+services|caf|cpam|urssaf|trésorerie|ccas|"
    r"commission|auprès|écrivez|écrire|employeur|entreprise|société|usine|magasin|cabinet|notaire|avocate?|"
    # the office the agent speaks from, and places that receive the public: "revenez nous voir
    # ici, au 67 boulevard...", "l'annexe du 2 place...", "l'école Louise Michel, au 4 rue..."
    r"(?:c['’]est|voir|passer|venir|revenir|revenez)\s+ici|atelier|retrait|retirez|audience|"
    # where a car stood or an accident happened: "j'étais garé 18 avenue de Grammont"
    r"garée?s?|stationnée?s?|stationnement|accident|collision|accroché|percuté|enlevée?s?|eu\s+lieu)(?!\w))")
_CEDEX_RE = re.compile(r"(?i:\s*cedex\b)")
_LETTER_RE = re.compile(r"[^\W\d_]")
_NUMBERED_ROAD_RE = re.compile(r"(?i:route|chemin|voie)")
# "près de la place Jean-Jaurès", "en face du square": a street named as a landmark.
_NEAR_BEFORE_RE = re.compile(
    r"(?i:(?<!\w)(?:près|proche|à\s+côté|derrière|devant|en\s+face|au\s+coin|le\s+long|vers|autour)"
    r"(?:\s+(?:de\s+la|de\s+l['’]|du|des|de|d['’]))?\s*$)")
# "enlevée hier à 16 h 45, avenue...": the minutes of a time, not a house number.
_TIME_BEFORE_RE = re.compile(r"(?i:\d{1,2}\s*h\s*$)")
# "l'horodateur numéro 2231, place du Marché": the number of something else, not a house's.
_NUMBERED_THING_BEFORE_RE = re.compile(
    r"(?i:(?<!\w)(?:numéro|n°|no|horodateur|ligne|bus|salle|guichet|borne|box|quai|porte|place)\s*$)")


def _sentence_before(text: str, start: int) -> str:
    before = text[max(0, start - 160):start]
    cut = max(before.rfind(c) for c in ".?!\n")
    return before[cut + 1:]


# A domiciliation at an association or an office: "vous serez domiciliée à la SPADA, 12 rue...".
_DOMICILIATION_RE = re.compile(
    r"(?i:domicili\w*+\s+(?:à|a|chez|auprès\s+d[eu]|au)\s+(?:la\s+|le\s+|l['’]|une?\s+)?"
    r"(?:spada|ccas|cada|huda|association|secours|croix-rouge|emmaüs|mairie|structure|plateforme|[A-Z]{3,}\b))")


# A place that receives the public named just before the address: "l'école Louise Michel,
# au 4 rue...", "à l'annexe du 2 place...", "Le garage Renault Martin, 23 route..." (not
# "après l'école, les enfants rentrent au 12 rue...").
_PLACE_JUST_BEFORE_RE = re.compile(
    r"(?i:(?<!\w)(?:école|collège|lycée|crèche|garage|police|annexe|gendarmerie|commissariat)(?!\w)"
    r"[^,.;:!?\n]{0,40}+,?[^\S\n]*(?:au|à|du)?[^\S\n]*\Z)")


def _office_address(text: str, start: int, end: int) -> bool:
    sentence = _sentence_before(text, start)
    if _DOMICILIATION_RE.search(sentence):
        return True
    personal = has_context(sentence, len(sentence), PERSONAL_ADDRESS_CONTEXT)
    if not personal and _PLACE_JUST_BEFORE_RE.search(text, max(0, start - 60), start):
        return True
    return (_SERVICE_ADDRESS_RE.search(sentence) is not None and not personal) or _CEDEX_RE.match(text, end) is not None


def find_addresses(text: str) -> list[Finding]:
    found = []
    for m in ADDRESS_RE.finditer(text):
        if _office_address(text, m.start(), m.end()):
            continue
        if m.group("box"):
            found.append(Finding(m.start(), m.end(), ADDRESS, 0.8, "post-box"))
            continue
        start = m.start()
        if not _LETTER_RE.search(m.group("name")) and not _NUMBERED_ROAD_RE.match(m.group("type")):
            continue  # "badge AB 4521, place 12": a numbered thing; a road may be a number ("route départementale 112")
        number = bool(m.group("number"))
        if number and not m.group("leading") and (_TIME_BEFORE_RE.search(text[max(0, start - 8):start])
                                                  or _NUMBERED_THING_BEFORE_RE.search(text[max(0, start - 14):start])):
            start, number = m.end("number"), False
        if number or m.group("after"):
            score = 0.85
        elif _NEAR_BEFORE_RE.search(text, max(0, start - 24), start):
            continue  # "près de la place Jean-Jaurès": a landmark, not where someone lives
        elif m.group("city") and (m.group("leading") or has_context(text, start, ADDRESS_CONTEXT, window=60)):
            score = 0.8
        elif m.group("city") and _POSTCODE_DIGITS_RE.search(m.group("city")):
            score = 0.75  # a street with its postcode and town: "c'est impasse des Saules, 26400 Crest"
        elif has_context(text, start, ADDRESS_CONTEXT, window=60) or re.match(
                r"(?i:résidence|residence|lieu-dit|lieudit|lotissement|hameau)", text[start:m.end()]):
            score = 0.7
        else:
            continue
        found.append(Finding(start, m.end(), ADDRESS, score, "address"))
    for m in NAMED_PLACE_ADDRESS_RE.finditer(text):
        if (m.group("complements") or has_context(text, m.start(), PERSONAL_ADDRESS_CONTEXT, window=60)) \
                and not _office_address(text, m.start(), m.end()):
            found.append(Finding(m.start(), m.end(), ADDRESS, 0.75, "named-place-address"))
    for m in LOWER_ADDRESS_RE.finditer(text):
        if not _office_address(text, m.start(), m.end()):
            found.append(Finding(m.start(), m.end(), ADDRESS, 0.75, "address-lower-case"))
    for m in SPOKEN_POSTCODE_TOWN_RE.finditer(text):  # "Quatre-vingt-quatorze cent, Créteil."
        same_turn, previous_turn = _turns_before(text, m.start())
        if not same_turn.strip() and _WHERE_QUESTION_RE.search(previous_turn):
            runs = token_runs(m.group("code"), letters=False)
            if len(runs) == 1 and re.fullmatch(r"\d{5}", runs[0].alnum()[0]):
                found.append(Finding(m.start(), m.end(), ADDRESS, 0.7, "postcode-town"))
    for m in POSTCODE_TOWN_RE.finditer(text):
        same_turn, previous_turn = _turns_before(text, m.start())
        answer = len(same_turn.split()) <= 2 and _WHERE_QUESTION_RE.search(previous_turn) is not None
        if ((answer or has_context(text, m.start(), PERSONAL_ADDRESS_CONTEXT + _POSTCODE_CONTEXT, window=60))
                and not _office_address(text, m.start(), m.end())):
            found.append(Finding(m.start(), m.end(), ADDRESS, 0.7, "postcode-town"))
    for m in ENGLISH_STREET_RE.finditer(text):
        if not _office_address(text, m.start(), m.end()):
            found.append(Finding(m.start(), m.end(), ADDRESS, 0.85, "address"))
    for m in COMPOUND_STREET_RE.finditer(text):
        if not _office_address(text, m.start(), m.end()):
            found.append(Finding(m.start(), m.end(), ADDRESS, 0.85, "address"))
    return found


# ------------------------------------------------------------------ cues other recognisers read


def office_address(text: str, start: int, end: int) -> bool:
    """The address at [start, end) is an office's (a service's, a domiciliation), not a
    person's home: the cues `find_addresses` itself applies, or the span opens with the
    service ("CCAS de Vienne", "Maison France Services de Boussac", as a model may take it)."""
    return _office_address(text, start, end) or _SERVICE_ADDRESS_RE.match(text, start, end) is not None


def amount_after(text: str, end: int) -> bool:
    """An amount or a percentage follows: "1 084,43 euros", "10 %"."""
    return _AMOUNT_AFTER_RE.match(text, end, end + 80) is not None


def names_another_number(text: str, start: int, end: int) -> bool:
    """The number at [start, end) is no personal identifier by the rules' own cues: a law
    or form reference or another number's cue (file, tracking, invoice...) before it or
    inside it ("siret 942 173..."), a code glued before it, a slash inside, or an amount
    after it."""
    return (_other_than_identity(text, start) or _OTHER_NUMBER_RE.search(text, start, end) is not None
            or _CODE_PREFIX_RE.search(text, max(0, start - 12), start) is not None
            or "/" in text[start:end] or amount_after(text, _after_last_digit(text, start, end)))


def _after_last_digit(text: str, start: int, end: int) -> int:
    """Where the digits of [start, end) stop when the span holds its unit in lower case
    ("148 320 kilomètres"; not a plate's letters, "GH 458 KM")."""
    last = max((i for i in range(start, end) if text[i].isdigit()), default=end - 1)
    return last + 1 if text[last + 1:end].islower() else end
