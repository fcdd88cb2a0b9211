"""One place for what every RPC needs: request id, error mapping, metrics, access log,
and time bounds on every client stream (`StreamBounds`).

Servicers raise `ParlonsError`s (or let asyncio cancellation through); this interceptor
turns them into statuses, so no servicer repeats try/except and no input can produce
UNKNOWN with a stack trace on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from grpc import aio

from parlons.services.common import metrics
from parlons.services.common.context import (
    REQUEST_ID_HEADER,
    new_request_id,
    request_id_var,
    valid_request_id,
)
from google.protobuf.message import DecodeError

from parlons.services.common.status_details import grpc_code, trailing_metadata
from parlons.errors import (
    InvalidArgument,
    OutOfRange,
    ParlonsError,
    Unauthenticated,
)
from parlons.services.common.gateway_trust import GatewayTrust, tenant_var
from parlons.services.common.logs import log_fields

log = logging.getLogger("parlons.rpc")

_EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

Metadata = tuple[tuple[str, str | bytes], ...]

_GATEWAY_ONLY = (
    "this server answers the parlons gateway only: call the gateway, or present the "
    "gateway's client certificate or secret")


class Admission(Protocol):
    """A check on a call's method and metadata alone, run before grpc reads its request
    (the gateway's authentication and quota debt: `GatewayAdmission`)."""

    async def admit(self, method: str, metadata: Metadata, request_streaming: bool) -> None:
        """Raise a ParlonsError to refuse the call; its request is then never read."""


class _Undecodable:
    """Stands for a request protobuf could not parse (e.g. a string field that is not UTF-8)."""

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that never raises: gRPC would answer UNKNOWN, we answer INVALID_ARGUMENT."""
    if parse is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as exc:
            return _Undecodable(str(exc))

    return deserialize


def _checked(message: Any) -> Any:
    if isinstance(message, _Undecodable):
        raise InvalidArgument(
            f"the request is not a valid protobuf message ({message.error}); "
            "string fields must be valid UTF-8 (send binary data in bytes fields)"
        )
    return message


@dataclass(frozen=True)
class StreamBounds:
    """How long a client stream may stay silent, and stay open (0 = no bound).

    Without them a client could hold a stream slot (and the model state behind it)
    forever by sending a config and nothing else. Every streamed request goes through
    here, uploads and live streams alike; a live microphone sends a frame every 100 ms,
    so a minute without a message is a client gone or stuck."""

    idle_timeout_s: float = 60.0
    max_duration_s: float = 4 * 3600.0


async def _checked_stream(iterator: AsyncIterator[Any], bounds: StreamBounds) -> AsyncIterator[Any]:
    loop = asyncio.get_running_loop()
    opened = last_data = loop.time()
    source = aiter(iterator)
    while True:
        waits = []
        if bounds.idle_timeout_s > 0:
            # Counted from the last message that carried something: empty audio messages
            # cost nothing to send and must not hold a slot past the idle bound.
            waits.append(max(0.0, last_data + bounds.idle_timeout_s - loop.time()))
        if bounds.max_duration_s > 0:
            waits.append(max(0.0, opened + bounds.max_duration_s - loop.time()))
        try:
            message = await asyncio.wait_for(anext(source), min(waits)) if waits else await anext(source)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if bounds.max_duration_s > 0 and loop.time() - opened >= bounds.max_duration_s - 1e-3:
                raise OutOfRange(
                    f"the stream reached its maximum duration of {bounds.max_duration_s:g} s; "
                    "open a new one to go on") from None
            raise OutOfRange(
                f"no message on the stream for {bounds.idle_timeout_s:g} s: it is closed "
                "(send audio continuously, silence included, and close the stream when done)") from None
        if _carries_data(message):
            last_data = loop.time()
        yield _checked(message)


def _carries_data(message: Any) -> bool:
    """Whether a streamed message holds anything (a config, non-empty audio or text):
    an `audio_content` of no bytes does not."""
    list_fields = getattr(message, "ListFields", None)
    if list_fields is None:
        return True
    return any(not isinstance(value, (bytes, str)) or value for _, value in list_fields())


# How long a refused stream's remaining messages are read (and dropped) before its
# status goes out. Why: a grpc.aio client (the gateway is one) that is still writing when
# the server's status arrives reports "INTERNAL: Internal error from Core" instead of
# that status (grpc/grpc#36066). Reading to the client's half-close first lets the status
# through; a client that never half-closes gets it after this delay.
DRAIN_S = 1.0
DRAIN_MAX_MESSAGES = 10_000


async def _drain(iterator: Any) -> None:
    async def read_all() -> None:
        count = 0
        async for _ in iterator:
            count += 1
            if count >= DRAIN_MAX_MESSAGES:
                return

    try:
        await asyncio.wait_for(read_all(), DRAIN_S)
    except Exception:
        pass


def _checked_request(request_or_iterator: Any, streaming: bool, bounds: StreamBounds) -> Any:
    return _checked_stream(request_or_iterator, bounds) if streaming else _checked(request_or_iterator)


class _Call:
    """Book-keeping for one call: id, timing, final code."""

    def __init__(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.method = method
        self.metadata = metadata
        given = next((str(v) for k, v in metadata if k == REQUEST_ID_HEADER), "")
        self.request_id = given if valid_request_id(given) else new_request_id()
        self.started = time.perf_counter()
        self.code = grpc.StatusCode.OK

    async def begin(self, context: aio.ServicerContext, trust: GatewayTrust) -> None:
        request_id_var.set(self.request_id)
        await context.send_initial_metadata(((REQUEST_ID_HEADER, self.request_id),))
        tenant, gateway = trust.tenant(self.metadata, context.auth_context() or {})
        if trust.require and not gateway:
            raise Unauthenticated(_GATEWAY_ONLY)
        tenant_var.set(tenant)

    async def fail(self, context: aio.ServicerContext, exc: BaseException) -> None:
        """Abort with the status the exception stands for (this raises)."""
        if isinstance(exc, ParlonsError):
            self.code = grpc_code(exc.code)
            await context.abort(self.code, exc.message, trailing_metadata(exc))
        self.code = grpc.StatusCode.INTERNAL
        log.error(
            "internal error",
            exc_info=exc,
            extra=log_fields(method=self.method, request_id=self.request_id),
        )
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error; request id {self.request_id}"
        )

    def finish(self, context: aio.ServicerContext) -> None:
        code = self.code
        if code == grpc.StatusCode.OK:
            code = context.code() or grpc.StatusCode.OK  # type: ignore[assignment]
            if isinstance(code, int):
                code = grpc.StatusCode.OK if code == 0 else grpc.StatusCode.UNKNOWN
        elapsed = time.perf_counter() - self.started
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        metrics.REQUESTS.labels(self.method, name).inc()
        metrics.LATENCY.labels(self.method).observe(elapsed)
        log.info(
            "rpc",
            extra=log_fields(
                method=self.method, code=name, duration_s=round(elapsed, 4), request_id=self.request_id
            ),
        )


@contextlib.asynccontextmanager
async def _answered(call: _Call, context: aio.ServicerContext, request_or_iterator: Any,
                    streaming_request: bool) -> AsyncIterator[None]:
    """The one error mapping of every handler, unary or streamed: a ParlonsError becomes its
    status, anything else INTERNAL with the request id; a cancelled call is counted as such;
    a streamed request is drained first so its sender is not left blocked."""
    try:
        yield
    except asyncio.CancelledError:
        call.code = grpc.StatusCode.CANCELLED
        raise
    except aio.AbortError:
        raise
    except Exception as exc:
        if streaming_request:
            await _drain(request_or_iterator)
        await call.fail(context, exc)
    finally:
        call.finish(context)


def _wrap_unary_response(
    behavior: Callable[..., Awaitable[Any]], method: str, metadata: Any, streaming_request: bool,
    bounds: StreamBounds, trust: GatewayTrust,
) -> Any:
    async def handler(request_or_iterator: Any, context: aio.ServicerContext) -> Any:
        call = _Call(method, metadata)
        async with _answered(call, context, request_or_iterator, streaming_request):
            await call.begin(context, trust)
            request = _checked_request(request_or_iterator, streaming_request, bounds)
            return await behavior(request, context)

    return handler


def _wrap_stream_response(
    behavior: Callable[..., AsyncIterator[Any]], method: str, metadata: Any, streaming_request: bool,
    bounds: StreamBounds, trust: GatewayTrust,
) -> Any:
    async def handler(request_or_iterator: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(method, metadata)
        async with _answered(call, context, request_or_iterator, streaming_request):
            await call.begin(context, trust)
            request = _checked_request(request_or_iterator, streaming_request, bounds)
            async for response in behavior(request, context):
                yield response

    return handler


# The four shapes of a gRPC method: the handler's attribute, how grpc builds such a
# handler, our wrapper for its responses, and whether its request is a stream.
_HANDLER_SHAPES: tuple[tuple[str, Callable[..., Any], Callable[..., Any], bool], ...] = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler, _wrap_unary_response, False),
    ("stream_unary", grpc.stream_unary_rpc_method_handler, _wrap_unary_response, True),
    ("unary_stream", grpc.unary_stream_rpc_method_handler, _wrap_stream_response, False),
    ("stream_stream", grpc.stream_stream_rpc_method_handler, _wrap_stream_response, True),
)


def stream_bounds(settings: Any) -> StreamBounds:
    """The bounds a server's settings ask for (ServerSettings)."""
    return StreamBounds(settings.stream_idle_timeout_s, settings.stream_max_duration_s)


def _refusing_handler(handler: grpc.RpcMethodHandler, method: str, metadata: Metadata,
                      refusal: BaseException) -> grpc.RpcMethodHandler:
    """A handler that answers `refusal` without reading the request.

    grpc.aio receives and parses a unary request whole before it calls a unary handler
    (up to max_message_mb, 8 such calls held +927 MB on the gateway); a request-streaming
    handler reads nothing until it asks. So the refusal is registered as request-streaming
    whatever the method's shape, and never reads: grpc drops the body it did not ask for.
    """

    async def refuse(request_iterator: Any, context: aio.ServicerContext) -> None:
        call = _Call(method, metadata)
        request_id_var.set(call.request_id)
        try:
            await context.send_initial_metadata(((REQUEST_ID_HEADER, call.request_id),))
            await call.fail(context, refusal)
        finally:
            call.finish(context)

    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(
            refuse, request_deserializer=None, response_serializer=handler.response_serializer)
    return grpc.stream_unary_rpc_method_handler(
        refuse, request_deserializer=None, response_serializer=handler.response_serializer)


class ServiceInterceptor(aio.ServerInterceptor):
    """Wraps every application RPC (health and reflection pass through untouched).

    What can be decided on the metadata alone is decided here, before grpc reads the
    request: a backend that answers the gateway only refuses a caller without the
    gateway's secret, and `admission` (the gateway's API keys and quota debt) refuses
    whoever it refuses, at the cost of a header lookup."""

    def __init__(self, bounds: StreamBounds | None = None, trust: GatewayTrust | None = None,
                 admission: Admission | None = None) -> None:
        self.bounds = bounds or StreamBounds()
        self.trust = trust or GatewayTrust()
        self.admission = admission

    async def _refusal(self, method: str, metadata: Metadata, request_streaming: bool) -> BaseException | None:
        """Why the call is refused before its request is read, or None."""
        try:
            # With mTLS identities the handler reads the certificate; the secret is metadata.
            if self.trust.require and not self.trust.identities and not self.trust.is_gateway(metadata, {}):
                raise Unauthenticated(_GATEWAY_ONLY)
            if self.admission is not None:
                await self.admission.admit(method, metadata, request_streaming)
        except Exception as exc:
            return exc
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_EXEMPT_PREFIXES):
            return handler
        metadata: Metadata = tuple(handler_call_details.invocation_metadata or ())
        refusal = await self._refusal(method, metadata, handler.request_streaming)
        if refusal is not None:
            return _refusing_handler(handler, method, metadata, refusal)
        for shape, make, wrap, streaming_request in _HANDLER_SHAPES:
            behavior = getattr(handler, shape)
            if behavior:
                return make(  # type: ignore[no-any-return]
                    wrap(behavior, method, metadata, streaming_request, self.bounds, self.trust),
                    request_deserializer=_lenient(handler.request_deserializer),
                    response_serializer=handler.response_serializer,
                )
        return handler
