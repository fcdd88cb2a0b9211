"""BCP-47 language tags on the wire, each model family's own codes inside.

NLLB-200 writes `fra_Latn` (ISO 639-3 + script), M2M100 writes `__fr__`, multi-target
OPUS-MT models write `>>fra<<`, MADLAD-400 writes `<2fr>`, argos packages and lingua use
ISO 639-1. Clients only ever see BCP-47 (`fr`, `uk`, `pt-BR`, `zh-Hant`); this module maps
between the two worlds and matches a requested tag to the closest one a model serves
(`fr-FR` -> `fr`).
"""

from __future__ import annotations

import re

from parlons.errors import InvalidArgument
from parlons.languages import parse_tag, primary

# ISO 639-3 -> ISO 639-1 for every language that has a two-letter code and appears in
# NLLB-200, M2M100 or OPUS-MT. Codes NLLB uses for a macrolanguage member are mapped to
# the macrolanguage (arb -> ar, pes -> fa, zsm -> ms ...), as people ask for `ar`, not `arb`.
ISO3_TO_ISO1: dict[str, str] = {
    "afr": "af", "aka": "ak", "amh": "am", "ara": "ar", "arb": "ar", "asm": "as",
    "ast": "ast", "ayr": "ay", "aym": "ay", "aze": "az", "azj": "az", "bak": "ba",
    "bam": "bm", "bel": "be", "ben": "bn", "bod": "bo", "bos": "bs", "bre": "br",
    "bul": "bg", "cat": "ca", "ces": "cs", "cym": "cy", "dan": "da", "deu": "de",
    "dzo": "dz", "ell": "el", "eng": "en", "epo": "eo", "est": "et", "ekk": "et",
    "eus": "eu", "ewe": "ee", "fao": "fo", "fas": "fa", "pes": "fa", "fij": "fj",
    "fin": "fi", "fra": "fr", "fry": "fy", "ful": "ff", "fuv": "ff", "gla": "gd",
    "gle": "ga", "glg": "gl", "grn": "gn", "guj": "gu", "hat": "ht", "hau": "ha",
    "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "hye": "hy", "ibo": "ig",
    "ind": "id", "isl": "is", "ita": "it", "jav": "jv", "jpn": "ja", "kan": "kn",
    "kas": "ks", "kat": "ka", "kaz": "kk", "khm": "km", "kik": "ki", "kin": "rw",
    "kir": "ky", "kon": "kg", "kor": "ko", "kur": "ku", "kmr": "ku", "lao": "lo",
    "lav": "lv", "lvs": "lv", "lim": "li", "lin": "ln", "lit": "lt", "ltz": "lb",
    "lug": "lg", "mal": "ml", "mar": "mr", "mkd": "mk", "mlg": "mg", "plt": "mg",
    "mlt": "mt", "mon": "mn", "khk": "mn", "mri": "mi", "msa": "ms", "zsm": "ms",
    "mya": "my", "nld": "nl", "nno": "nn", "nob": "nb", "nor": "no", "nep": "ne",
    "npi": "ne", "nya": "ny", "oci": "oc", "ori": "or", "ory": "or", "orm": "om",
    "gaz": "om", "pan": "pa", "pol": "pl", "por": "pt", "pus": "ps", "pbt": "ps",
    "que": "qu", "quy": "qu", "ron": "ro", "run": "rn", "rus": "ru", "sag": "sg",
    "san": "sa", "sin": "si", "slk": "sk", "slv": "sl", "smo": "sm", "sna": "sn",
    "snd": "sd", "som": "so", "sot": "st", "spa": "es", "sqi": "sq", "als": "sq",
    "srd": "sc", "srp": "sr", "ssw": "ss", "sun": "su", "swa": "sw", "swh": "sw",
    "swe": "sv", "tam": "ta", "tat": "tt", "tel": "te", "tgk": "tg", "tgl": "tl",
    "tha": "th", "tir": "ti", "ton": "to", "tsn": "tn", "tso": "ts", "tuk": "tk",
    "tur": "tr", "twi": "tw", "uig": "ug", "ukr": "uk", "urd": "ur", "uzb": "uz",
    "uzn": "uz", "vie": "vi", "wol": "wo", "xho": "xh", "yid": "yi", "ydd": "yi",
    "yor": "yo", "zho": "zh", "cmn": "zh", "zul": "zu", "glv": "gv", "cor": "kw",
    "ina": "ia", "lat": "la", "abk": "ab", "che": "ce", "chv": "cv", "div": "dv",
    "iii": "ii", "ile": "ie", "ipk": "ik", "kal": "kl", "kau": "kr", "knc": "kr",
    "nav": "nv", "oss": "os", "roh": "rm", "ven": "ve", "vol": "vo", "wln": "wa",
    "zha": "za", "ave": "ae", "ido": "io", "pli": "pi", "tah": "ty", "bis": "bi",
    "cos": "co", "lub": "lu", "nde": "nd", "nbl": "nr", "ndo": "ng", "hmo": "ho",
    "her": "hz", "kua": "kj", "mah": "mh", "nau": "na", "oji": "oj", "cre": "cr",
    "chu": "cu", "iku": "iu", "kom": "kv", "skr": "skr",
}
ISO1_TO_ISO3: dict[str, str] = {}
for _iso3, _iso1 in ISO3_TO_ISO1.items():
    # Prefer the individual-language code NLLB uses only when no generic one exists.
    ISO1_TO_ISO3.setdefault(_iso1, _iso3)
ISO1_TO_ISO3.update({"ar": "ara", "fa": "fas", "ms": "msa", "mn": "mon", "et": "est",
                     "lv": "lav", "sq": "sqi", "sw": "swa", "ne": "nep", "or": "ori",
                     "om": "orm", "yi": "yid", "zh": "zho", "ku": "kur", "mg": "mlg",
                     "uz": "uzb", "ps": "pus", "qu": "que", "ff": "ful", "ay": "aym",
                     "kr": "kau", "no": "nor"})

# NLLB codes whose BCP-47 form is not simply ISO1 (script dropped).
NLLB_SPECIAL: dict[str, str] = {
    "zho_Hans": "zh", "zho_Hant": "zh-Hant", "yue_Hant": "yue", "prs_Arab": "fa-AF",
    "arb_Latn": "ar-Latn", "ace_Latn": "ace-Latn", "bjn_Latn": "bjn-Latn",
    "kas_Deva": "ks-Deva", "knc_Latn": "kr-Latn", "min_Latn": "min-Latn",
    "taq_Tfng": "taq-Tfng", "srp_Cyrl": "sr", "ary_Arab": "ary", "arz_Arab": "arz",
    "apc_Arab": "apc", "ars_Arab": "ars", "acm_Arab": "acm", "acq_Arab": "acq",
    "aeb_Arab": "aeb", "ajp_Arab": "ajp",
}
# The NLLB code a plain BCP-47 tag means when several exist.
NLLB_PREFERRED: dict[str, str] = {
    "ar": "arb_Arab", "fa": "pes_Arab", "zh": "zho_Hans", "zh-Hans": "zho_Hans",
    "zh-Hant": "zho_Hant", "zh-TW": "zho_Hant", "zh-HK": "zho_Hant", "sr": "srp_Cyrl",
    "ms": "zsm_Latn", "sw": "swh_Latn", "ne": "npi_Deva", "ps": "pbt_Arab", "et": "est_Latn",
    "lv": "lvs_Latn", "mn": "khk_Cyrl", "sq": "als_Latn", "uz": "uzn_Latn", "az": "azj_Latn",
    "mg": "plt_Latn", "om": "gaz_Latn", "yi": "ydd_Hebr", "ku": "kmr_Latn", "ff": "fuv_Latn",
    "qu": "quy_Latn", "or": "ory_Orya", "ay": "ayr_Latn", "kr": "knc_Arab",
}

def normalize(tag: str) -> str:
    """Canonical BCP-47 casing (`FR_fr` -> `fr-FR`, `zh-hant` -> `zh-Hant`; the one parser,
    `parlons.languages.parse_tag`), and one spelling per language (`fra` -> `fr`).

    Raises InvalidArgument for something that is not a language tag at all.
    """
    parts = parse_tag(tag, field="").split("-")
    if len(parts[0]) == 3 and parts[0] in ISO3_TO_ISO1:
        parts[0] = ISO3_TO_ISO1[parts[0]]
    return "-".join(parts)



def closest(requested: str, available: set[str] | frozenset[str]) -> str | None:
    """The available tag that serves `requested`: exact, then by dropping subtags.

    `fr-FR` -> `fr`; `zh-TW` -> `zh-Hant`; `pt` -> `pt-BR` only when it is the one Portuguese.
    """
    tag = normalize(requested)
    if tag in available:
        return tag
    if tag in ("zh-TW", "zh-HK", "zh-MO") and "zh-Hant" in available:
        return "zh-Hant"
    parts = tag.split("-")
    while len(parts) > 1:
        parts.pop()
        candidate = "-".join(parts)
        if candidate in available:
            return candidate
    same = sorted(a for a in available if primary(a) == parts[0])
    return same[0] if len(same) == 1 else None


# --- NLLB-200: `fra_Latn` -----------------------------------------------------------

NLLB_TOKEN = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


def nllb_to_bcp47(code: str) -> str:
    if code in NLLB_SPECIAL:
        return NLLB_SPECIAL[code]
    iso3, script = code.split("_")
    base = ISO3_TO_ISO1.get(iso3, iso3)
    preferred = NLLB_PREFERRED.get(base)
    if preferred is not None and preferred != code:
        return f"{base}-{script}" if preferred.split("_")[1] != script else iso3
    return base


def nllb_codes(tokens: list[str]) -> dict[str, str]:
    """BCP-47 -> NLLB token for the language tokens in a vocabulary."""
    codes = [t for t in tokens if NLLB_TOKEN.match(t)]
    mapping: dict[str, str] = {}
    for code in codes:
        mapping.setdefault(nllb_to_bcp47(code), code)
    # The preferred code wins when two map to the same tag.
    for tag, code in NLLB_PREFERRED.items():
        if code in codes and tag in mapping:
            mapping[tag] = code
    return mapping


# --- M2M100: `__fr__` ---------------------------------------------------------------

M2M_TOKEN = re.compile(r"^__([a-z]{2,3})__$")


def m2m_codes(tokens: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for token in tokens:
        m = M2M_TOKEN.match(token)
        if m:
            mapping[normalize(m.group(1))] = token
    return mapping


# --- OPUS-MT multi-target: `>>fra<<` ------------------------------------------------

MARIAN_TOKEN = re.compile(r"^>>([a-z]{2,3}(?:_[A-Z][a-z]{3})?)<<$")


def marian_target_codes(tokens: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for token in tokens:
        m = MARIAN_TOKEN.match(token)
        if not m:
            continue
        code = m.group(1)
        if "_" in code:
            tag = nllb_to_bcp47(code)
        else:
            tag = ISO3_TO_ISO1.get(code, code)
        mapping.setdefault(tag, token)
    return mapping


# --- MADLAD-400: `<2fr>` --------------------------------------------------------------
# Target tokens of MADLAD-400's SentencePiece vocabulary: ISO 639-1 where one exists, else
# ISO 639-3, some with a script and/or a region (`<2zh_Hant>`, `<2fr_CA>`,
# `<2ms_Arab_BN>`). The same vocabulary holds tokens that name no language: task tags
# (`<2translate>`, `<2transliterate>`, `<2back_translated>`), bare scripts (`<2Latn>`)
# and regions (`<2CA>`), `<2>`, and variants (`<2en_xx_simple>`, `<2zxx_xx_dtynoise>`);
# those are not languages one can translate into and are left out.

MADLAD_TOKEN = re.compile(r"^<2([a-z]{2,3})((?:_[A-Za-z0-9]+)*)>$")
_SCRIPT = re.compile(r"^[A-Z][a-z]{3}$")
_REGION = re.compile(r"^(?:[A-Z]{2}|[0-9]{3})$")
# MADLAD codes whose BCP-47 form follows another family's convention: Dari is `fa-AF`
# as for NLLB's `prs_Arab`, so one tag reaches it in every model.
MADLAD_SPECIAL: dict[str, str] = {"prs": "fa-AF"}
_NOT_LANGUAGES = {"zxx", "und", "mul", "mis"}


def madlad_to_bcp47(token: str) -> str | None:
    """`<2fr>` -> `fr`, `<2zh_Hant>` -> `zh-Hant`, `<2fuv>` -> `ff`; None for a token
    that names no language (`<2translate>`, `<2Latn>`, `<2en_xx_simple>`)."""
    m = MADLAD_TOKEN.match(token)
    if not m or m.group(1) in _NOT_LANGUAGES:
        return None
    code = m.group(1) + m.group(2)
    if code in MADLAD_SPECIAL:
        return MADLAD_SPECIAL[code]
    subtags = m.group(2).split("_")[1:]
    if any(not (_SCRIPT.match(s) or _REGION.match(s)) for s in subtags):
        return None
    try:
        return normalize(code)
    except InvalidArgument:
        return None


def madlad_codes(tokens: list[str]) -> dict[str, str]:
    """BCP-47 -> MADLAD target token for the language tokens in a vocabulary.

    When two tokens give one tag (`<2ff>` and `<2fuv>` are both `ff`), the token written
    as the tag itself wins.
    """
    mapping: dict[str, str] = {}
    for token in tokens:
        tag = madlad_to_bcp47(token)
        if tag is None:
            continue
        if tag not in mapping or token[2:-1].replace("_", "-") == tag:
            mapping[tag] = token
    return mapping


def to_iso1(tag: str) -> str:
    """Primary subtag as the two-letter code argos and lingua use where one exists."""
    return primary(normalize(tag))
