"""MADLAD-400 as a translation family, on a tiny random T5 of the same layout.

The model is a random `T5ForConditionalGeneration` shaped like google/madlad400-3b-mt
(`spiece.model` with `<2xx>` target tokens), installed through the model manager with the
catalog entry's own conversion options (CTranslate2 `TransformersConverter`, int8,
`copy_files`, the listed files), as `parlons models pull madlad400-3b-mt` does from the hub.
Weights are random: the tests check tokens, routing and structure, not meaning.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from parlons.models.catalog import HubSource, load_catalog
from parlons.models.manager import ModelManager
from parlons.errors import NotFound
from parlons.services.translation import languages
from parlons.services.translation.engine import TranslationEngine
from parlons.services.translation.layouts import load_layout
from parlons.services.translation.model import RuntimeOptions, TranslationModel
from translation_models import build_bilingual_model, build_hf_madlad_model, madlad_hf_checkpoint

RUNTIME = RuntimeOptions(device="cpu", compute_type="auto", batch_wait_ms=2, max_decoding_length=24)
# The tags the test vocabulary's `<2xx>` tokens stand for (see MADLAD_TOKENS).
TAGS = {"fr", "en", "uk", "ar", "es", "zh-Hant", "fa-AF", "ff"}


# --- language tokens -------------------------------------------------------------------

def test_madlad_tokens_map_to_bcp47() -> None:
    cases = {
        "<2fr>": "fr", "<2uk>": "uk", "<2fil>": "fil", "<2zh_Hant>": "zh-Hant", "<2zh_Latn>": "zh-Latn",
        "<2fr_CA>": "fr-CA", "<2ms_Arab_BN>": "ms-Arab-BN", "<2nan_Latn_TW>": "nan-Latn-TW",
        "<2prs>": "fa-AF", "<2ps>": "ps", "<2ti>": "ti", "<2wo>": "wo", "<2bm>": "bm",
        "<2fuv>": "ff", "<2ks_Deva>": "ks-Deva", "<2kaa_Latn>": "kaa-Latn",
    }
    for token, tag in cases.items():
        assert languages.madlad_to_bcp47(token) == tag, token
    # Pieces of the vocabulary that name no language one can translate into.
    for token in ("<2>", "<2translate>", "<2transliterate>", "<2back_translated>", "<2Latn>",
                  "<2Hant>", "<2CA>", "<2en_xx_simple>", "<2zxx_xx_dtynoise>", "<2mass>",
                  "__fr__", "fra_Latn", ">>fra<<", "▁<2fr>", "<2FR>"):
        assert languages.madlad_to_bcp47(token) is None, token
    # Two codes for one tag: the one written as the tag wins, in any order.
    assert languages.madlad_codes(["<2fuv>", "<2ff>", "<2quy>", "<2qu>"]) == {"ff": "<2ff>", "qu": "<2qu>"}
    assert languages.madlad_codes(["<2ff>", "<2fuv>"]) == {"ff": "<2ff>"}
    assert languages.closest("zh-TW", set(languages.madlad_codes(["<2zh>", "<2zh_Hant>"]))) == "zh-Hant"


def madlad_hub_source() -> HubSource:
    entry = load_catalog().get("madlad400-3b-mt")
    assert entry is not None
    return next(s for s in entry.sources if isinstance(s, HubSource))


def test_catalog_entry_is_a_converted_apache_model() -> None:
    entry = load_catalog().get("madlad400-3b-mt")
    assert entry is not None and entry.kind == "translation"
    assert entry.licence == "Apache-2.0" and not entry.non_commercial
    assert "3 GB" in entry.size and "3B" in entry.description
    hub = [s for s in entry.sources if isinstance(s, HubSource)]
    assert len(hub) == 1 and hub[0].repo == "google/madlad400-3b-mt"
    assert (hub[0].convert, hub[0].quantization, hub[0].copy_files) == ("ctranslate2", "int8", ("spiece.model",))
    assert {"spiece.model", "*.safetensors", "config.json"} <= set(hub[0].allow_patterns)
    # Converted bytes depend on the converter: pinned on first pull, like NLLB and M2M100.
    assert {f.name for f in hub[0].files} == {"model.bin", "config.json", "shared_vocabulary.json", "spiece.model"}
    assert all(not f.sha256 for f in hub[0].files)


# --- a tiny MADLAD, installed as the catalog entry installs it -------------------------

@pytest.fixture(scope="module")
def madlad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"hf": the checkpoint, "model": the installed CTranslate2 directory, "cache": ...}."""
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("madlad")
    hf_dir = madlad_hf_checkpoint(root / "madlad-tiny-hf")
    hub = madlad_hub_source()
    files = ", ".join(f'{{ name = "{f.name}" }}' for f in hub.files)
    catalog = root / "catalog.toml"
    # The real entry's conversion options and file list, from a local checkpoint.
    catalog.write_text(f"""schema = 1
[[model]]
name = "madlad-tiny"
kind = "translation"
languages = ["*"]
size = "1 MB"
licence = "Apache-2.0"
description = "random T5 in the MADLAD-400 layout"
  [[model.source]]
  type = "local"
  path = "{hf_dir}"
  convert = "{hub.convert}"
  quantization = "{hub.quantization}"
  copy_files = {json.dumps(list(hub.copy_files))}
  files = [{files}]
""")
    manager = ModelManager(root / "cache", catalog=catalog)
    path = manager.pull("madlad-tiny", progress=False)
    return {"hf": hf_dir, "model": path, "cache": root / "cache", "catalog": catalog}


def test_pull_converts_with_the_catalog_options(madlad) -> None:
    path = madlad["model"]
    assert {p.name for p in path.iterdir() if not p.name.startswith(".")} == {
        "model.bin", "config.json", "shared_vocabulary.json", "spiece.model"}
    config = json.loads((path / "config.json").read_text())
    # MADLAD starts decoding from id 0 (`<unk>`), not from the pad token.
    assert config["decoder_start_token"] == "<unk>" and config["eos_token"] == "</s>"
    manager = ModelManager(madlad["cache"], catalog=madlad["catalog"], allow_download=False)
    assert manager.verify("madlad-tiny").status == "unpinned"  # pinned on first pull


def test_builder_converts_like_the_pull(madlad, tmp_path) -> None:
    """`build_hf_madlad_model` (for other tests) gives the layout the catalog pull gives."""
    built = build_hf_madlad_model(tmp_path / "madlad-built")
    assert {p.name for p in built.iterdir()} == {
        "model.bin", "config.json", "shared_vocabulary.json", "spiece.model"}
    for name in ("config.json", "shared_vocabulary.json", "spiece.model"):
        assert (built / name).read_bytes() == (madlad["model"] / name).read_bytes(), name
    assert load_layout(built).target_languages == load_layout(madlad["model"]).target_languages


def test_layout_is_recognised_from_its_files(madlad, tmp_path) -> None:
    layout = load_layout(madlad["model"])
    assert layout.kind == "madlad" and layout.multilingual
    assert set(layout.target_languages) == TAGS
    assert layout.target_languages["zh-Hant"] == "<2zh_Hant>" and layout.target_languages["ff"] == "<2ff>"
    # Any source: the model is never told the source language.
    assert set(layout.source_languages) == TAGS and set(layout.source_languages.values()) == {""}
    assert layout.target_prefix("uk") is None
    # A published CTranslate2 conversion names the same file sentencepiece.model.
    copy = shutil.copytree(madlad["model"], tmp_path / "madlad400-3b-ct2")
    (copy / "spiece.model").rename(copy / "sentencepiece.model")
    assert load_layout(copy).kind == "madlad"
    # Declared languages narrow the lists (catalog entry or parlons.json).
    narrowed = load_layout(madlad["model"], target_languages=["fr", "uk", "de"])
    assert set(narrowed.target_languages) == {"fr", "uk"} and set(narrowed.source_languages) == TAGS
    (copy / "parlons.json").write_text(json.dumps({"layout": "madlad", "source_languages": ["fr", "en"]}))
    assert set(load_layout(copy).source_languages) == {"fr", "en"}


def test_target_token_is_encoded_as_the_models_tokenizer_does(madlad) -> None:
    """The tokens are those of the model's own tokenizer for "<2uk> text" plus `</s>`."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    layout = load_layout(madlad["model"])
    hf_tokenizer = AutoTokenizer.from_pretrained(str(madlad["hf"]))
    sp = spm.SentencePieceProcessor(model_file=str(madlad["hf"] / "spiece.model"))
    vocabulary = json.loads((madlad["model"] / "shared_vocabulary.json").read_text())
    for text, source, target in [("Bonjour, je voudrais renouveler mon titre de séjour.", "fr", "uk"),
                                 ("Hello, I would like to renew my residence permit.", "en", "fr"),
                                 ("Привіт, Ωμέγα ✓", "uk", "zh-Hant")]:
        tokens = layout.source_tokens(text, source, target)
        token = layout.target_languages[target]
        # SentencePiece on the whole "<2xx> text", as the model was trained (seqio), + EOS.
        assert tokens == sp.encode(f"{token} {text}", out_type=str) + ["</s>"]
        assert tokens[:2] == ["▁", token] and tokens[-1] == "</s>"
        assert tokens.count(token) == 1 and all(t in vocabulary for t in tokens)
        if "Ω" not in text:
            # Hugging Face's T5 tokenizer gives the same ids. (Its conversion of this small
            # test model drops byte fallback, so characters out of the vocabulary differ.)
            assert tokens == hf_tokenizer.convert_ids_to_tokens(hf_tokenizer(f"{token} {text}").input_ids)
        else:
            assert "<0xCE>" in tokens  # byte fallback pieces, in the vocabulary


async def test_translation_runs_end_to_end(madlad) -> None:
    model = await asyncio.to_thread(TranslationModel.load, madlad["model"], RUNTIME)
    seen: list[tuple[list[list[str]], object]] = []
    translator = model.translator

    class Spy:
        """Records what CTranslate2 receives, then translates."""

        def translate_batch(self, sources, target_prefix=None, **kwargs):
            seen.append(([list(s) for s in sources], target_prefix))
            return translator.translate_batch(sources, target_prefix=target_prefix, **kwargs)

        def __getattr__(self, name):
            return getattr(translator, name)

    model.translator = Spy()  # type: ignore[assignment]
    engine = TranslationEngine([model], detect=False)
    try:
        for source, target, text in [
            ("fr", "uk", "Bonjour, je voudrais renouveler mon titre de séjour.\nMerci."),
            ("en", "fr", "Hello, I would like to renew my residence permit."),
        ]:
            seen.clear()
            result = (await engine.translate([text], target, source))[0]
            assert result.model == model.name and isinstance(result.text, str)
            assert result.text.count("\n") == text.count("\n")
            token = model.layout.target_languages[target]
            sources = [s for batch, _ in seen for s in batch]
            assert sources and all(s[:2] == ["▁", token] and s[-1] == "</s>" for s in sources)
            assert all(prefix is None for _, prefix in seen)  # no target prefix
    finally:
        await model.aclose()


async def test_registry_routes_pairs_through_madlad(madlad, tmp_path) -> None:
    bilingual = await asyncio.to_thread(build_bilingual_model, tmp_path / "opus-mt-fr-en", "fr", "en")
    models = [TranslationModel.load(bilingual, RUNTIME), TranslationModel.load(madlad["model"], RUNTIME)]
    engine = TranslationEngine(models, detect=False)
    name = models[1].name
    try:
        assert engine.registry.route("fr", "en").model_name == "opus-mt-fr-en"  # bilingual first
        for source, target in [("fr", "uk"), ("uk", "fr"), ("en", "ar"), ("ar", "es"), ("fa-AF", "fr")]:
            route = engine.registry.route(source, target)
            assert route.model_name == name and not route.pivot, (source, target)
        hop = engine.registry.route("fr-FR", "zh-TW").hops[0]
        assert (hop.model.name, hop.source, hop.target) == (name, "fr", "zh-Hant")
        pairs = {(p.source, p.target): p.model for p in engine.pairs()}
        assert pairs[("uk", "fr")] == name and pairs[("fr", "en")] == "opus-mt-fr-en"
        with pytest.raises(NotFound):
            engine.registry.route("fr", "de")  # no <2de> in this vocabulary
        result = await engine.translate(["Le dossier n° 2024/12345 est prêt."], "uk", "fr")
        assert result[0].model == name and "n° 2024/12345" in result[0].text
    finally:
        for m in models:
            await m.aclose()
