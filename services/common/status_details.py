"""`google.rpc` error details beside the status message, as Google's APIs send them
(`grpc-status-details-bin`): RetryInfo on quotas, overload and loading (how long to
wait), BadRequest field violations on invalid input (which field, and why).

Clients that read them (grpcio-status, Google's client libraries, Envoy) act on them;
others still have the plain message and, for retries, the `retry-after-ms` trailer.
"""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from parlons.errors import InvalidArgument, ParlonsError, Status

DETAILS_KEY = "grpc-status-details-bin"
RETRY_AFTER_KEY = "retry-after-ms"


def grpc_code(status: Status) -> grpc.StatusCode:
    """The gRPC code a parlons status stands for (the same name)."""
    return grpc.StatusCode[status.name]


def parlons_status(code: grpc.StatusCode) -> Status:
    """The parlons status a gRPC code stands for (a backend's answer passed on)."""
    return Status[code.name]


def trailing_metadata(error: ParlonsError) -> tuple[tuple[str, str | bytes], ...]:
    """The trailers that carry `error`'s details (and its retry delay, plainly)."""
    status = status_pb2.Status(code=error.code.value, message=error.message)
    metadata: list[tuple[str, str | bytes]] = []
    retry_after = error.retry_after_s
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(retry_after * 1000))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        metadata.append((RETRY_AFTER_KEY, str(int(retry_after * 1000))))
    if isinstance(error, InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    if status.details:
        metadata.append((DETAILS_KEY, status.SerializeToString()))
    return tuple(metadata)


def details_of(metadata: object) -> status_pb2.Status | None:
    """The google.rpc.Status a call's trailing metadata carries, if any."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:
                return None
    return None


def field_of(status: status_pb2.Status | None) -> str:
    """The first field violation's field, to pass a backend's BadRequest on."""
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            if request.field_violations:
                return request.field_violations[0].field
    return ""


__all__ = ["DETAILS_KEY", "RETRY_AFTER_KEY", "details_of", "field_of", "grpc_code", "parlons_status", "trailing_metadata"]
