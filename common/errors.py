"""The JSON error body every server part sends (docs/architecture.md)::

    {"error": {"status": 416, "code": "range_not_satisfiable", "message": "..."}}

``code`` is stable and machine-readable; ``message`` is for people.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["error_body", "error_payload"]


def error_payload(status: int, code: str, message: str) -> dict[str, Any]:
    """The error as a dict (for frameworks that serialise it themselves)."""
    return {"error": {"status": status, "code": code, "message": message}}


def error_body(status: int, code: str, message: str) -> bytes:
    """The error as compact JSON bytes, ready to send."""
    return json.dumps(error_payload(status, code, message), separators=(",", ":")).encode()
