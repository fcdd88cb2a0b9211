"""One place for what every RPC needs: request id, error mapping, metrics, access log.

Servicers raise `ParlonsError`s (or let asyncio cancellation through); this interceptor
turns them into statuses, so no servicer repeats try/except and no input can produce
UNKNOWN with a stack trace on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
from grpc import aio

from parlons.services.common import metrics
from parlons.services.common.context import (
    REQUEST_ID_HEADER,
    new_request_id,
    request_id_var,
    valid_request_id,
)
from parlons.services.common.errors import ParlonsError, ResourceExhausted
from parlons.services.common.logs import log_fields

log = logging.getLogger("parlons.rpc")

_EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class _Call:
    """Book-keeping for one call: id, timing, final code."""

    def __init__(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.method = method
        given = next((str(v) for k, v in metadata if k == REQUEST_ID_HEADER), "")
        self.request_id = given if valid_request_id(given) else new_request_id()
        self.started = time.perf_counter()
        self.code = grpc.StatusCode.OK

    async def begin(self, context: aio.ServicerContext) -> None:
        request_id_var.set(self.request_id)
        await context.send_initial_metadata(((REQUEST_ID_HEADER, self.request_id),))

    async def fail(self, context: aio.ServicerContext, exc: BaseException) -> None:
        """Abort with the status the exception stands for (this raises)."""
        if isinstance(exc, ParlonsError):
            self.code = exc.code
            if isinstance(exc, ResourceExhausted) and exc.retry_after_s is not None:
                context.set_trailing_metadata(
                    (("retry-after-ms", str(int(exc.retry_after_s * 1000))),)
                )
            await context.abort(exc.code, exc.message)
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


def _wrap_unary_response(behavior: Callable[..., Awaitable[Any]], method: str, metadata: Any) -> Any:
    async def handler(request_or_iterator: Any, context: aio.ServicerContext) -> Any:
        call = _Call(method, metadata)
        await call.begin(context)
        try:
            return await behavior(request_or_iterator, context)
        except asyncio.CancelledError:
            call.code = grpc.StatusCode.CANCELLED
            raise
        except aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never leaked
            await call.fail(context, exc)
        finally:
            call.finish(context)

    return handler


def _wrap_stream_response(behavior: Callable[..., AsyncIterator[Any]], method: str, metadata: Any) -> Any:
    async def handler(request_or_iterator: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(method, metadata)
        await call.begin(context)
        try:
            async for response in behavior(request_or_iterator, context):
                yield response
        except asyncio.CancelledError:
            call.code = grpc.StatusCode.CANCELLED
            raise
        except aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001
            await call.fail(context, exc)
        finally:
            call.finish(context)

    return handler


class ServiceInterceptor(aio.ServerInterceptor):
    """Wraps every application RPC (health and reflection pass through untouched)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_EXEMPT_PREFIXES):
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary_response(handler.unary_unary, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary_response(handler.stream_unary, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream_response(handler.unary_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_stream_response(handler.stream_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
