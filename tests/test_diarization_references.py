"""Naming speakers from reference voices and the speaker-count report, on made vectors:
the rules themselves (pairing, threshold, names refused, count stability)."""

from __future__ import annotations

import numpy as np
import pytest

from parlons.services.common.errors import InvalidArgument
from parlons.services.diarization.references import VoiceReference, check_reference_names, name_speakers
from parlons.services.diarization.results import count_note
from parlons.services.diarization.speaker_count import count_report


def _unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_each_reference_names_at_most_one_speaker_and_only_above_the_threshold() -> None:
    centroids = {"SPEAKER_00": np.array([1.0, 0.1, 0.0]), "SPEAKER_01": np.array([0.9, 0.0, 0.3]),
                 "SPEAKER_02": np.array([0.0, 0.0, 1.0])}
    agent = VoiceReference("agent", _unit([1.0, 0.0, 0.0]), 5.0)
    names = name_speakers(centroids, [agent], threshold=0.5)
    assert {k: v.name for k, v in names.items()} == {"SPEAKER_00": "agent"}
    assert names["SPEAKER_00"].similarity > 0.99
    visitor = VoiceReference("visitor", _unit([0.0, 1.0, 0.0]), 5.0)
    assert "SPEAKER_02" not in name_speakers(centroids, [agent, visitor], threshold=0.5)
    assert name_speakers(centroids, [visitor], threshold=0.5) == {}


@pytest.mark.parametrize("names", [[""], ["SPEAKER_00"], ["a", "a"], ["x" * 65], ["<script>"], ["n"] * 9])
def test_bad_reference_names_are_refused(names: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        check_reference_names(names)


def test_the_count_report_is_sure_of_well_separated_voices_and_not_of_a_blur() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3]
    clear = np.vstack([c + 0.05 * rng.standard_normal((20, 8)) for c in centres])
    report = count_report(clear, threshold=0.7, method="centroid", metric="cosine", min_cluster_size=5, band=0.1)
    assert report.estimated == 3 and report.confidence == 1.0
    blur = rng.standard_normal((60, 8))
    report = count_report(blur, threshold=0.7, method="centroid", metric="cosine", min_cluster_size=5, band=0.1)
    assert report.confidence < 1.0
    assert sum(report.distribution.values()) == pytest.approx(1.0, abs=0.01)


def test_count_notes_say_why_the_answer_differs_from_what_was_asked() -> None:
    assert "min_speakers=6" in count_note(found=2, estimated=2, num=None, low=6, high=None)
    assert "max_speakers=2" in count_note(found=2, estimated=4, num=None, low=None, high=2)
    assert count_note(found=2, estimated=2, num=None, low=None, high=None) == ""
