"""Spotify-shaped paging objects and the query parameters that drive them.

Offset paging (playlists, search)::

    {"href", "items", "limit", "offset", "total", "next", "previous"}

Cursor paging (followers, following, recently played)::

    {"href", "items", "limit", "next", "cursors": {"after", "before"}, "total"}

``next``/``previous`` are absolute URLs of the same request with the paging
parameters changed, or ``null`` at the ends.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from fastapi import Request

from delivery.errors import BadRequest


def check_limit(limit: int, maximum: int, name: str = "limit") -> int:
    if not 1 <= limit <= maximum:
        raise BadRequest(f"{name} must be between 1 and {maximum}", code="invalid_limit")
    return limit


def check_offset(offset: int, maximum: int | None = None) -> int:
    if offset < 0:
        raise BadRequest("offset must be >= 0", code="invalid_offset")
    if maximum is not None and offset > maximum:
        raise BadRequest(f"offset must be <= {maximum}", code="invalid_offset")
    return offset


def _with(request: Request | None, **params: Any) -> str | None:
    if request is None:
        return None
    return str(request.url.include_query_params(**params))


def offset_page(
    request: Request | None,
    items: Sequence[Any],
    *,
    limit: int,
    offset: int,
    total: int,
    href: str | None = None,
) -> dict[str, Any]:
    nxt = _with(request, offset=offset + limit, limit=limit) if offset + limit < total else None
    prev = (
        _with(request, offset=max(0, min(offset, total) - limit), limit=limit)
        if offset > 0
        else None
    )
    return {
        "href": href or (str(request.url) if request is not None else None),
        "items": list(items),
        "limit": limit,
        "offset": offset,
        "total": total,
        "next": nxt,
        "previous": prev,
    }


def cursor_page(
    request: Request | None,
    items: Sequence[Any],
    *,
    limit: int,
    after: str | None,
    before: str | None = None,
    total: int | None = None,
    cursor_param: str = "after",
) -> dict[str, Any]:
    """``after``: cursor of the next page, or None at the end."""
    page = {
        "href": str(request.url) if request is not None else None,
        "items": list(items),
        "limit": limit,
        "next": _with(request, **{cursor_param: after, "limit": limit}) if after else None,
        "cursors": {"after": after, "before": before},
    }
    if total is not None:
        page["total"] = total
    return page


def encode_cursor(*parts: str | int) -> str:
    raw = "\x1f".join(str(p) for p in parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    """The ``n`` parts of a cursor made by :func:`encode_cursor` (400 when it is not one)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("invalid cursor", code="invalid_cursor") from None
    parts = raw.split("\x1f")
    if len(parts) != n:
        raise BadRequest("invalid cursor", code="invalid_cursor")
    return parts
