"""LiveConversation: a reception desk's two parties, transcribed and translated live.

One client stream carries raw audio, one channel per party's microphone or one shared
microphone. The gateway splits the channels and opens one StreamingTranscribe per party
(one for a shared microphone), each with that party's language ("detect" leaves it to
the model). Interim results pass straight through; each final result is translated into
the other party's language before it is sent, so a client shows one final line with its
translation.

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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from collections.abc import AsyncIterator

import numpy as np

from parlons.services.common.audio import decode_audio
from parlons.services.common.audio_request import StreamAudioDecoder
from parlons.services.common.errors import FailedPrecondition, InvalidArgument, ParlonsError
from parlons.services.common.streams import StreamPump
from parlons.services.gateway import compose
from parlons.services.gateway.core import Call, GatewayCore
from parlons.services.gateway.voices import VoicePrints, pause_cuts
from parlons.v1 import audio_pb2, diarization_pb2, gateway_pb2, transcription_pb2

log = logging.getLogger("parlons.gateway.live")

DETECT = "detect"
RATE = 16000
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
_PCM16_MONO = audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=RATE, channels=1)
_DONE = object()
# Client messages read ahead of the decoder, at most (then gRPC flow control holds the
# client back): at 100-ms chunks, 6 s of audio.
_MAX_QUEUED_MESSAGES = 64


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


@dataclass
class _Party:
    index: int
    name: str
    language: str  # BCP-47 or "detect"
    channel: int
    detected: str = ""
    voice_sample: bytes = b""

    @property
    def known_language(self) -> str:
        return self.detected if self.language == DETECT else self.language


@dataclass
class _Lane:
    """One backend stream: a party's channel, or the shared microphone."""

    parties: list[_Party]
    channel: int  # -1 = shared microphone (mono mix)
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class _Window:
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


def validate(config: gateway_pb2.LiveConversationConfig) -> list[_Party]:
    if len(config.parties) != 2:
        raise InvalidArgument(f"a live conversation has two parties, got {len(config.parties)}")
    parties = []
    for i, p in enumerate(config.parties):
        name = p.name.strip() or f"party{i}"
        language = p.language.strip()
        if not language:
            raise InvalidArgument(f"party {name!r} needs a language (BCP-47, or \"detect\")")
        if len(p.voice_sample) > MAX_VOICE_SAMPLE_BYTES:
            raise InvalidArgument(
                f"party {name!r}: voice_sample is {len(p.voice_sample)} bytes; at most "
                f"{MAX_VOICE_SAMPLE_BYTES // (1024 * 1024)} MiB ({MAX_VOICE_SAMPLE_S:.0f} s of speech are enough)"
            )
        parties.append(_Party(i, name, language.lower() if language.lower() == DETECT else language, p.channel,
                              voice_sample=p.voice_sample))
    if parties[0].name == parties[1].name:
        raise InvalidArgument("the two parties need different names")
    channels = [p.channel for p in parties]
    available = config.config.channels
    if all(c == -1 for c in channels):
        return parties
    if any(p.voice_sample for p in parties):
        raise InvalidArgument("voice_sample is for a shared microphone (channel -1): with one "
                              "microphone per party, the channel tells who speaks")
    if any(c < 0 for c in channels):
        raise InvalidArgument(
            "either every party has its own channel (0, 1, ...) or both share the microphone (-1)"
        )
    if len(set(channels)) != len(channels):
        raise InvalidArgument("each party needs its own channel")
    for p in parties:
        if p.channel >= available:
            raise InvalidArgument(
                f"party {p.name!r} is on channel {p.channel}, but the audio has {available} channel(s)"
            )
    return parties


class LiveConversation:
    def __init__(self, core: GatewayCore, call: Call, config: gateway_pb2.LiveConversationConfig) -> None:
        self.core = core
        self.call = call
        self.config = config
        self.parties = validate(config)
        core.check_glossary(config.glossary)  # before any work
        self.decoder = StreamAudioDecoder(config.config, keep_channels=True)
        self.shared = all(p.channel == -1 for p in self.parties)
        if self.shared:
            self.lanes = [_Lane(self.parties, -1)]
        else:
            self.lanes = [_Lane([p], p.channel) for p in self.parties]
        self.window = _Window(VOICE_WINDOW_S) if self.shared else None
        self.voices = VoicePrints(len(self.parties))
        self.last_party: int | None = None  # shared microphone: party of the last final
        self.recent: list[tuple[float, float, int]] = []  # shared: (start, end, party) of recent finals
        self.enrolment_audio: list[tuple[int, np.ndarray]] = []  # (party, samples), in memory only
        self.out: asyncio.Queue[object] = asyncio.Queue()
        self._final_tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ streams

    def _streaming_config(self, lane: _Lane) -> transcription_pb2.StreamingConfig:
        options = transcription_pb2.TranscriptionOptions()
        options.CopyFrom(self.config.transcription)
        languages = {p.language for p in lane.parties}
        options.language = "" if DETECT in languages or len(languages) != 1 else languages.pop()
        if len(lane.parties) > 1:
            options.word_timestamps = True  # a shared microphone's utterances are split by voice
        audio = audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=RATE, channels=1)
        if not options.language and DETECT not in languages and len(languages) > 1:
            # A shared microphone, two known languages: identification need only choose
            # between them (for services that take several hints as candidates).
            audio.language_hints.extend(sorted(languages))
        config = transcription_pb2.StreamingConfig(
            config=audio,
            options=options,
            end_of_utterance_silence_ms=self.config.end_of_utterance_silence_ms,
        )
        if self.config.HasField("interim_results"):
            config.interim_results = self.config.interim_results
        return config

    async def _lane_requests(self, lane: _Lane) -> AsyncIterator[transcription_pb2.StreamingTranscribeRequest]:
        yield transcription_pb2.StreamingTranscribeRequest(config=self._streaming_config(lane))
        while (chunk := await lane.queue.get()) is not None:
            yield transcription_pb2.StreamingTranscribeRequest(audio_content=chunk)

    async def _read_client(self, requests: AsyncIterator[gateway_pb2.LiveConversationRequest]) -> None:
        """Client audio -> decoded -> every lane. A pump reads the client while a batch
        decodes, and the decoder takes everything that arrived at once; its queue is
        bounded, so a client sending faster than we decode is held back by gRPC's flow
        control instead of filling the gateway's memory."""
        try:
            async with StreamPump(_audio_messages(requests), maxsize=_MAX_QUEUED_MESSAGES) as pump:
                while (chunks := await pump.next_batch()) is not None:
                    before = self.decoder.decoded_seconds
                    samples = await asyncio.to_thread(self.decoder.decode, b"".join(chunks))
                    self.core.quotas.charge_audio(self.call.tenant, self.decoder.decoded_seconds - before)
                    self._dispatch(samples)
            self._dispatch(await asyncio.to_thread(self.decoder.flush))
            for lane in self.lanes:
                lane.queue.put_nowait(None)
        except Exception as exc:
            self.out.put_nowait(exc)

    def _dispatch(self, samples: np.ndarray) -> None:
        if samples.shape[-1] == 0:
            return
        for lane in self.lanes:
            if lane.channel == -1:
                mono = samples.mean(axis=0) if samples.shape[0] > 1 else samples[0]
                if self.window is not None:
                    self.window.append(mono)
                lane.queue.put_nowait(pcm16(mono))
            else:
                lane.queue.put_nowait(pcm16(samples[lane.channel]))

    async def _run_lane(self, lane: _Lane) -> None:
        """Relay one backend stream. Interims go out at once; each final is processed
        (speaker attribution, translation) in a task of its own, chained to the previous
        final's, so the interims of the next utterance keep flowing meanwhile and the
        finals still go out in utterance order."""
        previous: asyncio.Task[None] | None = None
        try:
            backend = self.core.router.get("transcription")
            async for response in backend.relay(
                backend.stub.StreamingTranscribe, self._lane_requests(lane), self.call.options
            ):
                for result in response.results:
                    if result.is_final:
                        previous = asyncio.create_task(self._emit_final(lane, result, previous))
                        self._final_tasks.add(previous)
                        previous.add_done_callback(self._final_tasks.discard)
                    else:
                        self._emit(await self._utterances(lane, result))
            if previous is not None:
                await previous
            self.out.put_nowait(_DONE)
        except Exception as exc:
            self.out.put_nowait(exc)

    async def _emit_final(
        self, lane: _Lane, result: transcription_pb2.StreamingResult, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            if previous is not None:
                # Finals of a lane are processed one after the other: a shared
                # microphone attributes each by the voices of those before it.
                await previous
            self._emit(await self._utterances(lane, result))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.out.put_nowait(exc)

    def _emit(self, utterances: list[gateway_pb2.LiveUtterance]) -> None:
        if utterances:
            self.out.put_nowait(gateway_pb2.LiveConversationResponse(utterances=utterances))

    async def run(
        self, requests: AsyncIterator[gateway_pb2.LiveConversationRequest]
    ) -> AsyncIterator[gateway_pb2.LiveConversationResponse]:
        await self._enrol()
        tasks = [asyncio.create_task(self._read_client(requests))]
        tasks += [asyncio.create_task(self._run_lane(lane)) for lane in self.lanes]
        for task in tasks:
            task.add_done_callback(self._report_escaped)
        finished = 0
        try:
            while finished < len(self.lanes):
                item = await self.out.get()
                if item is _DONE:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item  # type: ignore[misc]
        finally:
            # Client gone, error or done: stop every backend stream now.
            tasks += list(self._final_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self.decoder.close)

    def _report_escaped(self, task: asyncio.Task[None]) -> None:
        """A task that dies of an error it did not hand to `out` still ends the call:
        the loop below waits on `out` alone, and would otherwise wait forever."""
        if not task.cancelled() and task.exception() is not None:
            self.out.put_nowait(task.exception())

    # ------------------------------------------------------------------ results

    async def _utterances(
        self, lane: _Lane, result: transcription_pb2.StreamingResult
    ) -> list[gateway_pb2.LiveUtterance]:
        if len(lane.parties) == 1:
            pieces = [(lane.parties[0], result)]
        elif result.is_final:
            pieces = await self._split_shared(result)
        else:
            pieces = [(self._by_language(result.language) or self._last_party(), result)]
        utterances = []
        for party, piece in pieces:
            utterances.append(await self._utterance(lane, party, piece))
        return utterances

    async def _utterance(
        self, lane: _Lane, party: _Party, result: transcription_pb2.StreamingResult
    ) -> gateway_pb2.LiveUtterance:
        utterance = gateway_pb2.LiveUtterance(
            party=party.name,
            is_final=result.is_final,
            stability=result.stability,
            text=result.text.strip(),
            language=result.language or party.known_language,
            language_probability=result.language_probability,
            start_s=result.start_s,
            end_s=result.end_s,
            utterance_index=result.utterance_index,
            channel=lane.channel,
        )
        if party.language == DETECT and result.language and (result.is_final or not party.detected):
            # Interim results carry the detection too: the other party's finals can be
            # translated as soon as this party has started speaking.
            party.detected = result.language
        if result.is_final:
            if self.shared:
                self.last_party = party.index
            if utterance.text:
                await self._translate(utterance, party)
        return utterance

    async def _translate(self, utterance: gateway_pb2.LiveUtterance, party: _Party) -> None:
        other = self.parties[1 - party.index]
        target = other.known_language
        if not target:
            utterance.translation_error = f"the language of {other.name!r} is not known yet (it is detected when they speak)"
            return
        utterance.translation_language = target
        source = utterance.language
        if compose.same_language(source, target):
            utterance.translation = utterance.text
            return
        try:
            (translation,) = await self.core.translate_texts(
                self.call, [utterance.text], source, target, self.config.glossary
            )
            utterance.translation = translation.text
        except ParlonsError as exc:
            # The transcript still goes out; the client sees why its translation is missing.
            utterance.translation_error = exc.message

    # ------------------------------------------------------------------ shared microphone

    def _by_language(self, language: str) -> _Party | None:
        if not language:
            return None
        matching = [p for p in self.parties if compose.same_language(p.known_language, language)]
        if len(matching) == 1:
            return matching[0]
        # A language no one is known to speak: the visitor whose language is still
        # unknown, if there is one; otherwise (a misdetection) the languages do not tell.
        unknown = [p for p in self.parties if p.language == DETECT and not p.detected]
        if not matching and len(unknown) == 1:
            return unknown[0]
        return None

    def _last_party(self) -> _Party:
        return self.parties[self.last_party] if self.last_party is not None else self.parties[0]

    def _trusted_language_party(self, result: transcription_pb2.StreamingResult) -> _Party | None:
        if result.language_probability and result.language_probability < LANGUAGE_TRUST:
            return None
        return self._by_language(result.language)

    async def _enrol(self) -> None:
        """Voice prints from the parties' enrolment samples, before any audio is read."""
        for party in self.parties:
            if not party.voice_sample:
                continue
            if not self.core.router.has("diarization"):
                raise FailedPrecondition(
                    "voice_sample needs the diarisation service (voice prints); none is configured"
                )
            try:
                decoded = await asyncio.to_thread(
                    decode_audio, party.voice_sample, max_duration_s=MAX_VOICE_SAMPLE_S + 0.5
                )
            except InvalidArgument as exc:
                raise InvalidArgument(f"party {party.name!r}: voice_sample: {exc.message}") from exc
            samples = decoded.mono()
            seconds = samples.shape[0] / RATE
            if not MIN_VOICE_SAMPLE_S <= seconds <= MAX_VOICE_SAMPLE_S:
                raise InvalidArgument(
                    f"party {party.name!r}: voice_sample lasts {seconds:.1f} s; give "
                    f"{MIN_VOICE_SAMPLE_S:.0f}-{MAX_VOICE_SAMPLE_S:.0f} s of that voice alone"
                )
            response = await self.core.embed_voices(self.call, pcm16(samples), _PCM16_MONO)
            if not response.prints or not response.prints[0].vector:
                raise InvalidArgument(f"party {party.name!r}: no voice found in voice_sample")
            self.core.quotas.charge_audio(self.call.tenant, seconds)
            self.voices.enrol(party.index, np.asarray(response.prints[0].vector, dtype=np.float32))
            self.enrolment_audio.append((party.index, samples))

    async def _split_shared(
        self, result: transcription_pb2.StreamingResult
    ) -> list[tuple[_Party, transcription_pb2.StreamingResult]]:
        """A final from the shared microphone given to a party (or split between both
        where the voice changes): language, else voice, else turn taking."""
        window = self.window
        by_language = self._trusted_language_party(result)
        if not (self.core.router.has("diarization") and window is not None and window.size):
            return [(by_language or self._by_turn_taking(), result)]
        try:
            return await self._attribute_by_voice(result, window, by_language)
        except ParlonsError as exc:
            log.warning("voice prints failed, attributing by language: %s", exc.message)
            return [(by_language or self._by_turn_taking(), result)]

    def _by_turn_taking(self) -> _Party:
        return self.parties[1 - self._last_party().index] if self.last_party is not None else self.parties[0]

    async def _attribute_by_voice(
        self, result: transcription_pb2.StreamingResult, window: _Window, by_language: _Party | None
    ) -> list[tuple[_Party, transcription_pb2.StreamingResult]]:
        """Give the utterance (or each run of one voice in it) a party and return the
        runs as pieces. Voice prints decide once both voices have one; until then the
        diarisation pipeline does, on the utterance and the seconds before it."""
        start, end = result.start_s, result.end_s
        words = [(w.start_s, w.end_s) for w in result.words]
        if not self.voices.all_known:
            decided = await self._diarised_runs(window, words, start, end)
            if decided is not None:
                spans, parties = decided
                if by_language is not None and len(set(parties)) == 1:
                    parties = [by_language.index] * len(parties)  # one voice, its language names the party
                vectors = await self._embed(window, spans)
                for vector, (a, b), party in zip(vectors, spans, parties):
                    self.voices.learn(party, vector, b - a)
                return self._runs(result, spans, parties)
        bounds = [start, *pause_cuts(words, start, end, self.voices.settings.min_piece_s), end]
        spans = list(zip(bounds, bounds[1:]))
        vectors = await self._embed(window, spans)
        durations = [b - a for a, b in spans]
        if by_language is not None and len(spans) == 1:
            self.voices.learn(by_language.index, vectors[0], durations[0])
            return [(by_language, result)]
        labels = self.voices.attribute_parts(vectors, durations, self.last_party)
        if by_language is not None and len(set(labels)) == 1 and labels[0] != by_language.index:
            labels = [by_language.index] * len(labels)  # one voice, and its language names the party
        return self._runs(result, spans, labels)

    def _runs(
        self, result: transcription_pb2.StreamingResult, spans: list[tuple[float, float]], parties: list[int]
    ) -> list[tuple[_Party, transcription_pb2.StreamingResult]]:
        """Consecutive spans of one party joined; one piece of the final per run."""
        runs = [(party, spans[first][0], spans[last][1]) for party, first, last in _label_runs(parties)]
        for party, a, b in runs:
            self.recent.append((a, b, party))
        self.recent = [r for r in self.recent if r[1] > result.end_s - VOICE_CONTEXT_S]
        if len(runs) == 1:
            return [(self.parties[runs[0][0]], result)]
        return [(self.parties[party], _piece(result, a, b)) for party, a, b in runs]

    async def _diarised_runs(
        self, window: _Window, words: list[tuple[float, float]], start: float, end: float
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
        context_start = max(start - VOICE_CONTEXT_S, window.start_s, 0.0)
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
        pieces.append(window.between(context_start, end))
        response = await self.core.diarize_raw(
            self.call, pcm16(np.concatenate(pieces)), _PCM16_MONO,
            diarization_pb2.DiarizationOptions(min_speakers=1, max_speakers=2),
        )
        index = compose.SpeakerIndex([compose.SpeakerSpan(t.start_s, t.end_s, t.speaker) for t in response.turns])
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

    async def _embed(self, window: _Window, spans: list[tuple[float, float]]) -> list[np.ndarray | None]:
        """Voice prints of spans of the stream, in one call."""
        first = spans[0][0]
        clip = window.between(first, spans[-1][1])
        response = await self.core.embed_voices(
            self.call, pcm16(clip), _PCM16_MONO, [(a - first, max(b - first, a - first + 0.01)) for a, b in spans]
        )
        return [np.asarray(p.vector, dtype=np.float32) if p.vector else None for p in response.prints]


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


async def _audio_messages(
    requests: AsyncIterator[gateway_pb2.LiveConversationRequest],
) -> AsyncIterator[bytes]:
    """The audio bytes of a conversation's messages after its config."""
    async for request in requests:
        kind = request.WhichOneof("request")
        if kind == "config":
            raise InvalidArgument("config sent twice: a stream takes one config, then audio only")
        if kind == "audio_content" and request.audio_content:
            yield request.audio_content
