"""HTTP semantics of an object response, as pure functions and pre-built header lists.

:func:`plan_response` decides status and byte range from the request's
conditional and Range headers (RFC 9110 sections 13 and 14), using
:func:`origin.ranges.parse_range` for the range itself::

    If-None-Match matches the ETag          -> 304 (checked first, as RFC 9110 orders it)
    Range given, If-Range absent or matches -> 206 with that range, or 416 past the end
    otherwise (also a malformed Range)      -> 200 with the whole object

The header helpers return ``list[tuple[bytes, bytes]]`` ready for ASGI; the
parts that never change for an object are built once per cached object.
"""

from __future__ import annotations

import json

from edge.cache.entry import ObjectMeta
from origin.ranges import MalformedRange, RangeNotSatisfiable, parse_range

Headers = list[tuple[bytes, bytes]]

ACCEPT_RANGES = (b"accept-ranges", b"bytes")
# A player on another origin (the delivery web app) may fetch() objects. The URL's
# token is the authorisation, so allowing every origin grants nothing extra.
CORS_ORIGIN = (b"access-control-allow-origin", b"*")
# ... and read these response headers (fetch() hides all but a few safelisted ones).
CORS_EXPOSE = (
    b"access-control-expose-headers",
    b"Content-Range, Accept-Ranges, ETag, X-Cache, Content-Length",
)
NO_STORE = (b"cache-control", b"no-store")
X_CACHE = {name: (b"x-cache", name.encode()) for name in ("HIT", "MISS", "COALESCED")}


def base_headers(meta: ObjectMeta) -> Headers:
    """Headers every response for this object carries (built once per object)."""
    headers = [
        (b"content-type", meta.content_type.encode("latin-1")),
        ACCEPT_RANGES,
        (b"etag", meta.etag.encode("latin-1")),
        CORS_ORIGIN,
        CORS_EXPOSE,
    ]
    if meta.last_modified:
        headers.append((b"last-modified", meta.last_modified.encode("latin-1")))
    return headers


def cache_control(max_age: int) -> tuple[bytes, bytes]:
    # private: the URL carries a per-user token, so shared caches must not keep it.
    return (b"cache-control", b"private, max-age=%d, immutable" % max(0, max_age))


def public_cache_control(max_age: int) -> tuple[bytes, bytes]:
    """For pull-token clients (a child edge, or a CDN / nginx in front of this edge): the
    object is immutable and the puller authorised itself, so shared caches may keep it.
    Built once at start-up."""
    return (b"cache-control", b"public, max-age=%d, immutable" % max(0, max_age))


def content_range(start: int, end: int, size: int) -> tuple[bytes, bytes]:
    return (b"content-range", b"bytes %d-%d/%d" % (start, end, size))


def etag_matches_any(header: str, etag: str) -> bool:
    """``If-None-Match`` uses the weak comparison: ``W/"x"`` matches ``"x"``."""
    if header == etag:
        return True
    if header.strip() == "*":
        return True
    target = etag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == target for part in header.split(","))


def if_range_matches(header: str, etag: str, last_modified: str | None) -> bool:
    """``If-Range`` uses the strong comparison; a weak validator never matches."""
    header = header.strip()
    if header.startswith('"'):
        return header == etag and not etag.startswith("W/")
    if header.startswith("W/"):
        return False
    # An HTTP date: the representation is unchanged only if it is exactly Last-Modified.
    return last_modified is not None and header == last_modified


# A plain dict emptied when full: on the hit path, where cachetools' LRUCache costs
# about 0.35 us per range request (7% of a memory hit's time in the app).
_RANGE_MEMO: dict[tuple[str, int], tuple[int, int] | None | int] = {}
_RANGE_MEMO_MAX = 8192


def parse_range_memo(header: str, size: int) -> tuple[int, int] | None | int:
    """:func:`parse_range` memoised: players ask for the same chunk boundaries over and over.

    Returns the range, ``None`` (serve the whole object) or ``416``.
    """
    if len(header) > 64:  # not a player's range: do not let odd headers fill the memo
        try:
            return parse_range(header, size)
        except MalformedRange:
            return None
        except RangeNotSatisfiable:
            return 416
    memo_key = (header, size)
    result = _RANGE_MEMO.get(memo_key, False)
    if result is not False:
        return result  # type: ignore[return-value]
    try:
        result = parse_range(header, size)
    except MalformedRange:
        result = None  # RFC 9110: a server may ignore a Range it cannot parse
    except RangeNotSatisfiable:
        result = 416
    if len(_RANGE_MEMO) >= _RANGE_MEMO_MAX:
        _RANGE_MEMO.clear()
    _RANGE_MEMO[memo_key] = result
    return result


def plan_response(
    size: int,
    etag: str,
    last_modified: str | None,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
) -> tuple[int, int, int]:
    """``(status, first, last)`` for a GET/HEAD of an object; ``last`` is inclusive.

    ``status`` is 200, 206, 304 or 416. For 200 the range is the whole object
    (``0, size - 1``); for 304 and 416 the range is meaningless.
    """
    if if_none_match is not None and etag_matches_any(if_none_match, etag):
        return 304, 0, -1
    if range_header is not None and (
        if_range is None or if_range_matches(if_range, etag, last_modified)
    ):
        rng = parse_range_memo(range_header, size)
        if rng == 416:
            return 416, 0, -1
        if rng is not None:
            return 206, rng[0], rng[1]  # type: ignore[index]
    return 200, 0, size - 1


def error_body(status: int, code: str, message: str) -> bytes:
    """The error shape of docs/architecture.md: ``{"error": {"status", "code", "message"}}``."""
    return json.dumps(
        {"error": {"status": status, "code": code, "message": message}}, separators=(",", ":")
    ).encode()


async def send_error(
    send,
    status: int,
    code: str,
    message: str,
    *,
    head: bool = False,
    extra: Headers | None = None,
) -> int:
    """Send a short JSON error; returns the number of body bytes sent."""
    body = error_body(status, code, message)
    headers: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        NO_STORE,
        CORS_ORIGIN,
    ]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
    return 0 if head else len(body)


async def send_simple(send, status: int, body: bytes, content_type: bytes, head=False) -> int:
    headers: Headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        NO_STORE,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
    return 0 if head else len(body)
