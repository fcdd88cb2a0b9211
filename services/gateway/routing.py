"""Routing to backend replicas: gRPC's own balancing, health checks and retries.

Each backend service (transcription, diarisation, translation) is one gRPC channel whose
target names every replica: a list of addresses (`ipv4:a:p,b:p`), one DNS name with
several records (`dns:///transcription:50051`), or the private socket of the services
running in this process. The channel's service config asks for:

* `round_robin` over the replicas,
* client-side health checking (`grpc.health.v1`, per service name): a replica that says
  NOT_SERVING (still loading its model, or draining on SIGTERM) gets no new calls,
* a retry policy for UNAVAILABLE, which covers calls that never reached a replica.

gRPC commits a call once the server has sent headers, and every parlons server sends
them at once (the request id), so a replica that dies *during* a call is not retried by
gRPC. `Backend.unary` therefore retries idempotent calls itself, on UNAVAILABLE (replica
gone) and RESOURCE_EXHAUSTED (replica full), each attempt on the next replica of the
round robin, within the caller's deadline. A stream is opened on the next replica when
one refuses it at once (RESOURCE_EXHAUSTED: full); once it runs, its state lives on its
replica and it is not moved.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator, Callable, Iterable

import grpc
from grpc import aio
from prometheus_client import Counter

from parlons.services.common.context import REQUEST_ID_HEADER, TENANT_HEADER, current_request_id
from parlons.services.common.gateway_trust import GATEWAY_SECRET_HEADER
from parlons.services.common.status_details import RETRY_AFTER_KEY, details_of, field_of, parlons_status
from parlons.services.common.streams import StreamPump
from parlons.errors import (
    InvalidArgument,
    ParlonsError,
    ResourceExhausted,
    Unavailable,
)
from parlons.v1 import anonymization_pb2_grpc, diarization_pb2_grpc, transcription_pb2_grpc, translation_pb2_grpc

log = logging.getLogger("parlons.gateway.routing")

RETRIES = Counter(
    "parlons_gateway_backend_retries_total", "Backend calls retried on another replica", ["backend", "code"]
)
BACKEND_ERRORS = Counter(
    "parlons_gateway_backend_errors_total", "Backend calls that failed, after retries", ["backend", "code"]
)

SERVICE_NAMES: dict[str, str] = {
    "transcription": "parlons.v1.TranscriptionService",
    "diarization": "parlons.v1.DiarizationService",
    "translation": "parlons.v1.TranslationService",
    "anonymization": "parlons.v1.AnonymizationService",
}
# The generated client stub of each service: calls carry the generated method paths and
# serializers, so a renamed RPC breaks at import, not at the first call in production.
STUBS: dict[str, Callable[[aio.Channel], Any]] = {
    "parlons.v1.TranscriptionService": transcription_pb2_grpc.TranscriptionServiceStub,
    "parlons.v1.DiarizationService": diarization_pb2_grpc.DiarizationServiceStub,
    "parlons.v1.TranslationService": translation_pb2_grpc.TranslationServiceStub,
    "parlons.v1.AnonymizationService": anonymization_pb2_grpc.AnonymizationServiceStub,
}

# How long a retried call waits before its next attempt, at most (the backoff doubles).
_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 1.0
_RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


class BackendError(ParlonsError):
    """A backend's own status, passed on to the caller with the service named."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = parlons_status(code)
        self.retry_after_s = retry_after_s


def channel_target(addresses: Iterable[str]) -> str:
    """One gRPC target for a list of replica addresses.

    A single entry is used as it is (`dns:///name:port`, `unix:/path`, `host:port`).
    Several `host:port` entries become one `ipv4:`/`ipv6:` target; host names among them
    are resolved now (a set of replicas that changes belongs behind a DNS name instead).
    """
    entries = [a.strip() for a in addresses if a.strip()]
    if not entries:
        raise InvalidArgument("no backend address given")
    if len(entries) == 1:
        return entries[0]
    v4: list[str] = []
    v6: list[str] = []
    for entry in entries:
        if "://" in entry or entry.startswith(("unix:", "dns:", "ipv4:", "ipv6:")):
            raise InvalidArgument(
                f"backend address {entry!r}: a list takes host:port entries; use a single "
                "dns:///name:port target for a DNS name with several records"
            )
        host, port = _split_host_port(entry)
        for ip in _resolve(host):
            (v6 if ip.version == 6 else v4).append(
                f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
            )
    if v4 and v6:
        # One target holds one address family; IPv4 is what mixed setups share.
        log.warning("backend list mixes IPv4 and IPv6; using the IPv4 replicas only")
        v6 = []
    return f"ipv4:{','.join(dict.fromkeys(v4))}" if v4 else f"ipv6:{','.join(dict.fromkeys(v6))}"


def _split_host_port(entry: str) -> tuple[str, int]:
    host, sep, port = entry.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgument(f"backend address {entry!r} must be host:port")
    return host.strip("[]"), int(port)


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise InvalidArgument(f"cannot resolve backend host {host!r}: {exc}") from exc
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def service_config(service: str, attempts: int) -> dict[str, Any]:
    """Round robin over healthy replicas, with gRPC retries for unsent calls."""
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": service},
    }
    if attempts > 1:
        config["methodConfig"] = [
            {
                "name": [{"service": service}],
                "retryPolicy": {
                    "maxAttempts": min(max(attempts, 2), 5),
                    "initialBackoff": f"{_FIRST_BACKOFF_S}s",
                    "maxBackoff": f"{_MAX_BACKOFF_S}s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return config


@dataclass(frozen=True)
class BackendTls:
    """How the gateway meets its backends: TLS with a CA (server authentication), a client
    pair (mTLS: its identity), and/or a shared secret (gateway_trust.py)."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    secret: str = ""  # x-parlons-gateway-secret, for backends that trust a shared secret

    def __post_init__(self) -> None:
        """A half-set configuration is a start-up error, never a silent plaintext channel."""
        if (self.cert or self.key) and not self.ca:
            raise InvalidArgument(
                "[gateway] backend_cert/backend_key are set but backend_ca is not: TLS towards the "
                "backends needs the CA that signed their certificates")
        if bool(self.cert) != bool(self.key):
            raise InvalidArgument("[gateway] backend_cert and backend_key go together (mutual TLS)")
        for name, path in (("backend_ca", self.ca), ("backend_cert", self.cert), ("backend_key", self.key)):
            if path and not Path(path).is_file():
                raise InvalidArgument(f"[gateway] {name} = {path!r}: no such file")

    def credentials(self) -> grpc.ChannelCredentials | None:
        if not self.ca:
            return None
        read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))


@dataclass
class CallOptions:
    """What one gateway call hands to its backend calls: deadline, ids."""

    deadline: float | None = None  # time.monotonic() value
    tenant: str = ""
    request_id: str = field(default_factory=current_request_id)

    def timeout(self) -> float | None:
        if self.deadline is None:
            return None
        return max(self.deadline - time.monotonic(), 0.001)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        pairs = [(REQUEST_ID_HEADER, self.request_id)]
        if self.tenant:
            pairs.append((TENANT_HEADER, self.tenant))
        return tuple(pairs)

    @classmethod
    def from_context(
        cls, context: aio.ServicerContext | None, tenant: str, default_timeout_s: float = 0.0
    ) -> CallOptions:
        """The client's deadline (context.time_remaining()), else the gateway default."""
        remaining = context.time_remaining() if context is not None else None
        if remaining is None and default_timeout_s > 0:
            remaining = default_timeout_s
        deadline = time.monotonic() + remaining if remaining is not None else None
        return cls(deadline=deadline, tenant=tenant)


def _retry_after(error: aio.AioRpcError) -> float | None:
    for key, value in error.trailing_metadata() or ():
        if key == RETRY_AFTER_KEY:
            try:
                return int(value) / 1000.0
            except ValueError:
                return None
    return None


class Backend:
    """One backend service behind one channel: every replica, balanced and health-checked."""

    def __init__(
        self,
        name: str,
        target: str,
        *,
        tls: BackendTls | None = None,
        attempts: int = 3,
        max_message_mb: int = 64,
        service: str | None = None,
    ) -> None:
        self.name = name
        self.service = service or SERVICE_NAMES[name]
        self.target = target
        self.attempts = max(attempts, 1)
        size = max_message_mb * 1024 * 1024
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", size),
            ("grpc.max_send_message_length", size),
            ("grpc.service_config", json.dumps(service_config(self.service, self.attempts))),
            ("grpc.enable_retries", 1),
            # Keep idle connections alive across NATs and notice dead peers.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # Reconnect quickly to a replica that comes back.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 5_000),
        ]
        credentials = tls.credentials() if tls else None
        # Proves to the backends that the call comes from the gateway (gateway_trust.py).
        self.identity: tuple[tuple[str, str], ...] = ((GATEWAY_SECRET_HEADER, tls.secret),) if tls and tls.secret else ()
        self.channel = (
            aio.secure_channel(target, credentials, options=options)
            if credentials
            else aio.insecure_channel(target, options=options)
        )
        # backend.stub.Transcribe etc.: the generated multicallables on this channel.
        self.stub: Any = STUBS[self.service](self.channel)

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {self.target!r})"

    def error(self, exc: aio.AioRpcError) -> ParlonsError:
        """The backend's status for the gateway's caller, naming the service."""
        code = exc.code()
        BACKEND_ERRORS.labels(self.name, code.name).inc()
        details = exc.details() or code.name
        if code == grpc.StatusCode.UNAVAILABLE:
            log.warning(
                "backend unavailable",
                extra={"fields": {"backend": self.name, "target": self.target, "details": details}},
            )
            # The replicas' addresses stay in the log: clients need not learn the topology.
            return Unavailable(f"the {self.name} service is unavailable (no replica answered); retry later",
                               retry_after_s=_retry_after(exc) or 1.0)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return ResourceExhausted(f"{self.name}: {details}", retry_after_s=_retry_after(exc) or 1.0)
        if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
            return BackendError(grpc.StatusCode.INTERNAL, f"{self.name} service error: {details}")
        message = f"{self.name}: {details}" if not details.startswith(self.name) else details
        if code == grpc.StatusCode.INVALID_ARGUMENT:  # the field at fault travels on
            return InvalidArgument(message, field=field_of(details_of(exc.trailing_metadata())))
        return BackendError(code, message, retry_after_s=_retry_after(exc))

    async def unary(
        self,
        invoke: aio.UnaryUnaryMultiCallable,
        request: Any,
        call: CallOptions,
        *,
        idempotent: bool = True,
    ) -> Any:
        """One unary call of `invoke` (a stub method, e.g. `backend.stub.Transcribe`);
        idempotent ones are retried on the next replica."""
        return await self._with_retries(
            lambda: invoke(request, timeout=call.timeout(), metadata=call.metadata() + self.identity),
            call,
            idempotent,
        )

    async def stream_unary(
        self,
        invoke: aio.StreamUnaryMultiCallable,
        requests: Callable[[], AsyncIterator[Any] | Iterable[Any]],
        call: CallOptions,
        *,
        idempotent: bool = True,
    ) -> Any:
        """A client-streamed upload of `invoke` (a stub method); `requests` makes a fresh
        iterator for each attempt."""
        return await self._with_retries(
            lambda: invoke(requests(), timeout=call.timeout(), metadata=call.metadata() + self.identity),
            call,
            idempotent,
        )

    async def relay(
        self,
        invoke: aio.StreamStreamMultiCallable,
        requests: AsyncIterator[Any],
        call: CallOptions,
    ) -> AsyncIterator[Any]:
        """A bidirectional stream of `invoke` (a stub method) fed from `requests`,
        yielding the backend's responses.

        A replica at its live capacity refuses a stream at once (RESOURCE_EXHAUSTED,
        right after its config): the stream is then opened on the next replica of the
        round robin, its first messages replayed, so a desk never sees a full replica
        while another has room. Once the backend has answered (or more than
        `_REPLAY_MESSAGES` were sent), the stream is committed to its replica.
        """
        async with StreamPump(requests) as pump:
            replay = _Replay(pump)
            for number in range(1, self.attempts + 1):
                try:
                    async for response in self._relay_once(invoke, replay, call):
                        yield response
                    return
                except _Refused as refused:
                    if number == self.attempts:
                        raise self.error(refused.error) from None
                    RETRIES.labels(self.name, refused.error.code().name).inc()
                    log.info("stream refused; opening it on another replica",
                             extra={"fields": {"backend": self.name, "attempt": number}})

    async def _relay_once(self, invoke: aio.StreamStreamMultiCallable, replay: _Replay,
                          call: CallOptions) -> AsyncIterator[Any]:
        """One attempt of `relay`. The requests are written by a task of ours rather
        than handed to gRPC as an iterator, so that an error raised while producing them
        (a quota, a bad message) reaches the caller as itself instead of as a cancelled
        call. Closing this generator (caller gone) cancels the backend call."""
        stream: aio.StreamStreamCall = invoke(timeout=call.timeout(), metadata=call.metadata() + self.identity)
        failure: list[BaseException] = []

        async def pump() -> None:
            try:
                async for request in replay.messages():
                    await stream.write(request)
                await stream.done_writing()
            except (aio.AioRpcError, asyncio.InvalidStateError):
                pass  # the call ended; its status is read below
            except Exception as exc:
                failure.append(exc)
                stream.cancel()

        writer = asyncio.create_task(pump())
        try:
            while True:
                try:
                    response = await stream.read()
                except aio.AioRpcError as exc:
                    if failure:
                        raise failure[0] from None
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and replay.replayable:
                        raise _Refused(exc) from None
                    raise self.error(exc) from None
                except asyncio.CancelledError:
                    if failure:
                        raise failure[0] from None
                    raise
                if response is aio.EOF:
                    break
                replay.commit()
                yield response
            if failure:
                raise failure[0]
        finally:
            writer.cancel()
            stream.cancel()

    async def _with_retries(self, attempt: Callable[[], Any], call: CallOptions, idempotent: bool) -> Any:
        backoff = _FIRST_BACKOFF_S
        tries = self.attempts if idempotent else 1
        for number in range(1, tries + 1):
            try:
                return await attempt()
            except aio.AioRpcError as exc:
                code = exc.code()
                wait = backoff
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    wait = min(_retry_after(exc) or backoff, _MAX_BACKOFF_S)
                left = call.timeout()
                retry = (
                    code in _RETRY_CODES
                    and number < tries
                    and (left is None or left > wait + 0.05)
                )
                if not retry:
                    raise self.error(exc) from None
                RETRIES.labels(self.name, code.name).inc()
                log.info(
                    "retrying on another replica",
                    extra={"fields": {"backend": self.name, "code": code.name, "attempt": number}},
                )
                await asyncio.sleep(wait)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.channel.close()


# Messages kept to open a refused stream on another replica (its config and the first
# audio chunks: a replica refuses right after the config).
_REPLAY_MESSAGES = 64


class _Refused(Exception):
    """A stream refused by a full replica before it answered anything."""

    def __init__(self, error: aio.AioRpcError) -> None:
        super().__init__(error.details())
        self.error = error


class _Replay:
    """The messages of a stream, replayable from the start until the stream is committed
    to a replica (first answer, or too many messages sent). Reading goes through a pump,
    so an attempt's writer can be cancelled without losing what it was reading."""

    def __init__(self, pump: StreamPump[Any], limit: int = _REPLAY_MESSAGES) -> None:
        self._pump = pump
        self._kept: list[Any] = []
        self._limit = limit
        self.replayable = True

    def commit(self) -> None:
        self.replayable = False
        self._kept = []

    async def messages(self) -> AsyncIterator[Any]:
        for message in list(self._kept):
            yield message
        while (batch := await self._pump.next_batch()) is not None:
            if self.replayable:
                self._kept.extend(batch)  # the whole batch before any of it is written
                if len(self._kept) > self._limit:
                    self.commit()
            for message in batch:
                yield message


class Router:
    """The backends the gateway knows, by service name ("transcription", ...)."""

    def __init__(self, backends: dict[str, Backend], *, ready: bool = True) -> None:
        self.backends = backends
        # False while the gateway loads (its in-process services, its channels): its
        # port is already open, and a call then gets UNAVAILABLE, never a hang.
        self.ready = ready

    def get(self, name: str) -> Backend:
        backend = self.backends.get(name)
        if backend is None and not self.ready:
            raise Unavailable("the gateway is still starting (loading its services); retry shortly",
                              retry_after_s=2.0)
        if backend is None:
            raise Unavailable(
                f"the {name} service is not configured on this gateway "
                f"(set [gateway] {name} = [\"host:port\", ...] or run it in this process)"
            )
        return backend

    def has(self, name: str) -> bool:
        return name in self.backends

    async def close(self) -> None:
        await asyncio.gather(*(b.close() for b in self.backends.values()), return_exceptions=True)
