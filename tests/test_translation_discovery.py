"""Translation models found, not configured (issue 27): whatever the model cache holds is
served; `[translation] models` narrows; a broken model is refused by name, the others
served. Test models (random weights) stand in for real ones: the layout is what counts."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from parlons.models.manager import ModelManager
from parlons.services.common.config import ParlonsConfig
from parlons.services.translation.discovery import model_sources
from parlons.services.translation.servicer import TranslationModule
from translation_models import build_bilingual_model


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model cache holding opus-mt-en-fr pulled from a mirror, as `parlons models pull`
    installs it, and a fr->en model converted by hand under a name of its own."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    build_bilingual_model(mirror / "opus-mt-en-fr", "en", "fr", seed=5)
    monkeypatch.setenv("PARLONS_MODEL_MIRROR", str(mirror))
    monkeypatch.setenv("PARLONS_MODEL_CACHE", str(cache))
    ModelManager(cache_dir=cache, allow_download=False).pull("opus-mt-en-fr", progress=False)
    build_bilingual_model(cache / "mon-modele-fr-en", "fr", "en", seed=0)
    return cache


def _served(config: ParlonsConfig) -> dict[str, tuple[list[str], list[str]]]:
    engine = TranslationModule(config.translation)._load_engine()
    return {m.name: (sorted(m.source_languages), sorted(m.target_languages)) for m in engine.models}


def test_every_installed_model_is_served_without_configuration(cache: Path) -> None:
    assert _served(ParlonsConfig()) == {"opus-mt-en-fr": (["en"], ["fr"]), "mon-modele-fr-en": (["fr"], ["en"])}


def test_the_configuration_narrows_to_the_models_it_names(cache: Path) -> None:
    config = ParlonsConfig()
    config.translation.models = ["mon-modele-fr-en"]
    assert list(_served(config)) == ["mon-modele-fr-en"]
    config.translation.models = ["opus-mt-en-fr"]
    assert list(_served(config)) == ["opus-mt-en-fr"]


def test_a_broken_model_is_refused_by_name_and_the_others_served(cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    (cache / "opus-mt-en-fr" / "model.bin").unlink()  # a half-finished copy
    whisper_like = cache / "whisper-maison"  # another kind of model converted by hand
    whisper_like.mkdir()
    (whisper_like / "model.bin").write_bytes(b"\0" * 64)
    (whisper_like / "vocabulary.txt").write_text("a\nb\n")
    with caplog.at_level(logging.INFO, logger="parlons.translation"):
        served = _served(ParlonsConfig())
    assert list(served) == ["mon-modele-fr-en"]
    refused = [r for r in caplog.records if r.getMessage() == "translation model refused"]
    assert len(refused) == 1
    fields = refused[0].__dict__["fields"]
    assert fields["model"] == "opus-mt-en-fr" and "model.bin" in fields["reason"], fields
    skipped = [r for r in caplog.records if r.getMessage() == "not a translation model, skipped"]
    assert [r.__dict__["fields"]["path"] for r in skipped] == ["whisper-maison"]


def test_discovery_lists_sources_with_the_catalogs_languages(cache: Path) -> None:
    sources, refused = model_sources([], ModelManager(cache_dir=cache, allow_download=False))
    assert refused == []
    by_name = {s.name: s for s in sources}
    assert by_name["opus-mt-en-fr"].source_languages == ("en",) and not by_name["opus-mt-en-fr"].guessed
    assert by_name["mon-modele-fr-en"].guessed
    shutil.rmtree(cache / "mon-modele-fr-en")
    sources, _ = model_sources(["absent-model"], ModelManager(cache_dir=cache, allow_download=False))
    assert sources == []


def test_a_pair_no_model_serves_is_not_found_naming_the_models_that_would(cache: Path) -> None:
    from parlons.errors import NotFound

    engine = TranslationModule(ParlonsConfig().translation)._load_engine()
    with pytest.raises(NotFound) as uk:
        engine.registry.route("fr", "uk")
    message = str(uk.value)
    assert "cannot translate fr to uk" in message
    assert "opus-mt-fr-en and opus-mt-en-uk serve it through English" in message  # fr>en is not installed here
    assert "m2m100-418m (MIT)" in message and "madlad400-3b-mt (Apache-2.0)" in message
    with pytest.raises(NotFound) as ar:
        engine.registry.route("en", "ar")
    assert "the catalog's opus-mt-en-ar serves it" in str(ar.value)
