"""Speaker-attributed transcripts: transcription words + diarisation turns -> speaker turns.

Pure functions over protos (no gRPC, no I/O), so the merge is tested on its own.

Word-level merge: each word goes to the diarisation speaker whose turns overlap it most,
counted on the dominant turns (one speaker at a time: where two voices overlap, the one
the segmentation hears most), so a word spoken over goes to the voice that carries it;
the word is flagged `overlap` and its turn lists the other voices heard. A word that no
turn overlaps (diarisation missed it, or it falls in a gap) goes to the nearest turn. A
change of speaker that falls mid-clause moves onto a comma or full stop a word or two
away when those words overlap both speakers' turns (word times blur at turn boundaries).
Consecutive words of one speaker form a conversation turn, so a whisper segment that
spans a change of speaker is split there, and segments of one speaker that follow each
other are joined (translation then sees whole sentences).

Channel mode (one microphone per party) needs no merge: the transcription service
transcribes each channel on its own and every segment is one party's turn.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from collections.abc import Iterable, Sequence

from parlons import transcripts
from parlons.v1 import diarization_pb2, gateway_pb2, transcription_pb2

DEFAULT_SPEAKER = "SPEAKER_00"


@dataclass(frozen=True)
class SpeakerSpan:
    start_s: float
    end_s: float
    speaker: str


@dataclass
class _Word:
    info: transcription_pb2.WordInfo
    language: str
    channel: int


@dataclass
class _TurnBuilder:
    speaker: str
    words: list[_Word] = field(default_factory=list)


class SpeakerIndex:
    """Diarisation turns indexed by start time, for overlap queries per word."""

    def __init__(self, spans: Iterable[SpeakerSpan]) -> None:
        self.spans = sorted((s for s in spans if s.end_s > s.start_s), key=lambda s: (s.start_s, s.end_s))
        self._starts = [s.start_s for s in self.spans]
        self._longest = max((s.end_s - s.start_s for s in self.spans), default=0.0)

    def overlaps(self, start_s: float, end_s: float) -> dict[str, float]:
        """Seconds of [start, end] each speaker's turns cover (a zero-length word counts
        as a tiny overlap with the turns that contain it)."""
        end_s = max(end_s, start_s)
        overlap: dict[str, float] = {}
        j = bisect.bisect_right(self._starts, end_s) - 1
        while j >= 0 and self.spans[j].start_s >= start_s - self._longest:
            span = self.spans[j]
            shared = min(span.end_s, end_s) - max(span.start_s, start_s)
            if shared > 0 or (start_s == end_s and span.start_s <= start_s <= span.end_s):
                overlap[span.speaker] = overlap.get(span.speaker, 0.0) + max(shared, 1e-9)
            j -= 1
        return overlap

    def speaker_at(self, start_s: float, end_s: float) -> str | None:
        """The speaker overlapping [start, end] most; the nearest one when none overlaps."""
        if not self.spans:
            return None
        overlap = self.overlaps(start_s, end_s)
        if overlap:
            return max(overlap.items(), key=lambda kv: kv[1])[0]
        nearest = min(self.spans, key=lambda s: max(s.start_s - end_s, start_s - s.end_s, 0.0))
        return nearest.speaker


def spans_from_diarization(response: diarization_pb2.DiarizeResponse) -> list[SpeakerSpan]:
    """Every turn, overlapping ones included."""
    return [SpeakerSpan(t.start_s, t.end_s, t.speaker) for t in response.turns]


def dominant_spans_from_diarization(response: diarization_pb2.DiarizeResponse) -> list[SpeakerSpan]:
    """One speaker at a time (the dominant voice); the turns themselves from a service
    that does not send dominant turns."""
    if not response.dominant_turns:
        return spans_from_diarization(response)
    return [SpeakerSpan(t.start_s, t.end_s, t.speaker) for t in response.dominant_turns]


# A word counts as spoken over when another voice covers this share of it.
OVERLAP_SHARE = 0.3


def _words_of(response: transcription_pb2.TranscribeResponse) -> list[_Word]:
    """Every word with its segment's language; a segment without words counts as one."""
    words: list[_Word] = []
    for segment in response.segments:
        language = segment.language or response.language
        if segment.words:
            words.extend(_Word(w, language, segment.channel) for w in segment.words)
        elif segment.text.strip():
            words.append(_Word(
                transcription_pb2.WordInfo(start_s=segment.start_s, end_s=segment.end_s,
                                           word=" " + segment.text.strip(), probability=0.0),
                language, segment.channel,
            ))
    words.sort(key=lambda w: (w.info.start_s, w.info.end_s))
    return words


def _majority(values: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        if v:
            counts[v] = counts.get(v, 0) + 1
    return max(counts.items(), key=lambda kv: kv[1])[0] if counts else ""


def _turn_proto(builder: _TurnBuilder, channel: int) -> gateway_pb2.ConversationTurn:
    words = [w.info for w in builder.words]
    turn = gateway_pb2.ConversationTurn(
        speaker=builder.speaker,
        start_s=words[0].start_s,
        end_s=max(w.end_s for w in words),
        text="".join(w.word for w in words).strip(),
        language=_majority([w.language for w in builder.words]),
        channel=channel,
    )
    for w in words:
        turn.words.add().CopyFrom(w)
        turn.words[-1].speaker = builder.speaker
    return turn


_CLAUSE_END = (".", "?", "!", ",", ";", ":", "…", "。", "？", "！", "،", "؟")
_CLOSERS = "\"'»”’)]"
# How many words a speaker change may move to land on punctuation.
_SNAP_WORDS = 2


def _ends_clause(word: str) -> bool:
    return word.strip().rstrip(_CLOSERS).endswith(_CLAUSE_END)


def _snap_to_punctuation(words: list[_Word], speakers: list[str], index: SpeakerIndex) -> None:
    """Move a speaker change by a word or two onto punctuation, when timing is ambiguous.

    Whisper's word times blur at turn boundaries (a word often straddles the end of one
    turn and the start of the next). When a change falls mid-clause and the words
    between it and a nearby comma or full stop also overlap the other speaker's turns,
    the change is moved to that punctuation: people hand over at clause ends.
    """
    n = len(words)
    for i in range(1, n):
        a, b = speakers[i - 1], speakers[i]
        if a == b or _ends_clause(words[i - 1].info.word):
            continue
        target: tuple[int, int, str] | None = None  # words [lo, hi) go to speaker
        for p in range(i - 1, max(i - 1 - _SNAP_WORDS, 0), -1):  # earlier boundary: words p..i-1 to b
            w = words[p].info
            if speakers[p] != a or b not in index.overlaps(w.start_s, w.end_s):
                break
            if _ends_clause(words[p - 1].info.word):
                target = (p, i, b)
                break
        if target is None:
            for q in range(i, min(i + _SNAP_WORDS, n)):  # later boundary: words i..q to a
                w = words[q].info
                if speakers[q] != b or a not in index.overlaps(w.start_s, w.end_s):
                    break
                if _ends_clause(w.word):
                    target = (i, q + 1, a)
                    break
        if target is not None:
            lo, hi, speaker = target
            for k in range(lo, hi):
                speakers[k] = speaker


def merge_words_with_speakers(
    transcript: transcription_pb2.TranscribeResponse, spans: Iterable[SpeakerSpan],
    all_spans: Iterable[SpeakerSpan] = (),
) -> list[gateway_pb2.ConversationTurn]:
    """Speaker turns from words and diarisation (neural mode): words go by `spans` (the
    dominant turns); `all_spans` (every turn, overlaps included) flags words spoken over."""
    index = SpeakerIndex(spans)
    heard = SpeakerIndex(all_spans)
    words = _words_of(transcript)
    speakers: list[str] = []
    for word in words:
        speaker = index.speaker_at(word.info.start_s, word.info.end_s)
        speakers.append(speaker or (speakers[-1] if speakers else DEFAULT_SPEAKER))
    _snap_to_punctuation(words, speakers, index)
    turns: list[gateway_pb2.ConversationTurn] = []
    current: _TurnBuilder | None = None
    for word, speaker in zip(words, speakers):
        if current is None or speaker != current.speaker:
            if current is not None:
                turns.append(_turn_proto(current, -1))
            current = _TurnBuilder(speaker)
        current.words.append(word)
    if current is not None:
        turns.append(_turn_proto(current, -1))
    if heard.spans:
        for turn in turns:
            _mark_overlap(turn, heard)
    return [t for t in turns if t.text]


def _mark_overlap(turn: gateway_pb2.ConversationTurn, heard: SpeakerIndex) -> None:
    """Flag the turn's words another voice covers, and list those voices on the turn."""
    others: dict[str, None] = {}
    for word in turn.words:
        length = max(word.end_s - word.start_s, 1e-3)
        over = [s for s, shared in heard.overlaps(word.start_s, word.end_s).items()
                if s != turn.speaker and shared >= OVERLAP_SHARE * length]
        if over:
            word.overlap = True
            others.update(dict.fromkeys(sorted(over)))
    turn.overlapping_speakers.extend(others)


def channel_speaker_name(channel: int, names: Sequence[str]) -> str:
    return names[channel] if 0 <= channel < len(names) and names[channel] else f"SPEAKER_{channel:02d}"


def turns_from_channels(
    transcript: transcription_pb2.TranscribeResponse, names: Sequence[str]
) -> list[gateway_pb2.ConversationTurn]:
    """Channel mode: every per-channel segment is a turn of that channel's party."""
    turns = []
    for segment in sorted(transcript.segments, key=lambda s: (s.start_s, s.channel)):
        if not segment.text.strip():
            continue
        speaker = channel_speaker_name(segment.channel, names)
        turn = gateway_pb2.ConversationTurn(
            speaker=speaker, start_s=segment.start_s, end_s=segment.end_s, text=segment.text.strip(),
            language=segment.language or transcript.language, channel=segment.channel,
        )
        for w in segment.words:
            turn.words.add().CopyFrom(w)
            turn.words[-1].speaker = speaker
        turns.append(turn)
    return turns


def turns_from_segments(transcript: transcription_pb2.TranscribeResponse) -> list[gateway_pb2.ConversationTurn]:
    """No diarisation: one turn per transcript segment (all of them, so that the turns and
    the transcript's segments stay aligned), text stripped, no speaker."""
    turns = []
    for segment in transcript.segments:
        turn = gateway_pb2.ConversationTurn(
            start_s=segment.start_s, end_s=segment.end_s, text=segment.text.strip(),
            language=segment.language or transcript.language, channel=segment.channel,
        )
        turn.words.extend(segment.words)
        turns.append(turn)
    return turns


def speaker_summaries(
    turns: Sequence[gateway_pb2.ConversationTurn], similarity: dict[str, float] | None = None,
) -> list[diarization_pb2.SpeakerSummary]:
    """Per speaker of the conversation; `similarity`: the diarisation's reference similarity
    of speakers named from a reference voice."""
    similarity = similarity or {}
    totals: dict[str, list[float]] = {}
    for turn in turns:
        entry = totals.setdefault(turn.speaker, [0.0, 0])
        entry[0] += max(turn.end_s - turn.start_s, 0.0)
        entry[1] += 1
    return [
        diarization_pb2.SpeakerSummary(speaker=name, speaking_time_s=round(total, 3), turns=int(count),
                                       reference_similarity=similarity.get(name, 0.0))
        for name, (total, count) in sorted(totals.items(), key=lambda kv: -kv[1][0])
    ]


def subtitles(response: gateway_pb2.TranscribeConversationResponse) -> tuple[str, str]:
    """SRT and WebVTT with speaker names (long turns cut at word boundaries)."""
    cues = sorted(transcripts.cues_from_segments(transcripts.turns_to_transcript(response).segments),
                  key=lambda c: c.start_s)
    return transcripts.to_srt(cues), transcripts.to_vtt(cues)


def rttm_from_turns(turns: Sequence[gateway_pb2.ConversationTurn], uri: str = "audio") -> str:
    """RTTM lines for turns (channel mode has no diarisation output of its own)."""
    conversation = gateway_pb2.TranscribeConversationResponse(turns=turns)
    return transcripts.to_rttm(transcripts.turns_to_transcript(conversation), uri)


def complete_transcripts(response: gateway_pb2.TranscribeConversationResponse, targets: Sequence[str],
                         transcript: transcription_pb2.TranscribeResponse | None = None) -> None:
    """Fill `transcript` (the one given, one segment per turn, else built from the turns)
    and `translated_transcripts`, so clients render what they receive instead of
    rebuilding it."""
    response.transcript.CopyFrom(transcript if transcript is not None else transcripts.turns_to_transcript(response))
    for language in targets:
        response.translated_transcripts.append(
            transcripts.translated_transcript(response.transcript, response.turns, language))


