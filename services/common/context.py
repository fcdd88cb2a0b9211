"""Per-call context: the request id, readable anywhere in the call (logs, engines)."""

from __future__ import annotations

import contextvars
import uuid

REQUEST_ID_HEADER = "x-request-id"
TENANT_HEADER = "x-parlons-tenant"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()


def valid_request_id(value: str) -> bool:
    """Accept a client's id only if it is short and printable, so logs stay clean."""
    return 0 < len(value) <= 128 and value.isprintable() and " " not in value
