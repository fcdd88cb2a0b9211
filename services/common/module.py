"""One shape for every model-backed service module: an engine slot filled by a timed load
in a worker thread, UNAVAILABLE with one message while it is empty, released on close.

Transcription, diarisation and translation each repeated this start-up; they now
subclass `EngineModule` and keep only what is theirs (how to build the engine, what to
register, what to release). The gateway loads no model and is not one of these.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Generic, TypeVar

from grpc import aio

from parlons.errors import Unavailable
from parlons.models.manager import ModelManager
from parlons.services.common import metrics

EngineT = TypeVar("EngineT")
# The RetryInfo delay while a model loads (loads take seconds to minutes).
LOADING_RETRY_S = 2.0


class EngineModule(ABC, Generic[EngineT]):
    """A service as the shared server sees it (server.ServiceModule): register, load, close.

    `models` is the process's one model manager, made at start-up (`parlons.serve`) and
    handed to every module; a module made alone (tests, benchmarks) makes its own."""

    #: Full proto service names, e.g. ("parlons.v1.TranscriptionService",).
    service_names: tuple[str, ...] = ()
    #: The service's name in metrics and messages ("transcription", ...).
    kind: str = ""
    #: What is loading, for the UNAVAILABLE message ("the transcription model").
    what_loads: str = "the model"

    def __init__(self, models: ModelManager | None = None) -> None:
        self.engine: EngineT | None = None
        self.models = models if models is not None else ModelManager()

    @abstractmethod
    def register(self, server: aio.Server) -> None:
        """Add the service's servicer to the server."""

    @abstractmethod
    def _load_engine(self) -> EngineT:
        """Build the engine (blocking: runs in a worker thread)."""

    def _resolve(self, name: str, kind: str) -> Path:
        """The installed directory of a model (the engines' `resolve_model`)."""
        return self.models.resolve(name, kind=kind)

    def model_label(self) -> str:
        """The model's name in the load-time metric."""
        return "all"

    async def load(self) -> None:
        started = time.perf_counter()
        self.engine = await asyncio.to_thread(self._load_engine)
        metrics.MODEL_LOAD_SECONDS.labels(self.kind, self.model_label()).set(time.perf_counter() - started)

    def ready_engine(self) -> EngineT:
        """The engine, or UNAVAILABLE while it loads (clients and the gateway retry that)."""
        engine = self.engine
        if engine is None:
            raise Unavailable(f"{self.what_loads} is still loading; retry shortly", retry_after_s=LOADING_RETRY_S)
        return engine

    async def close(self) -> None:
        self.engine = None
