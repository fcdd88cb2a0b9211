"""The `parlons` command as a person runs it: real subprocesses, real models, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from parlons.models.manager import ModelManager
from speech import AUDIO, JFK_TEXT, wer
from translation_models import build_bilingual_model

pytestmark = pytest.mark.slow


def parlons(*args: str, cwd: Path | None = None, stdin: str | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parlons.cli", *args],
        capture_output=True, text=True, cwd=cwd, input=stdin, timeout=timeout,
        env={**os.environ, "PARLONS_SERVER_LOG_LEVEL": "WARNING", **(env or {})},
    )


def test_help_lists_every_command() -> None:
    result = parlons("--help")
    assert result.returncode == 0
    for command in ["serve", "models", "transcribe", "translate"]:
        assert command in result.stdout


def test_transcribe_writes_every_format(tmp_path: Path) -> None:
    result = parlons("transcribe", str(AUDIO / "jfk.flac"), str(AUDIO / "english.wav"),
                     "--output-dir", str(tmp_path), "--word-timestamps")
    assert result.returncode == 0, result.stderr
    assert wer(JFK_TEXT, (tmp_path / "jfk.txt").read_text()) <= 0.05
    data = json.loads((tmp_path / "jfk.json").read_text())
    assert data["language"] == "en" and data["segments"][0]["words"]
    subtitles = list(srt.parse((tmp_path / "jfk.srt").read_text()))
    assert subtitles and subtitles[0].start.total_seconds() < subtitles[-1].end.total_seconds() <= 11.5
    captions = webvtt.from_string((tmp_path / "jfk.vtt").read_text())
    assert len(captions) == len(subtitles)
    assert wer("one two three", (tmp_path / "english.txt").read_text()) == 0.0


def test_transcribe_reports_a_bad_file_and_goes_on(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    result = parlons("transcribe", str(bad), str(AUDIO / "english.wav"), "--output-dir", str(tmp_path), "--format", "txt")
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr
    assert (tmp_path / "english.txt").is_file() and not (tmp_path / "notes.txt").exists()


def test_transcribe_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    result = parlons("transcribe", str(AUDIO / "english.wav"), "--format", "docx")
    assert result.returncode == 2
    assert "unknown format" in result.stderr


def test_translate_text_and_document_in_process(tmp_path: Path) -> None:
    model = build_bilingual_model(tmp_path / "opus-mt-fr-en", "fr", "en")
    result = parlons("translate", "--models", str(model), "--from", "fr", "--to", "en",
                     "Bonjour madame.", "Le dossier n° 2024/12345 est complet.")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and "2024/12345" in lines[1]
    document = tmp_path / "courrier.srt"
    document.write_text("1\n00:00:01,000 --> 00:00:02,500\nBonjour.\n\n2\n00:00:03,000 --> 00:00:04,000\nAu revoir.\n")
    result = parlons("translate", "--models", str(model), "--from", "fr", "--to", "en", "--file", str(document))
    assert result.returncode == 0, result.stderr
    translated = list(srt.parse((tmp_path / "courrier.en.srt").read_text()))
    assert [s.start.total_seconds() for s in translated] == [1.0, 3.0]


def test_translate_without_models_says_what_to_do() -> None:
    result = parlons("translate", "--to", "en", "Bonjour")
    assert result.returncode != 0
    assert "no translation model is installed" in result.stderr and "parlons models pull" in result.stderr


def test_main_job_speaker_attributed_and_translated(tmp_path: Path) -> None:
    """The README's first command where setup could pull a translation model (here a test
    en>fr model from a local mirror, as `scripts/setup.sh` pulls from a hub): nothing to
    configure, the installed model is served."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    build_bilingual_model(mirror / "opus-mt-en-fr", "en", "fr")
    cache.mkdir()
    for installed in ModelManager().cache_dir.iterdir():  # the models setup installed
        if not installed.name.startswith("."):
            (cache / installed.name).symlink_to(installed)
    env = {"PARLONS_MODEL_MIRROR": str(mirror), "PARLONS_MODEL_CACHE": str(cache)}
    pulled = parlons("models", "pull", "opus-mt-en-fr", env=env)
    assert pulled.returncode == 0, pulled.stderr
    out = tmp_path / "out"
    result = parlons("transcribe", str(AUDIO / "sample.wav"), "--diarize", "--translate-to", "fr", "--print",
                     "--output-dir", str(out), env={"PARLONS_MODEL_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    turns = list(srt.parse((out / "sample.srt").read_text()))
    translated = list(srt.parse((out / "sample.fr.srt").read_text()))
    # "SPEAKER_00: ..." or, over overlapped speech, "SPEAKER_00 (+ SPEAKER_01): ..."
    labels = {line.split(":")[0] for line in (out / "sample.txt").read_text().splitlines()}
    assert {label.split(" (+ ")[0] for label in labels} == {"SPEAKER_00", "SPEAKER_01"}
    assert (out / "sample.rttm").read_text().count("SPEAKER sample") >= 2
    # one translated line per turn; cues keep the turns' times (long turns are cut only
    # in the original, where word timestamps exist)
    assert len((out / "sample.fr.txt").read_text().splitlines()) == len((out / "sample.txt").read_text().splitlines())
    assert translated[0].start == turns[0].start and translated[-1].end == turns[-1].end
    assert all(s.content.strip() for s in translated)
    printed = result.stdout.splitlines()
    assert sum(1 for line in printed if line.strip().startswith("fr:")) == len((out / "sample.txt").read_text().splitlines())


def test_main_job_without_a_translation_model_says_what_to_install(tmp_path: Path) -> None:
    result = parlons("transcribe", str(AUDIO / "english.wav"), "--diarize", "--translate-to", "fr",
                     "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no translation model into 'fr'" in result.stderr and "parlons models pull opus-mt-en-fr" in result.stderr
    assert (tmp_path / "english.txt").is_file() and not (tmp_path / "english.fr.txt").exists()
