"""Memory-tier hits answered below ASGI: the edge's connection protocol for uvicorn.

A range hit costs the ASGI path about three times what writing it costs: a scope
dict, a task, an event, two ``send`` messages whose headers uvicorn checks and
joins one by one. :class:`EdgeProtocol` is :class:`common.serving.BoundedHttpToolsProtocol`
(uvicorn's httptools protocol with the header size/time, idle, body and connection
bounds) that asks :meth:`edge.app.EdgeApp.hot_hit` first, when a request's head is
complete, and writes the answer it gets to the socket itself: the header lines are
built once per cached object and plan, the body is the cached ``bytes`` or a
``memoryview`` slice of them (``transport.writelines``: no copy in Python).

Everything else goes on to the ASGI app exactly as before — misses and disk hits,
refusals (every 403, 304, 412, 416 and 405), tokens not verified before, requests
with a body, ``Expect``, an upgrade, HTTP/1.0 or ``Connection: close``, a client
address from ``X-Forwarded-For``, ``/metrics`` and the probes — so each rule of an
answer lives in one place. A request is only answered here when nothing is ahead of
it on the connection (no ASGI response still running, no write backpressure), so
pipelined answers keep their order and a client that does not read is paused by
uvicorn's own flow control. Graceful shutdown closes an idle connection as uvicorn
does; keep-alive after a hot answer is timed by the bounds' sweep instead of one
timer per request (closed after ``idle_timeout_s``, within the sweep interval).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from common.serving import (
    GET_ONLY_MAX_BODY_BYTES,
    BoundedHttpToolsProtocol,
    ConnectionLimits,
    uvicorn_options,
)
from edge.app import EdgeApp
from edge.settings import EdgeSettings

log = logging.getLogger("edge.server")
TRACKS_PREFIX = b"/tracks/"
_on_message_begin = HttpToolsProtocol.on_message_begin


def serve_options(settings: EdgeSettings) -> dict[str, Any]:
    """How ``edge serve`` runs uvicorn (``uvicorn.run`` / ``uvicorn.Config`` keywords, but
    the app, address and workers): httptools bounded by the settings' limits
    (:mod:`common.serving`) with :class:`EdgeProtocol`, uvloop, no access log of uvicorn's
    (the edge writes its own, without the token), proxy headers only from trusted proxies.
    Tests serve an in-process app with the same options."""
    limits = ConnectionLimits.from_settings("edge", settings, GET_ONLY_MAX_BODY_BYTES)
    trusted = settings.forwarded_allow_ips.strip()
    return {
        **uvicorn_options(limits),
        # The protocol is a functools.partial of a module-level class: it pickles into the
        # worker processes uvicorn spawns.
        "http": functools.partial(EdgeProtocol, limits=limits),
        "loop": "uvloop",
        "access_log": False,
        "server_header": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 5,
        "log_config": None,  # keep the JSON handler installed by configure_logging
    }


def find_edge_app(app: Any) -> Any:
    """The :class:`edge.app.EdgeApp` under uvicorn's middleware (proxy headers, trace
    logging), or None when the served app is something else."""
    for _ in range(8):
        if isinstance(app, EdgeApp):
            return app
        app = getattr(app, "app", None)
    return None


class EdgeProtocol(BoundedHttpToolsProtocol):
    """See the module docstring. ``_answered``: the current request was answered here;
    ``_idle_since``: when the last hot answer was written (0.0: uvicorn's keep-alive timer
    is in charge)."""

    def __init__(self, config, server_state, app_state, _loop=None, *, limits) -> None:
        super().__init__(config, server_state, app_state, _loop, limits=limits)
        self.edge = find_edge_app(self.app)
        self._answered = False
        self._idle_since = 0.0
        self._defaults: list | None = None
        self._default_lines = b""

    def on_message_begin(self) -> None:
        # uvicorn builds the ASGI scope here; only a request handed to the app needs one
        # (built in _to_asgi).
        self.url = b""
        self.headers = []
        self.expect_100_continue = False

    def on_headers_complete(self) -> None:
        edge = self.edge
        cycle = self.cycle
        if (
            edge is not None
            and edge._started
            and self._head <= self._max_head  # else the bounds answer 431
            and (cycle is None or cycle.response_complete)
            and not self.flow.write_paused
            and not self.transport.is_closing()
            and self._answer_hot(edge)
        ):
            return
        self._to_asgi()

    def _to_asgi(self) -> None:
        """On to the ASGI app, as uvicorn would have sent the request."""
        self._idle_since = 0.0
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        _on_message_begin(self)  # uvicorn's: the scope, with a new self.headers in it
        self.url, self.expect_100_continue = url, expect
        self.headers += headers
        super().on_headers_complete()

    def _answer_hot(self, edge) -> bool:
        parser = self.parser
        method = parser.get_method()
        if (
            (method != b"GET" and method != b"HEAD")
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
        ):
            return False
        url = self.url
        path, _, query = url.partition(b"?")
        # Object keys are plain ASCII: anything percent-encoded, or a fragment, is left to
        # uvicorn's URL parsing and the ASGI path.
        if not path.startswith(TRACKS_PREFIX) or b"%" in path or b"#" in url:
            return False
        client = self.client
        try:
            answer = edge.hot_hit(
                method, path.decode("latin-1"), query, self.headers, client[0] if client else None
            )
        except Exception:
            # Raised inside a parser callback it would become a 400 "invalid request":
            # let the app answer instead (it decides before it counts or logs anything).
            log.exception("hot path failed; the request goes to the ASGI app")
            return False
        if answer is None:
            return False
        status, lines, body = answer
        defaults = self.server_state.default_headers  # Date, refreshed every second
        if defaults is not self._defaults:
            self._defaults = defaults
            self._default_lines = b"".join(b"%s: %s\r\n" % pair for pair in defaults)
        head = b"%s%s%s\r\n" % (STATUS_LINE[status], self._default_lines, lines)
        if body is None:
            self.transport.write(head)
        else:
            self.transport.writelines((head, body))
        self.server_state.total_requests += 1
        self._answered = True
        self._head = -1
        self._head_started = 0.0
        return True

    def on_message_complete(self) -> None:
        if self._answered:  # the request had no body: nothing more to hand anyone
            self._answered = False
            self._head = 0  # the next byte starts the next request's head
            self._idle_since = self.loop.time()
            return
        super().on_message_complete()

    def check_deadlines(self, now: float) -> None:
        idle = self._idle_since
        if (
            idle
            and self._head == 0
            and not self._head_started
            and now - idle >= self.limits.idle_timeout_s
        ):
            # uvicorn's keep-alive timeout, for a connection whose last answer was hot.
            if not self.transport.is_closing():
                self.stats.closed["idle_timeout"] += 1
                self.transport.close()
            return
        super().check_deadlines(now)
