"""The edge as one lean ASGI callable (no framework on the streaming path).

Routes, by path prefix::

    GET|HEAD /tracks/{track_id}/{version}/{file}?token=JWT   an object (or Bearer pull token)
    GET      /healthz    liveness: 200 while the process serves (/livez is the same)
    GET      /readyz     readiness, "send me traffic": 200 while the edge can serve, with
                         {"status": "ok"} or, the upstream being down, {"status": "degraded"}
                         (cached objects are still served); 503 only when it cannot serve at
                         all (its cache directory is unusable). /healthz?ready=1 is the same.
    GET      /metrics    Prometheus text

Order of work for an object request, cheapest refusal first: method, path
(validated with :func:`origin.keys.parse_key` before any I/O — a key already in
the memory tier was validated when it was inserted), token, then memory tier,
disk tier, and finally the shared fill (:mod:`edge.fill`).

A memory hit allocates one header list and one memoryview slice; the body is
never copied. Under ``edge serve`` most of them do not even get here:
:meth:`EdgeApp.hot_hit` answers a plain hit with a remembered token below ASGI
(:mod:`edge.server`) and leaves everything else to this app. Responses carry
``X-Cache: HIT | MISS | COALESCED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable
from urllib.parse import unquote_plus

import httpx

from common.bearer import bearer_token, matches_any
from common.http_plan import CONDITIONAL_HEADERS, NO_CONDITIONS, plan_response, read_conditionals
from common.logs import REQUEST_ID_HEADER_BYTES, accept_request_id, configure_logging
from common.metrics import process_stopping
from common.request_wrapper import Request, RequestWrapper, sequential_ids
from edge import jwks
from edge.access_log import AccessLog
from edge.cache.disk import DiskCache
from edge.cache.memory import MemoryCache
from edge.errors import ResponseAborted
from edge.fill import ClientGone, FillRegistry
from edge.http import (
    CORS_ORIGIN,
    cache_control,
    header_lines,
    public_cache_control,
    send_error,
    send_simple,
)
from edge.metrics import EdgeCollector, EdgeStats, render
from edge.respond import HIT, ObjectRequest, Outcome, Responder, shield_headers
from edge.settings import EdgeSettings, load_settings
from edge.token import TokenError, TokenUnknownKid, TokenVerifier
from edge.upstream import HttpUpstream, StoreUpstream, Upstream, http_client
from origin.errors import InvalidKey
from origin.keys import parse_key
from origin.store import open_store

log = logging.getLogger("edge.app")
perf_counter = time.perf_counter

TRACKS_PREFIX = "/tracks/"
TOUCH_INTERVAL_S = 60.0
PREFLIGHT_HEADERS = [
    CORS_ORIGIN,
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"range, if-range, if-none-match, if-modified-since, if-match, if-unmodified-since, "
        b"authorization",
    ),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]
LIVE_BODY = b'{"status":"ok"}'


def query_token(query: bytes) -> str | None:
    """The ``token`` query parameter (JWTs are URL-safe, so it is rarely percent-encoded)."""
    if not query:
        return None
    i = query.find(b"token=")
    while i > 0 and query[i - 1] != 0x26:  # must start a parameter (after '&')
        i = query.find(b"token=", i + 1)
    if i < 0:
        return None
    j = query.find(b"&", i)
    token = query[i + 6 : j if j >= 0 else len(query)].decode("latin-1")
    if "%" in token or "+" in token:
        token = unquote_plus(token)
    return token or None


def path_error(key: str) -> str | None:
    """Why ``key`` is not an object the edge serves, or None when it is one."""
    try:
        if parse_key(key).kind == "latest":
            return "latest.json is mutable; the edge serves versioned objects"
    except InvalidKey as exc:
        return str(exc)
    return None


_CONDITIONAL_NAMES = frozenset(name.encode() for name in CONDITIONAL_HEADERS)


def read_headers(headers) -> tuple:
    """``(range, conditionals, authorization)`` of an object request.

    The conditionals are :data:`common.http_plan.NO_CONDITIONS` when there are none;
    a conditional header sent twice is joined with ", " (RFC 9110 section 5.3).
    """
    range_h = auth = found = None
    for name, value in headers:
        if name == b"range":
            range_h = value.decode("latin-1")
        elif name == b"authorization":
            auth = value
        elif name in _CONDITIONAL_NAMES:
            found = _conditional(found, name, value)
    return range_h, NO_CONDITIONS if found is None else read_conditionals(found), auth


def _conditional(found: dict | None, name: bytes, value: bytes) -> dict:
    if found is None:
        found = {}
    key, text = name.decode(), value.decode("latin-1")
    found[key] = f"{found[key]}, {text}" if key in found else text
    return found


# Requests the hot path leaves to the ASGI app: a body, or an expectation to answer.
_NOT_HOT = frozenset((b"content-length", b"transfer-encoding", b"expect"))


def build_upstream(
    settings: EdgeSettings,
    pull_token: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Upstream:
    common = {
        "retries": settings.upstream_retries,
        "backoff_s": settings.upstream_backoff_s,
        "breaker_failures": settings.breaker_failures,
        "breaker_reset_s": settings.breaker_reset_s,
    }
    if settings.upstream_is_store:
        return StoreUpstream(open_store(settings.upstream[0]), **common)
    client = http_client(
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_read_timeout_s,
        max_connections=settings.upstream_max_connections,
        transport=transport,
    )
    return HttpUpstream(settings.upstream, client, pull_token=pull_token, **common)


class PullTokenInvalid(TokenError):
    """A shield request's ``Authorization: Bearer`` is not an accepted pull token (403)."""

    code = "pull_token_invalid"


class EdgeApp:
    """The edge's ASGI application. Build it with :func:`create_app`."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        upstream: Upstream | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.stats = EdgeStats()
        self.memory = MemoryCache(
            settings.cache_memory_max_bytes, settings.cache_memory_max_object_bytes
        )
        self.disk = DiskCache(settings.cache_dir, settings.cache_disk_max_bytes)
        # The app remembers verified tokens itself (see _verify), in front of the verifier.
        configured_keys = [] if verifier else settings.resolve_verification_keys()
        self.verifier = verifier or TokenVerifier(
            configured_keys,
            leeway_s=settings.token_leeway_s,
            cache_size=settings.token_cache_size,
            cache_ttl_s=settings.token_cache_ttl_s,
            max_lifetime_s=settings.token_max_lifetime_s,
            allow_no_keys=settings.token_jwks_url is not None,
        )
        # Keys published by delivery (EDGE_TOKEN_JWKS_URL), fetched at start-up.
        self.jwks = jwks.from_settings(settings, self.verifier) if settings.token_jwks_url else None
        self._jwks_required = not configured_keys and verifier is None
        own_pull = settings.resolve_pull_token()
        self.pull_tokens = [
            t.encode() for t in settings.resolve_accepted_pull_tokens(own_pull) if t
        ]
        self.upstream = upstream or build_upstream(settings, own_pull, transport)
        self.fills = FillRegistry(
            self.disk,
            self.memory,
            self.upstream,
            self.stats,
            retries=settings.upstream_retries,
            backoff_s=settings.upstream_backoff_s,
        )
        self.respond = Responder(
            self.memory,
            self.disk,
            self.fills,
            self.stats,
            hold_unverified=settings.hold_unverified,
            retry_after_s=settings.breaker_reset_s,
        )
        self.access_log = AccessLog.open(settings.access_log)
        self.pull_cache_control = public_cache_control(settings.pull_max_age_s)
        self.collector = EdgeCollector(self.stats, self._live)
        # Only object requests are counted and logged (edge_responses_total, the access log);
        # the edge does not echo X-Request-Id, to keep its hot path lean.
        self.requests = RequestWrapper(
            part="edge",
            observe=self._count,
            access_log=self._access_line if self.access_log.enabled else False,
            quiet=(),
            echo_request_id=False,
            new_id=sequential_ids(),
        )
        self._upstream_up = True  # as last seen by /readyz or /metrics
        # Behind a trusted proxy the client address comes from X-Forwarded-For, which
        # uvicorn's middleware resolves: such requests take the ASGI path.
        forwarded = (b"x-forwarded-for",) if settings.forwarded_allow_ips.strip() else ()
        self._not_hot = _NOT_HOT.union(forwarded)
        self._started = False

    # -- lifecycle -------------------------------------------------------------------

    async def startup(self) -> None:
        if self._started:
            return
        await asyncio.to_thread(self.disk.start)
        if self.jwks is not None:
            await asyncio.to_thread(jwks.load_or_warn, self.jwks, required=self._jwks_required)
            self.jwks.start()
        self.access_log.start()
        self._started = True

    async def shutdown(self) -> None:
        await self.fills.aclose()
        await self.upstream.aclose()
        if self.jwks is not None:
            await self.jwks.aclose()
        await self.access_log.aclose()
        process_stopping()  # the last counts flushed; with several workers, live gauges dropped
        self._started = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EdgeApp]:
        """Start-up and shut-down without an ASGI server (tests, embedding)."""
        await self.startup()
        try:
            yield self
        finally:
            await self.shutdown()

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("edge start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routing ---------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        path = scope["path"]
        if path.startswith(TRACKS_PREFIX):
            await self._object(scope, receive, send, path)
        elif path == "/readyz" or (path == "/healthz" and scope["query_string"] == b"ready=1"):
            await self._readyz(send)
        elif path == "/healthz" or path == "/livez":
            await send_simple(send, 200, LIVE_BODY, b"application/json")
        elif path == "/metrics":
            self._upstream_up = await self.upstream.ready()  # cached by the upstream (2 s)
            body = render(self.collector)
            await send_simple(send, 200, body, b"text/plain; version=0.0.4; charset=utf-8")
        else:
            await send_error(send, 404, "not_found", "no such route")

    def _cache_usable(self) -> bool:
        """The disk tier's directories exist and are writable (else nothing can be served)."""
        disk = self.disk
        return all(
            os.path.isdir(d) and os.access(d, os.R_OK | os.W_OK | os.X_OK)
            for d in (disk.objects, disk.parts, disk.tmp, disk.locks)
        )

    async def _readyz(self, send) -> None:
        """Readiness: an upstream outage degrades the edge (it serves its cache) but keeps it
        in rotation; only an edge that cannot serve at all answers 503."""
        up = self._upstream_up = await self.upstream.ready()
        if not self._cache_usable():
            status, code = "unavailable", 503
        else:
            status, code = ("ok" if up else "degraded"), 200
        body = json.dumps(
            {
                "status": status,
                "ready": code == 200,
                "upstream": "up" if up else "down",
                "cache": "ok" if code == 200 else "unusable",
                "upstreams": self.upstream.describe(),
                "pid": os.getpid(),
            }
        ).encode()
        await send_simple(send, code, body, b"application/json")

    def _live(self) -> dict:
        """What /metrics reads from the caches, fills and upstream when it is scraped."""
        upstream = self.upstream
        return {
            "memory_bytes": self.memory.bytes,
            "memory_objects": len(self.memory),
            "disk_bytes": self.disk.bytes,
            "disk_objects": self.disk.entries,
            "fills_in_progress": len(self.fills),
            "evictions": {"memory": self.memory.evictions, "disk": self.disk.evictions},
            "upstream_requests": upstream.requests,
            "upstream_failures": upstream.failures,
            "upstreams": upstream.describe(),
            "upstream_up": self._upstream_up,
        }

    # -- objects ---------------------------------------------------------------------

    async def _object(self, scope, receive, send, path: str) -> None:
        # The request id (bound for a fill this request starts), clock, metric and access
        # line of every part (common.request_wrapper), inline: no frame or send wrapper more.
        logged = self.requests.begin(scope)
        now = time.time()
        method = scope["method"]
        client = scope.get("client")
        ip = client[0] if client else None
        out = Outcome()
        range_h = None
        path_checked = False
        try:
            if method != "GET" and method != "HEAD":
                await self._bad_method(send, method, out)
                return
            head = method == "HEAD"
            key = path[1:]
            entry = self.memory.get(key)
            # A key in the memory tier was validated on its way in.
            if entry is None and (invalid := path_error(key)) is not None:
                out.status, out.error = 400, "invalid_path"
                out.nbytes = await send_error(send, 400, out.error, invalid, head=head)
                return
            path_checked = True
            range_h, conditionals, auth = read_headers(scope["headers"])
            token = query_token(scope["query_string"])
            shield = token is None and auth is not None  # a child edge with the pull token
            try:
                try:
                    cc = self._authorise(token, auth, shield, path, ip, now)
                except TokenUnknownKid:
                    # A key delivery may have published since the last refresh (rotation).
                    if self.jwks is None or not await self.jwks.refresh_for_unknown_kid():
                        raise
                    cc = self._authorise(token, auth, shield, path, ip, now)
            except TokenError as exc:
                out.status, out.error = 403, exc.code
                out.nbytes = await send_error(send, 403, exc.code, exc.message, head=head)
                return
            req = ObjectRequest(key, method, cc, range_h, conditionals, shield)
            await self._answer(send, receive, req, entry, now, out)
        except ResponseAborted as exc:
            out.aborted, out.error = True, exc.code
            log.warning("aborted %s %s: %s", method, path, exc.message)
            raise
        except ClientGone:
            out.aborted, out.error = True, "client_gone"
        finally:
            logged.status, logged.nbytes = out.status, out.nbytes
            logged.fields = (now, range_h, out, ip, path_checked)
            self.requests.end(logged)

    def hot_hit(self, method: bytes, path: str, query: bytes, headers, ip: str | None):
        """A plain memory-tier hit answered below ASGI (:mod:`edge.server`), or None.

        Returns ``(status, header lines, body)`` — the body a ``bytes`` or ``memoryview``
        of the cached object, None for HEAD — once the request was counted and logged as
        :meth:`_object` does. None means "not a plain hit": the caller hands the request
        to the ASGI app, which answers it (also every refusal: a token not remembered or
        refused, a pull token not accepted, 304/412/416, a miss), so each rule of an
        answer lives in one place. Nothing is counted or logged then.
        """
        started = perf_counter()
        entry = self.memory.get(path[1:])  # in the memory tier: validated on its way in
        if entry is None:
            return None
        range_h = auth = found = rid = None
        not_hot = self._not_hot
        for name, value in headers:
            if name == b"range":
                range_h = value.decode("latin-1")
            elif name == b"authorization":
                auth = value
            elif name == REQUEST_ID_HEADER_BYTES:
                rid = value
            elif name in _CONDITIONAL_NAMES:
                found = _conditional(found, name, value)
            elif name in not_hot:
                return None
        now = time.time()
        token = query_token(query)
        shield = token is None and auth is not None
        if shield:
            if not self._pull_token_ok(auth):
                return None
            cc = self.pull_cache_control
        else:
            try:
                # Only a token verified before (no JSON, no signature), still checked for
                # expiry, path and address; anything else goes to verify() in _object.
                claims = self.verifier.remembered(token, path, ip, now)
            except TokenError:
                return None
            if claims is None:
                return None
            cc = cache_control(claims.exp - int(now))
        verb = "GET" if method == b"GET" else "HEAD"
        conditionals = NO_CONDITIONS if found is None else read_conditionals(found)
        plan = plan_response(entry.rep, verb, range_h, conditionals)
        status = plan.status
        if status > 206:
            return None
        lines = entry.head_lines(plan)
        if lines is None:
            return None
        lines += b"%s: %s\r\n%s: %s\r\n" % (*cc, *HIT)
        if shield and entry.meta.sha256:
            try:
                lines += header_lines(shield_headers(entry.meta))
            except ValueError:  # not sendable: the ASGI path answers as uvicorn does
                return None
        span = plan.span
        if span is None:
            body = None
        else:
            body = entry.data if status == 200 else entry.view[span[0] : span[1] + 1]
        # What _object (its request wrapper's _count and _access_line) and
        # Responder.from_memory record for the same answer, inline: nothing logs during a
        # hot answer, so no request id is bound to the context.
        nbytes = 0 if body is None else len(body)
        stats = self.stats
        stats.hits_memory += 1
        stats.responses[status] = stats.responses.get(status, 0) + 1
        stats.bytes_sent += nbytes
        if now - entry.last_touch > TOUCH_INTERVAL_S:
            entry.last_touch = now
            self.disk.touch(entry.meta.key)
        access_log = self.access_log
        if access_log.enabled:
            access_log.record_hit(
                now, verb, path, status, range_h, nbytes, ip, (perf_counter() - started) * 1000.0,
                accept_request_id(rid) if rid else self.requests.new_id(),
            )  # fmt: skip
        return status, lines, body

    def _authorise(self, token, auth, shield, path, ip, now) -> tuple[bytes, bytes]:
        """The response's Cache-Control header; raises :class:`TokenError` to refuse (403)."""
        if shield:
            if not self._pull_token_ok(auth):
                raise PullTokenInvalid("the bearer token is not an accepted pull token")
            return self.pull_cache_control
        claims = self.verifier.verify(token, path, ip, now)
        return cache_control(claims.exp - int(now))

    def _answer(self, send, receive, req: ObjectRequest, entry, now: float, out) -> Awaitable:
        """From the memory tier, the disk tier, or the shared fill, in that order.

        Returns the responder's coroutine for the caller to await: a plain method
        costs the hot path less than one more coroutine.
        """
        if entry is not None:
            self.stats.hits_memory += 1
            if now - entry.last_touch > TOUCH_INTERVAL_S:
                entry.last_touch = now
                self.disk.touch(req.key)
            return self.respond.from_memory(send, req, entry, out)
        opened = self.disk.open(req.key)
        if opened is not None:
            self.stats.hits_disk += 1
            return self.respond.from_disk(send, receive, req, opened, out, now)
        return self.respond.from_fill(send, receive, req, out)

    def _count(self, request: Request) -> None:
        """The metric half of the request wrapper: count the response."""
        stats = self.stats
        stats.responses[request.status] = stats.responses.get(request.status, 0) + 1
        stats.bytes_sent += request.nbytes
        error = request.fields[2].error
        if error is not None:
            stats.error(error)

    def _access_line(self, request: Request) -> None:
        """The access-log half: one line in the edge's buffered JSON-lines log."""
        now, range_h, out, ip, checked = request.fields
        self.access_log.record(
            now, request.method, request.path, request.status, range_h, request.nbytes,
            out.cache, ip, request.seconds * 1000.0, out.error, out.aborted, checked,
            request.request_id,
        )  # fmt: skip

    def _pull_token_ok(self, auth: bytes) -> bool:
        # Constant time, every accepted token compared (common.bearer).
        return matches_any(bearer_token(auth), self.pull_tokens)

    async def _bad_method(self, send, method: str, out: Outcome) -> None:
        if method == "OPTIONS":  # a CORS preflight
            out.status = 204
            await send({"type": "http.response.start", "status": 204, "headers": PREFLIGHT_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        out.status, out.error = 405, "method_not_allowed"
        out.nbytes = await send_error(
            send,
            405,
            out.error,
            f"{method[:16]} is not allowed; use GET or HEAD",
            extra=[(b"allow", b"GET, HEAD, OPTIONS")],
        )


def create_app(settings: EdgeSettings | None = None, **kwargs) -> EdgeApp:
    """Build the edge from ``settings`` (default: the environment, validated loudly)."""
    return EdgeApp(settings or load_settings(), **kwargs)


class _DropAborts(logging.Filter):
    """uvicorn logs a traceback for every exception leaving the app. An aborted fill
    response is expected behaviour (and already in the access log), so keep one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ResponseAborted)


def create_app_from_env() -> EdgeApp:
    """uvicorn factory for ``edge serve`` (each worker process builds its own)."""
    settings = load_settings()
    if not logging.getLogger().handlers:
        configure_logging("edge", settings.log_level)
    # The edge writes its own access log, never with the token. configure_logging() routes
    # uvicorn's loggers through the JSON handler, and a worker process (--workers 2 and
    # more) calls it after uvicorn switched its access log off: switch it off again, or
    # every request would also be logged there, query string (the token) included.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    logging.getLogger("uvicorn.error").addFilter(_DropAborts())
    return create_app(settings)
