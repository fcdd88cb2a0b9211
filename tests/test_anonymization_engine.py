"""The anonymisation engine on its own: spoken numbers, checksums, each rule, the
placeholders' consistency, policies, term lists, limits, a language without NER."""

from __future__ import annotations

import pytest

from parlons.services.anonymization.engine import AnonymizationEngine, AnonymizeLimits, AnonymizeOptions
from parlons.services.anonymization.numbers import token_runs
from parlons.services.common.errors import InvalidArgument


@pytest.fixture(scope="module")
def engine() -> AnonymizationEngine:
    return AnonymizationEngine(limits=AnonymizeLimits(max_chars_per_request=5000, max_texts=50))


def masked(engine: AnonymizationEngine, text: str) -> dict[str, str]:
    """{span text: entity type} of what the engine masks in `text`."""
    return {text[f.start:f.end]: f.entity_type for f in engine.analyze(text)}


@pytest.mark.parametrize(("spoken", "digits"), [
    ("zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit", "0612345678"),
    ("un, quatre-vingt-cinq, zéro sept, soixante-quinze", "1850775"),
    ("mille neuf cent quatre-vingt-dix-huit", "1998"),
    ("dix-neuf cent quatre-vingt-cinq", "1985"),
    ("vingt et un, quatre-vingts, soixante et onze", "218071"),
    ("trois cent douze", "312"),
])
def test_spoken_numbers_read_as_their_digits(spoken: str, digits: str) -> None:
    runs = token_runs(spoken)
    assert len(runs) == 1
    assert runs[0].alnum()[0] == digits
    assert (runs[0].start, runs[0].end) == (0, len(spoken))


def test_nir_written_spoken_and_with_a_wrong_key(engine: AnonymizationEngine) -> None:
    # 1 85 07 75 123 456 + key 97 - (1850775123456 mod 97)
    key = 97 - 1850775123456 % 97
    written = f"Mon numéro de sécu c'est le 1 85 07 75 123 456 {key:02d}, voilà."
    assert masked(engine, written) == {f"1 85 07 75 123 456 {key:02d}": "NIR"}
    found = engine.analyze(written)[0]
    assert found.score >= 0.95  # the key holds
    wrong = f"1 85 07 75 123 456 {(key + 1) % 97:02d}"
    weak = [f for f in engine.analyze(f"sécurité sociale {wrong}") if f.entity_type == "NIR"]
    assert weak and weak[0].score < 0.95  # shape and context, no checksum
    spoken = "sécu : un, quatre-vingt-cinq, zéro sept, soixante-quinze, cent vingt-trois, quatre cent cinquante-six"
    assert "NIR" in masked(engine, spoken).values()


def test_iban_checksum_decides(engine: AnonymizationEngine) -> None:
    good = "FR76 3000 6000 0112 3456 7890 189"
    assert masked(engine, f"mon IBAN c'est {good}") == {good: "IBAN"}
    assert masked(engine, "la référence FR12 3456 7890 1234 5678 9012 345 du formulaire") == {}


@pytest.mark.parametrize("phone", [
    "06 12 34 56 78", "06.12.34.56.78", "0612345678", "+33 6 12 34 56 78",
    "zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit",
    "zéro un quarante-deux 12 34 56",
])
def test_phone_forms(engine: AnonymizationEngine, phone: str) -> None:
    found = masked(engine, f"vous pouvez me joindre au {phone} le matin")
    assert any(phone.lstrip("+") in span for span in found) and set(found.values()) == {"PHONE"}


@pytest.mark.parametrize("email", [
    "jean.dupont@gmail.com", "jean point dupont arobase gmail point com",
    "fatima tiret bas benali at orange point fr",
])
def test_email_forms(engine: AnonymizationEngine, email: str) -> None:
    found = masked(engine, f"mon mail c'est {email}, merci")
    assert found.get(email) == "EMAIL"


def test_address_date_of_birth_and_identifiers(engine: AnonymizationEngine) -> None:
    text = ("J'habite au 12 bis rue des Lilas, 69003 Lyon. Je suis née le 3 mars 1985. "
            "Mon numéro allocataire c'est le 1 234 567. Mon passeport 18AB12345. Ma plaque AB-123-CD.")
    found = masked(engine, text)
    assert found["12 bis rue des Lilas, 69003 Lyon"] == "ADDRESS"
    assert found["3 mars 1985"] == "DATE_OF_BIRTH"
    assert found["1 234 567"] == "CAF_NUMBER"
    assert found["18AB12345"] == "ID_DOCUMENT"
    assert found["AB-123-CD"] == "LICENSE_PLATE"


def test_look_alikes_stay(engine: AnonymizationEngine) -> None:
    text = ("Votre rendez-vous est le 12 mars 2026 à 14 h, ça fait 1 234,56 euros, selon l'article L. 262-2 "
            "du code de l'action sociale et le décret n° 2019-1234. La CAF de Lyon ouvre à 8 h 30. J'ai 34 ans.")
    assert masked(engine, text) == {}


def test_names_after_civility_spelled_and_repeated(engine: AnonymizationEngine) -> None:
    result = engine.anonymize(["Bonjour Madame Benali.", "Alors c'est B-E-N-A-L-I ?", "Oui, Benali."])
    assert result.texts == ["Bonjour Madame [PERSONNE_1].", "Alors c'est [PERSONNE_1] ?", "Oui, [PERSONNE_1]."]


def test_placeholders_are_consistent_and_numbered(engine: AnonymizationEngine) -> None:
    result = engine.anonymize(
        ["Je m'appelle Kevin Durand, 06 12 34 56 78.", "Mon fils Adam a le 07 98 76 54 32.", "Kevin Durand, 06.12.34.56.78"],
        options=AnonymizeOptions(return_mapping=True))
    assert result.texts[2] == "[PERSONNE_1], [TELEPHONE_1]"
    assert "[PERSONNE_2]" in result.texts[1] and "[TELEPHONE_2]" in result.texts[1]
    assert result.mapping["[TELEPHONE_2]"] == "07 98 76 54 32"
    assert engine.anonymize(["Kevin Durand"]).mapping == {}  # only when asked


def test_redact_and_pseudonym_policies(engine: AnonymizationEngine) -> None:
    text = "Madame Fatima Benali, 06 12 34 56 78"
    assert engine.anonymize([text], options=AnonymizeOptions(policy="redact")).texts == ["Madame […], […]"]
    one = engine.anonymize([text], options=AnonymizeOptions(policy="pseudonym", seed=3)).texts[0]
    again = engine.anonymize([text], options=AnonymizeOptions(policy="pseudonym", seed=3)).texts[0]
    assert one == again and "Benali" not in one and "06 12 34 56 78" not in one


def test_term_lists(engine: AnonymizationEngine) -> None:
    options = AnonymizeOptions(always_mask=("Saint-Jean-de-Luz",), never_mask=("Durand",))
    result = engine.anonymize(["Monsieur Durand habite à Saint-Jean-de-Luz."], options=options)
    assert result.texts == ["Monsieur Durand habite à [MASQUE_1]."]


def test_entity_type_filter(engine: AnonymizationEngine) -> None:
    result = engine.anonymize(["Madame Benali, 06 12 34 56 78"], options=AnonymizeOptions(entity_types=("PHONE",)))
    assert result.texts == ["Madame Benali, [TELEPHONE_1]"]


def test_limits_and_bad_options_refused_before_work(engine: AnonymizationEngine) -> None:
    with pytest.raises(InvalidArgument, match="5000"):
        engine.anonymize(["a" * 5001])
    with pytest.raises(InvalidArgument, match="50"):
        engine.anonymize(["a"] * 51)
    with pytest.raises(InvalidArgument, match="SOCIAL"):
        engine.anonymize(["a"], options=AnonymizeOptions(entity_types=("SOCIAL",)))


def test_a_language_without_ner_still_masks_identifiers_and_says_names_were_not_checked(
        engine: AnonymizationEngine) -> None:
    result = engine.anonymize(["My name is John Smith, call me on 06 12 34 56 78"], language="en")
    assert result.names_checked is False
    assert "[TELEPHONE_1]" in result.texts[0]
    assert engine.anonymize(["Bonjour"], language="fr").names_checked is True
