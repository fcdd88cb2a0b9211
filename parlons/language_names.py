"""Languages by their English names, as Whisper and OpenAI's API spell them ("french").

OpenAI's verbose_json names the detected language this way, and Albert API forwards a
`language` field that is a code ("fr") or such a name ("french"): its list is Whisper's
table, aliases included ("castilian", "flemish", "moldavian"...). Both directions live
here so the REST facade and the clients agree on one table.
"""

from __future__ import annotations

from parlons.languages import WHISPER_TO_BCP47

#: Whisper's language table: code -> its name (the name OpenAI answers with).
NAMES: dict[str, str] = {
    "af": "afrikaans", "am": "amharic", "ar": "arabic", "as": "assamese", "az": "azerbaijani",
    "ba": "bashkir", "be": "belarusian", "bg": "bulgarian", "bn": "bengali", "bo": "tibetan",
    "br": "breton", "bs": "bosnian", "ca": "catalan", "cs": "czech", "cy": "welsh",
    "da": "danish", "de": "german", "el": "greek", "en": "english", "es": "spanish",
    "et": "estonian", "eu": "basque", "fa": "persian", "fi": "finnish", "fo": "faroese",
    "fr": "french", "gl": "galician", "gu": "gujarati", "ha": "hausa", "haw": "hawaiian",
    "he": "hebrew", "hi": "hindi", "hr": "croatian", "ht": "haitian creole", "hu": "hungarian",
    "hy": "armenian", "id": "indonesian", "is": "icelandic", "it": "italian", "ja": "japanese",
    "jw": "javanese", "ka": "georgian", "kk": "kazakh", "km": "khmer", "kn": "kannada",
    "ko": "korean", "la": "latin", "lb": "luxembourgish", "ln": "lingala", "lo": "lao",
    "lt": "lithuanian", "lv": "latvian", "mg": "malagasy", "mi": "maori", "mk": "macedonian",
    "ml": "malayalam", "mn": "mongolian", "mr": "marathi", "ms": "malay", "mt": "maltese",
    "my": "myanmar", "ne": "nepali", "nl": "dutch", "nn": "nynorsk", "no": "norwegian",
    "oc": "occitan", "pa": "punjabi", "pl": "polish", "ps": "pashto", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sa": "sanskrit", "sd": "sindhi", "si": "sinhala",
    "sk": "slovak", "sl": "slovenian", "sn": "shona", "so": "somali", "sq": "albanian",
    "sr": "serbian", "su": "sundanese", "sv": "swedish", "sw": "swahili", "ta": "tamil",
    "te": "telugu", "tg": "tajik", "th": "thai", "tk": "turkmen", "tl": "tagalog",
    "tr": "turkish", "tt": "tatar", "uk": "ukrainian", "ur": "urdu", "uz": "uzbek",
    "vi": "vietnamese", "yi": "yiddish", "yo": "yoruba", "yue": "cantonese", "zh": "chinese",
}

#: Other names Whisper (and so Albert) accepts for a language.
ALIASES: dict[str, str] = {
    "burmese": "my", "castilian": "es", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
    "mandarin": "zh", "moldavian": "ro", "moldovan": "ro", "panjabi": "pa", "pushto": "ps",
    "sinhalese": "si", "valencian": "ca",
}

_BY_NAME: dict[str, str] = {name: code for code, name in NAMES.items()} | ALIASES
_NAME_OF: dict[str, str] = NAMES | {tag: NAMES[code] for code, tag in WHISPER_TO_BCP47.items()}


def language_name(code: str) -> str:
    """"fr", "fr-FR" -> "french", "jv" or "jw" -> "javanese"; a code the table does not
    hold is returned as given."""
    return _NAME_OF.get(code.split("-")[0].lower(), code)


def code_of(value: str) -> str | None:
    """A language code for a code or an English name ("French", "haitian creole");
    "" for "" (detect it), None for a name the table does not know. Codes outside
    the table ("fr-CA", a translation model's) pass through for the service to judge."""
    text = " ".join(value.split()).lower()
    if not text:
        return ""
    if text in _BY_NAME:
        return _BY_NAME[text]
    if " " in text or len(text) > 12:
        return None
    return text if text.split("-")[0] in NAMES or len(text.split("-")[0]) <= 3 else None
