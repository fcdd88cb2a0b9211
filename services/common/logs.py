"""Structured logs: one JSON object a line, with the request id, never audio or text.

Content (audio, transcripts, translations) is personal data of the public; logs carry
only ids, sizes, durations and status codes.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from parlons.services.common.context import current_request_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("parlons")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def log_fields(**fields: object) -> dict[str, dict[str, object]]:
    """`logger.info("done", extra=log_fields(duration_s=1.2))`"""
    return {"fields": fields}
