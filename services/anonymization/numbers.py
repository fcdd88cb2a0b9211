"""Numbers as Whisper writes them in French, in digits or in words, read as digit strings.

Identifiers are dictated in groups ("zéro six, douze, trente-quatre", "un, quatre-vingt-
cinq, zéro sept", "1 85 07 75 123 456 78", "FR soixante-seize trois mille..."). A
recogniser needs the digits and, to mask them, where each came from. `token_runs` cuts a
text into runs of number-like tokens (digit groups, number words read as one group,
capital letters and short capital/digit chunks), and `Run.alnum` gives their characters
joined with, for each character, the token it came from.

A run may be read more than one way (a correction, tens and units written apart): each
other reading is a window of the run around what it changes, never a copy of the whole
run, and a run's readings together hold at most a few times its own tokens, so a long
dictation full of corrections costs time in proportion to its length.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

UNITS = {"zéro": 0, "zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5,
         "six": 6, "sept": 7, "huit": 8, "neuf": 9}
TEENS = {"dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16}
TENS = {"vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60,
        "septante": 70, "huitante": 80, "octante": 80, "nonante": 90}
HUNDRED = {"cent", "cents"}
THOUSAND = {"mille", "mil"}
NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | HUNDRED | THOUSAND
# No identifier is longer (an IBAN has at most 34 characters): a match never spans more,
# so another reading of a run is read this far on either side of what it changes.
MAX_IDENTIFIER_CHARS = 40
# The tokens of a run's other readings, all together: at most this many times the run's
# own, plus a few (a dictation with a correction or two is always read every way).
READINGS_PER_TOKEN = 4
READINGS_EXTRA_TOKENS = 64

# A word of letters (with accents, apostrophes and inner hyphens), a digit group, or one
# other non-space character.
_WORD_RE = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|\d+|\S", re.UNICODE)
# Inside a run: separators that do not end it.
_SEPARATORS = {",", ".", "-", "/", "(", ")", "+", "–", "_", ":"}
_CHUNK_RE = re.compile(r"^(?=.*[A-Z])[A-Z0-9]{1,4}$")  # "FR76", "AB", "2A", "X4RT"
_GLUED_CHUNK_RE = re.compile(r"^[A-Z]{5,8}$")  # the letters of "1ZVBWVLDT", glued to digits
# In an agent's note written in lower case, a plate or a number keeps its letters in lower
# case ("véhicule dk 318 wz", "plaque gh604tr"): with `lower_letters`, a word of one to three
# plain letters that is no French word joins a run too (`lower_stop_words` says which are).
_LOWER_CHUNK_RE = re.compile(r"^[a-z]{1,3}$")
_LOWER_GLUED_CHUNK_RE = re.compile(r"^[a-z]{4,8}$")  # "rtbpff" of "x4rtbpff4"
_HYPHENATED_CHUNKS_RE = re.compile(r"^[A-Z]{1,3}(?:-[A-Z]{1,3}){1,3}$")
# "H P tiret 219 tiret K D": the dash said aloud inside a dictated identifier.
SAID_DASHES = {"tiret"}
# Hesitations Whisper writes inside a dictated number ("zéro six, euh, douze").
HESITATIONS = {"euh", "heu", "hum", "hmm", "bah", "ben", "alors", "pardon", "attendez"}
# The key of a NIR announced inside it: "..., clé 91", "..., et la clé, quatre-vingt-un".
_KEY_WORDS_RE = re.compile(
    r"(?i)\b(?:et[^\S\n]+)?(?:la[^\S\n]+)?(?:clé|clef|cle)(?:[^\S\n]+de[^\S\n]+contrôle)?(?:[^\S\n]*,?[^\S\n]*c['’]est)?\b")
# A correction inside a dictated number: "816 37 46, non pardon, 64" is 816 37 64.
CORRECTIONS = {"non", "pardon", "plutôt", "enfin"}
# Letters spelled the French way: "D comme Désiré" is the letter D.
_SPELLED_LETTER_RE = re.compile(r"\b([A-Z])[^\S\n]+comme[^\S\n]+[A-ZÀ-Ý][\w-]*")
# A digit said twice or three times: "double sept" is 77, "deux fois zéro" 00.
_REPEATED_DIGIT_RE = re.compile(
    r"(?i)\b(double|triple|deux[^\S\n]+fois|trois[^\S\n]+fois)[^\S\n]+(zéro|zero|un|deux|trois|quatre|cinq|six|sept|"
    r"huit|neuf)\b|\b(double|triple)[^\S\n]+(\d)\b(?![ ,.]?\d)")


@dataclass(frozen=True)
class Token:
    """One number-like token: its text span and what it stands for ("85", "AB")."""

    start: int
    end: int
    value: str
    spoken: bool = False


@dataclass(frozen=True)
class Run:
    """Consecutive number-like tokens, only separators or spaces between them.

    `said`: for another reading of a run (a window around a correction), the span of the
    whole run as said, so that its start and end (where context words, an amount after
    it, are read) are the run's own."""

    tokens: tuple[Token, ...]
    said: tuple[int, int] | None = None

    @property
    def start(self) -> int:
        return self.said[0] if self.said is not None else self.tokens[0].start

    @property
    def end(self) -> int:
        return self.said[1] if self.said is not None else self.tokens[-1].end

    def alnum(self) -> tuple[str, list[int]]:
        """The tokens' values joined, and for each character the index of its token."""
        text, owners = [], []
        for i, token in enumerate(self.tokens):
            text.append(token.value)
            owners.extend([i] * len(token.value))
        return "".join(text), owners


def words(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) for the words, digit groups and signs of `text`."""
    return [(m.start(), m.end(), m.group()) for m in _WORD_RE.finditer(text)]


def _atoms(word: str) -> list[str] | None:
    """A word split at its hyphens into number words ("quatre-vingt-dix" ->
    ["quatre", "vingt", "dix"]), or None when it is not a number word."""
    parts = [p for p in re.split(r"[-]", word.lower()) if p]
    if parts and all(p in NUMBER_WORDS or p == "et" for p in parts) and parts[0] != "et":
        return parts
    return None


def _below_100(atoms: list[str], i: int) -> tuple[int, int] | None:
    """The value of the number below 100 that starts at atoms[i], and the next index."""
    if i >= len(atoms):
        return None
    word = atoms[i]
    nxt = atoms[i + 1] if i + 1 < len(atoms) else ""
    if word in ("zéro", "zero"):
        return 0, i + 1
    if word == "quatre" and nxt in ("vingt", "vingts"):
        value, j = 80, i + 2
        rest = _teen_or_unit(atoms, j, allow_teen=True)
        return (value + rest[0], rest[1]) if rest else (value, j)
    if word in TENS:
        value, j = TENS[word], i + 1
        if j < len(atoms) and atoms[j] == "et":
            j += 1
        rest = _teen_or_unit(atoms, j, allow_teen=value == 60)
        return (value + rest[0], rest[1]) if rest else (value, i + 1)
    return _teen_or_unit(atoms, i, allow_teen=True)


def _teen_or_unit(atoms: list[str], i: int, allow_teen: bool) -> tuple[int, int] | None:
    if i >= len(atoms):
        return None
    word = atoms[i]
    if allow_teen and word == "dix" and i + 1 < len(atoms) and atoms[i + 1] in ("sept", "huit", "neuf"):
        return 10 + UNITS[atoms[i + 1]], i + 2
    if allow_teen and word in TEENS:
        return TEENS[word], i + 1
    if word in UNITS and UNITS[word] > 0:
        return UNITS[word], i + 1
    return None


def _below_1000(atoms: list[str], i: int) -> tuple[int, int] | None:
    """Hundreds: "trois cent douze", "cent vingt", "dix-neuf cent quatre-vingt-cinq"."""
    if i < len(atoms) and atoms[i] in HUNDRED:
        rest = _below_100(atoms, i + 1)
        if rest and rest[0] == 0:
            rest = None
        return (100 + rest[0], rest[1]) if rest else (100, i + 1)
    head = _below_100(atoms, i)
    if head is None:
        return None
    value, j = head
    if j < len(atoms) and atoms[j] in HUNDRED and 1 < value < 100 and (value < 10 or 10 < value < 20):
        rest = _below_100(atoms, j + 1)
        if rest and rest[0] == 0:
            rest = None
        return (value * 100 + rest[0], rest[1]) if rest else (value * 100, j + 1)
    return value, j


def _group(atoms: list[str], i: int) -> tuple[int, int] | None:
    """One spoken group (thousands included: "mille neuf cent quatre-vingt-cinq")."""
    if i < len(atoms) and atoms[i] in THOUSAND:
        rest = _below_1000(atoms, i + 1)
        return (1000 + rest[0], rest[1]) if rest and rest[0] else (1000, i + 1)
    head = _below_1000(atoms, i)
    if head is None:
        return None
    value, j = head
    if value and j < len(atoms) and atoms[j] in THOUSAND:
        rest = _below_1000(atoms, j + 1)
        return (value * 1000 + (rest[0] if rest else 0), rest[1] if rest and rest[0] else j + 1)
    return head


BOUNDARY = "|"


def _strict_atoms(text: str, atoms: list[tuple[int, int, str]]) -> list[tuple[int, int, str]] | None:
    """The atoms with a group boundary wherever a tens word and a unit word are separate
    words ("cinquante huit": 50 then 8, where "cinquante-huit" is 58), or None when there
    is no such place. French writes 58 with a hyphen; a dictation "trois cent cinquante
    huit cent soixante-huit" is 350 868."""
    out: list[tuple[int, int, str]] = []
    changed = False
    for i, atom in enumerate(atoms):
        if (i and atom[2] in UNITS and UNITS[atom[2]] > 0 and atoms[i - 1][2] in TENS
                and atoms[i - 1][0] != atom[0] and "et" not in text[atoms[i - 1][1]:atom[0]].lower().split()):
            out.append((atom[0], atom[0], BOUNDARY))
            changed = True
        out.append(atom)
    return out if changed else None


def spoken_groups(atoms: list[str]) -> list[tuple[int, int, int]] | None:
    """Atoms read as consecutive groups: (value, first atom, end atom); None when some
    atom cannot be read ("et" alone, "cent cent")."""
    groups, i = [], 0
    while i < len(atoms):
        if atoms[i] == BOUNDARY:
            i += 1
            continue
        if atoms[i] == "et":
            return None
        got = _group(atoms, i)
        if got is None:
            return None
        groups.append((got[0], i, got[1]))
        i = got[1]
    return groups


def _spelled_tokens(text: str, letters: bool) -> dict[int, Token]:
    """Tokens that stand for more than their words: "D comme Désiré" (D), "double sept" (77)."""
    found = {m.start(): Token(m.start(), m.end(), m.group(1)) for m in _SPELLED_LETTER_RE.finditer(text)} \
        if letters else {}
    for m in _REPEATED_DIGIT_RE.finditer(text):
        how, digit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        value = digit if digit.isdigit() else _unit(digit)
        if value is not None:
            times = 3 if how.casefold().startswith("tr") else 2
            found[m.start()] = Token(m.start(), m.end(), value * times, spoken=True)
    return found


# The unit words folded as the regex module folds them under IGNORECASE ("ſept" matches
# "sept", "ZÉRO" "zéro"): a word the pattern matched is always found here.
_FOLDED_UNITS = {word.casefold(): str(value) for word, value in UNITS.items()}


def _unit(word: str) -> str | None:
    """The digit a unit word stands for, whatever its case; None if it is none."""
    return _FOLDED_UNITS.get(word.casefold())


def _glued_to_digits(text: str, start: int, end: int) -> bool:
    return (start > 0 and text[start - 1].isdigit()) or (end < len(text) and text[end].isdigit())


def glued(left: Token, right: Token) -> bool:
    """Two tokens of one written word ("0A2B45KL917"): nothing between them."""
    return left.end == right.start


def token_runs(text: str, letters: bool = True, lower_letters: bool = False) -> list[Run]:
    """The runs of number-like tokens in `text`, number words read group by group.

    With `letters`, capital letters and short capital/digit chunks ("FR76", "AB", "2A")
    join a run too (IBANs, plates, document numbers spelled out). With `lower_letters`,
    so do short words of plain lower-case letters that are no French word ("dk 318 wz"),
    as capitals."""
    return _RunReader(text, letters, lower_letters).read()


class _Word(enum.Enum):
    """What a word is to a run of number-like tokens."""

    SPELLED = enum.auto()  # a spelled-out stretch ("D comme Désiré", "double sept")
    KEY_WORD = enum.auto()  # "clé" / "et la clé" inside a number: skipped
    CORRECTION = enum.auto()  # "non", "pardon" inside a number: other readings follow
    DIGITS = enum.auto()
    NUMBER_WORD = enum.auto()  # "cinquante", "huit", "et" between number words
    CHUNK = enum.auto()  # capitals or a capital/digit chunk ("FR76", "AB")
    HYPHENATED = enum.auto()  # "HD-RT": one word, two chunks
    LOWER_CHUNK = enum.auto()  # "dk", "wz" in an agent's lower-case note
    SEPARATOR = enum.auto()  # punctuation, "euh", "tiret" said inside a number
    OTHER = enum.auto()  # anything else ends the run


class _RunReader:
    """One pass over the words of a text, building runs of number-like tokens.

    State: the run being read (`current`), the number words waiting to be read as groups
    (`pending_words`), the other readings of those words (`alternatives`) and where a
    correction was said (`corrections`); a run ends at a turn, at a word of no run, or at
    words that read as no number."""

    def __init__(self, text: str, letters: bool, lower_letters: bool) -> None:
        self.text = text
        self.letters = letters
        self.lower_letters = lower_letters
        self.stop_words = lower_stop_words() if lower_letters else frozenset()
        self.spelled = _spelled_tokens(text, letters)
        self.key_words = {m.start(): m.end() for m in _KEY_WORDS_RE.finditer(text)}
        self.runs: list[Run] = []
        self.current: list[Token] = []
        self.pending_words: list[tuple[int, int, str]] = []
        self.alternatives: list[tuple[int, list[Token]]] = []  # (position in the run, strict reading)
        self.corrections: list[int] = []  # positions in the run where a correction was said

    def read(self) -> list[Run]:
        skip_until = -1
        previous_end = 0
        for start, end, word in words(self.text):
            if start < skip_until:
                continue
            if "\n" in self.text[previous_end:start]:  # a run never goes from one turn to the next
                self.flush_words()
                self.close()
            previous_end = end
            kind = self.kind(start, end, word)
            if kind is not _Word.NUMBER_WORD:
                self.flush_words()
            if kind is _Word.SPELLED:
                token = self.spelled[start]
                self.current.append(token)
                skip_until = previous_end = token.end
            elif kind is _Word.KEY_WORD:
                skip_until = previous_end = self.key_words[start]
            elif kind is _Word.CORRECTION:
                if not self.corrections or self.corrections[-1] != len(self.current):
                    self.corrections.append(len(self.current))
            elif kind is _Word.NUMBER_WORD:
                self.pending_words.append((start, end, word))
            elif kind in (_Word.DIGITS, _Word.CHUNK):
                self.current.append(Token(start, end, word))
            elif kind is _Word.HYPHENATED:
                for part in re.finditer(r"[A-Z]+", word):
                    self.current.append(Token(start + part.start(), start + part.end(), part.group()))
            elif kind is _Word.LOWER_CHUNK:
                self.current.append(Token(start, end, word.upper()))
            elif kind is _Word.OTHER:
                self.close()
        self.flush_words()
        self.close()
        return self.runs

    def kind(self, start: int, end: int, word: str) -> _Word:
        """What `word` is to the run, given what is being read."""
        lowered = word.lower()
        reading = bool(self.current or self.pending_words)
        if start in self.spelled:
            return _Word.SPELLED
        if start in self.key_words and reading:
            return _Word.KEY_WORD
        if lowered in CORRECTIONS and reading:
            return _Word.CORRECTION
        if word.isdigit():
            return _Word.DIGITS
        if _atoms(word) is not None or (lowered == "et" and self.pending_words):
            return _Word.NUMBER_WORD
        glued_digits = _glued_to_digits(self.text, start, end)
        if self.letters and (_CHUNK_RE.match(word) or _GLUED_CHUNK_RE.match(word) and glued_digits):
            return _Word.CHUNK
        if self.letters and _HYPHENATED_CHUNKS_RE.match(word):
            return _Word.HYPHENATED
        if self.lower_letters and ((_LOWER_CHUNK_RE.match(word) and (word not in self.stop_words or glued_digits))
                                   or (_LOWER_GLUED_CHUNK_RE.match(word) and glued_digits)):
            return _Word.LOWER_CHUNK
        if word in _SEPARATORS or ((lowered in HESITATIONS or lowered in SAID_DASHES) and reading):
            return _Word.SEPARATOR
        return _Word.OTHER

    def flush_words(self) -> None:
        """Read the pending number words as groups of digits ("cinquante huit" -> 58,
        and its strict other reading when it differs)."""
        if not self.pending_words:
            return
        atoms: list[tuple[int, int, str]] = []  # (start, end, atom) with the word's span
        for start, end, word in self.pending_words:
            for atom in _atoms(word) or []:
                atoms.append((start, end, atom))
        self.pending_words.clear()
        groups = spoken_groups([a[2] for a in atoms])
        if groups is None:  # not readable as numbers: drop the words, end the run
            self.close()
            return
        strict = _strict_atoms(self.text, atoms)
        if strict is not None:
            strict_groups = spoken_groups([a[2] for a in strict])
            if strict_groups is not None and [g[0] for g in strict_groups] != [g[0] for g in groups]:
                self.alternatives.append((len(self.current), [
                    Token(strict[first][0], strict[last - 1][1], str(value), spoken=True)
                    for value, first, last in strict_groups]))
        for value, first, last in groups:
            self.current.append(Token(atoms[first][0], atoms[last - 1][1], str(value), spoken=True))

    def close(self) -> None:
        """End the run being read (with its other readings)."""
        if self.current:
            self.runs.append(Run(tuple(self.current)))
            self.runs.extend(_other_readings(self.current, self.alternatives, self.corrections))
            self.current.clear()
            self.alternatives.clear()
        self.corrections.clear()


@functools.cache
def lower_stop_words() -> frozenset[str]:
    """Short lower-case words that are French words, never the letters of an identifier:
    spaCy's French stop words, the hesitations and corrections, and words of notes said
    next to numbers ("h" of "14 h 30", "rdv", "bis"). Two-letter abbreviations ("km", "pv")
    stay out: a plate may hold any pair of letters."""
    from spacy.lang.fr.stop_words import STOP_WORDS

    return frozenset({w for w in STOP_WORDS if len(w) <= 3} | HESITATIONS | CORRECTIONS | SAID_DASHES | {
        "h", "min", "rdv", "tél", "tel", "ans", "an", "rue", "pas", "bis", "ter", "fps", "n", "no", "num", "tsa",
        "mme", "m", "mlle", "ste", "oui", "non", "via", "cas", "lot", "box", "rsa", "caf", "apl", "aah", "css",
        "cmu", "ame", "msa", "cni", "nir", "rib", "sms", "fax", "gaz", "eau", "bus", "car", "tgv", "rer", "vol",
        "dos", "sac", "vie", "mer", "sud", "est", "et", "ou", "ni", "or", "si", "y", "à"})


def _other_readings(tokens: list[Token], alternatives: list[tuple[int, list[Token]]],
                    corrections: list[int]) -> list[Run]:
    """The run's other readings, each a window around what it changes: a strict reading
    of words ("cinquante huit" as 50 then 8) in place of the greedy one, or the group(s)
    said just before a correction replaced by what follows ("816 37 46, non pardon, 64").

    Within `MAX_IDENTIFIER_CHARS` on either side (and one neighbour more, which the rules
    look at) lies everything a match that includes the change can use. Readings stop when
    their tokens reach `READINGS_PER_TOKEN` times the run's own: a dictation of a
    thousand corrections is not read a thousand ways."""
    said = (tokens[0].start, tokens[-1].end)
    allowance = READINGS_PER_TOKEN * len(tokens) + READINGS_EXTRA_TOKENS
    readings: list[Run] = []
    windows: list[tuple[int, list[Token], int]] = []  # (kept before, new tokens, kept from)
    for position, strict in alternatives:
        greedy_end = next((i for i in range(position, len(tokens)) if tokens[i].end >= strict[-1].end),
                          len(tokens) - 1) + 1
        windows.append((position, strict, greedy_end))
    for position in corrections:
        # the first and last tokens stay, so a match still spans the whole dictation
        windows.extend((position - dropped, [], position) for dropped in (1, 2)
                       if 0 < position - dropped and position < len(tokens))
    for before, new, after in windows:
        first, last = _reach_left(tokens, before), _reach_right(tokens, after)
        size = (before - first) + len(new) + (last - after)
        if size > allowance:
            break
        allowance -= size
        readings.append(Run(tuple(tokens[first:before]) + tuple(new) + tuple(tokens[after:last]), said))
    return readings


def _reach_left(tokens: list[Token], end: int) -> int:
    """Where a window that ends at `end` starts: `MAX_IDENTIFIER_CHARS` of values back,
    and one token more (a match's neighbour, which the rules look at)."""
    chars, i = 0, end
    while i > 0 and chars < MAX_IDENTIFIER_CHARS:
        i -= 1
        chars += len(tokens[i].value)
    return max(0, i - 1)


def _reach_right(tokens: list[Token], start: int) -> int:
    """Where a window that starts at `start` ends (see `_reach_left`)."""
    chars, i = 0, start
    while i < len(tokens) and chars < MAX_IDENTIFIER_CHARS:
        chars += len(tokens[i].value)
        i += 1
    return min(len(tokens), i + 1)
