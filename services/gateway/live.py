"""LiveConversation: a reception desk's two parties, transcribed and translated live.

One client stream carries raw audio, one channel per party's microphone or one shared
microphone. The gateway splits the channels and opens one StreamingTranscribe per party
(one for a shared microphone), each with that party's language ("detect" leaves it to
the model). Interim results pass straight through; each final result is translated into
the other party's language before it is sent, so a client shows one final line with its
translation.

Shared microphone: an utterance (cut by silence) may hold both voices, so each final is
split where the voice changes: the last 30 s are diarised, the final's words are given
to the diarisation voices (compose.merge_words_with_speakers), and each voice is mapped to
the party whose words it already spoke in that window; a voice not heard before goes to
the party its language names, else to a party not yet heard. The pieces share the
utterance's index. Without the diarisation service: the whole utterance goes to the
party its language names, else to the other party than the last one (turn taking).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import AsyncIterator

import numpy as np

from parlons.services.common.audio_request import StreamAudioDecoder
from parlons.services.common.errors import InvalidArgument, ParlonsError
from parlons.services.common.streams import StreamPump
from parlons.services.gateway import compose
from parlons.services.gateway.core import Call, GatewayCore
from parlons.v1 import audio_pb2, diarization_pb2, gateway_pb2, transcription_pb2

log = logging.getLogger("parlons.gateway.live")

DETECT = "detect"
RATE = 16000
DIARIZATION_WINDOW_S = 30.0
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
    """The last seconds of shared-microphone audio, for diarising on demand.

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

    @property
    def samples(self) -> np.ndarray:
        """The held audio, oldest first (a copy: diarisation runs while audio arrives)."""
        if self._written <= self.capacity:
            return self._ring[: self._written].copy()
        at = self._written % self.capacity
        return np.concatenate([self._ring[at:], self._ring[:at]])


def validate(config: gateway_pb2.LiveConversationConfig) -> list[_Party]:
    if len(config.parties) != 2:
        raise InvalidArgument(f"a live conversation has two parties, got {len(config.parties)}")
    parties = []
    for i, p in enumerate(config.parties):
        name = p.name.strip() or f"party{i}"
        language = p.language.strip()
        if not language:
            raise InvalidArgument(f"party {name!r} needs a language (BCP-47, or \"detect\")")
        parties.append(_Party(i, name, language.lower() if language.lower() == DETECT else language, p.channel))
    if parties[0].name == parties[1].name:
        raise InvalidArgument("the two parties need different names")
    channels = [p.channel for p in parties]
    available = config.config.channels
    if all(c == -1 for c in channels):
        return parties
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
        self.decoder = StreamAudioDecoder(config.config, keep_channels=True)
        self.shared = all(p.channel == -1 for p in self.parties)
        if self.shared:
            self.lanes = [_Lane(self.parties, -1)]
        else:
            self.lanes = [_Lane([p], p.channel) for p in self.parties]
        self.window = _Window(DIARIZATION_WINDOW_S) if self.shared else None
        self.history: list[tuple[float, float, int]] = []  # shared mode: (start, end, party)
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
        except Exception as exc:  # noqa: BLE001 - ends the conversation with this status
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
        backend = self.core.router.get("transcription")
        previous: asyncio.Task[None] | None = None
        try:
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
        except Exception as exc:  # noqa: BLE001
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
        except Exception as exc:  # noqa: BLE001 - ends the conversation with this status
            self.out.put_nowait(exc)

    def _emit(self, utterances: list[gateway_pb2.LiveUtterance]) -> None:
        if utterances:
            self.out.put_nowait(gateway_pb2.LiveConversationResponse(utterances=utterances))

    async def run(
        self, requests: AsyncIterator[gateway_pb2.LiveConversationRequest]
    ) -> AsyncIterator[gateway_pb2.LiveConversationResponse]:
        tasks = [asyncio.create_task(self._read_client(requests))]
        tasks += [asyncio.create_task(self._run_lane(lane)) for lane in self.lanes]
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
                words = result.words or [transcription_pb2.WordInfo(start_s=result.start_s, end_s=result.end_s)]
                self.history.extend((w.start_s, w.end_s, party.index) for w in words)
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
        return self.parties[self.history[-1][2]] if self.history else self.parties[0]

    def _by_turn_taking(self) -> _Party:
        return self.parties[1 - self._last_party().index] if self.history else self.parties[0]

    async def _split_shared(
        self, result: transcription_pb2.StreamingResult
    ) -> list[tuple[_Party, transcription_pb2.StreamingResult]]:
        """A final from the shared microphone, cut where the voice changes, each piece
        given to a party. Without diarisation: the whole utterance, by language, then by
        turn taking."""
        window = self.window
        if (
            self.core.router.has("diarization")
            and window is not None
            and window.size
            and result.words
        ):
            try:
                return await self._split_by_voice(result, window)
            except ParlonsError as exc:
                log.warning("live diarisation failed, attributing by language: %s", exc.message)
        return [(self._by_language(result.language) or self._by_turn_taking(), result)]

    async def _split_by_voice(
        self, result: transcription_pb2.StreamingResult, window: _Window
    ) -> list[tuple[_Party, transcription_pb2.StreamingResult]]:
        offset = window.start_s
        response = await self.core.diarize_raw(
            self.call,
            pcm16(window.samples),
            audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=RATE, channels=1),
            diarization_pb2.DiarizationOptions(min_speakers=1, max_speakers=2),
        )
        spans = [compose.SpeakerSpan(t.start_s + offset, t.end_s + offset, t.speaker) for t in response.turns]
        index = compose.SpeakerIndex(spans)
        transcript = transcription_pb2.TranscribeResponse(language=result.language)
        transcript.segments.add(text=result.text, language=result.language).words.extend(result.words)
        turns = compose.merge_words_with_speakers(transcript, spans)
        mapping = self._map_voices(index, [t.speaker for t in turns], result.language, offset)
        self.history = [h for h in self.history if h[1] > offset]  # older than the window: no use
        pieces: list[tuple[_Party, transcription_pb2.StreamingResult]] = []
        for turn in turns:
            party = mapping[turn.speaker]
            piece = transcription_pb2.StreamingResult()
            piece.CopyFrom(result)
            if pieces and pieces[-1][0] is party:  # two voices of one party: one piece
                piece = pieces.pop()[1]
                piece.text = f"{piece.text} {turn.text}"
                piece.words.extend(turn.words)
            else:
                piece.text = turn.text
                del piece.words[:]
                piece.words.extend(turn.words)
                piece.start_s = turn.start_s
            piece.end_s = turn.end_s
            pieces.append((party, piece))
        if pieces:
            pieces[-1][1].end_s = result.end_s
        return pieces or [(self._by_language(result.language) or self._by_turn_taking(), result)]

    def _map_voices(self, index: compose.SpeakerIndex, voices: list[str], language: str, offset: float) -> dict[str, _Party]:
        """Diarisation voices of this window -> parties, by the words already attributed."""
        votes: dict[str, dict[int, float]] = {}
        for start, end, party in self.history:
            if end <= offset:
                continue
            voice = index.speaker_at(max(start, offset), end)
            if voice is not None:
                votes.setdefault(voice, {}).setdefault(party, 0.0)
                votes[voice][party] += max(end - start, 0.01)
        mapping: dict[str, _Party] = {}
        for voice, tally in votes.items():
            mapping[voice] = self.parties[max(tally.items(), key=lambda kv: kv[1])[0]]
        for voice in dict.fromkeys(voices):  # new voices, in order of speaking
            if voice in mapping:
                continue
            taken = {p.index for p in mapping.values()}
            by_language = self._by_language(language)
            if by_language is not None and by_language.index not in taken:
                mapping[voice] = by_language
                continue
            free = [p for p in self.parties if p.index not in taken]
            mapping[voice] = free[0] if free else self._by_turn_taking()
        return mapping


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
