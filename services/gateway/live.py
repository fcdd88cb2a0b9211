"""LiveConversation: a reception desk's two parties, transcribed and translated live.

One client stream carries raw audio, one channel per party's microphone or one shared
microphone. The gateway splits the channels and opens one StreamingTranscribe per party
(one for a shared microphone), each with that party's language ("detect" leaves it to
the model). Interim results pass straight through; each final result is translated into
the other party's language before it is sent, so a client shows one final line with its
translation.

Shared microphone: each final is given to a party by its voice, its language or turn
taking (attribution.py, which holds the microphone's recent audio and the voice prints;
this module hands it the diarisation service's calls). The client's audio reaches the
lanes through live_audio.py, which forwards LINEAR16 at 16 kHz without decoding it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from collections.abc import AsyncIterator, Sequence

import numpy as np

from parlons.audio_constants import SAMPLE_RATE as RATE
from parlons.languages import DETECT, same_language
from parlons.errors import InvalidArgument, ParlonsError
from parlons.services.common.streams import StreamPump
from parlons.services.gateway import compose
from parlons.services.gateway.attribution import (
    MAX_VOICE_SAMPLE_BYTES,
    MAX_VOICE_SAMPLE_S,
    Attributor,
    Party,
)
from parlons.services.gateway.core import Call, GatewayCore
from parlons.services.gateway.live_audio import LaneAudio, LaneChunk, pcm16
from parlons.v1 import audio_pb2, diarization_pb2, gateway_pb2, transcription_pb2

_PCM16_MONO = audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=RATE, channels=1)
_DONE = object()
# Client messages read ahead of the decoder, at most (then gRPC flow control holds the
# client back): at 100-ms chunks, 6 s of audio.
_MAX_QUEUED_MESSAGES = 64


@dataclass
class _Lane:
    """One backend stream: a party's channel, or the shared microphone."""

    parties: list[Party]
    channel: int  # -1 = shared microphone (mono mix)
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


def validate(config: gateway_pb2.LiveConversationConfig) -> list[Party]:
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
        parties.append(Party(i, name, language.lower() if language.lower() == DETECT else language, p.channel,
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
        self.shared = all(p.channel == -1 for p in self.parties)
        if self.shared:
            self.lanes = [_Lane(self.parties, -1)]
        else:
            self.lanes = [_Lane([p], p.channel) for p in self.parties]
        self.audio = LaneAudio(config.config, [lane.channel for lane in self.lanes])
        self.attributor: Attributor | None = None  # shared microphone only
        if self.shared:
            voices = core.router.has("diarization")
            self.attributor = Attributor(
                self.parties, self._embed if voices else None, self._diarise if voices else None
            )
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
        """Client audio -> every lane (live_audio.py). A pump reads the client while a
        batch decodes, and the decoder takes everything that arrived at once; its queue is
        bounded, so a client sending faster than we decode is held back by gRPC's flow
        control instead of filling the gateway's memory. Audio forwarded undecoded is
        cut in the loop (microseconds), decoding runs in a worker thread."""
        audio = self.audio
        try:
            async with StreamPump(_audio_messages(requests), maxsize=_MAX_QUEUED_MESSAGES) as pump:
                while (chunks := await pump.next_batch()) is not None:
                    before = audio.decoded_seconds
                    data = b"".join(chunks)
                    chunk = await asyncio.to_thread(audio.feed, data) if audio.decodes else audio.feed(data)
                    await self.core.quotas.charge_audio(self.call.tenant, audio.decoded_seconds - before,
                                                        under_way=True)
                    self._dispatch(chunk)
            self._dispatch(await asyncio.to_thread(audio.flush) if audio.decodes else audio.flush())
            for lane in self.lanes:
                lane.queue.put_nowait(None)
        except Exception as exc:
            self.out.put_nowait(exc)

    def _dispatch(self, chunk: LaneChunk) -> None:
        if chunk.mono is not None and chunk.mono.shape[0] and self.attributor is not None:
            self.attributor.hear(chunk.mono)
        for lane, data in zip(self.lanes, chunk.lanes):
            if data:
                lane.queue.put_nowait(data)

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
        if self.attributor is not None:
            for party in self.parties:
                seconds = await self.attributor.enrol(party)
                if seconds:
                    await self.core.quotas.charge_audio(self.call.tenant, seconds, under_way=True)
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
            await asyncio.to_thread(self.audio.close)

    def _report_escaped(self, task: asyncio.Task[None]) -> None:
        """A task that dies of an error it did not hand to `out` still ends the call:
        the loop below waits on `out` alone, and would otherwise wait forever."""
        if not task.cancelled() and task.exception() is not None:
            self.out.put_nowait(task.exception())

    # ------------------------------------------------------------------ results

    async def _utterances(
        self, lane: _Lane, result: transcription_pb2.StreamingResult
    ) -> list[gateway_pb2.LiveUtterance]:
        if len(lane.parties) == 1 or self.attributor is None:
            pieces = [(lane.parties[0], result)]
        elif result.is_final:
            pieces = await self.attributor.final(result)
        else:
            pieces = [(self.attributor.interim(result), result)]
        utterances = []
        for party, piece in pieces:
            utterances.append(await self._utterance(lane, party, piece))
        return utterances

    async def _utterance(
        self, lane: _Lane, party: Party, result: transcription_pb2.StreamingResult
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
            if self.attributor is not None:
                self.attributor.spoke(party)
            if utterance.text:
                await self._translate(utterance, party)
        return utterance

    async def _translate(self, utterance: gateway_pb2.LiveUtterance, party: Party) -> None:
        other = self.parties[1 - party.index]
        target = other.known_language
        if not target:
            utterance.translation_error = f"the language of {other.name!r} is not known yet (it is detected when they speak)"
            return
        utterance.translation_language = target
        source = utterance.language
        if same_language(source, target):
            utterance.translation = utterance.text
            return
        try:
            (translation,) = await self.core.translate_texts(
                self.call, [utterance.text], source, target, self.config.glossary, under_way=True
            )
            utterance.translation = translation.text
        except ParlonsError as exc:
            # The transcript still goes out; the client sees why its translation is missing.
            utterance.translation_error = exc.message

    # ------------------------------------------------------------------ shared microphone

    async def _embed(self, samples: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[np.ndarray | None]:
        """The attributor's EmbedVoices (spans of a clip, or the whole clip)."""
        response = await self.core.embed_voices(self.call, pcm16(samples), _PCM16_MONO, spans)
        return [np.asarray(p.vector, dtype=np.float32) if p.vector else None for p in response.prints]

    async def _diarise(self, samples: np.ndarray, speakers: int) -> list[compose.SpeakerSpan]:
        """The attributor's Diarize (one to `speakers` voices)."""
        response = await self.core.diarize_raw(
            self.call, pcm16(samples), _PCM16_MONO,
            diarization_pb2.DiarizationOptions(min_speakers=1, max_speakers=speakers),
        )
        return [compose.SpeakerSpan(t.start_s, t.end_s, t.speaker) for t in response.turns]


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
