"""Errors that input can trigger, each carrying the status a client can act on as data.

Engines, the model manager and the clients' shared code raise these plain exceptions; this
module imports no gRPC. The servicer runtime maps `Status` onto `grpc.StatusCode` by name
(`services/common/interceptors.py`), the REST facade onto HTTP. Anything else is a bug and
surfaces as INTERNAL with a request id, never as a stack trace on the wire.
"""

from __future__ import annotations

import enum


class Status(enum.Enum):
    """The canonical status codes (google.rpc.Code), named as gRPC names them."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class ParlonsError(Exception):
    """Base of every error that carries a gRPC status code."""

    code: Status = Status.INTERNAL
    # Seconds a client should wait before retrying (RetryInfo, `retry-after-ms`); None: no advice.
    retry_after_s: float | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ParlonsError):
    """The request cannot be served as sent (bad audio, bad option, bad stream order).

    `field`, when known, names the request field at fault (`google.rpc.BadRequest`)."""

    code = Status.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NotFound(ParlonsError):
    """An unknown model, language or resource was named (`field`, when known, names it)."""

    code = Status.NOT_FOUND

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class FailedPrecondition(ParlonsError):
    """The system is not in a state to serve this (e.g. model files corrupt)."""

    code = Status.FAILED_PRECONDITION


class ResourceExhausted(ParlonsError):
    """Overload or quota: retry later."""

    code = Status.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ParlonsError):
    """A backend or model is not available right now."""

    code = Status.UNAVAILABLE

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unauthenticated(ParlonsError):
    code = Status.UNAUTHENTICATED


class PermissionDenied(ParlonsError):
    code = Status.PERMISSION_DENIED


class Cancelled(ParlonsError):
    """The caller went away or the deadline passed; the work was stopped."""

    code = Status.CANCELLED


class OutOfRange(ParlonsError):
    """A stream went past a bound of time: idle too long, or open too long (as Google's
    speech API answers the same cases)."""

    code = Status.OUT_OF_RANGE


class InvalidAudio(InvalidArgument):
    """Audio bytes that cannot be decoded or that break the configured limits."""

    def __init__(self, message: str, *, field: str = "audio") -> None:
        super().__init__(message, field=field)


class ModelNotFound(NotFound):
    """A model name that is neither in the catalog nor a path on disk."""


class ModelCorrupt(FailedPrecondition):
    """Model files whose sha256 does not match the catalog."""
