"""Languages: one BCP-47 parser for every entry point, and distinct types for a client's tag
and a model's own code, so that the type checker refuses one where the other is expected.

Clients send and receive BCP-47 tags (`fr`, `fr-FR`, `pt-BR`, `zh-Hant`); each model family
has codes of its own (Whisper `jw` for Javanese, NLLB `fra_Latn`, M2M100 `__fr__`). A tag is
parsed once, where it enters (`parse_tag`), and a model's code is derived from it once, by
the service that owns the model (`whisper_code` here for Whisper, `services/translation/
languages.py` for the translation layouts). Nothing here imports a model library or gRPC.
"""

from __future__ import annotations

import re
from typing import Final, NewType

from parlons.errors import InvalidArgument

#: A client's BCP-47 tag in canonical casing (`fr`, `pt-BR`, `zh-Hant`): what the wire carries.
LanguageTag = NewType("LanguageTag", str)
#: A Whisper model's own language code (`fr`, `jw`, `haw`): what faster-whisper is given.
WhisperCode = NewType("WhisperCode", str)

#: The value a client gives instead of a language to have it identified.
DETECT: Final = "detect"

# BCP-47 (RFC 5646) as far as a language service reads it: a 2-3 letter language, then
# subtags of 2-8 characters (extlang, script, region, variant), then extensions and private
# use, each a one-character singleton followed by at least one subtag. "_" is read as "-".
_TAG_RE: Final = re.compile(
    r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*(?:-[A-Za-z0-9](?:-[A-Za-z0-9]{1,8})+)*"
)
_MAX_TAG_CHARS: Final = 35  # RFC 5646 section 4.4.1: 35 characters hold every useful tag

#: BCP-47 primary subtag -> Whisper code, where they differ (legacy ISO codes included).
BCP47_TO_WHISPER: Final[dict[str, str]] = {
    "jv": "jw",  # Javanese
    "iw": "he",  # legacy Hebrew
    "in": "id",  # legacy Indonesian
    "ji": "yi",  # legacy Yiddish
    "nb": "no",  # Norwegian Bokmal -> Whisper's Norwegian
    "fil": "tl",  # Filipino -> Tagalog
    "mo": "ro",  # legacy Moldavian
}
#: Whisper codes that are not the BCP-47 tag of their language (clients are sent BCP-47).
WHISPER_TO_BCP47: Final[dict[str, str]] = {"jw": "jv"}


def is_tag(text: str) -> bool:
    """Whether `text` is a well-formed BCP-47 tag (any casing, "_" or "-")."""
    cleaned = text.strip().replace("_", "-")
    return len(cleaned) <= _MAX_TAG_CHARS and _TAG_RE.fullmatch(cleaned) is not None


def parse_tag(text: str, *, field: str = "language", hint: str = "") -> LanguageTag:
    """A tag in canonical casing (`FR_fr` -> `fr-FR`, `zh-hant` -> `zh-Hant`).

    Raises InvalidArgument naming `field` for something that is not a language tag at all
    ("french", "f r"); whether a model knows the language is its service's question."""
    if not is_tag(text):
        shown = text if len(text) <= _MAX_TAG_CHARS else text[:_MAX_TAG_CHARS] + "..."
        suffix = f"; {hint}" if hint else ""
        label = f"{field} " if field else ""
        raise InvalidArgument(f"{label}{shown!r} is not a BCP-47 language tag (e.g. fr, en, uk, pt-BR){suffix}", field=field)
    parts = text.strip().replace("_", "-").split("-")
    out = [parts[0].lower()]
    singleton = False  # after an extension's singleton, subtags keep lower case
    for part in parts[1:]:
        if len(part) == 1:
            singleton = True
            out.append(part.lower())
        elif not singleton and len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        elif not singleton and len(part) in (2, 3) and (part.isalpha() or part.isdigit()):
            out.append(part.upper())  # region
        else:
            out.append(part.lower())
    return LanguageTag("-".join(out))


def primary(tag: str) -> str:
    """The language subtag of a tag, lower case (`pt-BR` -> `pt`)."""
    return tag.strip().replace("_", "-").split("-")[0].lower()


def same_language(a: str, b: str) -> bool:
    """Tags naming the same language for translation purposes (`en` ~ `en-GB`)."""
    return bool(a) and bool(b) and primary(a) == primary(b)


def whisper_code(tag: LanguageTag) -> WhisperCode:
    """The Whisper code for a parsed tag (`jv` -> `jw`, `pt-BR` -> `pt`): region and
    script do not change what Whisper recognises. Whether the model knows it is checked
    against the model's own list by the transcription service."""
    first = primary(tag)
    return WhisperCode(BCP47_TO_WHISPER.get(first, first))


def tag_of_whisper(code: WhisperCode | str) -> LanguageTag:
    """The BCP-47 tag sent to clients for a Whisper code (`jw` -> `jv`)."""
    return LanguageTag(WHISPER_TO_BCP47.get(code, code))


__all__ = [
    "BCP47_TO_WHISPER",
    "DETECT",
    "WHISPER_TO_BCP47",
    "LanguageTag",
    "WhisperCode",
    "is_tag",
    "parse_tag",
    "primary",
    "same_language",
    "tag_of_whisper",
    "whisper_code",
]
