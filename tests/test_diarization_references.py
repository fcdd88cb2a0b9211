"""Naming speakers from reference voices and the speaker-count report, on made vectors:
the rules themselves (pairing, threshold, names refused, count stability)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parlons.errors import InvalidArgument
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


@pytest.mark.slow
def test_a_voice_recorded_in_one_meeting_names_its_speaker_in_another(data_dir: Path) -> None:
    """MEE009 speaks in both dev00 and dev01 (AMI): a reference cut from dev00's reference
    turns names the speaker of dev01 whose time is mostly MEE009's; no other is named."""
    from pyannote.core import Segment
    from pyannote.database.util import load_rttm

    from parlons.services.common.audio import DecodedAudio, decode_audio
    from parlons.services.diarization.engine import DiarizationEngine
    from parlons.services.diarization.options import DiarizationConfig

    meetings = data_dir / "meetings"
    truth = load_rttm(str(meetings / "meetings.rttm"))
    engine = DiarizationEngine(DiarizationConfig.from_file())
    source = decode_audio((meetings / "dev00.flac").read_bytes()).mono()
    own = truth["dev00"].label_timeline("MEE009").support()
    others = truth["dev00"].subset(["MEE012"]).get_timeline().support()
    clean = np.concatenate([source[int(s.start * 16000):int(min(s.end, 30.0) * 16000)]
                            for s in own.extrude(others)])
    reference = engine.reference_print(DecodedAudio.from_array(clean), "Karim")
    result = engine.diarize(decode_audio((meetings / "dev01.flac").read_bytes()), references=[reference])
    named = [s for s in result.speakers if s.speaker == "Karim"]
    assert len(named) == 1 and named[0].reference_similarity >= 0.5
    heard: dict[str, float] = {}
    for turn in result.turns:
        if turn.speaker == "Karim":
            for segment, _, label in truth["dev01"].crop(Segment(turn.start, turn.end)).itertracks(yield_label=True):
                heard[label] = heard.get(label, 0.0) + segment.duration
    assert max(heard, key=lambda k: heard[k]) == "MEE009"
    with pytest.raises(InvalidArgument, match="silent"):
        engine.reference_print(DecodedAudio.from_array(np.zeros(16000 * 4, dtype=np.float32)), "agent")
    with pytest.raises(InvalidArgument, match="speech"):
        engine.reference_print(DecodedAudio.from_array(clean[: 16000]), "agent")
