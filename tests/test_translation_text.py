"""Sentence splitting, protected spans, glossaries and language codes (no model needed)."""

from __future__ import annotations

import pytest

from parlons.errors import InvalidArgument, NotFound
from parlons.services.translation import languages, text
from parlons.services.translation.engine import locate_fixed
from parlons.services.translation.glossary import Glossary, GlossaryEntry, GlossaryStore, parse_json

LETTER = (
    "Madame, Monsieur,\n\n"
    "Votre dossier n° 2024/12345 a été reçu le 12/03/2024 à 14h30. M. Dupont l'instruira.\n"
    "  Écrivez à accueil@mairie.example.fr ou voir https://www.service-public.fr/particuliers/vosdroits/F2. "
    "Le montant est de 1 234,56 € (soit 12 %). Appelez le 01 23 45 67 89 !\n\r\n"
    "Bonjour {name}, vous avez %d messages et %(count)s rappels.\t\n"
)


def test_segment_rebuilds_the_input_exactly() -> None:
    for sample in [LETTER, "", "   ", "\n\n", "Un.\nDeux.\r\nTrois", "Sans ponctuation finale",
                   "Voir p. 12. Puis la suite.", "x" * 2000, "a. b. c."]:
        chunks = text.segment(sample)
        assert "".join(c.text for c in chunks) == sample


def test_segment_keeps_line_breaks_and_splits_sentences() -> None:
    chunks = text.segment(LETTER)
    sentences = [c.text for c in chunks if c.translate]
    assert sentences[0] == "Madame, Monsieur,"
    assert "Votre dossier n° 2024/12345 a été reçu le 12/03/2024 à 14h30." in sentences
    assert "M. Dupont l'instruira." in sentences  # "M." is an abbreviation, not an end
    assert any(s.startswith("Écrivez à accueil@mairie.example.fr") for s in sentences)
    # The URL's dots do not end a sentence; its final full stop does.
    assert any(s.endswith("https://www.service-public.fr/particuliers/vosdroits/F2.") for s in sentences)
    assert not any(c.translate and ("\n" in c.text) for c in chunks)
    untranslated = "".join(c.text for c in chunks if not c.translate)
    assert untranslated.count("\n") == LETTER.count("\n")


def test_long_sentence_is_cut_outside_protected_spans() -> None:
    url = "https://example.org/" + "a" * 50
    sample = ("mot " * 150) + url + (" mot" * 150)
    pieces = [c.text for c in text.segment(sample, max_sentence_chars=120) if c.translate]
    assert len(pieces) > 5
    assert all(len(p) <= 120 or url in p for p in pieces)
    assert sum(url in p for p in pieces) == 1


def test_protected_spans_find_every_kind() -> None:
    found = {(s.kind, s.replacement) for s in text.protected_spans(LETTER)}
    expected = {
        ("case", "n° 2024/12345"), ("date", "12/03/2024"), ("time", "14h30"),
        ("email", "accueil@mairie.example.fr"),
        ("url", "https://www.service-public.fr/particuliers/vosdroits/F2"),
        ("number", "1 234,56"), ("number", "12 %"), ("phone", "01 23 45 67 89"),
        ("placeholder", "{name}"), ("placeholder", "%d"), ("placeholder", "%(count)s"),
    }
    assert expected <= found
    spans = text.protected_spans(LETTER)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))  # no overlap, in order


def test_to_parts_alternates_text_and_fixed() -> None:
    sentence = "Le dossier n° 2024/12345 est prêt."
    parts = text.to_parts(sentence, text.protected_spans(sentence))
    assert [p.fixed for p in parts] == [False, True, False]
    assert "".join(p.text for p in parts) == sentence


def test_locate_fixed_requires_every_string_as_a_whole_token() -> None:
    parts = locate_fixed("File 2024/12345 ready on 12/03", ["2024/12345", "12/03"])
    assert parts is not None and [p.text for p in parts if p.fixed] == ["2024/12345", "12/03"]
    assert locate_fixed("File 2024/12345 ready", ["2024/12345", "12/03"]) is None
    assert locate_fixed("year 20245", ["2024"]) is None  # inside another number: not the token
    assert locate_fixed("3 and 3", ["3", "3"]) is not None
    assert locate_fixed("only 3", ["3", "3"]) is None  # given twice, must come out twice


def test_glossary_matches_whole_words_longest_first_and_case() -> None:
    g = Glossary.build([
        GlossaryEntry("titre de séjour", "residence permit"),
        GlossaryEntry("titre", "title"),
        GlossaryEntry("CAF"),  # do not translate
        GlossaryEntry("Pôle emploi", "France Travail", case_sensitive=True),
    ])
    sentence = "Mon Titre de séjour, la caf et le CAFÉ ; pôle emploi mais Pôle emploi."
    spans = g.spans(sentence)
    got = [(sentence[s.start:s.end], s.replacement) for s in text.merge_spans(spans)]
    assert ("Titre de séjour", "residence permit") in got
    assert ("caf", "caf") in got  # do-not-translate keeps the matched text
    assert not any(src == "CAFÉ" or src.startswith("CAF") and len(src) > 3 for src, _ in got)
    assert ("Pôle emploi", "France Travail") in got
    assert ("pôle emploi", "France Travail") not in got  # case-sensitive entry
    assert ("titre", "title") not in [(a.lower(), b) for a, b in got]


def test_glossary_limits_and_store_scoping(tmp_path) -> None:
    with pytest.raises(InvalidArgument):
        Glossary.build([GlossaryEntry("  ", "x")])
    (tmp_path / "prefecture-92").mkdir()
    (tmp_path / "prefecture-92" / "accueil.json").write_text(
        '{"source_language": "fr", "target_language": "en", "entries": '
        '[{"source": "OQTF", "do_not_translate": true}, {"source": "récépissé", "target": "receipt"}]}')
    store = GlossaryStore(tmp_path)
    glossary = store.get("prefecture-92", "accueil")
    assert {e.source for e in glossary.entries} == {"OQTF", "récépissé"}
    with pytest.raises(NotFound):
        store.get("another-tenant", "accueil")
    with pytest.raises(InvalidArgument):
        parse_json("{not json")
    merged = glossary.merged(Glossary.build([GlossaryEntry("récépissé", "acknowledgement")]))
    assert [e.target for e in merged.entries if e.source == "récépissé"] == ["acknowledgement"]


@pytest.mark.parametrize("tag,expected", [
    ("fr", "fr"), ("FR_fr", "fr-FR"), ("zh-hant", "zh-Hant"), ("pt-br", "pt-BR"), ("fra", "fr"),
])
def test_normalize(tag: str, expected: str) -> None:
    assert languages.normalize(tag) == expected


def test_normalize_rejects_garbage() -> None:
    with pytest.raises(InvalidArgument):
        languages.normalize("français!")


def test_model_codes_map_to_bcp47() -> None:
    nllb = languages.nllb_codes(["fra_Latn", "eng_Latn", "arb_Arab", "ary_Arab", "zho_Hans", "zho_Hant",
                                 "ukr_Cyrl", "pes_Arab", "prs_Arab", "hello"])
    assert nllb == {"fr": "fra_Latn", "en": "eng_Latn", "ar": "arb_Arab", "ary": "ary_Arab",
                    "zh": "zho_Hans", "zh-Hant": "zho_Hant", "uk": "ukr_Cyrl", "fa": "pes_Arab",
                    "fa-AF": "prs_Arab"}
    assert languages.m2m_codes(["__fr__", "__en__", "▁le"]) == {"fr": "__fr__", "en": "__en__"}
    assert languages.marian_target_codes([">>fra<<", ">>ara<<", ">>por<<"]) == {
        "fr": ">>fra<<", "ar": ">>ara<<", "pt": ">>por<<"}


def test_closest_language() -> None:
    available = frozenset({"fr", "en", "zh-Hant", "pt-BR"})
    assert languages.closest("fr-FR", available) == "fr"
    assert languages.closest("zh-TW", available) == "zh-Hant"
    assert languages.closest("pt", available) == "pt-BR"
    assert languages.closest("de", available) is None


def test_detector_mode_follows_the_number_of_languages() -> None:
    from parlons.services.translation.detect import LanguageDetector

    few = LanguageDetector(["fr", "en", "es"])
    assert not few.low_accuracy and few.languages == ["en", "es", "fr"]
    found = few.detect("Bonjour, je voudrais renouveler mon titre de séjour.")
    assert found.language == "fr" and 0.5 < found.confidence <= 1.0
    assert few.detect("12 345 !").language is None
    many = LanguageDetector(None)
    assert many.low_accuracy and len(many.languages) > 70
    assert many.detect("Добрий день, я хочу продовжити посвідку на проживання.").language == "uk"
    single = LanguageDetector(["fr"])
    assert single.detect("anything at all").language == "fr"


def test_initials_and_abbreviations_do_not_end_sentences() -> None:
    sentences = [c.text for c in text.segment("J. Martin et Mme. Durand arrivent. Voir l'art. 12. Fin du point x. Suite.")
                 if c.translate]
    assert sentences == ["J. Martin et Mme. Durand arrivent.", "Voir l'art. 12.", "Fin du point x.", "Suite."]


@pytest.mark.parametrize(
    "language, sample, expected",
    [
        ("am", "ሰላም ነው። እንዴት ነህ? ደህና ነኝ።", ["ሰላም ነው።", "እንዴት ነህ?", "ደህና ነኝ።"]),
        ("hy", "Բարեւ։ Ինչպես ես։ Լավ եմ։", ["Բարեւ։", "Ինչպես ես։", "Լավ եմ։"]),
        ("my", "မင်္ဂလာပါ။ နေကောင်းလား။ ကောင်းပါတယ်။", ["မင်္ဂလာပါ။", "နေကောင်းလား။", "ကောင်းပါတယ်။"]),
        ("ar", "مرحبا. كيف حالك؟ أنا بخير.", ["مرحبا.", "كيف حالك؟", "أنا بخير."]),
        ("fr", "Voici le dossier n. 12 de M. Dupont. Merci ! Au revoir.",
         ["Voici le dossier n. 12 de M. Dupont.", "Merci !", "Au revoir."]),
        ("", "Voir https://www.service-public.fr/particuliers. Ensuite appelez.",
         ["Voir https://www.service-public.fr/particuliers.", "Ensuite appelez."]),
    ],
)
def test_sentences_of_the_scripts_visitors_write(language: str, sample: str, expected: list[str]) -> None:
    chunks = text.segment(sample, language=language)
    assert "".join(c.text for c in chunks) == sample
    assert [c.text for c in chunks if c.translate] == expected
