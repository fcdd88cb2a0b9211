"""Client for the gateway's conversation RPCs (speaker-attributed transcripts, live desk).

Used by `parlons transcribe --diarize`; usable on its own:

    channel = open_channel("gateway:50051")
    client = ConversationClient(channel, api_key="prl_...")
    conversation = client.transcribe_file("counter.wav", target_languages=["en"])
    for turn in conversation.turns:
        print(turn.speaker, turn.text, [t.text for t in turn.translations])
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterable, Iterator, Sequence

import grpc

from parlons.services.gateway.compose import turns_to_transcript
from parlons.v1 import (
    audio_pb2,
    diarization_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    transcription_pb2,
    translation_pb2,
)

UPLOAD_CHUNK_BYTES = 1 << 20


def auth_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


class ConversationClient:
    def __init__(
        self,
        channel: grpc.Channel,
        *,
        num_speakers: int = 0,
        api_key: str | None = None,
        metadata: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        self.num_speakers = num_speakers
        self.metadata = auth_metadata(api_key) + tuple(metadata)

    def _request(
        self,
        options: transcription_pb2.TranscriptionOptions | None,
        config: audio_pb2.AudioConfig | None,
        diarization: diarization_pb2.DiarizationOptions | None,
        target_languages: Sequence[str],
        subtitles: bool,
        glossary: translation_pb2.Glossary | None,
        uri: str = "",
    ) -> gateway_pb2.TranscribeConversationRequest:
        request = gateway_pb2.TranscribeConversationRequest(
            config=config or audio_pb2.AudioConfig(),
            transcription=options or transcription_pb2.TranscriptionOptions(),
            diarization=diarization or diarization_pb2.DiarizationOptions(num_speakers=self.num_speakers),
            target_languages=list(target_languages),
            subtitles=subtitles,
            uri=uri,
        )
        if glossary is not None:
            request.glossary.CopyFrom(glossary)
        return request

    def transcribe_conversation(
        self,
        audio: bytes,
        options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None,
        *,
        diarization: diarization_pb2.DiarizationOptions | None = None,
        target_languages: Sequence[str] = (),
        subtitles: bool = False,
        glossary: translation_pb2.Glossary | None = None,
        uri: str = "",
        timeout_s: float | None = None,
    ) -> gateway_pb2.TranscribeConversationResponse:
        request = self._request(options, config, diarization, target_languages, subtitles, glossary, uri)
        request.audio.content = audio
        return self.stub.TranscribeConversation(request, timeout=timeout_s, metadata=self.metadata)

    def transcribe_file(
        self,
        path: str | Path,
        options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None,
        *,
        diarization: diarization_pb2.DiarizationOptions | None = None,
        target_languages: Sequence[str] = (),
        subtitles: bool = False,
        glossary: translation_pb2.Glossary | None = None,
        uri: str = "",
        timeout_s: float | None = None,
    ) -> gateway_pb2.TranscribeConversationResponse:
        """Upload in chunks (no message-size limit on the file). `uri` names the file in
        the RTTM output."""
        first = self._request(options, config, diarization, target_languages, subtitles, glossary, uri)

        def requests() -> Iterator[gateway_pb2.TranscribeConversationUploadRequest]:
            yield gateway_pb2.TranscribeConversationUploadRequest(config=first)
            with Path(path).open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK_BYTES):
                    yield gateway_pb2.TranscribeConversationUploadRequest(audio_content=chunk)

        return self.stub.TranscribeConversationUpload(requests(), timeout=timeout_s, metadata=self.metadata)

    def transcribe_with_speakers(
        self,
        path: str | Path,
        options: transcription_pb2.TranscriptionOptions | None = None,
        *,
        per_channel: bool = False,
        target_languages: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> tuple[transcription_pb2.TranscribeResponse, str, dict[str, transcription_pb2.TranscribeResponse]]:
        """For `parlons transcribe --diarize`: a transcript whose segments are speaker
        turns (speaker set on segments and words), the RTTM, and the same transcript in
        each target language (turn by turn)."""
        diarization = diarization_pb2.DiarizationOptions(
            mode=diarization_pb2.CHANNEL if per_channel else diarization_pb2.NEURAL,
            num_speakers=self.num_speakers,
        )
        response = self.transcribe_file(
            path, options, diarization=diarization, uri=Path(path).stem,
            target_languages=target_languages, timeout_s=timeout_s,
        )
        transcript = turns_to_transcript(response)
        translated: dict[str, transcription_pb2.TranscribeResponse] = {}
        for language in target_languages:
            copy = transcription_pb2.TranscribeResponse()
            copy.CopyFrom(transcript)
            copy.language = language
            for segment, turn in zip(copy.segments, response.turns):
                segment.text = next((t.text for t in turn.translations if t.language == language), "")
                segment.language = language
                del segment.words[:]
            copy.text = " ".join(s.text for s in copy.segments)
            translated[language] = copy
        return transcript, response.rttm, translated

    def translate_speech(
        self,
        audio: bytes,
        target_language: str,
        options: transcription_pb2.TranscriptionOptions | None = None,
        config: audio_pb2.AudioConfig | None = None,
        *,
        timeout_s: float | None = None,
    ) -> gateway_pb2.TranslateSpeechResponse:
        request = gateway_pb2.TranslateSpeechRequest(
            config=config or audio_pb2.AudioConfig(),
            audio=audio_pb2.Audio(content=audio),
            transcription=options or transcription_pb2.TranscriptionOptions(),
            target_language=target_language,
        )
        return self.stub.TranslateSpeech(request, timeout=timeout_s, metadata=self.metadata)

    def live_conversation(
        self,
        chunks: Iterable[bytes],
        config: gateway_pb2.LiveConversationConfig,
        *,
        timeout_s: float | None = None,
    ) -> Iterator[gateway_pb2.LiveConversationResponse]:
        """Bidirectional: raw audio chunks in (as declared in config.config), results out."""

        def requests() -> Iterator[gateway_pb2.LiveConversationRequest]:
            yield gateway_pb2.LiveConversationRequest(config=config)
            for chunk in chunks:
                yield gateway_pb2.LiveConversationRequest(audio_content=chunk)

        return self.stub.LiveConversation(requests(), timeout=timeout_s, metadata=self.metadata)
