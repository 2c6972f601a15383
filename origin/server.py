"""The origin HTTP server: one object store, served to edges over HTTP.

A raw ASGI callable (no framework on the streaming path)::

    GET|HEAD /tracks/...      the object; Bearer pull token required
    GET      /healthz         liveness (``?ready=1`` also checks the store)
    GET      /readyz          readiness: the store answers
    GET      /metrics         Prometheus text format

Order of checks on an object request, all before any store I/O: the method
(405), the pull token (401, compared in constant time), the key (400, the
path-traversal guard of :mod:`origin.keys`). Then a ``stat`` decides the
conditional and range answers (412, 304, 416, 206, 200) with
:func:`common.http_plan.plan_response`, as the edge does; only a GET opens a read.
The stat, the open and the first chunk run in ONE worker-thread hop; further
chunks are read one per hop (bounded memory) until the end or until the
client goes away. Errors are JSON:
``{"error": {"status": N, "code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs

import anyio
from anyio import to_thread

from common.bearer import bearer_token, matches_any
from common.errors import error_body
from common.http_plan import Representation, plan_response, read_conditionals
from common.request_wrapper import Request, RequestWrapper
from origin.errors import (
    InvalidKey,
    ObjectNotFound,
    RangeNotSatisfiable,
    StoreError,
    StoreUnavailable,
)
from origin.keys import latest_key, parse_key
from origin.metrics import OriginMetrics
from origin.store import ObjectInfo, ObjectReader, ObjectStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("origin.server")

# Objects under a version never change (docs/architecture.md), so caches may keep them forever;
# latest.json moves on every publish and must be revalidated.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_OPEN_ATTEMPTS = 3
_CHALLENGE = "www-authenticate"


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, headers=()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, list(headers)


def _headers(scope: Scope) -> dict[str, str]:
    # Repeated headers are joined with ", " (RFC 9110 5.3); values are latin-1 on the wire.
    merged: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


@dataclass
class _Answer:
    """What to send: status and headers, and for a body the open read and its first chunk."""

    status: int
    headers: list[tuple[bytes, bytes]]
    reader: ObjectReader | None = None
    chunks: Iterator[bytes] | None = None
    first: bytes = b""
    length: int = 0


class OriginApp:
    """ASGI app serving ``store`` to clients holding one of ``pull_tokens``."""

    def __init__(
        self,
        store: ObjectStore,
        pull_tokens: list[str],
        *,
        metrics: OriginMetrics | None = None,
    ) -> None:
        tokens = [t.strip() for t in pull_tokens if t and t.strip()]
        if not tokens:
            raise ValueError("the origin server needs at least one pull token")
        self.store = store
        self.metrics = metrics or OriginMetrics()
        self._tokens = [t.encode() for t in tokens]
        self._requests = RequestWrapper(self._handle, part="origin", observe=self._observe)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        # The request id (echoed), origin_http_requests_total and _response_body_bytes_total,
        # and the access line, as every part does it (common.request_wrapper).
        await self._requests(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._route(scope, receive, send)
        except HTTPError as exc:
            await self._send_error(send, scope["method"], exc)

    def _observe(self, request: Request) -> None:
        method = request.method
        label = method if method in ("GET", "HEAD") else "other"
        self.metrics.requests.labels(label, str(request.status)).inc()
        if request.nbytes:
            self.metrics.bytes_sent.inc(request.nbytes)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path in ("/healthz", "/readyz", "/metrics"):
            if method not in ("GET", "HEAD"):
                raise _method_not_allowed()
            if path == "/metrics":
                body, ctype = self.metrics.render()
                await _send_bytes(send, 200, body, ctype, head=method == "HEAD")
                return
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            ready = path == "/readyz" or query.get("ready", ["0"])[-1] not in ("", "0")
            await self._health(send, ready, head=method == "HEAD")
            return
        if method not in ("GET", "HEAD"):
            raise _method_not_allowed()
        headers = _headers(scope)
        self._authenticate(headers)
        key = path[1:]
        try:
            kind = parse_key(key).kind
        except InvalidKey as exc:
            raise HTTPError(400, "invalid_key", str(exc)) from None
        await self._serve_object(key, kind, method, headers, receive, send)

    def _authenticate(self, headers: dict[str, str]) -> None:
        presented = bearer_token(headers.get("authorization"))
        if presented is not None:
            # Compared with every token, without stopping early, in constant time each.
            if matches_any(presented, self._tokens):
                return
            challenge = 'Bearer realm="origin", error="invalid_token"'
            raise HTTPError(
                401,
                "invalid_token",
                "the pull token is not valid",
                [(_CHALLENGE, challenge)],
            )
        raise HTTPError(
            401,
            "unauthorized",
            "send Authorization: Bearer <pull token>",
            [(_CHALLENGE, 'Bearer realm="origin"')],
        )

    def _call(self, operation: str, call: Callable[[], Any]) -> Any:
        """Run one store call (in a worker thread), mapping its errors to HTTP answers."""
        try:
            return self.metrics.timed(operation, call)
        except ObjectNotFound as exc:
            raise HTTPError(404, "not_found", str(exc)) from None
        except InvalidKey as exc:
            raise HTTPError(400, "invalid_key", str(exc)) from None
        except RangeNotSatisfiable:
            raise  # the caller decides again with fresh metadata
        except (StoreError, OSError) as exc:
            log.warning("store %s failed: %s", operation, exc)
            raise HTTPError(503, "store_unavailable", "the object store is unavailable") from None

    def _decide(self, key: str, kind: str, method: str, headers: dict[str, str]) -> _Answer:
        """Everything up to the first body chunk, in ONE worker-thread hop.

        Stat, conditionals, range, open and the first read all block; doing them
        in one hop keeps small ranges (the common edge fill) cheap.
        """
        cache_control = REVALIDATE if kind == "latest" else IMMUTABLE
        # The object may change between the stat (which decides the answer) and the
        # open (which delivers bytes): if the versions differ, decide again.
        conditionals = read_conditionals(headers)
        for attempt in range(_OPEN_ATTEMPTS):
            info: ObjectInfo = self._call("stat", lambda: self.store.stat(key))
            # The answer is the edge's too (common.http_plan): one decision for both.
            rep = Representation(info.size, info.etag, info.modified.astimezone(UTC))
            plan = plan_response(rep, method, headers.get("range"), conditionals)
            status = plan.status
            if status == 412:
                raise HTTPError(
                    412, "precondition_failed", "If-Match or If-Unmodified-Since failed"
                )
            if status == 416:
                raise HTTPError(
                    416,
                    "range_not_satisfiable",
                    f"the range lies outside the object's {info.size} bytes",
                    [(k.decode(), v.decode()) for k, v in plan.headers],
                )
            base = [*_object_headers(info, cache_control), *plan.headers]
            if plan.span is None:  # 304 or HEAD
                return _Answer(status, base)
            start, end = plan.span
            # An empty object is opened as (0, None): its only valid span is empty.
            last = None if end < start else end
            try:
                reader = self._call(
                    "open", lambda s=start, e=last: self.store.open_range(key, s, e)
                )
            except HTTPError as exc:
                if exc.status == 404 and attempt < _OPEN_ATTEMPTS - 1:
                    continue  # deleted since the stat, or being replaced: look again
                raise
            except RangeNotSatisfiable:
                continue  # it shrank since the stat
            if reader.info.etag != info.etag or (reader.start, reader.end) != (start, end):
                reader.close()
                continue
            chunks = iter(reader)
            try:
                first = next(chunks, b"")
            except (StoreError, OSError) as exc:
                reader.close()
                log.warning("read of %r failed: %s", key, exc)
                raise HTTPError(
                    503, "store_unavailable", "the object store is unavailable"
                ) from None
            return _Answer(status, base, reader, chunks, first, end - start + 1)
        raise HTTPError(503, "store_unavailable", f"{key!r} kept changing while being opened")

    async def _serve_object(self, key, kind, method, headers, receive, send) -> None:
        answer = await to_thread.run_sync(self._decide, key, kind, method, headers)
        if answer.reader is None:
            await _send_raw_start(send, answer.status, answer.headers)
            await send({"type": "http.response.body", "body": b""})
            return
        await self._stream(answer, receive, send)

    async def _stream(self, answer: _Answer, receive: Receive, send: Send) -> None:
        reader, chunks = answer.reader, answer.chunks
        assert reader is not None and chunks is not None
        sent = len(answer.first)
        self.metrics.streams.inc()
        try:
            await _send_raw_start(send, answer.status, answer.headers)
            if sent >= answer.length:
                # A small object or range: one message, no further thread hops.
                body = {"type": "http.response.body", "body": answer.first, "more_body": False}
                await send(body)
                return
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                body = {"type": "http.response.body", "body": answer.first, "more_body": True}
                await send(body)
                while sent < answer.length:
                    try:
                        chunk = await to_thread.run_sync(next, chunks, b"")
                        if not chunk:
                            raise StoreUnavailable(f"{sent} of {answer.length} bytes, then EOF")
                    except (StoreError, OSError) as exc:
                        # Too late for a status code: end the response short, so the
                        # client (an edge) sees a truncated body and never caches it.
                        log.warning("read of %r failed mid-stream: %s", reader.info.key, exc)
                        group.cancel_scope.cancel()
                        return
                    sent += len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        finally:
            self.metrics.streams.dec()
            if sent >= answer.length:
                reader.close()  # a finished read has nothing left to wait for
            else:
                with anyio.CancelScope(shield=True):
                    await to_thread.run_sync(reader.close)

    async def _health(self, send: Send, ready: bool, head: bool) -> None:
        if not ready:
            await _send_json(send, 200, {"status": "ok"}, head)
            return
        try:
            await to_thread.run_sync(self.metrics.timed, "check", self._check_store)
        except Exception as exc:  # any failure means "not ready", with the reason logged
            log.warning("readiness check failed: %s", exc)
            body = error_body(503, "not_ready", "the object store is not reachable")
            await _send_bytes(send, 503, body, "application/json", head)
            return
        await _send_json(send, 200, {"status": "ready"}, head)

    def _check_store(self) -> None:
        check = getattr(self.store, "check", None)
        if check is not None:
            check()
        else:
            self.store.exists(latest_key("readiness-probe"))

    async def _send_error(self, send: Send, method: str, exc: HTTPError) -> None:
        body = error_body(exc.status, exc.code, exc.message)
        await _send_bytes(send, exc.status, body, "application/json", method == "HEAD", exc.headers)


def _method_not_allowed() -> HTTPError:
    return HTTPError(405, "method_not_allowed", "use GET or HEAD", [("allow", "GET, HEAD")])


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def _object_headers(info: ObjectInfo, cache_control: str) -> list[tuple[bytes, bytes]]:
    """The origin's own headers of an object answer (the plan adds validators, lengths)."""
    headers = [
        (b"content-type", info.content_type.encode("latin-1")),
        (b"cache-control", cache_control.encode("latin-1")),
    ]
    if info.sha256:
        headers.append((b"x-checksum-sha256", info.sha256.encode("latin-1")))
    return headers


async def _send_raw_start(send: Send, status: int, raw: list[tuple[bytes, bytes]]) -> None:
    raw.append((b"x-content-type-options", b"nosniff"))
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def _send_start(send: Send, status: int, headers: list[tuple[str, str]]) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await _send_raw_start(send, status, raw)


async def _send_bytes(send, status, body: bytes, ctype: str, head: bool, extra=()) -> None:
    headers = [("content-type", ctype), ("content-length", str(len(body))), *extra]
    await _send_start(send, status, headers)
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_json(send: Send, status: int, payload: dict, head: bool) -> None:
    await _send_bytes(send, status, json.dumps(payload).encode(), "application/json", head)


def create_app(
    store: ObjectStore, pull_tokens: list[str], *, metrics: OriginMetrics | None = None
) -> ASGIApp:
    """The origin ASGI app for ``store``; requests must carry one of ``pull_tokens``."""
    return OriginApp(store, pull_tokens, metrics=metrics)
