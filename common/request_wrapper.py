"""The one request wrapper of every part: request id, latency/status metric, access-log line.

Origin, delivery and the edge wrap each HTTP request the same way:

1. **Request id**: a well-formed incoming ``X-Request-Id`` is reused, otherwise one
   is made (``new_id``: a uuid4 by default; the edge uses :func:`sequential_ids`,
   far cheaper). It is bound to :data:`common.logs.request_id_var` for the request
   (every log line of the request carries it; the edge forwards it upstream on the
   fill the request starts) and, with ``echo_request_id``, added to the response
   headers.
2. **Metric**: ``observe(request)`` once the request is done (the part's own
   counters and histograms, labelled as it likes).
3. **Access log**: one line per request, except for quiet routes (``/healthz``,
   ``/readyz``, ``/metrics`` by default): by default a JSON log line on the
   ``<part>.access`` logger (fields ``method``, ``path``, ``status``, ``bytes``,
   ``ms``, plus ``route`` when the part labels routes and any ``fields`` the app
   added), or ``access_log(request)`` when the part writes its own (the edge's
   buffered :class:`edge.access_log.AccessLog`).

:class:`RequestWrapper` is ASGI middleware (origin, delivery): it learns the
status and body bytes from the messages sent, and at the lifespan's shutdown it
flushes the process's metrics and, with several workers, drops its live gauges
(:func:`common.metrics.process_stopping`). The edge calls the same two halves,
:meth:`RequestWrapper.begin` and :meth:`RequestWrapper.end`, inline around its
object route: on its hot path (about 40 us per range hit) that saves a coroutine
frame and a ``send`` wrapper per message, and its responder already counts the
status and bytes it sends.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from common.logs import REQUEST_ID_HEADER_BYTES, accept_request_id, new_request_id, request_id_var
from common.metrics import process_stopping

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
_perf_counter = time.perf_counter


def sequential_ids() -> Callable[[], str]:
    """Request ids from a process prefix and a counter: unique enough to follow a request
    through the logs, and far cheaper than a uuid4 (for the edge's hot path)."""
    prefix = f"{os.getpid():x}{int(time.time()) & 0xFFFF:04x}-"
    counter = itertools.count(1)
    return lambda: prefix + str(next(counter))


class Request:
    """One request as the wrapper and the app see it.

    The app may set ``status`` and ``nbytes`` (the ASGI form does it from the messages
    sent), ``route`` (the metric label and quiet-route check; else the raw path) and
    ``fields``: extra access-log fields (a dict for the default line; whatever the
    part's own ``access_log`` reads otherwise).
    """

    __slots__ = (
        "method",
        "path",
        "request_id",
        "started",
        "seconds",
        "status",
        "nbytes",
        "route",
        "fields",
        "_token",
    )

    def __init__(self, method: str, path: str, request_id: str) -> None:
        self.method = method
        self.path = path
        self.request_id = request_id
        self.seconds = 0.0
        self.status = 500
        self.nbytes = 0
        self.route: str | None = None
        self.fields: Any = None
        self._token = request_id_var.set(request_id)
        self.started = _perf_counter()


class RequestWrapper:
    """Request id, metric and access line for ``app`` (see the module docstring).

    ``part`` names the access logger (``<part>.access``); ``observe(request)`` records
    metrics; ``route(scope)`` labels the request once the app ran (e.g. the route
    template; None: the raw path); ``access_log`` is True (the default JSON line),
    False (none) or a callable writing the part's own line; ``quiet`` are the routes
    (or paths) never logged; ``echo_request_id`` adds ``X-Request-Id`` to responses.
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        *,
        part: str,
        observe: Callable[[Request], None] | None = None,
        route: Callable[[Scope], str | None] | None = None,
        access_log: bool | Callable[[Request], None] = True,
        quiet: Collection[str] = QUIET_ROUTES,
        echo_request_id: bool = True,
        new_id: Callable[[], str] = new_request_id,
    ) -> None:
        self.app = app
        self.part = part
        self.observe = observe
        self.route = route
        self.quiet = frozenset(quiet)
        self.echo_request_id = echo_request_id
        self.new_id = new_id
        self._logger = logging.getLogger(f"{part}.access")
        if access_log is True:
            self.log: Callable[[Request], None] | None = self._log_line
        else:
            self.log = access_log or None

    # -- the two halves ----------------------------------------------------------------

    def begin(self, scope: Scope) -> Request:
        """Start a request: its id chosen and bound to ``request_id_var``, its clock started."""
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER_BYTES:
                return Request(scope["method"], scope["path"], accept_request_id(value))
        return Request(scope["method"], scope["path"], self.new_id())

    def end(self, request: Request) -> None:
        """Finish a request: observe it, log it (unless quiet), unbind its id."""
        request.seconds = _perf_counter() - request.started
        try:
            observe = self.observe
            if observe is not None:
                observe(request)
            log = self.log
            if log is not None:
                quiet = self.quiet
                route = request.route
                if not quiet or (request.path if route is None else route) not in quiet:
                    log(request)
        finally:
            request_id_var.reset(request._token)

    def _log_line(self, request: Request) -> None:
        extra: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "status": request.status,
            "bytes": request.nbytes,
            "ms": round(request.seconds * 1000, 2),
        }
        if request.route is not None:
            extra["route"] = request.route
        if request.fields:
            extra.update(request.fields)
        self._logger.info("%s %s %d", request.method, request.path, request.status, extra=extra)

    # -- as ASGI middleware ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        assert app is not None, "RequestWrapper needs an app to be used as middleware"
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = _on_shutdown(send)
            await app(scope, receive, send)
            return
        request = self.begin(scope)
        echo = (
            (REQUEST_ID_HEADER_BYTES, request.request_id.encode()) if self.echo_request_id else None
        )

        async def tracked(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                request.nbytes += len(message.get("body", b""))
            elif kind == "http.response.start":
                request.status = message["status"]
                if echo is not None:
                    message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        try:
            await app(scope, receive, tracked)
        finally:
            if self.route is not None:
                request.route = self.route(scope)
            self.end(request)


def _on_shutdown(send: Send) -> Send:
    """``send`` for a lifespan scope: once the app shut down, this process's metrics are
    flushed and, with several workers, its live gauges dropped (common.metrics)."""

    async def shutting_down(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            process_stopping()
        await send(message)

    return shutting_down
