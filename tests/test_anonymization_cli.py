"""`parlons transcribe --anonymize-audio` and `parlons anonymize --file` as a user runs
them: in-process services, real speech, outputs checked on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parlons.services.common.audio import decode_audio
from speech import espeak

SPEECH = ("Bonjour. Je m'appelle Fatima Benali. Mon numéro de téléphone est le 06 12 34 56 78. "
          "Je suis née le 3 mars 1985.")


def _parlons(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parlons.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.slow
def test_transcribe_with_anonymized_outputs_and_a_masked_recording(tmp_path: Path) -> None:
    audio = espeak(SPEECH, "fr+f2", tmp_path / "accueil.wav")
    plain = _parlons("transcribe", str(audio), "--language", "fr", "--model", "base", "--output-dir",
                     str(tmp_path / "plain"), "--quiet")
    assert plain.returncode == 0, plain.stderr
    assert "Fatima" in (tmp_path / "plain" / "accueil.txt").read_text()  # what would leak
    done = _parlons("transcribe", str(audio), "--language", "fr", "--model", "base", "--anonymize-audio",
                    "silence", "--output-dir", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    for name in ("accueil.txt", "accueil.srt", "accueil.vtt", "accueil.json"):
        assert "Fatima" not in (out / name).read_text(), name
    assert "[PERSONNE_1]" in (out / "accueil.txt").read_text()
    words = [w for s in json.loads((out / "accueil.json").read_text())["segments"] for w in s["words"]]
    masked = [(w["start_s"], w["end_s"]) for w in words if "[PERSONNE_" in w["word"] or "[DATE_" in w["word"]]
    assert masked
    before = decode_audio(audio.read_bytes())
    after = decode_audio((out / "accueil.anonymise.wav").read_bytes())
    assert after.source_sample_rate == before.source_sample_rate and abs(after.duration_s - before.duration_s) < 0.05
    rate = after.sample_rate
    x, y = before.samples.reshape(-1), after.samples.reshape(-1)  # mono
    for start, end in masked:
        assert np.abs(y[int(start * rate):int(end * rate)]).max() < 1e-3
        assert np.abs(x[int(start * rate):int(end * rate)]).max() > 0.01  # there was speech
    elsewhere = np.ones(y.shape[0], dtype=bool)
    for start, end in masked:
        elsewhere[max(int((start - 0.2) * rate), 0):int((end + 0.2) * rate)] = False
    assert np.abs(y[elsewhere]).max() > 0.01  # the rest is still speech


@pytest.mark.slow
def test_anonymize_a_text_file_keeps_its_lines(tmp_path: Path) -> None:
    source = tmp_path / "entretien.txt"
    source.write_text("Madame Benali est venue.\n\nSon numéro : 06 12 34 56 78.\nBenali reviendra lundi.\n",
                      encoding="utf-8")
    done = _parlons("anonymize", "--file", str(source))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "entretien.anonymise.txt").read_text(encoding="utf-8").split("\n") == [
        "Madame [PERSONNE_1] est venue.", "", "Son numéro : [TELEPHONE_1].", "[PERSONNE_1] reviendra lundi.", ""]


@pytest.mark.slow
def test_anonymize_a_docx_keeps_its_layout(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Compte rendu d'entretien", 1)
    paragraph = document.add_paragraph("Madame ")
    paragraph.add_run("Fatima Benali").bold = True
    paragraph.add_run(" s'est présentée au guichet. Téléphone : 06 12 34 56 78.")
    document.add_paragraph("Benali habite 12 bis rue des Lilas, 69003 Lyon.")
    source = tmp_path / "cr.docx"
    document.save(str(source))
    done = _parlons("anonymize", "--file", str(source))
    assert done.returncode == 0, done.stderr
    out = docx.Document(str(tmp_path / "cr.anonymise.docx"))
    runs = [[(r.text, r.bold) for r in p.runs] for p in out.paragraphs]
    assert runs[0] == [("Compte rendu d'entretien", None)]
    assert runs[1] == [("Madame ", None), ("[PERSONNE_1]", True),
                       (" s'est présentée au guichet. Téléphone : [TELEPHONE_1].", None)]
    assert runs[2] == [("[PERSONNE_1] habite [ADRESSE_1].", None)]
