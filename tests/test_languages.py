"""The one language module (`parlons/languages.py`): the BCP-47 parser every entry point
uses, and the round trip between a client's tag and each model family's own code for
every language Whisper and the translation layouts know."""

from __future__ import annotations

import pytest

from parlons.errors import InvalidArgument, NotFound
from parlons.languages import (
    LanguageTag,
    is_tag,
    parse_tag,
    primary,
    same_language,
    tag_of_whisper,
    whisper_code,
)
from parlons.services.transcription.languages import WHISPER_LANGUAGES, parse_language, supported_bcp47
from parlons.services.translation import languages as mt


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("fr", "fr"), ("FR_fr", "fr-FR"), ("pt_br", "pt-BR"), ("zh-hant", "zh-Hant"),
        ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"), (" en-GB ", "en-GB"),
        ("de-DE-u-co-phonebk", "de-DE-u-co-phonebk"), ("en-x-twain", "en-x-twain"),
        ("sl-rozaj-biske", "sl-rozaj-biske"), ("yue", "yue"),
    ],
)
def test_tags_are_parsed_into_canonical_casing(given: str, canonical: str) -> None:
    assert parse_tag(given) == canonical
    assert parse_tag(canonical) == canonical  # a fixed point: parsing twice changes nothing


@pytest.mark.parametrize("bad", ["french", "f", "fr FR", "12", "fr--FR", "fr-", "-fr", "fr-a", "", "é", "fr-FR-" + "x" * 40])
def test_what_is_no_tag_is_refused_naming_the_field(bad: str) -> None:
    assert not is_tag(bad)
    with pytest.raises(InvalidArgument, match="BCP-47") as info:
        parse_tag(bad, field="target_languages")
    assert info.value.field == "target_languages"
    assert len(info.value.message) < 200  # a 40-character tag is not echoed whole


def test_primary_subtag_and_same_language() -> None:
    assert primary("pt_BR") == "pt" and primary("ZH-Hant") == "zh"
    assert same_language("en", "en-GB") and same_language("pt_BR", "pt")
    assert not same_language("fr", "en") and not same_language("", "en")


def test_every_whisper_language_round_trips_through_its_tag() -> None:
    for code in WHISPER_LANGUAGES:
        tag = tag_of_whisper(code)
        assert parse_tag(tag) == tag, code
        assert whisper_code(tag) == code, code
        assert parse_language(tag) == tag, code
    assert tag_of_whisper("jw") == "jv" and whisper_code(LanguageTag("jv")) == "jw"
    assert set(supported_bcp47()) == {tag_of_whisper(c) for c in WHISPER_LANGUAGES}
    assert "jw" not in supported_bcp47()  # clients only ever see BCP-47


def test_legacy_and_regional_tags_reach_whisper_codes() -> None:
    for tag, code in {"iw": "he", "in": "id", "ji": "yi", "nb": "no", "fil": "tl", "mo": "ro",
                      "pt-BR": "pt", "zh-Hant-TW": "zh", "yue-HK": "yue"}.items():
        assert whisper_code(parse_tag(tag)) == code, tag
    with pytest.raises(NotFound, match="ListLanguages"):
        parse_language("tlh")


def _nllb_vocabulary() -> list[str]:
    """Every NLLB-200 token the layout's tables name (and a few plain ones)."""
    tokens = set(mt.NLLB_SPECIAL) | set(mt.NLLB_PREFERRED.values())
    tokens |= {f"{iso3}_Latn" for iso3 in ("fra", "eng", "deu", "spa", "por", "ita", "ukr", "tur", "vie", "pol")}
    tokens |= {"rus_Cyrl", "ukr_Cyrl", "arb_Arab", "hin_Deva", "jpn_Jpan", "kor_Hang", "tir_Ethi", "amh_Ethi"}
    return sorted(tokens)


@pytest.mark.parametrize(
    ("family", "tokens", "to_codes"),
    [
        ("nllb", _nllb_vocabulary(), mt.nllb_codes),
        ("m2m100", [f"__{c}__" for c in sorted(set(mt.ISO3_TO_ISO1.values())) if len(c) == 2], mt.m2m_codes),
        ("opus-mt", [f">>{c}<<" for c in ("fra", "eng", "deu", "spa", "ukr", "ara", "zho_Hant", "srp_Cyrl")],
         mt.marian_target_codes),
        ("madlad", ["<2fr>", "<2en>", "<2zh_Hant>", "<2fr_CA>", "<2fuv>", "<2ff>", "<2prs>", "<2ms_Arab_BN>", "<2yue>"],
         mt.madlad_codes),
    ],
)
def test_every_translation_layout_code_round_trips_through_its_tag(family: str, tokens: list[str], to_codes: object) -> None:
    mapping = to_codes(tokens)  # type: ignore[operator]
    assert mapping, family
    for tag, token in mapping.items():
        assert parse_tag(tag) == tag, (family, token)  # every tag a client is shown is canonical
        assert mt.normalize(tag) == tag, (family, token)
        assert mapping[mt.closest(tag, frozenset(mapping)) or ""] == token, (family, tag)


def test_translation_normalizes_through_the_one_parser() -> None:
    assert mt.normalize("fra") == "fr" and mt.normalize("FR_fr") == "fr-FR"
    with pytest.raises(InvalidArgument, match="BCP-47"):
        mt.normalize("french")
