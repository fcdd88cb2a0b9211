"""Person names beyond the NER model: after a civility or "je m'appelle", spelled out
letter by letter, and every later mention of a name already found.

spaCy's French models were trained on Wikipedia and news (WikiNER): on counter talk they
miss names after "Madame" and spelled names, and tag some capitalised words that are not
names. These rules add what a counter conversation says plainly.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import Protocol

from parlons.services.common.trie_regex import trie_pattern

from .entities import PERSON, Finding
from .numbers import NUMBER_WORDS

# Names never run from one turn (line) into the next: spaces here are [^\S\n].
CIVILITY = r"(?:Monsieur|Madame|Mademoiselle|Messieurs|Mesdames|M\.|MM\.|Mme|Mmes|Mlle|Mr|Dr|Docteur|Maître|Me)"
_UPPER = "A-ZÀ-ÖØ-ÝŒ"
# Bounded and possessive: a long hyphenated run ("A-A-A-...") is read once, not from each
# of its letters to its end.
_NAME = rf"[{_UPPER}][\w'’]*+(?:-[{_UPPER}\w][\w'’]*+){{0,4}}+"
_PARTICLE = r"(?:de|du|des|de[^\S\n]+la|d['’]|van|von|der|den|ben|bin|ibn|el|al|da|dos|das|di|le|la|ould|abou|abu|bou|ait|aït)"
FULL_NAME = rf"{_NAME}(?:[^\S\n]+(?:{_PARTICLE}[^\S\n]+|{_PARTICLE}(?=[{_UPPER}]))?{_NAME}){{0,3}}"
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
    "Félicitations", "Bravo", "Attention", "Entendu", "Exactement", "Absolument", "Tenez", "Regardez", "Voyons",
    "Désolé", "Désolée", "Enchanté", "Enchantée", "Bienvenue", "Courage", "Allô", "Allo", "Salut", "Coucou",
    # a relative called by kinship ("Papa, dis oui à la dame"), a birth asked ("Née le ?")
    "Papa", "Maman", "Mamie", "Papi", "Papy", "Tonton", "Tata", "Né", "Née", "Nés", "Nées",
}
# Greetings and courtesy words in the languages visitors speak at a counter ("Buongiorno...
# bonjour", "Oui, perfetto"), and languages they are said to speak ("elle parle shimaoré"):
# never a name, whatever shape a recogniser saw.
FOREIGN_COURTESY = frozenset({
    "buongiorno", "buonasera", "grazie", "prego", "perfetto", "ciao", "scusi", "buenos", "buenas", "días", "dias",
    "tardes", "noches", "gracias", "perfecto", "vale", "claro", "hola", "bom", "dia", "obrigado", "obrigada",
    "desculpe", "guten", "morgen", "tag", "danke", "bitte", "genau", "hello", "thanks", "please", "sorry",
    "salam", "salaam", "inchallah", "hamdoulillah", "wallah", "merhaba", "tamam", "teşekkürler", "bună", "buna",
    "ziua", "mulțumesc", "multumesc", "dzień", "dobry", "dziękuję", "dziekuje", "spasibo", "dobryi", "dyakuyu",
    "shimaoré", "shimaore", "kibushi", "wolof", "bambara", "lingala", "soninké", "soninke", "peul", "tamoul",
    "dari", "pachto", "pashto", "ourdou", "tigrinya", "créole", "kréyol", "kreyol",
})
CIVILITY_RE = re.compile(rf"\b{CIVILITY}[^\S\n]+(?P<name>{FULL_NAME})")
INTRO_RE = re.compile(
    rf"(?i:\b(?:je[^\S\n]+m['’]appelle|je[^\S\n]+me[^\S\n]+nomme|moi[^\S\n]+c['’]est|mon[^\S\n]+nom(?:[^\S\n]+de[^\S\n]+famille)?(?:[^\S\n]+c['’]est|[^\S\n]+est|,)?|"
    rf"mon[^\S\n]+prénom(?:[^\S\n]+c['’]est|[^\S\n]+est|,)?|nom[^\S\n]+de[^\S\n]+(?:jeune[^\S\n]+fille|naissance|famille)(?:[^\S\n]+c['’]est|,)?|"
    rf"prénom(?:[^\S\n]+c['’]est|,)?|au[^\S\n]+nom[^\S\n]+de|s['’]appelle|je[^\S\n]+suis|c['’]est[^\S\n]+moi|voisin|voisine|petit|petite|épouse|époux|née|fils[^\S\n]+de|fille[^\S\n]+de|"
    rf"mari|femme|fils|fille|frère|soeur|sœur|mère|père|enfants|enfant))[^\S\n]*[:,]?[^\S\n]+(?P<name>{FULL_NAME})",
)
# A name said with its birth: "Aaruran, il est né le", "Nila, née le" (children listed).
# Tried at word starts only (after an elided "d'", "l'" too): unanchored, a 100 KB word
# of capitals was read from each of its letters to its end.
BORN_NAME_RE = re.compile(rf"(?<![\w'’-])(?:[a-zà-ÿ]{{1,2}}['’])?(?P<name>{FULL_NAME}),?[^\S\n]+"
                          rf"(?:(?:(?:il|elle)[^\S\n]+est[^\S\n]+)?née?s?[^\S\n]+(?:le|en|à)\b"
                          rf"|(?:il|elle)[^\S\n]+a[^\S\n]+\d{{1,2}}[^\S\n]+ans\b)")
# "D-U-P-O-N-T", "D, U, P, O, N, T", "B.E.N.A.L.I": three letters or more, one by one;
# a letter may be "Q comme Quintal", "E accent aigu", "deux T" (never "J'ai", "L'adresse").
_ACCENT = r"(?:[^\S\n]+(?:accent[^\S\n]+(?:aigu|grave|circonflexe)|tréma|trema|cédille|cedille))"
_SPELLED_LETTER = (rf"(?:(?:deux|double)[^\S\n]+)?[{_UPPER}](?!['’\w])(?:[^\S\n]+comme[^\S\n]+[{_UPPER}][\w-]*)?{_ACCENT}?")
SPELLED_RE = re.compile(rf"\b{_SPELLED_LETTER}(?:(?:[^\S\n]*[-.,][^\S\n]*|[^\S\n]+){_SPELLED_LETTER}){{2,}}")
_SPELLING_AID_RE = re.compile(rf"[^\S\n]+comme[^\S\n]+[{_UPPER}][\w-]*|{_ACCENT}")
_DOUBLED_RE = re.compile(rf"(?:deux|double)[^\S\n]+([{_UPPER}])")
_PLAIN_SPELL_CONTEXT = ("épel", "epel", "s'écrit", "s’écrit", "ça s'écrit", "lettre", "nom", "prénom", "comme")


# Faker's person names in locales written in Latin letters, as Whisper writes French
# speech: France, Belgium, Switzerland, Quebec, Algeria, West Africa, Romania, Portugal...
GAZETTEER_LOCALES = ("fr_FR", "fr_BE", "fr_CH", "fr_CA", "fr_QC", "fr_DZ", "pt_PT", "pt_BR", "ro_RO", "es_ES",
                     "it_IT", "pl_PL", "tr_TR", "de_DE", "nl_NL", "en_US", "en_GB", "yo_NG", "ha_NG", "ig_NG",
                     "tw_GH", "sw", "vi_VN", "id_ID", "en_IN", "en_PK", "az_AZ", "sq_AL", "hr_HR", "cs_CZ")
_LATIN_RE = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’-]+$")
_CAPITALISED_RE = re.compile(rf"(?<![\w'’-])[{_UPPER}][a-zà-öø-ÿ'’]+(?:-[{_UPPER}][a-zà-öø-ÿ'’]+)*(?![\w-])")


@functools.cache
def gazetteer() -> frozenset[str]:
    """First and last names known to Faker, in Latin letters, minus words that are
    not names on their own (days, months, "France")."""
    import importlib

    names: set[str] = set()
    for locale in GAZETTEER_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:
            continue
        for attr in ("first_names", "first_names_male", "first_names_female", "last_names"):
            values = getattr(provider, attr, ())
            for name in values.keys() if isinstance(values, dict) else values:
                if isinstance(name, str) and _LATIN_RE.match(name) and len(name) >= 3:
                    names.add(name)
    return frozenset(n for n in names if n not in NOT_NAMES and n.lower() not in _COMMON_WORDS
                     and n.lower() not in _stop_words())


@functools.cache
def _stop_words() -> frozenset[str]:
    """spaCy's French stop words: "Moi", "Son", "Est" are names in some lists, and NER
    sometimes tags them."""
    from spacy.lang.fr.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


# Capitalised words that are names in Faker's lists but, in a counter conversation, far
# more often something else.
_COMMON_WORDS = {
    "france", "paris", "lyon", "marseille", "nice", "tours", "nancy", "orange", "sfr", "free", "bouygues", "poste",
    "caf", "cpam", "msa", "urssaf", "pôle", "emploi", "mairie", "préfecture", "service", "services", "centre",
    "madame", "monsieur", "bonjour", "merci", "voilà", "alors", "est", "son", "sa", "ses", "mon", "ma", "mes",
    "les", "des", "une", "elle", "lui", "oui", "non", "bien", "bon", "mais", "car", "dont", "sous", "sur",
    "aide", "aides", "allocation", "dossier", "carte", "vitale", "code", "article", "loi", "page", "rue",
    "avenue", "place", "chemin", "route", "impasse", "allée", "mars", "mai", "juin", "avril", "août", "lundi",
    "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "noël", "pâques", "toussaint", "europe",
    "internet", "google", "gmail", "yahoo", "hotmail", "outlook", "wanadoo", "laposte", "ameli", "impots",
    "net", "com", "france-travail", "travail", "sécurité", "sociale", "assurance", "maladie", "retraite",
}


def find_gazetteer_names(text: str) -> list[Finding]:
    """Capitalised known names, not at the start of a sentence (where every word is
    capitalised) unless a comma or full stop follows ("Aminata, c'est ma fille")."""
    known = gazetteer()
    found = []
    for m in _CAPITALISED_RE.finditer(text):
        word = m.group()
        if word not in known and not all(part in known for part in word.split("-")):
            continue
        before = text[max(0, m.start() - 20):m.start()].rstrip()
        sentence_start = not before or before[-1] in ".!?:…»\"\n"
        after = text[m.end():m.end() + 1]
        next_capitalised = re.match(rf"\s(?:et\s)?[{_UPPER}]", text[m.end():m.end() + 5]) is not None
        if sentence_start and after not in (",", ".", "?", "!") and not next_capitalised:
            continue
        found.append(Finding(m.start(), m.end(), PERSON, 0.6, "gazetteer"))
    return found


class Dictionary(Protocol):
    """What the name rules ask of a language's dictionary (`lexicon.FrenchWords`)."""

    def common(self, word: str) -> bool:
        """A word of the dictionary that no name list holds."""

    def known(self, word: str) -> bool:
        """A word of the dictionary, whether or not a name list holds it too."""


# Notes dictated by an agent come back in lower case, without punctuation: "rdv avec mme
# dufresne-morel pour...", "m nguyen van thanh né le...", "sa fille yasmina el amrani tél...",
# "usager mercier gérard numéro fiscal...". After a civility in lower case (any line), or a
# relative or a role in a note line (a line that starts in lower case), the words up to the
# first common word are a name: a stop word, a number, a word of the notes' vocabulary.
_LOWER_CIVILITY = r"(?:m|mme|mmes|mlle|monsieur|madame|mademoiselle)"
_NOTE_CUE = (r"(?:(?:son|sa|ses|leur|leurs)[^\S\n]+(?:ex-)?(?:fils|fille|filles|mère|père|mari|femme|épouse|époux|frère|"
             r"sœur|soeur|compagnon|compagne|conjoint|conjointe|enfant|enfants|petit-fils|petite-fille|neveu|nièce|"
             r"oncle|tante|tuteur|tutrice)|ex-(?:mari|femme|épouse|époux|compagnon|compagne|conjoint|conjointe)|"
             r"témoins?|usager|usagère|couple|famille|veuve|veuf|épouse|époux|"
             r"(?:naissance|décès|reconnaissance)[^\S\n]+d[eu])")
_ANY_WORD = r"[\w'’]+(?:-[\w'’]+){0,4}"
LOWER_NAME_RE = re.compile(
    rf"(?<![\w'’.-])(?:(?P<civility>{_LOWER_CIVILITY})|(?P<cue>{_NOTE_CUE})|(?P<list>enfants|petits-enfants))"
    rf"(?=(?P<name>(?:[^\S\n]+{_ANY_WORD}){{1,4}}))")
_NAME_PARTICLES = frozenset({"de", "du", "des", "van", "von", "der", "den", "ben", "bin", "ibn", "el", "al", "da",
                             "dos", "das", "di", "le", "la", "ould", "abou", "abu", "bou", "ait", "aït", "de la",
                             # Vietnamese middle names, said between the family and the given name
                             "thi", "thị", "văn"})
# Words of an agent's notes that follow a name: never part of it.
_NOTE_WORDS = frozenset({
    "né", "née", "nés", "nées", "domicilié", "domiciliée", "domiciliés", "allocataire", "allocataires", "nir",
    "numéro", "numéros", "num", "no", "dossier", "dossiers", "demande", "demandes", "tél", "tel", "téléphone",
    "portable", "mail", "email", "e-mail", "courriel", "rdv", "rendez-vous", "appel", "appelle", "rappeler",
    "pièces", "pièce", "passe", "passé", "passée", "venu", "venue", "venus", "iban", "rib", "prime", "courrier",
    "compte", "attestation", "carte", "cni", "passeport", "titre", "adresse", "habite", "réside", "demeurant",
    "nouvel", "nouvelle", "nouveau", "ancien", "ancienne", "renouvellement", "déclaration", "dépôt", "dépose",
    "absent", "absente", "présent", "présente", "souhaite", "veut", "voudrait", "demandé", "signale", "signalé",
    "fiscal", "fiscale", "fiscaux", "sécu", "spi", "siret", "siren", "caf", "cpam", "msa", "apl", "rsa", "aah", "css", "ehpad", "tribunal",
    "mariage", "divorce", "décès", "décédé", "décédée", "veuf", "veuve", "marié", "mariée", "pacsé", "pacsée",
    "séparé", "séparée", "divorcé", "divorcée", "épouse", "époux", "mari", "femme", "fils", "fille", "enfant",
    "enfants", "mère", "père", "témoin", "témoins", "avec", "chez", "sans", "ok", "rappel", "relance", "mois",
    "an", "ans", "euros", "euro", "ce", "cette", "aujourd'hui", "hier", "demain", "matin", "soir", "midi",
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "tout", "toute", "tous", "toutes",
    "le", "la", "les", "un", "une", "des", "et", "ou", "qui", "que", "quoi", "est", "sont", "a", "ont",
})


def _lower_case_names(text: str, words: Dictionary | None = None) -> list[Finding]:
    """Names after a civility in lower case, or a relative or a role in a note line (see
    `LOWER_NAME_RE`); in a note, "x et y" after a role gives both ("témoins ousmane traoré
    et jean-baptiste lemaire"). `words`: the dictionary, whose common words end a name
    ("m lemaire domiciliation ouverte", "sa femme enceinte")."""
    found = []
    note = _NoteLines(text)
    for m in LOWER_NAME_RE.finditer(text):
        if m.group("civility"):
            if m.group("civility") == "m" and re.search(r"\d[^\S\n]*\Z", text[max(0, m.start() - 3):m.start()]):
                continue  # "à 5 m de chez moi"
        elif not note.at(m.start()):
            continue
        names = _name_words_at(text, m.start("name"), m.end("name"), and_more=True, dictionary=words,
                               first_may_be_common=bool(m.group("civility")))
        if m.group("list") and len(names) < 2:
            continue  # "enfants kwame ama et kofi", never "enfants scolarisés"
        found.extend(names)
    return found


class _NoteLines:
    """Whether the line at a position is an agent's note (it starts in lower case), for
    positions given in increasing order: each line is looked up once, so a text is read
    once however many matches it holds."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._end = -1  # where the line last looked up ends
        self._begin = 0
        self._note = False

    def at(self, position: int) -> bool:
        if position > self._end or position < self._begin:
            text = self._text
            self._begin = text.rfind("\n", max(0, self._end), position) + 1 if position > self._end else \
                text.rfind("\n", 0, position) + 1
            end = text.find("\n", position)
            self._end = len(text) if end < 0 else end
            self._note = text[self._begin:self._begin + 1].islower()
        return self._note


# A word as the name rules read one ("jean-baptiste", "n'diaye").
NAME_WORD_RE = re.compile(r"[\w'’]+(?:-[\w'’]+)*")
_CIVILITY_WORDS = frozenset({"m", "mr", "mme", "mmes", "mlle", "monsieur", "madame", "mademoiselle", "messieurs",
                             "mesdames"})
# "un monsieur m'a donné", "mme l'a appelé": an elided pronoun, no name.
_ELIDED_PRONOUN_RE = re.compile(r"(?:[mlsjcnt]|qu)['’]")


# Short dictionary words are names too, in lists nobody can make whole ("issa", "duc",
# "hadj", "grâce"); the words of a note that follow a name are longer ("duplicata",
# "joignable", "hospitalisé").
_COMMON_MIN_CHARS = 6


def _name_words_at(text: str, start: int, end: int, and_more: bool, free_words: int = 2,
                   dictionary: Dictionary | None = None, first_may_be_common: bool = False) -> list[Finding]:
    """The name words that open text[start:end) (at most four), up to a common word; a
    third or fourth word only when it is a known name ("m nguyen van thanh", but "m
    martin paul vérifier la date" is two words); after "et", the second word too
    ("et kofi inscrits" is one name).

    `dictionary` ends the name at a word of the dictionary that no name list
    holds, of six letters or more ("mme chapuis duplicata", "jean-michel hospitalisé"); the first word after a
    civility (`first_may_be_common`) is a name whatever it is ("mme vigneron")."""
    words = list(NAME_WORD_RE.finditer(text[start:end]))
    taken: list[re.Match[str]] = []
    for i, w in enumerate(words):
        word = w.group().lower()
        own = [t for t in taken if t.group().lower() not in _NAME_PARTICLES]
        if len(own) >= free_words and word not in _NAME_PARTICLES and not _known_lower(word):
            break
        if word in _NAME_PARTICLES:
            following = i + 1  # "m van der berg pieter", "mme de la fontaine": the particles, then a word
            while following < len(words) and words[following].group().lower() in _NAME_PARTICLES:
                following += 1
            if not taken and (following >= len(words) or following - i > 3):
                break
            taken.append(w)
            continue
        if (word in _NOTE_WORDS or word in _stop_words() or _ELIDED_PRONOUN_RE.match(word) or word in _CIVILITY_WORDS
                or word in _COMMON_WORDS or word in NUMBER_WORDS
                or any(ch.isdigit() for ch in word) or len(word) < 2 or word.capitalize() in NOT_NAMES
                or (dictionary is not None and (own or not first_may_be_common) and len(word) >= _COMMON_MIN_CHARS
                    and dictionary.common(word))):
            break
        taken.append(w)
    while taken and taken[-1].group().lower() in _NAME_PARTICLES:
        taken.pop()
    if not taken or max(len(w.group()) for w in taken) < 3:
        return []
    found = [Finding(start + taken[0].start(), start + taken[-1].end(), PERSON, 0.7, "lower-case")]
    if and_more:
        rest = re.match(r"[^\S\n]+et[^\S\n]+", text[start + taken[-1].end():end + 60])
        if rest:
            after = start + taken[-1].end() + rest.end()
            found.extend(_name_words_at(text, after, min(len(text), after + 60), and_more=False, free_words=1,
                                        dictionary=dictionary))
    return found


def no_name_word(word: str) -> bool:
    """A civility, a stop word or a word of agents' notes: never part of a name."""
    lowered = word.lower()
    return lowered in _CIVILITY_WORDS or lowered in _NOTE_WORDS or lowered in _stop_words()


@functools.cache
def lower_gazetteer() -> frozenset[str]:
    return frozenset(n.lower() for n in gazetteer())


def _known_lower(word: str) -> bool:
    """A known name in lower case ("lemaire", "jean-baptiste")."""
    known = lower_gazetteer()
    return word in known or all(part in known for part in word.split("-"))


# In a note in lower case, a first name and a family name that are both known names, and
# no word of the notes: "dossier remis à karim haddad sur présentation", "allocataire
# 4417263 ngozi adaeze demande de prime".
_LOWER_WORD_PAIR_RE = re.compile(r"(?<![\w'’-])(?=([a-zà-öø-ÿ][a-zà-öø-ÿ'’-]{2,})[^\S\n]+([a-zà-öø-ÿ][a-zà-öø-ÿ'’-]{2,})(?![\w'’-]))")


def _known_lower_case_pairs(text: str) -> list[Finding]:
    known = lower_gazetteer()
    found = []
    note = _NoteLines(text)
    for m in _LOWER_WORD_PAIR_RE.finditer(text):
        if not note.at(m.start()):
            continue
        words = (m.group(1), m.group(2))
        if all(w in known and w not in _NOTE_WORDS and w not in _stop_words() and w not in _COMMON_WORDS
               and w not in NUMBER_WORDS for w in words):
            found.append(Finding(m.start(1), m.end(2), PERSON, 0.6, "lower-case-known"))
    return found


# Children named in a list: "les enfants, Seydou et Mariétou", "Oui, deux : Moussa et Fanta"
# (a count, or a list alone, after a question about children).
_LISTED_WORD = rf"[{_UPPER}][a-zà-öø-ÿ'’]+(?:-[{_UPPER}][a-zà-öø-ÿ'’]+)?"
_NAME_LIST_RE = re.compile(
    rf"(?P<cue>(?i:enfants?|fils|filles|petits-enfants)[^\S\n]*[:,]?|(?i:deux|trois|quatre|cinq|six|sept)[^\S\n]*[:,]"
    rf"|^(?:(?i:oui|alors|euh|donc|ils\s+s['’]appellent|elles\s+s['’]appellent)[^\S\n]*[,.:]?[^\S\n]*)?)"
    rf"[^\S\n]*(?P<list>{_LISTED_WORD}(?:,[^\S\n]+{_LISTED_WORD}){{0,8}}+,?[^\S\n]+et[^\S\n]+{_LISTED_WORD})(?![\w'’-])", re.MULTILINE)
_CHILD_RE = re.compile(r"(?i:(?<!\w)(?:enfants?|fils|filles?)(?!\w))")


def _listed_names(text: str) -> list[Finding]:
    found = []
    for m in _NAME_LIST_RE.finditer(text):
        if not m.group("cue").lower().startswith(("enfant", "fils", "fille", "petits-enfants")):
            # a count, or an answer: children spoken of just before (this turn and the last,
            # read within a bounded window)
            before = text[max(0, m.start() - 400):m.start()]
            line_start = before.rfind("\n")
            if not _CHILD_RE.search(before[before.rfind("\n", 0, max(0, line_start)) + 1:]):
                continue
        for w in re.finditer(_LISTED_WORD, m.group("list")):
            if w.group() not in NOT_NAMES and w.group().lower() not in _COMMON_WORDS:
                found.append(Finding(m.start("list") + w.start(), m.start("list") + w.end(), PERSON, 0.75, "listed"))
    return found


def find_names(text: str, words: Dictionary | None = None) -> list[Finding]:
    """Names by the rules: lists, civilities, introductions, spelling, answers, notes.
    `words`: the language's dictionary (the engine's `lexicon.FrenchWords`): its common
    words end a name in lower case; a note that opens on a listed name no dictionary
    holds opens on that name ("caron mpr pac devis...")."""
    found: list[Finding] = find_gazetteer_names(text) + _known_lower_case_pairs(text) + _listed_names(text)
    for m in CIVILITY_RE.finditer(text):
        found.extend(_name_finding(m, 0.85, "civility"))
    for m in INTRO_RE.finditer(text):
        # the name must be capitalised: IGNORECASE is for the introduction only
        if m.group("name")[0].isupper():
            found.extend(_name_finding(m, 0.8, "introduction"))
    for m in BORN_NAME_RE.finditer(text):
        found.extend(_name_finding(m, 0.75, "born"))
    for m in SPELLED_RE.finditer(text):
        letters = spelled_letters(m.group())
        before = text[max(0, m.start() - 60):m.start()].lower()
        if len(letters) >= 3 and (any(w in before for w in _PLAIN_SPELL_CONTEXT) or re.search(r"[-.,]", m.group())):
            found.append(Finding(m.start(), m.end(), PERSON, 0.75, "spelled"))
    found.extend(_answers_to_name_questions(text))
    found.extend(_lower_case_names(text, words))
    if words is not None:
        found.extend(_note_opening_names(text, words))
    return found


# A time of day as a note stamps it: "9h22", "10 h 30", "14h".
TIME_OF_DAY = r"\d{1,2}[^\S\n]?h(?:[^\S\n]?\d{2})?(?!\w)"
# A note that opens on a name, after its time stamp or not: "caron mpr pac devis 14800",
# "11 h 48 poulain chèque énergie périmé".
_NOTE_OPENING_RE = re.compile(rf"(?m:^(?:{TIME_OF_DAY}[^\S\n]+)?(?=[a-zà-öø-ÿ])(?P<rest>[^\n]{{1,80}}))")


def _note_opening_names(text: str, words: Dictionary) -> list[Finding]:
    """The name a note opens on: a word the name lists hold and the dictionary does not
    ("lemaire", "hoarau"; never "france", "poulain", "rose"), and the listed names after it
    (`_name_words_at` turns away stop words, note words and numbers)."""
    known = lower_gazetteer()
    found = []
    for m in _NOTE_OPENING_RE.finditer(text):
        first = NAME_WORD_RE.match(m.group("rest"))
        word = first.group().lower() if first else ""
        if word not in known or words.known(word):
            continue
        found.extend(_name_words_at(text, m.start("rest"), m.end("rest"), and_more=False, free_words=1,
                                    dictionary=words, first_may_be_common=True))
    return found


# The previous turn asked for a name: "Le nom de famille ?", "Nom, prénom ?", "Au nom de ?"
_NAME_QUESTION_RE = re.compile(
    r"(?i:(?<!\w)(?:noms?|prénoms?|au\s+nom\s+de|vous\s+vous\s+appelez|vous\s+appelez-vous|s['’]appelle)"
    r"(?!\w)[^.?!\n]*+\?\s*$"
    r"|(?:vous\s+êtes|c['’]est|et\s+vous)\s+(?:madame|monsieur|mademoiselle)\s*(?:\.\.\.|…)?\s*\?\s*$)")
_ANSWER_OPENING_RE = re.compile(r"(?i:(?:oui|alors|euh|donc|bah|ben|c['’]est)[\s,.]+)*")
_NAME_PREFIX = r"(?:(?:Le|La|De|Du|Des|Van|Von|El|Al|Ben|Abd|Mac|Mc|Di|Da|Dos)\s+)?"
_CAPITALISED_ANSWER_RE = re.compile(rf"{_NAME_PREFIX}{FULL_NAME}")
# Whisper sometimes writes a name it does not know in lower case: "pham van thuan."
_LOWERCASE_ANSWER_RE = re.compile(r"(?P<name>[a-zà-öø-ÿ'’-]+(?:\s+[a-zà-öø-ÿ'’-]+){0,3})[.!]?\s*$")


def _answers_to_name_questions(text: str) -> list[Finding]:
    """The name that opens the answer to a question asking for it (turns are lines)."""
    found = []
    offset = 0
    lines = text.split("\n")
    for previous, line in zip(lines, lines[1:], strict=False):
        offset += len(previous) + 1
        if not previous.rstrip().endswith("?") or not _NAME_QUESTION_RE.search(previous[-200:]):
            continue
        start = _ANSWER_OPENING_RE.match(line).end()  # type: ignore[union-attr]  # matches ""
        capitalised = _CAPITALISED_ANSWER_RE.match(line, start)
        if capitalised:
            words = capitalised.group().split()
            own = [w for w in words if not re.fullmatch(_NAME_PREFIX, w + " ")]  # "Gall" of "Le Gall"
            if own and words[-1] not in NOT_NAMES and words[0] not in NOT_NAMES - {"Le", "La"} and not any(
                    w.lower() in _stop_words() for w in own):
                found.append(Finding(offset + start, offset + capitalised.end(), PERSON, 0.75, "answer"))
            continue
        lowercase = _LOWERCASE_ANSWER_RE.fullmatch(line, start)
        if lowercase:
            words = lowercase.group("name").split()
            if all(w not in _stop_words() and w.capitalize() not in NOT_NAMES and w not in _COMMON_WORDS
                   and w not in NUMBER_WORDS for w in words) and max(len(w) for w in words) >= 3:
                found.append(Finding(offset + start, offset + lowercase.end("name"), PERSON, 0.7, "answer"))
    return found


def spelled_letters(spelling: str) -> str:
    """The letters a spelling stands for: "B-R-E-deux T" is BRETT, "Q comme Quintal, U" QU."""
    plain = _DOUBLED_RE.sub(lambda m: m.group(1) * 2, _SPELLING_AID_RE.sub("", spelling))
    return re.sub(r"[^\w]", "", plain)


_INNER_CIVILITY_RE = re.compile(rf"(?<!\w){CIVILITY}\s+")


def _after_last_civility(span: str) -> int:
    """Where the name starts in a span that holds a civility ("Reçu Monsieur Dupont"): just
    after the last one; 0 without one."""
    civilities = list(_INNER_CIVILITY_RE.finditer(span))
    return civilities[-1].end() if civilities else 0


_NAME_ARTICLES = frozenset({"Le", "La"})
# Words that open the name of a numbered place or thing, which NER takes for a name.
_NUMBERED_THINGS = frozenset({"salle", "bureau", "porte", "guichet", "box", "bâtiment", "batiment", "escalier",
                              "étage", "ligne", "bus", "quai", "voie", "hall", "pavillon", "aile", "niveau", "casier",
                              "vol", "train", "tram", "car", "case", "couloir", "boxe", "cabine", "local"})


def _name_finding(match: re.Match[str], score: float, how: str) -> list[Finding]:
    start, end = match.span("name")
    start += _after_last_civility(match.group("name"))  # "Reçu Monsieur Karim Haddad"
    words = match.string[start:end].split()
    # "Madame Bonjour" is not a name; "née Le Goff" keeps its article
    while words and words[0] in NOT_NAMES and not (words[0] in _NAME_ARTICLES and len(words) > 1):
        start += len(words[0]) + 1
        words = words[1:]
    while words and words[-1].rstrip(".,") in NOT_NAMES:
        end -= len(words[-1]) + 1
        words = words[:-1]
    if not words or end <= start or all(w.lower().strip(".,") in _stop_words() for w in words):
        return []  # "Lui, il est né le": a pronoun
    return [Finding(start, end, PERSON, score, how)]


def trim_name(text: str, finding: Finding) -> Finding | None:
    """A NER name without its civility and what NER took before it ("Madame Dupont",
    "Reçu Monsieur Dupont" -> "Dupont") and without edge words."""
    start = finding.start + _after_last_civility(text[finding.start:finding.end])
    words = text[start:finding.end].split()
    while words and words[0] in NOT_NAMES:
        start = text.index(words[0], start) + len(words[0])
        while start < finding.end and text[start].isspace():
            start += 1
        words = words[1:]
    if not words or not any(ch.isupper() for ch in words[0][:1]):
        return None
    if words[0].lower().rstrip(".,") in _NUMBERED_THINGS:
        return None  # "Salle 112, au premier étage": a room
    end = finding.end
    digits = next((i for i, w in enumerate(words) if any(ch.isdigit() for ch in w)), None)
    if digits is not None:  # "Yanis en CE2": the name ends before the code
        words = words[:digits]
        if words and words[-1] not in NOT_NAMES and words[-1].lower() not in _stop_words():
            return None  # "Porte 12", "OT-2023-551902": a numbered thing, no one's name
        while words and (words[-1] in NOT_NAMES or words[-1].lower() in _stop_words()):
            words = words[:-1]
        if not words:
            return None
        end = text.index(words[-1], start) + len(words[-1])
    if sum(ch.isalpha() for ch in text[start:end]) < 2:
        return None  # "un grand F.", "Ö avec deux points"
    if all(w in NOT_NAMES or w.lower() in _stop_words() for w in words):
        return None
    return Finding(start, end, PERSON, finding.score, finding.recognizer)


# A word of a name followed through a conversation is at most this long: a longer "word"
# (a run of capitals) is no one's name, and the matcher's regex stays small.
MAX_NAME_WORD = 64


def name_words(names: Iterable[str]) -> set[str]:
    """The words of names already found that are looked for again: capitalised, three
    letters or more, not a stop word; a spelled name ("B-E-N-A-L-I") gives the word it
    spells."""
    words: set[str] = set()
    for name in names:
        letters = spelled_letters(name)
        if SPELLED_RE.fullmatch(name.strip()) and len(letters) >= 3:
            if len(letters) <= MAX_NAME_WORD:
                words.add(letters.capitalize())
            continue
        for w in re.findall(r"[\w'’-]+", name):
            if 3 <= len(w) <= MAX_NAME_WORD and w[0].isupper() and w not in NOT_NAMES \
                    and w.lower() not in _stop_words():
                words.add(w)
    return words


_NAME_PARTICLE_WORDS = r"(?i:de[^\S\n]+la|de|du|des|le|la|van|von|der|den|di|da|del|della|el|ben|mac|mc)"
_PARTICLES_BEFORE_WORD_RE = re.compile(
    rf"(?<![\w'’-])((?:{_NAME_PARTICLE_WORDS}[^\S\n]+){{1,3}})([{_UPPER}][\w'’-]*)")
_PARTICLE_END_RE = re.compile(rf"(?<![\w'’-])(?:{_NAME_PARTICLE_WORDS}[^\S\n]+){{1,3}}$")


class NameMentions:
    """The words of the names found, compiled once (one trie regex, `trie_regex`) and
    found in any number of texts with one scan each: a request with thousands of names
    reads each text once, not once per name."""

    def __init__(self, names: Iterable[str]) -> None:
        names = list(names)
        words = name_words(names)
        # the particles said before a word in a name ("Yann Le Meur", "Odile de Villepreux"):
        # a later mention keeps them ("Le Meur, en deux mots", "de Villepreux, oui")
        self._particles: dict[str, set[str]] = {}
        for name in names:
            for m in _PARTICLES_BEFORE_WORD_RE.finditer(name):
                self._particles.setdefault(m.group(2).lower(), set()).add(" ".join(m.group(1).lower().split()))
        self._pattern = re.compile(rf"(?<![\w-])(?:{trie_pattern(sorted(words))})(?![\w-])",
                                   re.IGNORECASE) if words else None

    def find(self, text: str) -> list[Finding]:
        """Every capitalised mention of one of the words in `text`, not as a place."""
        if self._pattern is None:
            return []
        found = []
        for m in self._pattern.finditer(text):
            if m.group()[0].isupper() and not names_a_place(text, m.start(), m.end()):
                start = m.start()
                for particle in self._particles.get(m.group().lower(), ()):
                    before = _PARTICLE_END_RE.search(text, max(0, start - 16), start)
                    if before and " ".join(before.group().lower().split()) == particle:
                        start = before.start()
                        break
                found.append(Finding(start, m.end(), PERSON, 0.7, "repeat"))
        return found


def repeat_mentions(text: str, names: Iterable[str]) -> list[Finding]:
    """Every mention in `text` of a word of a name already found ("Benali" said again
    later, alone); a spelled name ("B-E-N-A-L-I") finds the word it spells."""
    return NameMentions(names).find(text)


# A capitalised word right before or after a name is part of it ("Tharshini Sivakumar").
_NEIGHBOUR_BEFORE_RE = re.compile(rf"(?<![\w'’-])([{_UPPER}][\w'’]*(?:-[{_UPPER}][\w'’]*)*) $")
_NEIGHBOUR_AFTER_RE = re.compile(rf"^ ([{_UPPER}][\w'’]*(?:-[{_UPPER}][\w'’]*)*)(?![\w-])")
# Places and institutions named after people: "l'école Jules-Ferry", "rue Victor Hugo",
# "la maternité Jeanne de Flandre"; or by their town: "la mairie de Vienne", "CCAS de Vienne".
_NAMED_PLACE_RE = re.compile(
    r"(?i:(?<!\w)(?:école|ecole|maternelle|élémentaire|collège|college|lycée|lycee|groupe\s+scolaire|crèche|hôpital|"
    r"hopital|clinique|centre|gymnase|stade|salle|piscine|médiathèque|bibliothèque|maison|espace|place|rue|"
    r"avenue|boulevard|allée|impasse|quai|pont|station|gare|métro|metro|musée|fondation|institut|université|"
    r"campus|parc|square|rond-point|carrefour|giratoire|parking|cours|chemin|route|passage|esplanade|promenade|"
    r"bâtiment|batiment|résidence|residence|foyer|cité|halle|complexe|pavillon|amphithéâtre|"
    r"société|entreprise|établissements|ets|garage|cabinet|magasin|restaurant|pharmacie|boulangerie|mutuelle|"
    r"domaine|château|ferme|camping|hôtel|hotel|maternité|mairie|préfecture|sous-préfecture|ccas|agence|accueil|"
    r"tribunal|commune|ville|antenne|trésorerie|commissariat|gendarmerie|ehpad|chu)"
    r"(?:\s+(?:élémentaire|maternelle|primaire|publique|privée|municipale?|professionnel|général|polyvalent|"
    r"sportif|culturel|social|universitaire|intercommunale?|hospitalier|médical|social|"
    r"de\s+santé|de\s+soins|de\s+quartier|de\s+loisirs|de\s+formation|d['’]accueil|d['’]hébergement))?\s+"
    r"(?:de\s+la\s+|du\s+|des\s+|de\s+|d['’])?)$")


# Makes and companies that name lists hold as surnames ("une Renault Clio", "chez
# Peugeot"), companies named by their trade ("Martin Assurances"), towns by their hyphens
# ("Boulogne-sur-Mer", "Mexico-Ville").
_MAKES = frozenset({"renault", "peugeot", "citroën", "citroen", "dacia", "fiat", "toyota", "volkswagen", "opel",
                    "nissan", "hyundai", "skoda", "škoda", "tesla", "mercedes", "mazda", "honda", "suzuki", "lancia",
                    "porsche", "ferrari", "chevrolet", "mitsubishi", "yamaha", "kawasaki", "ducati", "piaggio",
                    "michelin", "carrefour", "leclerc", "auchan", "intermarché", "decathlon", "ikea", "darty",
                    "fnac", "lidl", "aldi", "monoprix", "foncia", "nexity", "orpi", "citya"})
_TRADES = frozenset({"mutuelle", "assurance", "assurances", "banque", "immobilier", "habitat", "transports",
                     "automobiles", "formation", "intérim", "interim", "énergie", "télécom", "distribution",
                     "groupe", "group", "consulting", "associés", "avocats", "notaires", "logistique", "sécurité"})
# A trade said first names a firm after its owner: "Transports Morvan", "Garage Martin",
# "Menuiserie Lefort" (said after a name, "m lefort bâtiment b", these words are no firm).
_FIRM_FIRST_WORDS = frozenset({"transports", "transport", "garage", "menuiserie", "boulangerie", "pâtisserie",
                               "boucherie", "charcuterie", "plomberie", "maçonnerie", "jardins", "paysages",
                               "ambulances", "taxis", "nettoyage", "auto-école", "pharmacie", "établissements", "ets",
                               "sarl", "sas", "eurl", "gaec", "earl", "scea", "atelier",
                               # a public body and its region: "Urssaf Bretagne", "MSA Lorraine"
                               "urssaf", "msa", "caf", "cpam", "carsat", "mgen", "ameli"})
# Public figures, said as themselves or as the name of a street, a school, a hospital or a
# room ("l'école Jean Moulin", "c'est Aimé Césaire", "la réforme Borne"): the namesakes of
# French streets and schools most often met, and the heads of state and government of the
# Fifth Republic. Never a private person's personal data (the conventions of the data sets).
def _folded(words: str) -> str:
    """Without accents, case, hyphens or curly apostrophes: "Jean-Moulin" is "jean moulin"."""
    ascii_lower = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode().lower()
    return " ".join(re.split(r"[\s\-]+", ascii_lower.replace("’", "'")))


_PUBLIC_FIGURES = frozenset(_folded(name) for name in (
    "Jean Jaurès", "Victor Hugo", "Jean Moulin", "Louis Pasteur", "Charles de Gaulle", "Jules Ferry",
    "Léon Gambetta", "Georges Clemenceau", "Aristide Briand", "Anatole France", "Émile Zola", "Voltaire",
    "Jean-Jacques Rousseau", "Molière", "Jean de La Fontaine", "Jacques Prévert", "Marie Curie",
    "Pierre et Marie Curie", "Louise Michel", "Simone Veil", "Aimé Césaire", "Françoise Dolto", "Albert Camus",
    "Antoine de Saint-Exupéry", "Saint-Exupéry", "Paul Éluard", "Louis Aragon", "Pablo Picasso", "Marcel Pagnol",
    "Robert Schuman", "Léon Blum", "Salvador Allende", "Nelson Mandela", "Martin Luther King", "Rosa Parks",
    "George Sand", "Alexandre Dumas", "Honoré de Balzac", "Gustave Eiffel", "Jules Verne", "Guy Môquet",
    "Danielle Casanova", "Lucie Aubrac", "Raymond Aubrac", "Frédéric Joliot-Curie", "Irène Joliot-Curie",
    "Condorcet", "Alphonse de Lamartine", "Alphonse Daudet", "Arthur Rimbaud", "Charles Baudelaire",
    "Gérard Philipe", "Édith Piaf", "Joséphine Baker", "Gisèle Halimi", "Olympe de Gouges", "Jeanne d'Arc",
    "Roland Garros", "Henri Matisse", "Auguste Renoir", "Paul Cézanne", "Maximilien Robespierre",
    "Ferdinand Foch", "Maréchal Foch", "Maréchal Leclerc", "Général Leclerc", "Général de Gaulle",
    "Victor Schœlcher", "Victor Schoelcher", "Toussaint Louverture", "Félix Éboué", "Gaston Monnerville",
    "Frantz Fanon", "Abbé Pierre", "Jacques Brel", "Georges Brassens", "Marguerite Duras", "Simone de Beauvoir",
    "Jean-Paul Sartre", "Ambroise Croizat", "Pierre Mendès France", "Mendès France", "Georges Pompidou",
    "Pompidou", "Valéry Giscard d'Estaing", "Giscard d'Estaing", "François Mitterrand", "Mitterrand",
    "Jacques Chirac", "Chirac", "Nicolas Sarkozy", "Sarkozy", "François Hollande", "Emmanuel Macron", "Macron",
    "Élisabeth Borne", "François Bayrou", "Lionel Jospin", "Louis Blériot", "Pablo Neruda",
    "Paul Vaillant-Couturier", "Youri Gagarine", "Guillaume Apollinaire", "Germaine Tillion",
    "Geneviève de Gaulle", "Albert Schweitzer", "Blaise Pascal", "René Descartes", "Denis Diderot", "Montesquieu",
    "Gustave Flaubert", "Marcel Proust", "Pierre de Ronsard", "Joachim du Bellay", "François Rabelais",
    "Nicolas Boileau", "Hector Berlioz", "Claude Debussy", "Maurice Ravel", "Georges Bizet", "Louis Armstrong",
    "Mahatma Gandhi", "Auguste et Louis Lumière", "Elsa Triolet", "Olof Palme", "Salvador Dali",
))
# "Garage Martin et Fils", "Moreau Frères", "Durand & Cie": a family firm.
_FAMILY_FIRM_AFTER_RE = re.compile(r"(?i:[^\S\n]+(?:(?:et|&)[^\S\n]+)?(?:fils|frères|cie|compagnie)(?!\w))")
# "F comme François", "D comme Désiré", "le V de Victor": a spelling aid, not a person.
_SPELLING_AID_BEFORE_RE = re.compile(r"(?<![\w'’])[A-Za-z][^\S\n]+(?:comme|de)[^\S\n]+$")
_TOWN_HYPHEN_RE = re.compile(r"-(?:sur|sous|lès|lez|les|en|la|le|aux|et)-|(?i:-ville)\b")


def public_figure(span: str) -> bool:
    """The words name a public figure (`_PUBLIC_FIGURES`), whatever the accents, hyphens or case."""
    return _folded(span) in _PUBLIC_FIGURES


def _not_a_person(span: str, after: str) -> bool:
    words = span.split()
    next_word = re.match(r"[^\S\n]+([\w'’-]+)", after)
    return (all(w.lower().strip(".,…") in FOREIGN_COURTESY for w in words)
            or words[0].lower() in _MAKES or words[0].lower() in _FIRM_FIRST_WORDS or words[-1].lower() in _TRADES
            or words[-1].lower() in ("frères", "freres")  # "Dos Santos Frères": a family firm
            or (next_word is not None and next_word.group(1).lower() in _TRADES)
            or _FAMILY_FIRM_AFTER_RE.match(after) is not None
            or _TOWN_HYPHEN_RE.search(span) is not None)


# "je travaille chez Leroy Merlin": a company.
_EMPLOYER_BEFORE_RE = re.compile(
    r"(?i:(?<!\w)(?:travaill\w*|employée?|salariée?|embauchée?|stage|intérim|interim|cdi|cdd|apprentissage)"
    r"[^\S\n]+chez[^\S\n]+$)")
# "21000 Dijon": the town of a postal code. "São Luís", "San Sebastián": a town.
_POSTCODE_BEFORE_RE = re.compile(r"(?<!\d)\d{5}[^\S\n]+$")
_TOWN_WORD_RE = re.compile(r"(?:São|Sao|San|Santa|Santo|Sankt)[^\S\n]+[A-ZÀ-Ý]")
# "je rentre au Portugal, à Braga", "on déménage au Mans": a town, whatever name lists say.
_TOWN_BEFORE_RE = re.compile(r"(?i:(?<!\w)(?:à|au|aux|vers)\s+(?:Le\s+|La\s+)?$)")
# "né le 19 décembre 1975 à Braga", "née à Jaffna": a birthplace, whoever found the word.
_BORN_AT_RE = re.compile(r"(?i:(?<!\w)née?s?(?!\w)[^\n.?!;]{0,40}?(?<!\w)à[^\S\n]+(?:Le[^\S\n]+|La[^\S\n]+)?$)")


# "J'habite", "L'adresse", "Qu'il": an elided pronoun or article and a common word, not
# a name like "N'Diaye" or "D'Angelo".
ELIDED = r"(?:[JLCSMTDN]|Qu)['’][a-zà-ÿ]"
_ELIDED_RE = re.compile(rf"^{ELIDED}")


def extend_and_filter(text: str, names: list[Finding]) -> list[Finding]:
    """Names grown by a capitalised neighbour word; names of places and institutions
    dropped, and words from the name lists said as a town."""
    out = []
    for f in names:
        if names_a_place(text, f.start, f.end):
            continue
        if f.recognizer in ("gazetteer", "repeat") and _TOWN_BEFORE_RE.search(text[max(0, f.start - 12):f.start]):
            continue
        if _BORN_AT_RE.search(text[max(0, f.start - 60):f.start]):
            continue
        if f.recognizer in ("spacy", "gazetteer") and public_figure(text[f.start:f.end]):
            continue  # not a name said again ("je m'appelle Jean Moulin", then "Jean Moulin")
        if f.recognizer in ("spacy", "gazetteer", "repeat") and (
                _EMPLOYER_BEFORE_RE.search(text[max(0, f.start - 40):f.start])
                or _SPELLING_AID_BEFORE_RE.search(text[max(0, f.start - 12):f.start])):
            continue
        if f.recognizer in ("spacy", "gazetteer", "repeat") and (
                _POSTCODE_BEFORE_RE.search(text[max(0, f.start - 8):f.start]) or _TOWN_WORD_RE.match(text, f.start)
                or _not_a_person(text[f.start:f.end], text[f.end:f.end + 24])):
            continue
        start, end = f.start, f.end
        before = _NEIGHBOUR_BEFORE_RE.search(text[max(0, start - 40):start])
        if before and before.group(1) not in NOT_NAMES and before.group(1).lower() not in _COMMON_WORDS \
                and not _ELIDED_RE.match(before.group(1)):
            start -= len(before.group(0))
        after = _NEIGHBOUR_AFTER_RE.match(text[end:end + 40])
        if after and after.group(1) not in NOT_NAMES and after.group(1).lower() not in _COMMON_WORDS:
            end += len(after.group(0))
        if (start, end) != (f.start, f.end) and (
                names_a_place(text, start, end) or _TOWN_WORD_RE.match(text, start)
                or (f.recognizer in ("spacy", "gazetteer") and public_figure(text[start:end]))
                or (f.recognizer in ("spacy", "gazetteer", "repeat") and _not_a_person(text[start:end], text[end:end + 24]))):
            continue
        out.append(Finding(start, end, PERSON, f.score, f.recognizer))
        out.extend(_coordinated(text, start, end, f.score))
    return out


_AND_AFTER_RE = re.compile(rf"^\s+et\s+([{_UPPER}][\w'’]*(?:-[{_UPPER}][\w'’]*)*)(?![\w-])")
_AND_BEFORE_RE = re.compile(rf"(?<![\w'’-])([{_UPPER}][\w'’]*(?:-[{_UPPER}][\w'’]*)*)\s+et\s+$")


def _coordinated(text: str, start: int, end: int, score: float) -> list[Finding]:
    """The other name of "Timéo et Lison", "Pascal et Armelle"."""
    found = []
    after = _AND_AFTER_RE.match(text[end:end + 40])
    if after and not any(ch.isdigit() for ch in after.group(1)) and after.group(1) not in NOT_NAMES \
            and after.group(1).lower() not in _COMMON_WORDS:
        found.append(Finding(end + after.start(1), end + after.end(1), PERSON, min(score, 0.7), "coordinated"))
    window = text[max(0, start - 40):start]
    before = _AND_BEFORE_RE.search(window)
    if before and not any(ch.isdigit() for ch in before.group(1)) and before.group(1) not in NOT_NAMES \
            and before.group(1).lower() not in _COMMON_WORDS:
        offset = start - len(window)
        found.append(Finding(offset + before.start(1), offset + before.end(1), PERSON, min(score, 0.7),
                             "coordinated"))
    return found


def names_a_place(text: str, start: int, end: int) -> bool:
    """The name at [start, end) names a place or an institution: "l'école Jean Moulin",
    "Bâtiment Simone Veil" (the place word inside the span, as NER sometimes takes it)."""
    second_word = re.search(r"\s+", text[start:end])
    offsets = [start] + ([start + second_word.end()] if second_word else [])
    return any(_NAMED_PLACE_RE.search(text[max(0, o - 40):o]) for o in offsets)


def not_a_person_name(text: str, start: int, end: int) -> bool:
    """The capitalised words at [start, end) name a place, a company or an employer, or
    the town of a postcode, by the cues `extend_and_filter` applies to NER's names."""
    return (names_a_place(text, start, end) or public_figure(text[start:end])
            or _not_a_person(text[start:end], text[end:end + 24])
            or _EMPLOYER_BEFORE_RE.search(text[max(0, start - 40):start]) is not None
            or _POSTCODE_BEFORE_RE.search(text[max(0, start - 8):start]) is not None)
