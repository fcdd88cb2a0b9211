"""Errors that input can trigger, each mapped to the gRPC status a client can act on.

Engines raise these plain exceptions (no gRPC import needed); the servicer layer turns
them into statuses with `status_for`. Anything else is a bug and surfaces as INTERNAL
with a request id, never as a stack trace on the wire.
"""

from __future__ import annotations

import grpc


class ParlonsError(Exception):
    """Base of every error that carries a gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    # Seconds a client should wait before retrying (RetryInfo, `retry-after-ms`); None: no advice.
    retry_after_s: float | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ParlonsError):
    """The request cannot be served as sent (bad audio, bad option, bad stream order).

    `field`, when known, names the request field at fault (`google.rpc.BadRequest`)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NotFound(ParlonsError):
    """An unknown model, language or resource was named (`field`, when known, names it)."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class FailedPrecondition(ParlonsError):
    """The system is not in a state to serve this (e.g. model files corrupt)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(ParlonsError):
    """Overload or quota: retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ParlonsError):
    """A backend or model is not available right now."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unauthenticated(ParlonsError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ParlonsError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Cancelled(ParlonsError):
    """The caller went away or the deadline passed; the work was stopped."""

    code = grpc.StatusCode.CANCELLED


class OutOfRange(ParlonsError):
    """A stream went past a bound of time: idle too long, or open too long (as Google's
    speech API answers the same cases)."""

    code = grpc.StatusCode.OUT_OF_RANGE


class InvalidAudio(InvalidArgument):
    """Audio bytes that cannot be decoded or that break the configured limits."""

    def __init__(self, message: str, *, field: str = "audio") -> None:
        super().__init__(message, field=field)


class ModelNotFound(NotFound):
    """A model name that is neither in the catalog nor a path on disk."""


class ModelCorrupt(FailedPrecondition):
    """Model files whose sha256 does not match the catalog."""
