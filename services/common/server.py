"""Server bootstrap shared by every service: one grpc.aio server, any set of services.

`parlons serve` puts every service in one process on one port (the embedded default);
split deployments run one service each. Health answers NOT_SERVING for a service until
its model is loaded, so a balancer never sends work to a replica still warming up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from parlons.hosts import is_loopback
from parlons.services.common.config import ServerSettings
from parlons.services.common.gateway_trust import GatewayTrust
from parlons.services.common.interceptors import Admission, ServiceInterceptor, stream_bounds
from parlons.services.common.metrics import start_metrics_server

log = logging.getLogger("parlons.server")


class ServiceModule(Protocol):
    """What a service brings to the shared server."""

    @property
    def service_names(self) -> tuple[str, ...]:
        """Full proto service names, e.g. ("parlons.v1.TranscriptionService",)."""

    def register(self, server: aio.Server) -> None:
        """Add the servicer(s) to the server."""

    async def load(self) -> None:
        """Load models (may take long; run blocking parts in a thread)."""

    async def close(self) -> None:
        """Release models and worker threads."""


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS when a certificate is configured; mTLS when a client CA is configured too."""
    if not settings.tls_cert:
        return None
    ca = _read(settings.tls_client_ca) if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(_read(settings.tls_key), _read(settings.tls_cert))],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def channel_options(max_message_mb: int) -> list[tuple[str, int]]:
    size = max_message_mb * 1024 * 1024
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
    ]


@dataclass
class RunningServer:
    """A started server: its port, health servicer and services."""

    server: aio.Server
    port: int
    health: health.aio.HealthServicer
    modules: list[ServiceModule]
    settings: ServerSettings
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    load_error: BaseException | None = None
    load_task: asyncio.Task[None] | None = None

    async def load_models(self) -> None:
        """Load each service's models, then mark it SERVING."""
        try:
            for module in self.modules:
                started = time.perf_counter()
                await module.load()
                for name in module.service_names:
                    await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
                log.info(
                    "service ready",
                    extra={"fields": {"services": list(module.service_names),
                                      "load_s": round(time.perf_counter() - started, 2)}},
                )
            await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        except BaseException as exc:
            self.load_error = exc
            log.error("model loading failed: %s", exc)
            raise
        finally:
            self.loaded.set()

    async def stop(self, grace_s: float | None = None, *, delay_s: float = 0.0) -> None:
        """Say NOT_SERVING, keep taking calls for `delay_s` (balancers move away), then
        refuse new ones and let in-flight calls finish within the grace period."""
        await self.health.enter_graceful_shutdown()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        await self.server.stop(self.settings.grace_s if grace_s is None else grace_s)
        for module in self.modules:
            await module.close()


def reflection_enabled(settings: ServerSettings) -> bool:
    """`[server] reflection`, or when unset: on a loopback listener only. Reflection
    answers without a key and lists every service and message of the port; on a public
    listener that is a map for whoever scans it, so it is asked for explicitly there."""
    if settings.reflection is not None:
        return settings.reflection
    return is_loopback(settings.host)


def _admission(modules: list[ServiceModule]) -> Admission | None:
    """The module's check on metadata before a request is read (the gateway's), if any."""
    for module in modules:
        admission: Admission | None = getattr(module, "admission", None)
        if admission is not None:
            return admission
    return None


async def start_server(
    settings: ServerSettings, modules: list[ServiceModule], *, load: bool = True
) -> RunningServer:
    """Bind, start and (in the background) load models. Returns once the port is open."""
    trust = GatewayTrust.from_settings(settings)
    if not trust.configured and not is_loopback(settings.host) and not any(
            getattr(m, "authenticates_tenants", False) for m in modules):
        log.warning("this server takes x-parlons-tenant from any caller on %s: set [server] "
                    "trusted_gateway_identities (mTLS) or gateway_secret so that only the gateway "
                    "speaks for a tenant", settings.host)
    server = aio.server(
        interceptors=[ServiceInterceptor(stream_bounds(settings), trust, _admission(modules))],
        options=channel_options(settings.max_message_mb)
        + [("grpc.so_reuseport", 0), ("grpc.max_concurrent_streams", 256)],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names: list[str] = []
    for module in modules:
        module.register(server)
        names.extend(module.service_names)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    if reflection_enabled(settings):
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
    address = f"{settings.host}:{settings.port}"
    credentials = server_credentials(settings)
    port = (
        server.add_secure_port(address, credentials)
        if credentials
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    running = RunningServer(server, port, health_servicer, modules, settings)
    log.info("listening", extra={"fields": {"address": f"{settings.host}:{port}", "tls": bool(credentials)}})
    if load:
        running.load_task = asyncio.create_task(running.load_models())
    return running


async def serve_forever(settings: ServerSettings, modules: list[ServiceModule]) -> None:
    """Run until SIGTERM/SIGINT, then drain gracefully (the `parlons serve` main loop)."""
    start_metrics_server(settings.metrics_port, settings.metrics_host)
    running = await start_server(settings, modules)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    assert running.load_task is not None
    await asyncio.wait([waiter, running.load_task], return_when=asyncio.FIRST_COMPLETED)
    if running.load_error is not None:
        await running.stop(0)
        raise running.load_error
    await waiter
    log.info("draining", extra={"fields": {"grace_s": settings.grace_s, "delay_s": settings.shutdown_delay_s}})
    await running.stop(delay_s=settings.shutdown_delay_s)


class BackgroundServer:
    """A server on its own event loop in a thread, for in-process CLI use and tests."""

    def __init__(self, settings: ServerSettings, modules: list[ServiceModule]) -> None:
        self._settings = settings
        self._modules = modules
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="parlons-server")
        self._running: RunningServer | None = None

    @property
    def running(self) -> RunningServer:
        """The started server; only between `start` and `stop`."""
        assert self._running is not None, "BackgroundServer is not started"
        return self._running

    @property
    def address(self) -> str:
        return f"{self._settings.host}:{self.running.port}"

    def start(self, *, wait_loaded: bool = True, timeout_s: float = 600.0) -> BackgroundServer:
        self._thread.start()
        running = self._running = asyncio.run_coroutine_threadsafe(
            start_server(self._settings, self._modules), self._loop
        ).result(timeout=60)
        if wait_loaded:
            asyncio.run_coroutine_threadsafe(running.loaded.wait(), self._loop).result(timeout_s)
            if running.load_error is not None:
                self.stop()
                raise running.load_error
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        if self._running is not None:
            asyncio.run_coroutine_threadsafe(self._running.stop(grace_s), self._loop).result(grace_s + 30)
            self._running = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
