"""One desk conversation: the page's WebSocket on one side, LiveConversation on the other.

The page sends a JSON `start` message (the parties' languages, one or two microphones),
then binary frames of 16 kHz 16-bit PCM (interleaved when two microphones), and may
send `new` (Nouvel usager: the conversation ends on the server, a fresh one starts with
the next audio) or `stop`. The bridge answers with JSON: `ready`, `utterance` (interim
and final results with translations), `ended`, and `error` with a French message for the
agent and whether the page should reconnect. Nothing of the conversation is logged or
written: only its counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from collections.abc import AsyncIterator

import grpc
from grpc import aio

from parlons.audio_constants import SAMPLE_RATE as RATE
from parlons.clients.connection import Connection
from parlons.languages import DETECT, is_tag
from parlons.clients.desk.languages import Offer, Pair, offered
from parlons.v1 import (
    audio_pb2, gateway_pb2, gateway_pb2_grpc, transcription_pb2, transcription_pb2_grpc, translation_pb2,
    translation_pb2_grpc,
)

log = logging.getLogger("parlons.desk")

# Audio frames held for the gateway, at most (about 6 s at the page's 100-ms frames):
# beyond, the page is sending faster than real time and its reader waits.
MAX_QUEUED_FRAMES = 64
# gRPC statuses after which the page should reconnect (the gateway restarts, the network
# drops) rather than show a final error.
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
             grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
             grpc.StatusCode.OUT_OF_RANGE}


class DeskError(Exception):
    """A message for the agent (French), and whether reconnecting may help."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry


@dataclass(frozen=True)
class DeskStart:
    agent_language: str
    visitor_language: str  # BCP-47 or "detect"
    microphones: int  # 1 = shared, 2 = one per party (channel 0 agent, 1 visitor)

    @classmethod
    def parse(cls, message: dict[str, Any]) -> DeskStart:
        agent = str(message.get("agent", "fr")).strip() or "fr"
        visitor = str(message.get("visitor", DETECT)).strip() or DETECT
        microphones = message.get("microphones", 1)
        if microphones not in (1, 2):
            raise DeskError("Nombre de microphones invalide : 1 (partagé) ou 2.")
        for code in (agent, visitor):
            if code != DETECT and not is_tag(code):
                raise DeskError(f"Langue invalide : {code[:16]!r}.")
        return cls(agent, visitor, int(microphones))

    def config(self) -> gateway_pb2.LiveConversationConfig:
        shared = self.microphones == 1
        return gateway_pb2.LiveConversationConfig(
            config=audio_pb2.AudioConfig(encoding=audio_pb2.LINEAR16, sample_rate_hz=RATE, channels=self.microphones),
            parties=[
                gateway_pb2.Party(name="agent", language=self.agent_language, channel=-1 if shared else 0),
                gateway_pb2.Party(name="visitor", language=self.visitor_language, channel=-1 if shared else 1),
            ],
            interim_results=True,
        )


def utterance_message(u: gateway_pb2.LiveUtterance) -> dict[str, Any]:
    return {
        "type": "utterance", "party": u.party, "final": u.is_final, "index": u.utterance_index,
        "text": u.text, "language": u.language, "start": round(u.start_s, 2), "end": round(u.end_s, 2),
        "translation": u.translation, "translation_language": u.translation_language,
        "translation_error": u.translation_error, "stability": round(u.stability, 2),
    }


def french_error(error: aio.AioRpcError) -> DeskError:
    """A gRPC failure as the agent should read it."""
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return DeskError("Le service de traduction est injoignable. Nouvelle tentative…", retry=True)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return DeskError("Accès refusé par la passerelle : vérifiez la clé d'API du poste.")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return DeskError("Le service est saturé ou le quota est atteint. Nouvelle tentative…", retry=True)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return DeskError(f"Réglage refusé par le service : {error.details()}")
    if code == grpc.StatusCode.OUT_OF_RANGE:  # the gateway's stream bounds (idle, maximum duration)
        return DeskError("La conversation a atteint sa durée maximale. Reprise…", retry=True)
    return DeskError("La conversation a été interrompue. Nouvelle tentative…", retry=code in RETRYABLE)


class Conversation:
    """One LiveConversation call fed from a bounded queue of PCM frames."""

    def __init__(self, stub: gateway_pb2_grpc.GatewayServiceStub, start: DeskStart,
                 metadata: tuple[tuple[str, str], ...]) -> None:
        self.start = start
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue(MAX_QUEUED_FRAMES)
        self.call = stub.LiveConversation(self._requests(), metadata=metadata)

    async def _requests(self) -> AsyncIterator[gateway_pb2.LiveConversationRequest]:
        yield gateway_pb2.LiveConversationRequest(config=self.start.config())
        while (frame := await self.frames.get()) is not None:
            yield gateway_pb2.LiveConversationRequest(audio_content=frame)

    async def send(self, frame: bytes) -> None:
        await self.frames.put(frame)

    async def finish(self) -> None:
        """No more audio: the gateway sends the last finals, then the call ends."""
        await self.frames.put(None)

    def cancel(self) -> None:
        """End the call and its feed: gRPC's task reading `_requests` would otherwise wait
        on the queue for ever (one leaked task per conversation that ended in error)."""
        self.call.cancel()
        while not self.frames.empty():
            self.frames.get_nowait()
        self.frames.put_nowait(None)

    async def responses(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for response in self.call:
                for utterance in response.utterances:
                    yield utterance_message(utterance)
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self.call.cancelled():
                return
            raise french_error(exc) from None


class GatewayConnection:
    """The channel to the gateway, shared by the desk's successive conversations."""

    def __init__(self, gateway: Connection | str) -> None:
        connection = gateway if isinstance(gateway, Connection) else Connection(gateway, max_message_mb=16)
        self.channel = connection.aio_channel()
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.metadata = connection.metadata

    def open(self, start: DeskStart) -> Conversation:
        return Conversation(self.stub, start, self.metadata)

    async def visitor_languages(self, agent: str = "fr", timeout_s: float = 10.0) -> list[Offer]:
        """What the gateway's installed models serve both ways with the agent's language
        (empty when it has no translation service or model)."""
        transcription = transcription_pb2_grpc.TranscriptionServiceStub(self.channel)
        translation = translation_pb2_grpc.TranslationServiceStub(self.channel)
        models = await transcription.ListModels(transcription_pb2.ListModelsRequest(), metadata=self.metadata,
                                                timeout=timeout_s)
        default = next((m for m in models.models if m.name == models.default_model), None)
        heard = list(default.languages) if default else [code for m in models.models for code in m.languages]
        try:
            listed = await translation.ListLanguages(translation_pb2.ListLanguagesRequest(), metadata=self.metadata,
                                                     timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE,
                              grpc.StatusCode.FAILED_PRECONDITION):
                return []  # no translation here: nothing to offer a visitor
            raise
        pairs = [Pair(p.source_language, p.target_language, p.pivot) for p in listed.pairs]
        return offered(heard, pairs, agent)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.channel.close()
