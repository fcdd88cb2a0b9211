"""The word-level merge of transcription and diarisation, on hand-made timings.

End-to-end accuracy with real models (sample.wav) is in test_gateway_service.py; these
cases pin the rules themselves: max overlap, nearest turn for words in gaps, segments
split at a change of speaker, channel mode, subtitles with speaker names.
"""

from __future__ import annotations

import pytest

from parlons import transcripts
from parlons.services.gateway import compose
from parlons.v1 import gateway_pb2, transcription_pb2


def _transcript(*segments: list[tuple[float, float, str]], language: str = "en") -> transcription_pb2.TranscribeResponse:
    response = transcription_pb2.TranscribeResponse(language=language)
    for i, words in enumerate(segments):
        segment = response.segments.add(
            id=i, start_s=words[0][0], end_s=words[-1][1], text="".join(w for _, _, w in words)
        )
        for start, end, word in words:
            segment.words.add(start_s=start, end_s=end, word=word, probability=0.9)
    return response


SPANS = [
    compose.SpeakerSpan(0.0, 2.0, "SPEAKER_00"),
    compose.SpeakerSpan(2.2, 4.0, "SPEAKER_01"),
    compose.SpeakerSpan(4.5, 6.0, "SPEAKER_00"),
]


def test_a_segment_spanning_two_speakers_is_split_at_the_change() -> None:
    transcript = _transcript(
        [(0.1, 0.5, " Hello"), (0.6, 1.9, " there."), (2.3, 2.8, " Hi,"), (2.9, 3.9, " madam.")],
        [(4.6, 5.0, " Can"), (5.0, 5.5, " I"), (5.5, 5.9, " help?")],
    )
    turns = compose.merge_words_with_speakers(transcript, SPANS)
    assert [(t.speaker, t.text) for t in turns] == [
        ("SPEAKER_00", "Hello there."), ("SPEAKER_01", "Hi, madam."), ("SPEAKER_00", "Can I help?")]
    assert (turns[1].start_s, turns[1].end_s) == (pytest.approx(2.3), pytest.approx(3.9))
    assert all(w.speaker == t.speaker for t in turns for w in t.words)
    assert turns[0].language == "en"


def test_a_word_goes_to_the_speaker_it_overlaps_most() -> None:
    # 1.8-2.5 overlaps SPEAKER_00 by 0.2 s and SPEAKER_01 by 0.3 s.
    transcript = _transcript([(1.0, 1.5, " yes"), (1.8, 2.5, " okay")])
    turns = compose.merge_words_with_speakers(transcript, SPANS)
    assert [(t.speaker, t.text) for t in turns] == [("SPEAKER_00", "yes"), ("SPEAKER_01", "okay")]


def test_words_in_gaps_go_to_the_nearest_turn_and_same_speaker_segments_join() -> None:
    transcript = _transcript([(4.3, 4.4, " so")], [(4.6, 5.0, " then")], [(9.0, 9.5, " bye")])
    turns = compose.merge_words_with_speakers(transcript, SPANS)
    # 4.3-4.4 is 0.1 s before SPEAKER_00's turn at 4.5, 0.3 s after SPEAKER_01's; 9.0 is after everything.
    assert [(t.speaker, t.text) for t in turns] == [("SPEAKER_00", "so then bye")]


def test_no_diarisation_turns_means_one_speaker() -> None:
    turns = compose.merge_words_with_speakers(_transcript([(0.0, 1.0, " alone")]), [])
    assert [(t.speaker, t.text) for t in turns] == [(compose.DEFAULT_SPEAKER, "alone")]


def test_segments_without_word_timings_are_merged_as_a_whole() -> None:
    transcript = transcription_pb2.TranscribeResponse(language="fr")
    transcript.segments.add(start_s=2.3, end_s=3.8, text=" Bonjour madame.")
    turns = compose.merge_words_with_speakers(transcript, SPANS)
    assert [(t.speaker, t.text, t.language) for t in turns] == [("SPEAKER_01", "Bonjour madame.", "fr")]


def test_channel_mode_turns_are_segments_named_by_channel() -> None:
    transcript = transcription_pb2.TranscribeResponse(language="fr")
    transcript.segments.add(start_s=1.0, end_s=2.0, text=" Bonjour.", channel=1, language="fr")
    transcript.segments.add(start_s=0.0, end_s=0.9, text=" Bienvenue.", channel=0, language="fr")
    transcript.segments.add(start_s=3.0, end_s=3.5, text=" ", channel=0)
    turns = compose.turns_from_channels(transcript, ["agent", "visitor"])
    assert [(t.speaker, t.text, t.channel) for t in turns] == [("agent", "Bienvenue.", 0), ("visitor", "Bonjour.", 1)]
    assert compose.channel_speaker_name(3, ["agent"]) == "SPEAKER_03"
    rttm = compose.rttm_from_turns(turns)
    assert rttm.splitlines()[0] == "SPEAKER audio 1 0.000 0.900 <NA> <NA> agent <NA> <NA>"


def test_subtitles_carry_speaker_names_and_summaries_add_up() -> None:
    transcript = _transcript(
        [(0.1, 0.5, " Hello"), (0.6, 1.9, " there."), (2.3, 2.8, " Hi,"), (2.9, 3.9, " madam.")],
    )
    response = gateway_pb2.TranscribeConversationResponse(language="en")
    response.turns.extend(compose.merge_words_with_speakers(transcript, SPANS))
    srt, vtt = compose.subtitles(response)
    assert "SPEAKER_00: Hello there." in srt and "SPEAKER_01: Hi, madam." in srt
    assert "<v SPEAKER_01>Hi, madam." in vtt
    summary = {s.speaker: (round(s.speaking_time_s, 2), s.turns) for s in compose.speaker_summaries(response.turns)}
    assert summary == {"SPEAKER_00": (1.8, 1), "SPEAKER_01": (1.6, 1)}
    plain = transcripts.turns_to_transcript(response)
    assert [s.speaker for s in plain.segments] == ["SPEAKER_00", "SPEAKER_01"]


def test_an_ambiguous_change_moves_onto_punctuation() -> None:
    # "and" straddles the end of SPEAKER_00's turn (to 4.6) and the start of SPEAKER_01's
    # (from 4.4); overlap alone gives it to SPEAKER_00, mid-clause. It moves after the comma.
    spans = [compose.SpeakerSpan(0.0, 4.6, "SPEAKER_00"), compose.SpeakerSpan(4.4, 8.0, "SPEAKER_01")]
    transcript = _transcript(
        [(3.0, 3.5, " New"), (3.5, 4.0, " Jersey,"), (4.3, 4.6, " and"), (4.6, 5.0, " I'm"), (5.0, 5.5, " Sheila.")]
    )
    turns = compose.merge_words_with_speakers(transcript, spans)
    assert [(t.speaker, t.text) for t in turns] == [("SPEAKER_00", "New Jersey,"), ("SPEAKER_01", "and I'm Sheila.")]
    # A word that only one speaker's turn covers never moves, punctuation or not.
    transcript = _transcript([(3.0, 3.5, " New"), (3.5, 4.0, " Jersey,"), (4.0, 4.3, " and"), (4.6, 5.0, " I'm")])
    turns = compose.merge_words_with_speakers(transcript, spans)
    assert [(t.speaker, t.text) for t in turns] == [("SPEAKER_00", "New Jersey, and"), ("SPEAKER_01", "I'm")]


def test_a_word_spoken_over_goes_to_the_dominant_voice_and_is_flagged() -> None:
    # SPEAKER_01 talks over SPEAKER_00 from 1.0 to 2.0 s; the segmentation hears 00 most.
    every_turn = [compose.SpeakerSpan(0.0, 2.0, "SPEAKER_00"), compose.SpeakerSpan(1.0, 3.0, "SPEAKER_01")]
    dominant = [compose.SpeakerSpan(0.0, 2.0, "SPEAKER_00"), compose.SpeakerSpan(2.0, 3.0, "SPEAKER_01")]
    transcript = _transcript([(0.1, 0.8, " Bonjour"), (1.2, 1.8, " madame."), (2.1, 2.9, " Oui.")])
    turns = compose.merge_words_with_speakers(transcript, dominant, every_turn)
    assert [(t.speaker, t.text) for t in turns] == [("SPEAKER_00", "Bonjour madame."), ("SPEAKER_01", "Oui.")]
    assert [w.overlap for w in turns[0].words] == [False, True]
    assert list(turns[0].overlapping_speakers) == ["SPEAKER_01"]
    assert not turns[1].overlapping_speakers
    response = gateway_pb2.TranscribeConversationResponse(language="fr")
    response.turns.extend(turns)
    srt_text, vtt_text = compose.subtitles(response)
    assert "SPEAKER_00 (+ SPEAKER_01): Bonjour madame." in srt_text
    assert "<v SPEAKER_00>(+ SPEAKER_01) Bonjour madame." in vtt_text
    assert "SPEAKER_01: Oui." in srt_text
