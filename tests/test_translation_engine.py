"""The engine on tiny random models: layouts, routing, structure kept, spans and glossary."""

from __future__ import annotations

import asyncio
import shutil
import zipfile
from pathlib import Path

import pytest

from parlons.errors import InvalidArgument, ModelCorrupt, ModelNotFound, NotFound
from parlons.services.translation import text as textmod
from parlons.services.translation.engine import EngineLimits, TranslationEngine
from parlons.services.translation.glossary import Glossary, GlossaryEntry
from parlons.services.translation.layouts import load_layout
from parlons.services.translation.model import RuntimeOptions, TranslationModel, pick_device
from translation_models import (  # noqa: F401
    build_argos_package,
    build_hf_marian_model,
    translation_model_dirs,
)

RUNTIME = RuntimeOptions(device="cpu", compute_type="auto", batch_wait_ms=2, max_decoding_length=40)


@pytest.fixture(scope="module")
def engine_paths(translation_model_dirs) -> list[Path]:  # noqa: F811
    return [translation_model_dirs[k] for k in ("fr-en", "en-uk", "nllb", "m2m")]


@pytest.fixture
async def engine(engine_paths):
    eng = await asyncio.to_thread(TranslationEngine.load, engine_paths, RUNTIME)
    yield eng
    for m in eng.models:
        await m.aclose()


# --- layouts -------------------------------------------------------------------------

def test_layouts_are_recognised(translation_model_dirs) -> None:  # noqa: F811
    marian = load_layout(translation_model_dirs["fr-en"])
    assert (marian.kind, set(marian.source_languages), set(marian.target_languages)) == ("marian", {"fr"}, {"en"})
    assert marian.source_tokens("Bonjour", "fr", "en")[-1] == "</s>"
    nllb = load_layout(translation_model_dirs["nllb"])
    assert nllb.kind == "nllb" and set(nllb.source_languages) == {"fr", "en", "es", "uk"}
    tokens = nllb.source_tokens("Bonjour", "fr", "en")
    assert tokens[0] == "fra_Latn" and tokens[-1] == "</s>"
    assert nllb.target_prefix("uk") == ["ukr_Cyrl"]
    m2m = load_layout(translation_model_dirs["m2m"])
    assert m2m.kind == "m2m100" and m2m.source_tokens("Salut", "fr", "ar")[0] == "__fr__"
    assert m2m.target_prefix("ar") == ["__ar__"]


def test_opus_mt_pair_from_directory_name(translation_model_dirs, tmp_path) -> None:  # noqa: F811
    copy = shutil.copytree(translation_model_dirs["fr-en"], tmp_path / "opus-mt-es-fr")
    (copy / "parlons.json").unlink()
    layout = load_layout(copy)
    assert set(layout.source_languages) == {"es"} and set(layout.target_languages) == {"fr"}
    anonymous = shutil.copytree(copy, tmp_path / "some-model")
    with pytest.raises(ModelCorrupt, match="parlons.json"):
        load_layout(anonymous)


def test_bad_model_paths(tmp_path) -> None:
    with pytest.raises(ModelNotFound):
        load_layout(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelCorrupt):
        load_layout(tmp_path / "empty")


def test_corrupt_model_bin_is_reported(translation_model_dirs, tmp_path) -> None:  # noqa: F811
    copy = shutil.copytree(translation_model_dirs["fr-en"], tmp_path / "broken")
    (copy / "model.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelCorrupt):
        TranslationModel.load(copy, RUNTIME)


async def test_argos_package_translates(tmp_path) -> None:
    package = build_argos_package(tmp_path / "translate-fr_en.argosmodel")
    model = TranslationModel.load(package, RUNTIME, cache_dir=tmp_path / "cache")
    assert model.layout.kind == "argos"
    assert model.source_languages == {"fr"} and model.target_languages == {"en"}
    out = await model.translate_strings(["Bonjour.", "Merci."], "fr", "en")
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
    await model.aclose()


def test_argos_package_with_path_traversal_is_refused(tmp_path) -> None:
    evil = tmp_path / "evil.argosmodel"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(InvalidArgument, match="outside"):
        load_layout(evil, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "outside.txt").exists()


async def test_hf_marian_converted_by_ctranslate2(tmp_path) -> None:
    model_dir = await asyncio.to_thread(build_hf_marian_model, tmp_path / "opus-mt-fr-en")
    engine = TranslationEngine([TranslationModel.load(model_dir, RUNTIME)])
    result = await engine.translate(["Bonjour, je voudrais renouveler mon titre de séjour.\nMerci."], "en", "fr")
    assert result[0].text.count("\n") == 1
    assert result[0].model == "opus-mt-fr-en"
    for m in engine.models:
        await m.aclose()


def test_device_is_picked_automatically() -> None:
    device, compute = pick_device("auto", "auto")
    assert (device, compute) in {("cpu", "int8"), ("cuda", "float16"), ("cpu", "int8_float32"), ("cpu", "float32")}
    with pytest.raises(InvalidArgument):
        pick_device("tpu", "auto")


# --- routing -------------------------------------------------------------------------

async def test_routes_prefer_bilingual_and_pivot_through_english(engine_paths) -> None:
    bilingual = [TranslationModel.load(p, RUNTIME) for p in engine_paths[:2]]
    engine = TranslationEngine(bilingual, detect=False)
    assert engine.registry.route("fr", "en").model_name == "opus-mt-fr-en"
    pivot = engine.registry.route("fr-FR", "uk")
    assert pivot.pivot and pivot.model_name == "opus-mt-fr-en>opus-mt-en-uk"
    assert [(p.source, p.target, p.pivot) for p in engine.pairs()] == [
        ("en", "uk", False), ("fr", "en", False), ("fr", "uk", True)]
    with pytest.raises(NotFound, match="fr>en"):
        engine.registry.route("de", "fr")
    result = await engine.translate(["Le dossier n° 2024/12345 est prêt."], "uk", "fr")
    assert result[0].model == "opus-mt-fr-en>opus-mt-en-uk"
    assert "n° 2024/12345" in result[0].text  # fixed strings survive both hops
    for m in bilingual:
        await m.aclose()


async def test_multilingual_model_serves_other_pairs(engine) -> None:
    assert engine.registry.route("fr", "en").model_name == "opus-mt-fr-en"  # bilingual wins
    assert engine.registry.route("es", "uk").model_name == "nllb-tiny"
    assert engine.registry.route("fr", "ar").model_name == "m2m-tiny"
    assert engine.registry.route("fr", "ar", "m2m-tiny").model_name == "m2m-tiny"
    with pytest.raises(NotFound):
        engine.registry.route("fr", "en", "no-such-model")
    out = await engine.translate(["Hola, quisiera renovar mi permiso.", "Otra frase."], "uk", "es")
    assert [t.model for t in out] == ["nllb-tiny", "nllb-tiny"]
    assert not any(tok in out[0].text for tok in ("ukr_Cyrl", "</s>"))  # prefix stripped


# --- text structure ------------------------------------------------------------------

LETTER = (
    "Madame, Monsieur,\n\n"
    "Votre dossier n° 2024/12345 a été reçu le 12/03/2024 à 14h30. Merci de patienter.\n"
    "Écrivez à accueil@mairie.example.fr ou consultez https://www.service-public.fr/particuliers.\n"
    "\tBonjour {name}, vous avez %d messages.\n"
)
KEPT = ["n° 2024/12345", "12/03/2024", "14h30", "accueil@mairie.example.fr",
        "https://www.service-public.fr/particuliers", "{name}", "%d"]


async def test_structure_and_protected_spans_are_kept(engine) -> None:
    texts = [LETTER, "", "   ", "2024", "Une phrase.", LETTER]
    out = await engine.translate(texts, "en", "fr")
    assert len(out) == len(texts)
    first = out[0].text
    assert first.count("\n") == LETTER.count("\n")
    assert first.split("\n")[1] == ""  # the empty line between paragraphs
    assert first.split("\n")[4].startswith("\t")
    for token in KEPT:
        assert token in first, token
    assert [t.text for t in out[1:4]] == ["", "   ", "2024"]  # nothing to translate: unchanged
    assert out[5].text == first  # same input, same output (deduplicated, in order)
    assert out[0].model == "opus-mt-fr-en" and out[0].source_language == "fr"


async def test_glossary_terms_appear_verbatim(engine) -> None:
    glossary = Glossary.build([
        GlossaryEntry("titre de séjour", "residence permit"),
        GlossaryEntry("CAF"),
        GlossaryEntry("préfecture", "Prefecture"),
    ])
    texts = ["Je voudrais renouveler mon titre de séjour à la préfecture.",
             "La CAF vous répondra. Le titre de séjour est prêt, la caf aussi."]
    out = await engine.translate(texts, "en", "fr", glossary=glossary)
    assert "residence permit" in out[0].text and "Prefecture" in out[0].text
    assert "titre de séjour" not in out[0].text
    assert out[1].text.count("residence permit") == 1
    assert "CAF" in out[1].text and "caf" in out[1].text


async def test_glossary_for_another_pair_is_ignored(engine) -> None:
    glossary = Glossary.build([GlossaryEntry("dossier", "ZZZ")], source_language="es", target_language="en")
    out = await engine.translate(["Le dossier est prêt."], "en", "fr", glossary=glossary)
    assert "ZZZ" not in out[0].text


async def test_same_language_returns_the_text(engine) -> None:
    out = await engine.translate(["Bonjour tout le monde."], "fr-FR", "fr")
    assert out[0].text == "Bonjour tout le monde." and out[0].model == ""


async def test_source_language_is_detected_with_confidence(engine) -> None:
    out = await engine.translate(
        ["Bonjour, je voudrais renouveler mon titre de séjour à la préfecture de police.",
         "Hola, quisiera renovar mi permiso de residencia, por favor.", "12345"], "en")
    assert out[0].source_language == "fr" and out[0].detected and out[0].detection_confidence > 0.5
    assert out[0].model == "opus-mt-fr-en"
    assert out[1].source_language == "es" and out[1].model == "nllb-tiny"
    assert out[2].text == "12345" and out[2].source_language == ""


# --- bad input -----------------------------------------------------------------------

async def test_bad_requests_get_precise_errors(engine) -> None:
    with pytest.raises(InvalidArgument, match="target_language"):
        await engine.translate(["Bonjour"], "")
    with pytest.raises(InvalidArgument, match="BCP-47"):
        await engine.translate(["Bonjour"], "english please")
    with pytest.raises(NotFound, match="available pairs"):
        await engine.translate(["Bonjour"], "de", "fr")
    with pytest.raises(NotFound):
        await engine.translate(["Bonjour"], "en", "fr", model="nope")
    with pytest.raises(InvalidArgument, match="100,000"):
        await engine.translate(["a" * (1024 * 1024)], "en", "fr")


async def test_limit_is_configurable_and_long_texts_are_chunked(engine_paths) -> None:
    model = TranslationModel.load(engine_paths[0], RUNTIME)
    engine = TranslationEngine([model], limits=EngineLimits(max_chars_per_request=20_000, max_sentence_chars=200),
                               detect=False)
    words = ["un", "deux", "trois", "quatre", "cinq", "six", "sept"]
    blob = " ".join(words[i % 7] * (1 + i % 4) for i in range(1500))  # ~16k chars, no punctuation
    out = await engine.translate([blob], "en", "fr")
    assert out[0].text
    assert len(blob) > 15_000
    assert model.batcher.stats.largest_batch >= 2  # cut into pieces translated together
    await model.aclose()


async def test_many_concurrent_requests_are_batched(engine) -> None:
    model = next(m for m in engine.models if m.name == "opus-mt-fr-en")
    before = model.batcher.stats.batches
    results = await asyncio.gather(*(engine.translate([f"Phrase numéro {i} pour le guichet."], "en", "fr")
                                     for i in range(32)))
    assert all(str(i) in r[0].text for i, r in enumerate(results))  # each got its own sentence
    assert model.batcher.stats.batches - before < 32


def test_segments_and_spans_of_every_kept_token() -> None:
    spans = {s.replacement for s in textmod.protected_spans(LETTER)}
    assert set(KEPT) <= spans
