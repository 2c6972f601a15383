"""JSON-lines logging and request ids, shared by every part (edge and delivery import it).

Every part logs one JSON object per line on stderr::

    {"ts": "2026-11-27T22:33:00.123Z", "level": "info", "part": "origin",
     "logger": "origin.access", "msg": "GET /tracks/... 206", "request_id": "9f1c...",
     "method": "GET", "path": "/tracks/...", "status": 206, "bytes": 65536, "ms": 0.8}

A request id travels in the ``X-Request-Id`` header: a part reuses a well-formed
incoming id (so delivery -> client -> edge -> origin can be followed through
all logs) and otherwise makes a new one; origin and delivery echo it in their
responses. :mod:`common.request_wrapper` does this, the same way for every part.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else passed with extra={...} becomes a JSON field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | bytes | None) -> str:
    """The incoming id when it is well-formed (bounded, no spaces or quotes), else a new one."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value and _REQUEST_ID_RE.fullmatch(value):
        return value
    return new_request_id()


class JsonFormatter(logging.Formatter):
    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "part": self.part,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(part: str, level: str = "info", stream=None) -> None:
    """Send every logger (ours and uvicorn's) through one JSON handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(part))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
