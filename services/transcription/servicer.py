"""TranscriptionService over gRPC: proto in, engine call, proto out.

The engine (faster-whisper) does the work; this layer validates requests, keeps the
model behind a bounded queue, stops work when the caller goes away, and shapes results.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from grpc import aio
from parlons.services.common.module import EngineModule
from parlons.services.common import metrics
from parlons.services.common.audio import TARGET_RATE
from parlons.services.common.audio_request import (
    StreamAudioDecoder,
    audio_bytes,
    decode_request_audio,
    read_upload,
)
from parlons.services.common.config import ParlonsConfig, TranscriptionSettings
from parlons.models.manager import ModelManager
from parlons.errors import InvalidArgument, NotFound, ResourceExhausted
from parlons.services.common.streams import StreamLimiter, StreamPump, read_config
from parlons.services.common.workqueue import WorkQueue
from parlons.services.transcription import convert
from parlons.services.transcription.capacity import default_live_capacity
from parlons.services.transcription.engine import TranscriptionEngine, default_model, resolve_device
from parlons.services.transcription.scheduler import LiveDecodeScheduler
from parlons.services.transcription.streaming import StreamingSession

from parlons.services.transcription.window import WindowPolicy
from parlons.v1 import audio_pb2, transcription_pb2, transcription_pb2_grpc

log = logging.getLogger("parlons.transcription")

SERVICE_NAME = "parlons.v1.TranscriptionService"
# Audio that may pile up during one decoding pass before interim results are skipped.
MAX_LAG_FOR_INTERIM_S = 1.0
T = TypeVar("T")


class TranscriptionServicer(transcription_pb2_grpc.TranscriptionServiceServicer):
    def __init__(self, module: TranscriptionModule) -> None:
        self._module = module

    @property
    def _settings(self) -> TranscriptionSettings:
        return self._module.settings

    def _engine_for(self, model: str) -> TranscriptionEngine:
        engine = self._module.ready_engine()
        if model and model not in self._module.served_names:
            raise NotFound(f"model {model[:100]!r} is not served here; served: {', '.join(self._module.public_names())}")
        return engine

    async def _run(
        self,
        engine: TranscriptionEngine,
        data: bytes,
        config: audio_pb2.AudioConfig,
        options_proto: transcription_pb2.TranscriptionOptions,
    ) -> transcription_pb2.TranscribeResponse:
        options = convert.options_from_proto(
            options_proto, config, vad_filter_default=self._settings.vad_filter_default
        )
        cancel = threading.Event()
        max_s = self._settings.max_audio_s
        max_mb = self._settings.max_decoded_mb

        def job() -> transcription_pb2.TranscribeResponse:
            audio = decode_request_audio(data, config, keep_channels=options.per_channel, max_duration_s=max_s,
                                         max_decoded_mb=max_mb)
            result = engine.transcribe(audio, options, cancel=cancel)
            metrics.AUDIO_SECONDS.labels("transcription").inc(result.duration_s)
            if result.duration_s > 0:
                metrics.REAL_TIME_FACTOR.labels("transcription").observe(result.processing_s / result.duration_s)
            return convert.response_from_result(result, self._module.model_name, audio.source_channels)

        return await self._module.queue.run(job, cancel=cancel)

    async def Transcribe(
        self, request: transcription_pb2.TranscribeRequest, context: aio.ServicerContext
    ) -> transcription_pb2.TranscribeResponse:
        engine = self._engine_for(request.options.model)
        data = audio_bytes(request.audio if request.HasField("audio") else None)
        return await self._run(engine, data, request.config, request.options)

    async def TranscribeUpload(
        self,
        request_iterator: AsyncIterator[transcription_pb2.TranscribeUploadRequest],
        context: aio.ServicerContext,
    ) -> transcription_pb2.TranscribeResponse:
        first, data = await read_upload(request_iterator, self._module.max_upload_bytes,
                                        admit=self._module.queue.check_capacity)
        engine = self._engine_for(first.options.model)
        return await self._run(engine, data, first.config, first.options)

    async def StreamingTranscribe(
        self,
        request_iterator: AsyncIterator[transcription_pb2.StreamingTranscribeRequest],
        context: aio.ServicerContext,
    ) -> AsyncIterator[transcription_pb2.StreamingTranscribeResponse]:
        config = await read_config(request_iterator)
        engine = self._engine_for(config.options.model)
        options = convert.options_from_proto(
            config.options, config.config, vad_filter_default=self._settings.vad_filter_default
        )
        decoder = StreamAudioDecoder(config.config)
        streaming = convert.streaming_config(config, self._settings)
        cancel = threading.Event()
        async with self._module.stream_slot():
            session = StreamingSession(self._module.live_engine(engine), options, config=streaming, cancel=cancel)
            try:
                async for response in _stream(session, decoder, request_iterator, self._module):
                    yield response
            finally:
                cancel.set()  # a decode still running in a thread stops at its next check
                await asyncio.to_thread(decoder.close)

    async def ListModels(
        self, request: transcription_pb2.ListModelsRequest, context: aio.ServicerContext
    ) -> transcription_pb2.ListModelsResponse:
        return await asyncio.to_thread(self._module.describe_models)


async def _stream(
    session: StreamingSession,
    decoder: StreamAudioDecoder,
    request_iterator: AsyncIterator[transcription_pb2.StreamingTranscribeRequest],
    module: TranscriptionModule,
) -> AsyncIterator[transcription_pb2.StreamingTranscribeResponse]:
    """Read audio as it comes, decode what has arrived since the last pass, emit events.

    Reading runs in its own task so a slow decode never stalls the client's sends; the
    decoder always takes everything that arrived, so it catches up instead of lagging.
    Sessions run in the module's live pool (one thread each at a time), so that every
    open stream can have a decode waiting on the scheduler at once.
    """
    buffered = [0.0]
    arrivals = ArrivalClock(exact=decoder.format is not None)
    max_buffer_s = module.max_stream_buffer_s

    async def audio_chunks() -> AsyncIterator[bytes]:
        async for request in request_iterator:
            if request.WhichOneof("request") != "audio_content":
                raise InvalidArgument("config sent twice: a stream takes one config, then audio only")
            if not request.audio_content:
                continue
            seconds = decoder.seconds_in(request.audio_content)
            arrivals.arrived(seconds)
            buffered[0] += seconds
            if buffered[0] > max_buffer_s:
                raise ResourceExhausted(
                    f"audio arrives faster than it can be transcribed (over {max_buffer_s:.0f} s buffered)"
                )
            yield request.audio_content

    loop = asyncio.get_running_loop()

    async def in_pool(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await loop.run_in_executor(module.live_pool, functools.partial(fn, *args, **kwargs))

    async with StreamPump(audio_chunks()) as pump:
        while (chunks := await pump.next_batch()) is not None:
            data = b"".join(chunks)
            buffered[0] -= decoder.seconds_in(data)
            samples = await in_pool(decoder.decode, data)  # Opus: a demuxer thread
            # More than a second arrived while the last pass ran: we are behind real
            # time, so spend the CPU on finals only until we have caught up.
            caught_up = samples.shape[-1] / TARGET_RATE <= MAX_LAG_FOR_INTERIM_S
            events = await in_pool(session.feed, samples, allow_interim=caught_up)
            if events:
                arrivals.observe_finals(events)
                yield convert.streaming_response(events, session.audio_seconds)
    tail = await in_pool(decoder.flush)
    events = await in_pool(session.feed, tail) if tail.size else []
    events = [*events, *await in_pool(session.finish)]
    arrivals.observe_finals(events)
    yield convert.streaming_response(events, session.audio_seconds)


class ArrivalClock:
    """When each second of a stream arrived, to observe finals' latency (arrival of the
    last word's audio to the final leaving): the operator's view of what desks wait.
    Only raw PCM maps bytes to seconds exactly; compressed streams are not observed."""

    def __init__(self, exact: bool, keep_s: float = 120.0) -> None:
        self.exact = exact
        self.keep_s = keep_s
        self._ends: collections.deque[tuple[float, float]] = collections.deque()
        self._seconds = 0.0

    def arrived(self, seconds: float) -> None:
        self._seconds += seconds
        if self.exact:
            self._ends.append((self._seconds, time.monotonic()))
            while self._ends and self._ends[0][0] < self._seconds - self.keep_s:
                self._ends.popleft()

    def observe_finals(self, events: list[Any]) -> None:
        if not self.exact:
            return
        now = time.monotonic()
        for event in events:
            if not event.is_final:
                continue
            end = event.words[-1].end if event.words else event.end
            arrived = next((t for seconds, t in self._ends if seconds >= end), None)
            if arrived is not None:
                metrics.LIVE_FINAL_LATENCY.labels("transcription").observe(now - arrived)


class TranscriptionModule(EngineModule[TranscriptionEngine]):
    """The transcription service as the shared server sees it: register, load, close."""

    service_names = (SERVICE_NAME,)
    kind = "transcription"
    what_loads = "the transcription model"

    def __init__(self, settings: TranscriptionSettings, *, max_message_mb: int = 64, models: ModelManager | None = None) -> None:
        super().__init__(models)
        self.settings = settings
        self.model_name = settings.model
        self.served_names: set[str] = {settings.model}
        self.queue = WorkQueue("transcription", settings.max_concurrent, settings.max_queued)
        self.max_upload_bytes = settings.max_upload_mb << 20
        self.max_stream_buffer_s = settings.max_stream_buffer_s
        self.streams = StreamLimiter("transcription", settings.max_streams or 1)
        # Each open session runs its feed in this pool; sized with the limit (load).
        self.live_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="transcription-live")
        self.scheduler: LiveDecodeScheduler | None = None
        self._live_view: TranscriptionEngine | None = None
        self._servicer = TranscriptionServicer(self)

    def register(self, server: aio.Server) -> None:
        transcription_pb2_grpc.add_TranscriptionServiceServicer_to_server(self._servicer, server)

    def model_label(self) -> str:
        return self.model_name

    def _load_engine(self) -> TranscriptionEngine:
        manager = self.models
        name = default_model(self.settings.model, resolve_device(self.settings.device), manager)
        model_dir = manager.resolve(name)
        self.model_name = name
        self.served_names = {self.settings.model, name, model_dir.name, str(model_dir)}
        if Path(name).exists():
            self.model_name = model_dir.name
        batched = {"auto": None, "on": True, "off": False}[self.settings.batched]
        return TranscriptionEngine(
            model_dir,
            device=self.settings.device,
            compute_type=self.settings.compute_type,
            cpu_threads=self.settings.cpu_threads,
            num_workers=self.settings.num_workers,
            batched=batched,
            batch_size=self.settings.batch_size,
            name=self.model_name,
            window=WindowPolicy(
                enabled=self.settings.dynamic_context,
                floor_s=self.settings.window_floor_s,
                pad_s=self.settings.window_pad_s,
                language_floor_s=self.settings.window_language_floor_s,
            ),
        )

    async def load(self) -> None:
        # A bad live setting fails at start-up with its name, not at the first stream.
        convert.streaming_config(transcription_pb2.StreamingConfig(), self.settings)
        await super().load()
        engine = self.engine
        assert engine is not None
        limit = self.settings.max_streams or default_live_capacity(engine.name, engine.device)
        self.streams.limit = limit
        self.live_pool.shutdown(wait=False)  # the start-up pool, sized before the limit was known
        self.live_pool = ThreadPoolExecutor(max_workers=2 * limit + 2, thread_name_prefix="transcription-live")
        if self.settings.live_batching:
            self.scheduler = engine.live_scheduler(
                max_batch=self.settings.live_batch_max, wait_s=self.settings.live_batch_wait_ms / 1000
            )
            self._live_view = engine.through(self.scheduler)
        log.info("live streams", extra={"max_streams": limit, "batching": self.settings.live_batching})

    def live_engine(self, engine: TranscriptionEngine) -> TranscriptionEngine:
        """The engine live sessions decode with: the scheduler's batched view when live
        batching is on, else the engine itself."""
        if self._live_view is not None and engine is self.engine:
            return self._live_view
        return engine

    async def close(self) -> None:
        self.queue.shutdown()
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.close)
        self.live_pool.shutdown(wait=False, cancel_futures=True)
        await super().close()

    def stream_slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.streams.slot()

    def public_names(self) -> list[str]:
        """The names a caller may use, as said in messages: model names, never the
        server's paths (a model directory is accepted as a name, not shown)."""
        return sorted({Path(name).name if _is_path(name) else name for name in self.served_names})

    def describe_models(self) -> transcription_pb2.ListModelsResponse:
        return convert.describe_models(self)


def _is_path(name: str) -> bool:
    """Whether a served name is a filesystem path (a directory setting), not a model name."""
    return "/" in name or "\\" in name or Path(name).is_absolute()


def module_from_config(config: ParlonsConfig, models: ModelManager | None = None) -> TranscriptionModule:
    return TranscriptionModule(config.transcription, max_message_mb=config.server.max_message_mb, models=models)
