"""The translation quality benchmark (benchmarks/bench_mt_quality.py, issue 27) runs in CI
on test models: it finds them as the service does, scores every pair they serve on the
FLORES sentences (a pivot route too), prints the published figures beside ours, and says
plainly that scores of random weights mean nothing. Its scoring is right on known cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_mt_quality as bench  # noqa: E402
from translation_models import build_bilingual_model  # noqa: E402


def test_scores_of_known_cases() -> None:
    references = bench.load_flores(20)["fr"]
    same = bench.score(references, references)
    assert same.bleu == pytest.approx(100.0) and same.chrf == pytest.approx(100.0)
    empty = bench.score([""] * len(references), references)
    assert empty.bleu == 0.0 and empty.chrf == 0.0
    english = bench.load_flores(20)["en"]
    partial = bench.score(english, references)  # the wrong language: low, not zero (names, numbers)
    assert 0.0 < partial.chrf < 50.0 and partial.bleu < 20.0
    # A faithful output scores far better against its own references than against others'.
    assert bench.misaligned_chrf(references, references) < 40.0
    with pytest.raises(ValueError):
        bench.score(references[:2], references)


def test_the_flores_files_are_aligned_and_complete() -> None:
    data = bench.load_flores()
    assert set(data) == {"en", "fr", "uk", "ar", "es", "de", "ru", "tr", "ro", "fa"}
    assert {len(lines) for lines in data.values()} == {200}
    assert all(line for lines in data.values() for line in lines)
    # FLORES devtest, sentence 150 in three scripts: the same crash site.
    assert "crash site" in data["en"][149] and "accident" in data["fr"][149] and "катастрофи" in data["uk"][149]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model cache holding a fr->en and an en->fr test model, converted by hand."""
    cache = tmp_path / "cache"
    build_bilingual_model(cache / "essai-fr-en", "fr", "en", seed=0)
    build_bilingual_model(cache / "essai-en-fr", "en", "fr", seed=1)
    monkeypatch.setenv("PARLONS_MODEL_CACHE", str(cache))
    monkeypatch.delenv("PARLONS_TRANSLATION_MODELS", raising=False)
    return cache


def test_the_benchmark_scores_the_installed_test_models_and_says_they_mean_nothing(
        cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = bench.main(["--limit", "6", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "essai-en-fr, essai-fr-en (every translation model of the model cache)" in out
    assert sorted((r.model, r.pair) for r in results) == [("essai-en-fr", "en-fr"), ("essai-fr-en", "fr-en")]
    for r in results:
        assert r.sentences == 6 and 0.0 <= r.bleu <= 100.0 and 0.0 <= r.chrf <= 100.0 and r.sentences_per_s > 0
        assert r.meaningless and not r.published
        assert f"| {r.model} | {r.pair} | 6 | {r.bleu:.1f} | {r.chrf:.1f} | not published |" in out
    for name in ("essai-fr-en", "essai-en-fr"):
        assert f"MEANINGLESS: {name}: scores of a model with random weights mean nothing" in out


def test_named_models_a_pivot_route_and_the_published_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Directories named like the catalog's OPUS-MT models: their published figures are
    printed beside ours (and ours flagged), and fr->uk is scored through English."""
    monkeypatch.setenv("PARLONS_MODEL_CACHE", str(tmp_path / "empty-cache"))
    fr_en = build_bilingual_model(tmp_path / "opus-mt-fr-en", "fr", "en", seed=0)
    en_uk = build_bilingual_model(tmp_path / "opus-mt-en-uk", "en", "uk", seed=2)
    results = bench.main(["--models", f"{fr_en},{en_uk}", "--limit", "4", "--device", "cpu",
                          "--json", str(tmp_path / "scores.json")])
    out = capsys.readouterr().out
    by_pair = {r.pair: r for r in results}
    assert set(by_pair) == {"fr-en", "en-uk", "fr-uk"}
    assert by_pair["fr-uk"].model == "opus-mt-fr-en>opus-mt-en-uk" and not by_pair["fr-uk"].published
    published = {(p.source, p.bleu, p.chrf) for p in by_pair["fr-en"].published}
    assert ("opus-mt-leaderboard", 41.7, 66.89) in published and ("mozilla", 41.7, None) in published
    assert "41.7 / 66.9 [1]" in out and "models/OPUS-MT-models/fr-en/opus-2020-02-26.scores.txt" in out
    assert all(r.meaningless for r in results)
    assert "MEANINGLESS: opus-mt-en-uk: scores of a model with random weights mean nothing" in out
    assert (tmp_path / "scores.json").read_text().count('"meaningless": true') == 3
