"""Who spoke on a shared microphone: each final of a LiveConversation given to a party.

Shared microphone: each final is given to a party by its voice (voices.py). Its audio is
embedded (EmbedVoices of the diarisation service, ECAPA-TDNN) in parts cut at its pauses
and compared with the parties' running voice prints, which an enrolment sample (a few
seconds of the agent's voice, `Party.voice_sample`) can start; a part clearly closer to
the other party's print is split off (one party answering the other without a pause long
enough to end the utterance). Until both voices have a print, the utterance is diarised
with the seconds before it and the enrolment samples instead, its voices mapped to the
parties the earlier finals have. A language that names one party decides an utterance of
one voice (a French agent, an Arabic visitor). Without the diarisation service: by
language, then turn taking.

Why a module of its own: these are decisions over the stream's recent audio and two calls
of the diarisation service, nothing of the conversation's streams. The calls are injected
as plain async callables (`Embed`, `Diarise`), so the decisions are tested with fake
voices, without gRPC and without models (tests/test_gateway_attribution.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from parlons.audio_constants import SAMPLE_RATE as RATE
from parlons.languages import DETECT, same_language
from parlons.services.common.audio import decode_audio
from parlons.errors import FailedPrecondition, InvalidArgument, ParlonsError
from parlons.services.gateway import compose
from parlons.services.gateway.voices import VoicePrints, pause_cuts
from parlons.v1 import transcription_pb2

# The logger LiveConversation has always used: operators filter on it.
log = logging.getLogger("parlons.gateway.live")

# Shared microphone: the last seconds of audio kept to embed finals' voices (an
# utterance is cut by the transcription service at 30 s at most).
VOICE_WINDOW_S = 32.0
# Until both voices have a print, a final is diarised with this many seconds before it.
VOICE_CONTEXT_S = 12.0
# A detected language names a party only when the model is at least this sure (short
# utterances are often misidentified; the voice decides those).
LANGUAGE_TRUST = 0.8
# Enrolment sample bounds.
MIN_VOICE_SAMPLE_S = 1.0
MAX_VOICE_SAMPLE_S = 30.0
MAX_VOICE_SAMPLE_BYTES = 8 * 1024 * 1024

Embed = Callable[[np.ndarray, Sequence[tuple[float, float]]], Awaitable[list[np.ndarray | None]]]
"""EmbedVoices: the voice print of each span (seconds) of a 16 kHz mono clip, None where
it has no voice; no spans: one print of the whole clip."""

Diarise = Callable[[np.ndarray, int], Awaitable[list[compose.SpeakerSpan]]]
"""Diarize: the turns of one to `n` voices in a 16 kHz mono clip."""

@dataclass
class Party:
    index: int
    name: str
    language: str  # BCP-47 or "detect"
    channel: int
    detected: str = ""
    voice_sample: bytes = b""

    @property
    def known_language(self) -> str:
        return self.detected if self.language == DETECT else self.language


Piece = tuple[Party, transcription_pb2.StreamingResult]
"""A final, or the part of it one party said."""


class Window:
    """The last seconds of shared-microphone audio, to embed or diarise finals' voices.

    A ring buffer: appending a chunk costs the chunk, not the window (the previous
    version copied the whole 30 s on every 100-ms chunk)."""

    def __init__(self, seconds: float) -> None:
        self.capacity = int(seconds * RATE)
        self._ring = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0  # samples appended since the start of the stream

    @property
    def start_s(self) -> float:
        """Stream time of the oldest sample held."""
        return max(self._written - self.capacity, 0) / RATE

    @property
    def size(self) -> int:
        return min(self._written, self.capacity)

    def append(self, samples: np.ndarray) -> None:
        data = np.asarray(samples, dtype=np.float32)[-self.capacity :]
        skipped = samples.shape[0] - data.shape[0]
        self._written += skipped
        at = self._written % self.capacity
        first = min(data.shape[0], self.capacity - at)
        self._ring[at : at + first] = data[:first]
        self._ring[: data.shape[0] - first] = data[first:]
        self._written += data.shape[0]

    def between(self, start_s: float, end_s: float) -> np.ndarray:
        """The audio from stream time start_s to end_s, as far as it is still held."""
        first = max(int(start_s * RATE), self._written - self.capacity, 0)
        last = min(int(end_s * RATE), self._written)
        if last <= first:
            return np.zeros(0, dtype=np.float32)
        at, n = first % self.capacity, last - first
        if at + n <= self.capacity:
            return self._ring[at : at + n].copy()
        return np.concatenate([self._ring[at:], self._ring[: at + n - self.capacity]])


class Attributor:
    """The parties of one shared microphone's results. `embed` and `diarise` are the
    diarisation service's calls; without them (no such service) language, then turn
    taking decide. The conversation feeds it the microphone's audio (`hear`) and says
    whose final went out (`spoke`)."""

    def __init__(
        self,
        parties: list[Party],
        embed: Embed | None = None,
        diarise: Diarise | None = None,
        window_s: float = VOICE_WINDOW_S,
    ) -> None:
        self.parties = parties
        self.embed = embed
        self.diarise = diarise
        self.window = Window(window_s)
        self.voices = VoicePrints(len(parties))
        self.last_party: int | None = None  # party of the last final
        self.recent: list[tuple[float, float, int]] = []  # (start, end, party) of recent finals
        self.enrolment_audio: list[tuple[int, np.ndarray]] = []  # (party, samples), in memory only

    @property
    def by_voice(self) -> bool:
        return self.embed is not None and self.diarise is not None

    def hear(self, samples: np.ndarray) -> None:
        """The microphone's next samples (16 kHz mono float32)."""
        self.window.append(samples)

    def spoke(self, party: Party) -> None:
        """A final of `party` went out: the turn taking goes on from it."""
        self.last_party = party.index

    def interim(self, result: transcription_pb2.StreamingResult) -> Party:
        """An interim's party: its language, else the last speaker (no voice yet)."""
        return self._by_language(result.language) or self._last_party()

    async def enrol(self, party: Party) -> float:
        """Start `party`'s voice print from its enrolment sample, before any audio is
        read; the seconds of the sample (to charge), 0 without one."""
        if not party.voice_sample:
            return 0.0
        if self.embed is None or self.diarise is None:
            raise FailedPrecondition("voice_sample needs the diarisation service (voice prints); none is configured")
        try:
            decoded = await asyncio.to_thread(decode_audio, party.voice_sample, max_duration_s=MAX_VOICE_SAMPLE_S + 0.5)
        except InvalidArgument as exc:
            raise InvalidArgument(f"party {party.name!r}: voice_sample: {exc.message}") from exc
        samples = decoded.mono()
        seconds = samples.shape[0] / RATE
        if not MIN_VOICE_SAMPLE_S <= seconds <= MAX_VOICE_SAMPLE_S:
            raise InvalidArgument(
                f"party {party.name!r}: voice_sample lasts {seconds:.1f} s; give "
                f"{MIN_VOICE_SAMPLE_S:.0f}-{MAX_VOICE_SAMPLE_S:.0f} s of that voice alone"
            )
        vectors = await self.embed(samples, [])
        if not vectors or vectors[0] is None:
            raise InvalidArgument(f"party {party.name!r}: no voice found in voice_sample")
        self.voices.enrol(party.index, vectors[0])
        self.enrolment_audio.append((party.index, samples))
        return seconds

    async def final(self, result: transcription_pb2.StreamingResult) -> list[Piece]:
        """A final given to a party (or split between both where the voice changes):
        language, else voice, else turn taking."""
        by_language = self._trusted_language_party(result)
        if not (self.by_voice and self.window.size):
            return [(by_language or self._by_turn_taking(), result)]
        try:
            return await self._attribute_by_voice(result, by_language)
        except ParlonsError as exc:
            log.warning("voice prints failed, attributing by language: %s", exc.message)
            return [(by_language or self._by_turn_taking(), result)]

    # ------------------------------------------------------------------ language, turns

    def _by_language(self, language: str) -> Party | None:
        if not language:
            return None
        matching = [p for p in self.parties if same_language(p.known_language, language)]
        if len(matching) == 1:
            return matching[0]
        # A language no one is known to speak: the visitor whose language is still
        # unknown, if there is one; otherwise (a misdetection) the languages do not tell.
        unknown = [p for p in self.parties if p.language == DETECT and not p.detected]
        if not matching and len(unknown) == 1:
            return unknown[0]
        return None

    def _last_party(self) -> Party:
        return self.parties[self.last_party] if self.last_party is not None else self.parties[0]

    def _trusted_language_party(self, result: transcription_pb2.StreamingResult) -> Party | None:
        if result.language_probability and result.language_probability < LANGUAGE_TRUST:
            return None
        return self._by_language(result.language)

    def _by_turn_taking(self) -> Party:
        return self.parties[1 - self._last_party().index] if self.last_party is not None else self.parties[0]

    # ------------------------------------------------------------------ voices

    async def _attribute_by_voice(self, result: transcription_pb2.StreamingResult, by_language: Party | None) -> list[Piece]:
        """Give the utterance (or each run of one voice in it) a party and return the
        runs as pieces. Voice prints decide once both voices have one; until then the
        diarisation pipeline does, on the utterance and the seconds before it."""
        start, end = result.start_s, result.end_s
        words = [(w.start_s, w.end_s) for w in result.words]
        if not self.voices.all_known:
            decided = await self._diarised_runs(words, start, end)
            if decided is not None:
                spans, parties = decided
                if by_language is not None and len(set(parties)) == 1:
                    parties = [by_language.index] * len(parties)  # one voice, its language names the party
                vectors = await self._embed(spans)
                for vector, (a, b), party in zip(vectors, spans, parties):
                    self.voices.learn(party, vector, b - a)
                return self._runs(result, spans, parties)
        bounds = [start, *pause_cuts(words, start, end, self.voices.settings.min_piece_s), end]
        spans = list(zip(bounds, bounds[1:]))
        vectors = await self._embed(spans)
        durations = [b - a for a, b in spans]
        if by_language is not None and len(spans) == 1:
            self.voices.learn(by_language.index, vectors[0], durations[0])
            return [(by_language, result)]
        labels = self.voices.attribute_parts(vectors, durations, self.last_party)
        if by_language is not None and len(set(labels)) == 1 and labels[0] != by_language.index:
            labels = [by_language.index] * len(labels)  # one voice, and its language names the party
        return self._runs(result, spans, labels)

    def _runs(self, result: transcription_pb2.StreamingResult, spans: list[tuple[float, float]], parties: list[int]) -> list[Piece]:
        """Consecutive spans of one party joined; one piece of the final per run."""
        runs = [(party, spans[first][0], spans[last][1]) for party, first, last in _label_runs(parties)]
        for party, a, b in runs:
            self.recent.append((a, b, party))
        self.recent = [r for r in self.recent if r[1] > result.end_s - VOICE_CONTEXT_S]
        if len(runs) == 1:
            return [(self.parties[runs[0][0]], result)]
        return [(self.parties[party], _piece(result, a, b)) for party, a, b in runs]

    async def _diarised_runs(
        self, words: list[tuple[float, float]], start: float, end: float
    ) -> tuple[list[tuple[float, float]], list[int]] | None:
        """While a voice has no print yet: diarise the utterance with the seconds before
        it, whose finals already have their parties; the utterance's runs of one voice
        and their parties, or None when that does not tell (the very first utterance
        with one voice: the prints decide, i.e. the first party).

        Why not prints alone: two voices on one phone line stay more alike than any
        fixed threshold allows (ECAPA similarity 0.3-0.45 between the two voices of
        sample.wav, against 0.1 for different voices on the AMI headsets), whereas the
        pipeline's segmentation model and clustering compare the voices with each other.
        It costs a diarisation of up to VOICE_CONTEXT_S seconds, for the first finals only."""
        assert self.diarise is not None
        context_start = max(start - VOICE_CONTEXT_S, self.window.start_s, 0.0)
        # The enrolment samples go first (each followed by a pause): the pipeline then
        # compares the utterance with the enrolled voices too.
        gap = np.zeros(RATE // 2, dtype=np.float32)
        pieces: list[np.ndarray] = []
        prior: list[tuple[float, float, int]] = []  # in clip time
        offset = 0.0
        for party, samples in self.enrolment_audio:
            prior.append((offset, offset + samples.shape[0] / RATE, party))
            pieces += [samples, gap]
            offset += (samples.shape[0] + gap.shape[0]) / RATE
        shift = offset - context_start  # stream time + shift = clip time
        prior += [(a + shift, b + shift, party) for a, b, party in self.recent if b > context_start]
        pieces.append(self.window.between(context_start, end))
        index = compose.SpeakerIndex(await self.diarise(np.concatenate(pieces), len(self.parties)))
        if not words:
            words = [(start, end)]
        voices = [index.speaker_at(a + shift, b + shift) for a, b in words]
        heard = list(dict.fromkeys(v for v in voices if v is not None))
        if not heard:
            return None
        # Diarisation voices -> parties, by the parties of the finals (and enrolments) before.
        votes: dict[str, list[float]] = {}
        for a, b, party in prior:
            voice = index.speaker_at(a, b)
            if voice is not None:
                votes.setdefault(voice, [0.0] * len(self.parties))[party] += b - a
        mapping: dict[str, int] = {}
        for voice, tally in sorted(votes.items(), key=lambda kv: -max(kv[1])):
            party = int(np.argmax(tally))
            mapping[voice] = party if party not in mapping.values() else 1 - party
        new = [v for v in heard if v not in mapping]
        if new and not mapping:
            if len(heard) == 1:
                return None  # the first voice heard: nothing to compare it with here
            # Two voices and nothing before: the first voice is the first party.
            mapping = {voice: i for i, voice in enumerate(heard)}
        for voice in new:
            free = [p for p in range(len(self.parties)) if p not in mapping.values()]
            mapping[voice] = free[0] if free else self._by_turn_taking().index
        return _word_runs(words, start, end, [mapping.get(v, -1) if v is not None else -1 for v in voices])

    async def _embed(self, spans: list[tuple[float, float]]) -> list[np.ndarray | None]:
        """Voice prints of spans of the stream, in one call."""
        assert self.embed is not None
        first = spans[0][0]
        clip = self.window.between(first, spans[-1][1])
        return await self.embed(clip, [(a - first, max(b - first, a - first + 0.01)) for a, b in spans])


def _label_runs(labels: list[int]) -> list[tuple[int, int, int]]:
    """(label, first index, last index) of each run of equal consecutive labels."""
    runs: list[tuple[int, int, int]] = []
    for i, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], i)
        else:
            runs.append((label, i, i))
    return runs


def _word_runs(
    words: list[tuple[float, float]], start: float, end: float, labels: list[int]
) -> tuple[list[tuple[float, float]], list[int]]:
    """Runs of consecutive words of one label (-1: the label before, or after for the
    first words; 0 when no word has one) as spans from `start` to `end`, cut between
    the runs' words."""
    known = next((label for label in labels if label != -1), 0)
    filled: list[int] = []
    for label in labels:
        filled.append(label if label != -1 else (filled[-1] if filled else known))
    runs = _label_runs(filled)
    bounds = [start] + [(words[first - 1][1] + words[first][0]) / 2 for _, first, _ in runs[1:]] + [end]
    return list(zip(bounds, bounds[1:])), [label for label, _, _ in runs]


def _piece(result: transcription_pb2.StreamingResult, start: float, end: float) -> transcription_pb2.StreamingResult:
    """The part of a final between two times: its words (by their middle) and their text."""
    piece = transcription_pb2.StreamingResult()
    piece.CopyFrom(result)
    del piece.words[:]
    piece.words.extend(w for w in result.words if start <= (w.start_s + w.end_s) / 2 < end)
    piece.text = "".join(w.word for w in piece.words).strip()
    piece.start_s, piece.end_s = start, end
    return piece
