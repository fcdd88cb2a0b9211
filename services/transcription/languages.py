"""The languages a Whisper model knows, and a client's BCP-47 tag checked against them.

Tags are parsed by the one parser (`parlons.languages.parse_tag`); Whisper's own code is
derived from the tag once (`whisper_code`: `jv` -> `jw`, `pt-BR` -> `pt`); results go back
to clients as BCP-47 (`tag_of_whisper`).

Error policy (design.md: NOT_FOUND for unknown languages, INVALID_ARGUMENT for bad input):
a tag that is not BCP-47 at all (`"french"`, `"f r"`) is InvalidArgument; a well-formed tag
whose language the model does not know (`"tlh"`, `"xx"`) is NotFound. Both messages say
how to list the supported languages.
"""

from __future__ import annotations

from typing import Final

from faster_whisper.tokenizer import _LANGUAGE_CODES
from parlons.errors import NotFound
from parlons.languages import LanguageTag, WhisperCode, parse_tag, tag_of_whisper, whisper_code

WHISPER_LANGUAGES: Final[tuple[str, ...]] = tuple(_LANGUAGE_CODES)

LIST_HINT: Final = "call ListLanguages (or `parlons models list`) for the supported codes"


def parse_language(text: str, *, field: str = "language") -> LanguageTag:
    """A client's tag, parsed, and known to Whisper (some Whisper model knows it)."""
    tag = parse_tag(text, field=field, hint=LIST_HINT)
    if whisper_code(tag) not in WHISPER_LANGUAGES:
        raise NotFound(f"language {text!r} is not supported by this model; {LIST_HINT}")
    return tag


def to_whisper(text: str) -> WhisperCode:
    """Map a BCP-47 tag (`fr-FR`, `pt_BR`, `yue-HK`) to the Whisper code the model knows."""
    return whisper_code(parse_language(text))


def supported_bcp47(multilingual: bool = True) -> list[str]:
    """The BCP-47 tags a Whisper model accepts (English only for `.en` models)."""
    if not multilingual:
        return ["en"]
    return [tag_of_whisper(code) for code in WHISPER_LANGUAGES]


__all__ = ["LIST_HINT", "WHISPER_LANGUAGES", "parse_language", "supported_bcp47", "to_whisper"]
