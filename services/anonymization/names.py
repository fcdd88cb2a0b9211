"""Person names beyond the NER model: after a civility or "je m'appelle", spelled out
letter by letter, and every later mention of a name already found.

spaCy's French models were trained on Wikipedia and news (WikiNER): on counter talk they
miss names after "Madame" and spelled names, and tag some capitalised words that are not
names. These rules add what a counter conversation says plainly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .entities import PERSON, Finding

CIVILITY = r"(?:Monsieur|Madame|Mademoiselle|Messieurs|Mesdames|M\.|MM\.|Mme|Mmes|Mlle|Mr|Dr|Docteur|Maître|Me)"
_UPPER = "A-ZÀ-ÖØ-ÝŒ"
_NAME = rf"[{_UPPER}][\w'’]*(?:-[{_UPPER}\w][\w'’]*)*"
_PARTICLE = r"(?:de|du|des|de\s+la|d['’]|van|von|der|den|ben|bin|ibn|el|al|da|dos|das|di|le|la|ould|abou|abu|bou|ait|aït)"
FULL_NAME = rf"{_NAME}(?:\s+(?:{_PARTICLE}\s+|{_PARTICLE}(?=[{_UPPER}]))?{_NAME}){{0,3}}"
# Words that start a sentence or follow a civility without being a name.
NOT_NAMES = {
    "Bonjour", "Bonsoir", "Merci", "Oui", "Non", "Alors", "Donc", "Voilà", "Voila", "Euh", "Ah", "Oh", "Bon",
    "Bien", "Très", "Tres", "Excusez", "Pardon", "Madame", "Monsieur", "Mademoiselle", "Je", "Vous", "Il",
    "Elle", "Nous", "Ils", "Elles", "On", "Le", "La", "Les", "Un", "Une", "Des", "Et", "Mais", "Ou", "Si",
    "Ça", "Ca", "Ce", "Cette", "C'est", "Qu'est-ce", "Est-ce", "Attendez", "Ok", "D'accord", "Parfait",
    "Super", "Écoutez", "Ecoutez", "Dites", "Tout", "Rien", "Là", "Ici", "Aujourd'hui", "Demain", "Hier",
    "CAF", "CPAM", "NIR", "IBAN", "RIB", "SMS", "France", "Services", "Travail", "Préfecture", "Mairie",
    "Sécurité", "Sociale", "Impôts", "Pôle", "Emploi", "Ameli", "Vitale", "Carte", "Lundi", "Mardi",
    "Mercredi", "Jeudi", "Vendredi", "Samedi", "Dimanche", "Janvier", "Février", "Mars", "Avril", "Mai",
    "Juin", "Juillet", "Août", "Septembre", "Octobre", "Novembre", "Décembre", "Cerfa", "Article", "Code",
    "Loi", "Décret", "Monsieur.", "Madame.", "Président", "Préfet", "Maire", "Docteur", "Maître",
}
CIVILITY_RE = re.compile(rf"\b{CIVILITY}\s+(?P<name>{FULL_NAME})")
INTRO_RE = re.compile(
    rf"(?i:\b(?:je\s+m['’]appelle|je\s+me\s+nomme|moi\s+c['’]est|mon\s+nom(?:\s+de\s+famille)?(?:\s+c['’]est|\s+est|,)?|"
    rf"mon\s+prénom(?:\s+c['’]est|\s+est|,)?|nom\s+de\s+(?:jeune\s+fille|naissance|famille)(?:\s+c['’]est|,)?|"
    rf"prénom(?:\s+c['’]est|,)?|au\s+nom\s+de|s['’]appelle|épouse|époux|née|fils\s+de|fille\s+de|"
    rf"mari|femme|fils|fille|frère|soeur|sœur|mère|père|enfant))\s*[:,]?\s+(?P<name>{FULL_NAME})",
)
# "D-U-P-O-N-T", "D, U, P, O, N, T", "B.E.N.A.L.I": three letters or more, one by one.
SPELLED_RE = re.compile(rf"\b[{_UPPER}](?:(?:\s*[-.,]\s*|\s+)[{_UPPER}]){{2,}}\b")
_PLAIN_SPELL_CONTEXT = ("épel", "epel", "s'écrit", "s’écrit", "ça s'écrit", "lettre", "nom", "prénom", "comme")


def find_names(text: str) -> list[Finding]:
    found: list[Finding] = []
    for m in CIVILITY_RE.finditer(text):
        found.extend(_name_finding(m, 0.85, "civility"))
    for m in INTRO_RE.finditer(text):
        # the name must be capitalised: IGNORECASE is for the introduction only
        if m.group("name")[0].isupper():
            found.extend(_name_finding(m, 0.8, "introduction"))
    for m in SPELLED_RE.finditer(text):
        letters = re.sub(r"[^\w]", "", m.group())
        before = text[max(0, m.start() - 60):m.start()].lower()
        if len(letters) >= 3 and (any(w in before for w in _PLAIN_SPELL_CONTEXT) or re.search(r"[-.,]", m.group())):
            found.append(Finding(m.start(), m.end(), PERSON, 0.75, "spelled"))
    return found


def _name_finding(match: re.Match[str], score: float, how: str) -> list[Finding]:
    start, end = match.span("name")
    words = match.group("name").split()
    while words and words[0] in NOT_NAMES:  # "Madame Bonjour" is not a name
        start += len(words[0]) + 1
        words = words[1:]
    while words and words[-1].rstrip(".,") in NOT_NAMES:
        end -= len(words[-1]) + 1
        words = words[:-1]
    if not words or end <= start:
        return []
    return [Finding(start, end, PERSON, score, how)]


def trim_name(text: str, finding: Finding) -> Finding | None:
    """A NER name without its civility and edge words ("Madame Dupont" -> "Dupont")."""
    span = text[finding.start:finding.end]
    m = re.match(rf"{CIVILITY}\s+", span)
    start = finding.start + (m.end() if m else 0)
    words = text[start:finding.end].split()
    while words and words[0] in NOT_NAMES:
        start = text.index(words[0], start) + len(words[0])
        while start < finding.end and text[start].isspace():
            start += 1
        words = words[1:]
    if not words or not any(ch.isupper() for ch in words[0][:1]):
        return None
    if all(w in NOT_NAMES for w in words):
        return None
    return Finding(start, finding.end, PERSON, finding.score, finding.recognizer)


def repeat_mentions(text: str, names: Iterable[str]) -> list[Finding]:
    """Every mention in `text` of a word of a name already found ("Benali" said again
    later, alone)."""
    words = set()
    for name in names:
        for w in re.findall(r"[\w'’-]+", name):
            if len(w) >= 3 and w[0].isupper() and w not in NOT_NAMES:
                words.add(w)
    found = []
    for w in words:
        for m in re.finditer(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text):
            found.append(Finding(m.start(), m.end(), PERSON, 0.7, "repeat"))
    return found
