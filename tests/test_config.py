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
        ("[server]\nport = 'abc'\n", "valid integer"),
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


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"PARLONS_TRANSCRIPTION_BATCHED": "yes"}, ["PARLONS_TRANSCRIPTION_BATCHED", "'auto', 'on' or 'off'"]),
        ({"PARLONS_SERVER_PORT": "99999"}, ["PARLONS_SERVER_PORT", "65535"]),
        ({"PARLONS_TRANSCRIPTION_MAX_CONCURRENT": "0"}, ["PARLONS_TRANSCRIPTION_MAX_CONCURRENT", "greater than or equal to 1"]),
        ({"PARLONS_TRANSCRIPTION_WINDOW_FLOOR_S": "45"}, ["PARLONS_TRANSCRIPTION_WINDOW_FLOOR_S", "30"]),
        ({"PARLONS_GATEWAY_AUTH": "apikey"}, ["PARLONS_GATEWAY_AUTH", "'api_key'"]),
        ({"PARLONS_GATEWAY_QUOTA_REDIS_FAILURE": "maybe"}, ["PARLONS_GATEWAY_QUOTA_REDIS_FAILURE", "'closed' or 'open'"]),
        ({"PARLONS_TRANSLATION_PIVOT_LANGUAGE": "english"}, ["PARLONS_TRANSLATION_PIVOT_LANGUAGE", "BCP-47"]),
        ({"PARLONS_DIARIZATION_DEVICE": "gpu"}, ["PARLONS_DIARIZATION_DEVICE"]),
        ({"PARLONS_TRANSLATION_COMPUTE_TYPE": "int4"}, ["PARLONS_TRANSLATION_COMPUTE_TYPE", "'int8'"]),
    ],
)
def test_every_choice_and_bound_is_checked_at_load_naming_its_variable(environ: dict[str, str], names: list[str]) -> None:
    """A wrong value fails when the configuration loads (not when a model loads), naming
    the variable it came from and what it should be."""
    with pytest.raises(InvalidArgument) as info:
        load_config(None, environ=environ)
    for name in names:
        assert name in info.value.message, info.value.message


def test_a_bad_value_in_the_file_names_the_file_and_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "parlons.toml"
    path.write_text('[transcription]\nbatched = "yes"\n')
    with pytest.raises(InvalidArgument, match=r"parlons\.toml: \[transcription\] batched: Input should be 'auto', 'on' or 'off'"):
        load_config(path, environ={})


def test_text_values_lists_and_empty_optionals_from_the_environment() -> None:
    config = load_config(None, environ={
        "PARLONS_GATEWAY_TRANSCRIPTION": "10.0.0.1:50051, 10.0.0.2:50051",
        "PARLONS_TRANSCRIPTION_LIVE_EARLY_FINAL_MS": "",
        "PARLONS_SERVER_LOG_LEVEL": "debug",
        "PARLONS_SERVER_REFLECTION": "off",
        "PARLONS_TRANSCRIPTION_MAX_STREAM_BUFFER_S": "20",
    })
    assert config.gateway.transcription == ["10.0.0.1:50051", "10.0.0.2:50051"]
    assert config.transcription.live_early_final_ms is None
    assert config.server.log_level == "DEBUG" and config.server.reflection is False
    assert config.transcription.max_stream_buffer_s == 20.0


def test_a_value_set_in_code_is_checked_too() -> None:
    config = load_config(None, environ={})
    config.server.port = 6000
    with pytest.raises(InvalidArgument, match="port"):
        config.server.port = -1
    with pytest.raises(InvalidArgument, match="batched"):
        config.transcription.batched = "yes"  # type: ignore[assignment]
    assert config.server.port == 6000 and config.transcription.batched == "auto"


def test_the_live_buffer_bound_reaches_the_transcription_module() -> None:
    from parlons.services.transcription.servicer import TranscriptionModule

    config = load_config(None, environ={"PARLONS_TRANSCRIPTION_MAX_STREAM_BUFFER_S": "15"})
    assert TranscriptionModule(config.transcription).max_stream_buffer_s == 15.0
