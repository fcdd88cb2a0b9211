"""DiarizationService over gRPC: proto in, engine call, proto out.

The engine does the work; this layer checks the request (speaker counts and audio are
refused with INVALID_ARGUMENT before any model runs), keeps the model behind a bounded
queue, stops the work when the caller goes away, and shapes the response.

Channel mode needs no neural model, so it is served even while the pipeline loads.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING
from collections.abc import AsyncIterator

import numpy as np
from grpc import aio

from parlons.services.common.module import EngineModule
from parlons.services.common import metrics
from parlons.services.common.audio_request import audio_bytes, decode_request_audio, read_upload
from parlons.services.common.config import DiarizationSettings, ParlonsConfig
from parlons.models.manager import ModelManager
from parlons.errors import InvalidArgument
from parlons.services.common.workqueue import WorkQueue
from parlons.services.diarization.channel_mode import diarize_channels
from parlons.services.diarization.options import DiarizationConfig
from parlons.services.diarization.references import (
    MAX_REFERENCE_S,
    VoiceReference,
    check_reference_names,
    check_reference_threshold,
)
from parlons.services.diarization.results import DiarizationResult, check_speaker_counts
from parlons.v1 import audio_pb2, diarization_pb2, diarization_pb2_grpc

if TYPE_CHECKING:  # the engine imports torch/pyannote: only load() brings them in
    from parlons.services.diarization.engine import DiarizationEngine

log = logging.getLogger("parlons.diarization")

SERVICE_NAME = "parlons.v1.DiarizationService"
# EmbedVoices bounds: spans per request and seconds of speech embedded (the model's cost
# grows with the seconds; a live desk sends one to three spans of a few seconds).
MAX_VOICE_SPANS = 64
MAX_VOICE_SECONDS = 600.0
_MODES = {
    diarization_pb2.DIARIZATION_MODE_UNSPECIFIED: "neural",
    diarization_pb2.NEURAL: "neural",
    diarization_pb2.CHANNEL: "channel",
}


def response_from_result(result: DiarizationResult, uri: str) -> diarization_pb2.DiarizeResponse:
    return diarization_pb2.DiarizeResponse(
        turns=[
            diarization_pb2.SpeakerTurn(
                start_s=t.start, end_s=t.end, speaker=t.speaker, overlap=t.overlap, channel=t.channel
            )
            for t in result.turns
        ],
        speakers=[
            diarization_pb2.SpeakerSummary(speaker=s.speaker, speaking_time_s=s.speaking_time_s, turns=s.turns,
                                           reference_similarity=s.reference_similarity)
            for s in result.speakers
        ],
        dominant_turns=[
            diarization_pb2.SpeakerTurn(start_s=t.start, end_s=t.end, speaker=t.speaker, channel=t.channel)
            for t in result.dominant_turns
        ],
        estimated_speakers=result.estimated_speakers,
        speaker_count_confidence=result.count_confidence,
        speaker_count_note=result.count_note,
        rttm=result.to_rttm(uri or "audio"),
        audio_duration_s=result.duration_s,
        processing_duration_s=result.processing_s,
        mode=diarization_pb2.CHANNEL if result.mode == "channel" else diarization_pb2.NEURAL,
    )


def check_voice_spans(spans: list[tuple[float, float]]) -> None:
    """Spans to embed: ordered bounds, a bounded count and total, before any decoding."""
    if len(spans) > MAX_VOICE_SPANS:
        raise InvalidArgument(f"{len(spans)} spans to embed; at most {MAX_VOICE_SPANS} a request")
    for start, end in spans:
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
            raise InvalidArgument(f"span {start}-{end} s: need 0 <= start_s < end_s")
    total = sum(end - start for start, end in spans)
    if total > MAX_VOICE_SECONDS:
        raise InvalidArgument(f"{total:.0f} s of spans to embed; at most {MAX_VOICE_SECONDS:.0f} s a request")


def decode_references(
    engine: DiarizationEngine,
    references: list[diarization_pb2.SpeakerReference],
    max_decoded_mb: int,
) -> list[VoiceReference]:
    """Each reference's voice print; a reference that cannot serve is refused by name."""
    prints = []
    for i, reference in enumerate(references):
        where = f"options.speaker_references[{i}].audio"
        try:
            data = audio_bytes(reference.audio if reference.HasField("audio") else None)
            audio = decode_request_audio(data, reference.config, keep_channels=False,
                                         max_duration_s=MAX_REFERENCE_S, max_decoded_mb=max_decoded_mb)
            prints.append(engine.reference_print(audio, reference.name))
        except InvalidArgument as exc:
            message = str(exc) if reference.name in str(exc) else f"speaker reference {reference.name!r}: {exc}"
            raise InvalidArgument(message, field=where) from exc
    return prints


class DiarizationServicer(diarization_pb2_grpc.DiarizationServiceServicer):
    def __init__(self, module: DiarizationModule) -> None:
        self._module = module

    async def _run(
        self,
        data: bytes,
        config: audio_pb2.AudioConfig,
        options: diarization_pb2.DiarizationOptions,
        uri: str,
    ) -> diarization_pb2.DiarizeResponse:
        mode = _MODES.get(options.mode)
        if mode is None:
            raise InvalidArgument(f"unknown diarisation mode {options.mode}; use NEURAL or CHANNEL")
        counts = check_speaker_counts(options.num_speakers, options.min_speakers, options.max_speakers)
        references = list(options.speaker_references)
        check_reference_names([r.name for r in references])
        check_reference_threshold(options.reference_threshold)
        if references and mode == "channel":
            raise InvalidArgument("speaker_references need the neural mode; in channel mode name the channels "
                                  "with channel_speaker_names", field="options.speaker_references")
        engine = self._module.ready_engine() if mode == "neural" else self._module.engine
        names = list(options.channel_speaker_names)
        pipeline_config = self._module.pipeline_config
        max_s = self._module.settings.max_audio_s
        max_mb = self._module.settings.max_decoded_mb
        cancel = threading.Event()

        def job() -> diarization_pb2.DiarizeResponse:
            audio = decode_request_audio(data, config, keep_channels=mode == "channel", max_duration_s=max_s,
                                         max_decoded_mb=max_mb)
            if mode == "channel":
                result = diarize_channels(audio, pipeline_config, speaker_names=names, cancel=cancel)
            else:
                assert engine is not None
                num, low, high = counts
                prints = decode_references(engine, references, max_mb)
                result = engine.diarize(audio, num_speakers=num, min_speakers=low, max_speakers=high,
                                        references=prints, reference_threshold=options.reference_threshold or None,
                                        cancel=cancel)
            metrics.AUDIO_SECONDS.labels("diarization").inc(result.duration_s)
            if result.duration_s > 0:
                metrics.REAL_TIME_FACTOR.labels("diarization").observe(result.real_time_factor)
            return response_from_result(result, uri)

        return await self._module.queue.run(job, cancel=cancel)

    async def EmbedVoices(
        self, request: diarization_pb2.EmbedVoicesRequest, context: aio.ServicerContext
    ) -> diarization_pb2.EmbedVoicesResponse:
        data = audio_bytes(request.audio if request.HasField("audio") else None)
        spans = [(span.start_s, span.end_s) for span in request.spans]
        check_voice_spans(spans)
        engine = self._module.ready_engine()
        max_s = self._module.settings.max_audio_s
        max_mb = self._module.settings.max_decoded_mb
        config = request.config
        cancel = threading.Event()

        def job() -> diarization_pb2.EmbedVoicesResponse:
            audio = decode_request_audio(data, config, keep_channels=False, max_duration_s=max_s,
                                         max_decoded_mb=max_mb)
            duration = audio.duration_s
            if not spans and duration > MAX_VOICE_SECONDS:
                raise InvalidArgument(
                    f"{duration:.0f} s of audio to embed; at most {MAX_VOICE_SECONDS:.0f} s a request"
                )
            late = [(a, b) for a, b in spans if a >= duration]
            if late:
                raise InvalidArgument(
                    f"span {late[0][0]:.2f}-{late[0][1]:.2f} s starts after the end of the audio ({duration:.2f} s)"
                )
            wanted = spans or [(0.0, duration)]
            vectors = engine.embed_voices(audio, wanted, cancel=cancel)
            prints = [
                diarization_pb2.VoicePrint(
                    start_s=a, end_s=min(b, duration), vector=[] if np.isnan(v).any() else v.tolist()
                )
                for (a, b), v in zip(wanted, vectors)
            ]
            return diarization_pb2.EmbedVoicesResponse(
                prints=prints, model=engine.embedding_model, dimension=engine.embedding_dimension,
                audio_duration_s=duration,
            )

        return await self._module.queue.run(job, cancel=cancel)

    async def Diarize(
        self, request: diarization_pb2.DiarizeRequest, context: aio.ServicerContext
    ) -> diarization_pb2.DiarizeResponse:
        data = audio_bytes(request.audio if request.HasField("audio") else None)
        return await self._run(data, request.config, request.options, request.uri)

    async def DiarizeUpload(
        self,
        request_iterator: AsyncIterator[diarization_pb2.DiarizeUploadRequest],
        context: aio.ServicerContext,
    ) -> diarization_pb2.DiarizeResponse:
        first, data = await read_upload(request_iterator, self._module.max_upload_bytes,
                                        admit=self._module.queue.check_capacity)
        return await self._run(data, first.config, first.options, first.uri)


class DiarizationModule(EngineModule["DiarizationEngine"]):
    """The diarisation service as the shared server sees it: register, load, close."""

    service_names = (SERVICE_NAME,)
    kind = "diarization"
    what_loads = "the diarisation pipeline"

    def __init__(self, settings: DiarizationSettings, *, pipeline_config: DiarizationConfig | None = None,
                 models: ModelManager | None = None) -> None:
        super().__init__(models)
        self.settings = settings
        # Read at construction so a bad file fails `parlons serve` at once, not at load.
        self.pipeline_config = pipeline_config or DiarizationConfig.from_file(settings.pipeline_config or None)
        if settings.device != "auto" and self.pipeline_config.device == "auto":
            self.pipeline_config = self.pipeline_config.replace(device=settings.device)
        self.queue = WorkQueue("diarization", settings.max_concurrent, settings.max_queued)
        self.max_upload_bytes = settings.max_upload_mb << 20
        self._servicer = DiarizationServicer(self)

    def register(self, server: aio.Server) -> None:
        diarization_pb2_grpc.add_DiarizationServiceServicer_to_server(self._servicer, server)

    def model_label(self) -> str:
        return self.pipeline_config.models.embedding

    def _load_engine(self) -> DiarizationEngine:
        from parlons.services.diarization.engine import DiarizationEngine

        return DiarizationEngine(self.pipeline_config, resolve_model=self._resolve)

    async def close(self) -> None:
        self.queue.shutdown()
        await super().close()


def module_from_config(config: ParlonsConfig, models: ModelManager | None = None) -> DiarizationModule:
    return DiarizationModule(config.diarization, models=models)
