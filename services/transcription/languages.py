"""BCP-47 on the wire, Whisper's own codes inside the engine.

Whisper uses ISO 639-1 codes for almost every language, with a few exceptions (`jw` for
Javanese, `haw`, `yue`); clients send BCP-47 tags (`fr`, `fr-FR`, `pt-BR`, `zh-Hant`).
Region and script subtags do not change what Whisper recognises, so they are dropped.

Error policy (design.md: NOT_FOUND for unknown languages, INVALID_ARGUMENT for bad input):
a tag that is not BCP-47 at all (`"french"`, `"f r"`) is InvalidArgument; a well-formed tag
whose language the model does not know (`"tlh"`, `"xx"`) is NotFound. Both messages say
how to list the supported languages.
"""

from __future__ import annotations

import re
from typing import Final

from faster_whisper.tokenizer import _LANGUAGE_CODES
from parlons.errors import InvalidArgument, NotFound
from parlons.services.common.language_names import to_bcp47

WHISPER_LANGUAGES: Final[tuple[str, ...]] = tuple(_LANGUAGE_CODES)

# BCP-47 primary subtag -> Whisper code, where they differ (legacy ISO codes included).
_BCP47_TO_WHISPER: Final = {
    "jv": "jw",  # Javanese
    "iw": "he",  # legacy Hebrew
    "in": "id",  # legacy Indonesian
    "ji": "yi",  # legacy Yiddish
    "nb": "no",  # Norwegian Bokmal -> Whisper's Norwegian
    "fil": "tl",  # Filipino -> Tagalog
    "mo": "ro",  # legacy Moldavian
}

_BCP47_RE: Final = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")

LIST_HINT: Final = "call ListLanguages (or `parlons models list`) for the supported codes"


def to_whisper(tag: str, supported: tuple[str, ...] | list[str] = WHISPER_LANGUAGES) -> str:
    """Map a BCP-47 tag (`fr-FR`, `pt_BR`, `yue-HK`) to the Whisper code the model knows."""
    cleaned = tag.strip()
    if not _BCP47_RE.match(cleaned):
        raise InvalidArgument(
            f"language {tag!r} is not a BCP-47 language tag (e.g. 'fr', 'en', 'pt-BR'); "
            f"{LIST_HINT}"
        )
    primary = cleaned.replace("_", "-").split("-")[0].lower()
    code = _BCP47_TO_WHISPER.get(primary, primary)
    if code not in supported:
        raise NotFound(f"language {tag!r} is not supported by this model; {LIST_HINT}")
    return code


def supported_bcp47(multilingual: bool = True) -> list[str]:
    """The BCP-47 tags a Whisper model accepts (English only for `.en` models)."""
    if not multilingual:
        return ["en"]
    return [to_bcp47(code) for code in WHISPER_LANGUAGES]


__all__ = ["LIST_HINT", "WHISPER_LANGUAGES", "supported_bcp47", "to_bcp47", "to_whisper"]
