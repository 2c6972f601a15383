"""HTTP pieces of an object response: pre-built header lists and short JSON answers.

Status, byte range, validators, Content-Length and Content-Range come from
:func:`common.http_plan.plan_response`, the same decision the origin makes
(conditional requests and Range, RFC 9110 sections 13 and 14). What is the
edge's own (content type, CORS, cache control, X-Cache) is here, as
``list[tuple[bytes, bytes]]`` ready for ASGI; the parts that never change for
an object are built once per cached object.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE

from common.errors import error_body
from common.http_plan import Representation
from edge.cache.entry import ObjectMeta

Headers = list[tuple[bytes, bytes]]

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
    """The edge's own headers of every 200/206 for this object (built once per object);
    the validators, lengths and ranges come with the plan."""
    return [(b"content-type", meta.content_type.encode("latin-1")), CORS_ORIGIN, CORS_EXPOSE]


def header_lines(headers) -> bytes:
    """ASGI header pairs as CRLF-terminated ``name: value`` lines, as uvicorn writes them;
    ValueError for a name or value uvicorn would refuse (an upstream's CR/LF in an ETag, say)."""
    for name, value in headers:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            raise ValueError(f"invalid header {name[:40]!r}")
    return b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in headers)


def cache_control(max_age: int) -> tuple[bytes, bytes]:
    # private: the URL carries a per-user token, so shared caches must not keep it.
    return (b"cache-control", b"private, max-age=%d, immutable" % max(0, max_age))


def public_cache_control(max_age: int) -> tuple[bytes, bytes]:
    """For pull-token clients (a child edge, or a CDN / nginx in front of this edge): the
    object is immutable and the puller authorised itself, so shared caches may keep it.
    Built once at start-up."""
    return (b"cache-control", b"public, max-age=%d, immutable" % max(0, max_age))


def representation(meta: ObjectMeta) -> Representation:
    """The object's size and validators for :func:`common.http_plan.plan_response`.

    Built once per object in the memory tier (where it remembers the plans of the
    ranges players ask for), per response from the disk tier or a fill.
    """
    return Representation(meta.size, meta.etag, meta.last_modified)


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
