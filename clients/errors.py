"""What an SDK call raises: the gRPC status and the server's message, never a raw gRPC
traceback; with, when the server said so, how long to wait (google.rpc.RetryInfo) and
which request field is at fault (google.rpc.BadRequest)."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ParlonsRpcError(grpc.RpcError):
    """A failed call. Still a grpc.RpcError (with `code()` and `details()`), so code that
    catches those keeps working."""

    def __init__(self, status: grpc.StatusCode, message: str, *, retry_after_s: float | None = None,
                 field: str = "") -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s
        self.field = field

    def code(self) -> grpc.StatusCode:
        return self.status

    def details(self) -> str:
        return self.message

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status.name}: {self.message}{where}"

    @classmethod
    def from_grpc(cls, error: grpc.RpcError) -> ParlonsRpcError:
        if isinstance(error, ParlonsRpcError):
            return error
        code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
        message = (error.details() if callable(getattr(error, "details", None)) else "") or str(error)  # type: ignore[attr-defined]
        retry_after_s, field = _details(error)
        return cls(code or grpc.StatusCode.UNKNOWN, message, retry_after_s=retry_after_s, field=field)


def _details(error: Any) -> tuple[float | None, str]:
    trailing = error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
    retry_after_s: float | None = None
    field = ""
    for key, value in trailing or ():
        if key != _STATUS_DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                retry_after_s = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                request = error_details_pb2.BadRequest()
                detail.Unpack(request)
                if request.field_violations:
                    field = request.field_violations[0].field
    return retry_after_s, field
