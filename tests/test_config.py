from __future__ import annotations

from pathlib import Path

import pytest

from parlons.services.common.config import load_config
from parlons.errors import InvalidArgument


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "parlons.toml"
    path.write_text(
        '[server]\nport = 6000\n[transcription]\nmodel = "base"\nmax_queued = 3\n'
        '[translation]\nmodels = ["a", "b"]\n'
    )
    config = load_config(path, environ={"PARLONS_SERVER_PORT": "7000", "PARLONS_TRANSCRIPTION_BATCHED": "on",
                                        "PARLONS_DIARIZATION_ENABLED": "false"})
    assert config.server.port == 7000  # environment wins over the file
    assert config.transcription.model == "base"
    assert config.transcription.max_queued == 3
    assert config.transcription.batched == "on"
    assert config.diarization.enabled is False
    assert config.translation.models == ["a", "b"]
    assert config.server.max_message_mb == 64  # untouched default


@pytest.mark.parametrize(
    "text, message",
    [
        ("[nope]\nx = 1\n", "unknown section"),
        ("[server]\nprot = 1\n", "unknown setting"),
        ("[server]\nport = 'abc'\n", "invalid literal"),
        ("[server\n", "cannot read config"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=message):
        load_config(path, environ={})


def test_bad_environment_value() -> None:
    with pytest.raises(InvalidArgument, match="PARLONS_SERVER_LOG_JSON"):
        load_config(None, environ={"PARLONS_SERVER_LOG_JSON": "maybe"})
