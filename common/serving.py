"""uvicorn bounded like nginx: header size, header time, idle time, connections, bodies.

uvicorn's httptools protocol enforces none of these: a client can grow one
unfinished header without limit, take forever to send it, or open connections
that never send a byte. :class:`BoundedHttpToolsProtocol` adds the bounds,
each the equivalent of an nginx directive:

* ``max_header_bytes`` (``large_client_header_buffers``): bytes of one request's
  head (request line and headers). Past it: 431 and the connection closed. Bytes
  are counted per read only until the head is complete, so a request costs one
  comparison per read; a pipelined request may overshoot by at most one read.
* ``header_timeout_s`` (``client_header_timeout``): time to receive a complete
  head, counted from the connection's opening for the first request and from the
  first byte of each later keep-alive request. Past it: 408 and closed.
* ``idle_timeout_s`` (``keepalive_timeout``): a connection that never sent a byte
  is closed after ``min(idle_timeout_s, header_timeout_s)``; between requests
  uvicorn's keep-alive timeout is set to it.
* ``body_timeout_s`` (``client_body_timeout``): the longest pause between two
  reads of a request body the client has not finished sending (not counted while
  uvicorn itself pauses reading because the app is behind). Past it: 408 (or a
  plain close once the response started).
* ``max_connections`` (``worker_connections``): open connections per worker; the
  next one is answered 503 and closed at once.
* ``max_body_bytes`` (``client_max_body_size``, optional): body bytes received on
  one request, counted as they arrive (a part that reads bodies checks them in the
  app instead, see :class:`BodyLimit`). Past it: 413 (or a plain close once the
  response started). A body still arriving after the response is discarded while
  the request's body stays under 64 KiB; past that the connection is closed rather
  than drained.

Deadlines are not one timer per request: each worker sweeps its connections a few
times per timeout (at most every second), so a limit is enforced within
``timeout + sweep interval``.

:class:`BodyLimit` is the ASGI middleware bounding request bodies before any
parsing or authentication. Refusals carry the error body every part uses:
``{"error": {"status": 431, "code": "headers_too_large", "message": "..."}}``.

Counters per part (``<part>_connections_open``, ``<part>_connections_rejected_total``,
``<part>_connections_closed_by_limit_total{reason}``) are process-wide
(:func:`common.connections.connection_stats`) and exported by
:class:`common.connections.ConnectionCollector`.
"""

from __future__ import annotations

import asyncio
import functools
import http
import weakref
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from common.connections import connection_stats
from common.errors import error_body
from common.limits import (  # noqa: F401 - re-exported for the parts' command lines
    DEFAULT_MAX_BODY_BYTES,
    DRAIN_MAX_BYTES,
    GET_ONLY_MAX_BODY_BYTES,
    ConnectionLimits,
)


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` applying ``limits``.

    The protocol is a ``functools.partial`` of a module-level class, so it pickles
    into the worker processes uvicorn spawns. WebSockets are off (no part serves
    them, and an upgraded connection would leave these bounds).
    """
    return {
        "http": functools.partial(BoundedHttpToolsProtocol, limits=limits),
        "ws": "none",
        "timeout_keep_alive": limits.idle_timeout_s,
    }


# -- responses ------------------------------------------------------------------------


def error_response(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response with the JSON error body, closing the connection."""
    body = error_body(status, code, message)
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s"
        % (status, http.HTTPStatus(status).phrase.encode(), len(body), body)
    )


class _Refusal(Exception):
    """Raised from a parser callback to stop parsing; ``status`` 0 closes without answering."""

    def __init__(self, reason: str, status: int = 0, code: str = "", message: str = "") -> None:
        super().__init__(reason)
        self.reason, self.status, self.code, self.message = reason, status, code, message
        # A body refusal concerns the request ``self.cycle`` serves; a head refusal
        # concerns a request that has no cycle yet.
        self.in_body = reason in ("body_too_large", "body_timeout")


def _headers_too_large(limit: int) -> _Refusal:
    return _Refusal(
        "headers_too_large", 431, "headers_too_large", f"request headers exceed {limit} bytes"
    )


# -- the protocol ---------------------------------------------------------------------


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionLimits` enforced.

    ``_head`` is the byte count of the request head being received, ``-1`` while the
    app has a request whose head is complete; ``_head_started`` is when that head's
    clock started (0.0: no clock, e.g. an idle keep-alive connection).
    """

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.stats = connection_stats(limits.part)
        self._max_head = limits.max_header_bytes
        self._head = 0
        self._head_started = 0.0
        self._body = 0
        self._body_waiting = 0.0  # when the body's last bytes arrived (0.0: no body due)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        stats = self.stats
        stats.open += 1
        if len(self.connections) > self.limits.max_connections:
            stats.rejected += 1
            self._head = -1
            transport.write(
                error_response(503, "too_many_connections", "too many open connections")
            )
            transport.close()
            return
        self._head_started = self.loop.time()
        _watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        head = self._head
        if head >= 0:
            if not self._head_started:  # the first byte of a keep-alive request
                self._head_started = self.loop.time()
            self._head = head + len(data)
        # uvicorn's data_received, except that a refusal raised by a parser callback
        # (httptools wraps it in a callback error) is answered as such.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refusal):
                self._refuse(exc.__context__)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        if self._head > self._max_head:
            self._refuse(_headers_too_large(self._max_head))

    def on_headers_complete(self) -> None:
        if self._head > self._max_head and self._head_size() > self._max_head:
            raise _headers_too_large(self._max_head)
        self._head = -1
        self._head_started = 0.0
        # A request without a body completes right after this, which clears the clock.
        self._body_waiting = self.loop.time()
        _on_headers_complete(self)  # not super(): this runs on every request

    def on_body(self, body: bytes) -> None:
        self._body += len(body)
        self._body_waiting = self.loop.time()
        limit = self.limits.max_body_bytes
        if limit is not None and self._body > limit:
            raise _Refusal(
                "body_too_large", 413, "body_too_large", f"request body exceeds {limit} bytes"
            )
        if self.cycle.response_complete and self._body > DRAIN_MAX_BYTES:
            raise _Refusal("body_too_large")  # answered already: do not drain the rest
        _on_body(self, body)

    def on_message_complete(self) -> None:
        self._head = 0  # the next byte starts the next request's head
        self._body = 0
        self._body_waiting = 0.0
        _on_message_complete(self)

    def timeout_keep_alive_handler(self) -> None:
        # uvicorn's keep-alive timer (set to idle_timeout_s) closing an idle connection.
        if not self.transport.is_closing():
            self.stats.closed["idle_timeout"] += 1
        super().timeout_keep_alive_handler()

    def _head_size(self) -> int:
        # The exact size, computed only when the per-read count says "maybe too large"
        # (the read may also have carried the body).
        return len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) + 16

    def _refuse(self, refusal: _Refusal) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        self.stats.closed[refusal.reason] += 1
        self._head = -1
        cycle = self.cycle
        answered = refusal.in_body and cycle.response_started
        if cycle is not None and not cycle.response_complete:
            answered = cycle.response_started
            cycle.disconnected = True  # the app's further sends are dropped, receive() ends
            cycle.message_event.set()
        if refusal.status and not answered:
            transport.write(error_response(refusal.status, refusal.code, refusal.message))
        transport.close()

    def check_deadlines(self, now: float) -> None:
        """Called by the sweep: close a connection past its header, first-byte or body
        deadline."""
        waiting = self._body_waiting
        if waiting and not self.flow.read_paused and now - waiting >= self.limits.body_timeout_s:
            self._refuse(
                _Refusal(
                    "body_timeout",
                    408,
                    "body_timeout",
                    f"request body stalled for {self.limits.body_timeout_s:g} s",
                )
            )
            return
        started = self._head_started
        if self._head < 0 or not started:
            return
        if self._head == 0:  # not one byte since the connection opened
            if now - started >= self.limits.first_byte_timeout_s:
                self._refuse(_Refusal("idle_timeout"))
        elif now - started >= self.limits.header_timeout_s:
            self._refuse(
                _Refusal(
                    "header_timeout",
                    408,
                    "header_timeout",
                    f"request headers not received within {self.limits.header_timeout_s:g} s",
                )
            )


_on_headers_complete = HttpToolsProtocol.on_headers_complete
_on_body = HttpToolsProtocol.on_body
_on_message_complete = HttpToolsProtocol.on_message_complete

# One sweep per server (uvicorn's ServerState), running while it has connections.
_SWEEPS: weakref.WeakKeyDictionary[Any, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


def _watch(protocol: BoundedHttpToolsProtocol) -> None:
    state = protocol.server_state
    if state not in _SWEEPS:
        interval = protocol.limits.sweep_interval_s
        _SWEEPS[state] = protocol.loop.call_later(interval, _sweep, protocol.loop, state, interval)


def _sweep(loop: asyncio.AbstractEventLoop, state: Any, interval: float) -> None:
    now = loop.time()
    for conn in list(state.connections):  # a copy: checks close connections
        if isinstance(conn, BoundedHttpToolsProtocol):
            conn.check_deadlines(now)
    if state.connections:
        _SWEEPS[state] = loop.call_later(interval, _sweep, loop, state, interval)
    else:
        _SWEEPS.pop(state, None)


# -- request bodies in the app --------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Pure ASGI middleware: no request body larger than ``max_bytes`` reaches the app.

    Install it outermost, so it runs before any body parsing or authentication. A
    declared ``Content-Length`` above the limit is answered 413 without reading a
    byte; a chunked body is counted as it is received and cut off at the limit (the
    app never receives more; whatever it answers to the broken body is replaced by
    the 413). Every 413 closes the connection, so the rest is not drained, and is
    counted as ``<part>_connections_closed_by_limit_total{reason="body_too_large"}``.
    """

    def __init__(
        self, app: Any, max_bytes: int = DEFAULT_MAX_BODY_BYTES, part: str | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.stats = connection_stats(part) if part else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                # The parser never delivers more than a declared length: a small one
                # needs no counting.
                if int(value) > limit:
                    await self._too_large(send)
                else:
                    await self.app(scope, receive, send)
                return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> dict:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a cut-off body: ours replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded:
            if started:
                raise RuntimeError("request body too large after the response started")
            await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        if self.stats is not None:
            self.stats.closed["body_too_large"] += 1
        body = error_body(413, "body_too_large", f"request body exceeds {self.max_bytes} bytes")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
