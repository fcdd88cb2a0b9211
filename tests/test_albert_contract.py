"""The older albert-api registers parlons and transcribes through it (issue 11): the
requests its own code sends (tests/albert_contract.py, from etalab-ia/albert-api at commit
3c7b965, its releases up to August 2025), against a real gateway with the multilingual
default and French speech. Kept because an administration may still run that version;
OpenGateLLM, its successor (September 2026 code), is tests/test_opengatellm_contract.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from albert_contract import AlbertHTTPError, AlbertProvider, AudioTranscription
from gateway_helpers import Tenants, gateway_config, gateway_module, make_tenants, start_embedded
from parlons.services.common.server import BackgroundServer
from speech import AUDIO, JFK_TEXT, espeak, normalise, wer

pytestmark = pytest.mark.slow

FRENCH = "Bonjour madame, je voudrais renouveler mon titre de séjour."


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    return make_tenants(tmp_path_factory.mktemp("tenants") / "tenants.toml")


@pytest.fixture(scope="module")
def gateway(tenants: Tenants) -> Iterator[BackgroundServer]:
    config = gateway_config(tenants, None, transcription_model="base")
    config.gateway.rest_max_audio_s = 25.0  # what an Albert deployment sets against its timeout
    server = start_embedded(config, ["transcription"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def url(gateway: BackgroundServer) -> str:
    return f"http://127.0.0.1:{gateway_module(gateway).rest_port}"


@pytest.fixture(scope="module")
def french_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak(FRENCH, "fr", tmp_path_factory.mktemp("speech") / "fr.wav").read_bytes()


def test_albert_registers_parlons_by_its_model_name_or_an_alias(url: str, tenants: Tenants) -> None:
    for name in ("base", "whisper-1"):
        provider = AlbertProvider(url=url, key=tenants.keys["a"], model_name=name)
        provider.register()  # AssertionError or KeyError here is Albert skipping the model
        assert provider.vector_size is None  # no embeddings here, and Albert accepts that
    with pytest.raises(AssertionError, match="Model not found"):
        AlbertProvider(url=url, key=tenants.keys["a"], model_name="large-v3").register()
    with pytest.raises(AssertionError, match="401"):
        AlbertProvider(url=url, key="prl_000000000000_" + "x" * 43, model_name="base").register()


@pytest.mark.parametrize("language", ["french", "fr", ""])
def test_albert_forwards_a_french_transcription_as_json(url: str, tenants: Tenants, french_wav: bytes,
                                                        language: str) -> None:
    provider = AlbertProvider(url=url, key=tenants.keys["a"], model_name="whisper-1")
    result = asyncio.run(provider.transcribe("guichet.wav", french_wav, "audio/wav", language=language))
    assert isinstance(result, AudioTranscription)
    # espeak's voice through the base model: the words a French transcript must hold, no
    # accuracy claim (the greeting itself varies with the CPU's instruction set: "Bonjour
    # ma tâme" with AVX-512, "Pour jouer ma tame" with AVX2).
    words = normalise(result.text).split()
    assert {"je", "voudrais", "de"} <= set(words), result.text


def test_albert_forwards_text_format(url: str, tenants: Tenants) -> None:
    provider = AlbertProvider(url=url, key=tenants.keys["a"], model_name="base")
    text = asyncio.run(provider.transcribe("jfk.flac", (AUDIO / "jfk.flac").read_bytes(), "audio/flac",
                                           language="english", response_format="text"))
    assert isinstance(text, str) and wer(JFK_TEXT, text) <= 0.1, text


def test_what_parlons_cannot_serve_reaches_albert_users_as_a_message(url: str, tenants: Tenants, tmp_path: Path) -> None:
    provider = AlbertProvider(url=url, key=tenants.keys["a"], model_name="base")
    cases = [
        (dict(filename="notes.wav", content=b"these are not audio bytes", content_type="audio/wav"), "file"),
        (dict(filename="a.flac", content=(AUDIO / "jfk.flac").read_bytes(), content_type="audio/flac",
              language="klingon"), "language"),
        (dict(filename="long.wav", content=(AUDIO / "sample.wav").read_bytes(), content_type="audio/wav"), "file"),
    ]
    for kwargs, param in cases:
        with pytest.raises(AlbertHTTPError) as info:
            asyncio.run(provider.transcribe(**kwargs))  # type: ignore[arg-type]
        assert info.value.status_code == 400
        error = info.value.detail["error"]  # Albert passes parlons' OpenAI-style error on whole
        assert error["param"] == param and len(error["message"]) > 20, error
        if kwargs["filename"] == "long.wav":  # 30 s, over the 25 s limit: where to go instead
            assert "parlons transcribe" in error["message"], error
