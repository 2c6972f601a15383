"""Origin servers and parent edges over HTTP: rendezvous-hashed, retried, circuit-broken."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from common.breaker import CircuitBreaker
from common.logs import request_id_var
from edge.cache.entry import ObjectMeta
from edge.errors import (
    CircuitOpen,
    FillIntegrityError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from edge.upstream.port import (
    HEALTH_CACHE_S,
    UpstreamBody,
    backoff_delay,
    checked_sha,
    default_etag,
    log,
    rendezvous_order,
)
from origin.keys import content_type_for

_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class HttpBody:
    def __init__(self, response: httpx.Response, meta: ObjectMeta, start: int, target: str):
        self._response = response
        self.meta = meta
        self.start = start
        self.target = target

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                if chunk:
                    yield chunk
        except httpx.StreamConsumed:
            # A transport that hands over an already-read body (e.g. a MockTransport
            # answering with bytes): the content is complete in memory.
            yield self._response.content
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                f"{self.target}: transfer of {self.meta.key!r} broke: {type(exc).__name__}"
            ) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpUpstream:
    """Origin servers or parent edges, rendezvous-hashed, with retries and breakers."""

    def __init__(
        self,
        targets: list[str],
        client: httpx.AsyncClient,
        *,
        pull_token: str | None,
        retries: int = 2,
        backoff_s: float = 0.2,
        breaker_failures: int = 5,
        breaker_reset_s: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not targets:
            raise ValueError("at least one upstream target is required")
        self.targets = [t.rstrip("/") for t in targets]
        self.client = client
        self.retries = retries
        self.backoff_s = backoff_s
        self.breakers = {t: CircuitBreaker(breaker_failures, breaker_reset_s) for t in self.targets}
        self._sleep = sleep
        self._headers = {"accept-encoding": "identity", "user-agent": "audiocdn-edge"}
        if pull_token:
            self._headers["authorization"] = f"Bearer {pull_token}"
        self.requests = 0
        self.failures: dict[str, int] = {}
        self._health: tuple[float, bool] = (0.0, False)

    def _count_failure(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    async def fetch(self, key: str, start: int = 0, etag: str | None = None) -> UpstreamBody:
        errors: list[UpstreamError] = []
        for target in rendezvous_order(self.targets, key):
            breaker = self.breakers[target]
            if not breaker.allow():
                errors.append(CircuitOpen(f"{target}: circuit open"))
                continue
            try:
                return await self._fetch_from(target, breaker, key, start, etag)
            except UpstreamUnavailable as exc:
                errors.append(exc)
                log.warning("upstream %s failed for %r: %s", target, key, exc.message)
        if errors and all(isinstance(e, CircuitOpen) for e in errors):
            raise CircuitOpen("every upstream's circuit breaker is open; retry shortly")
        raise UpstreamUnavailable("; ".join(e.message for e in errors) or "no upstream")

    async def _fetch_from(
        self, target: str, breaker: CircuitBreaker, key: str, start: int, etag: str | None
    ) -> UpstreamBody:
        headers = dict(self._headers)
        request_id = request_id_var.get()
        if request_id is not None:
            headers["x-request-id"] = request_id  # the request that started this fill
        if start:
            headers["range"] = f"bytes={start}-"
        reason = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                if breaker.state == "open":
                    break
                await self._sleep(backoff_delay(self.backoff_s, attempt))
            self.requests += 1
            request = self.client.build_request("GET", f"{target}/{key}", headers=headers)
            try:
                response = await self.client.send(request, stream=True)
            except httpx.HTTPError as exc:
                breaker.failure()
                reason = f"{type(exc).__name__}"
                self._count_failure(
                    "timeout" if isinstance(exc, httpx.TimeoutException) else "connect"
                )
                continue
            if response.status_code >= 500:
                await response.aclose()
                breaker.failure()
                reason = f"HTTP {response.status_code}"
                self._count_failure(f"http_{response.status_code}")
                continue
            breaker.success()
            try:
                meta = self._meta_from(response, target, key, start, etag)
            except BaseException:
                await response.aclose()
                raise
            return HttpBody(response, meta, start, target)
        raise UpstreamUnavailable(f"{target}: {reason} after {attempt + 1} attempt(s)")

    def _meta_from(
        self, response: httpx.Response, target: str, key: str, start: int, etag: str | None
    ) -> ObjectMeta:
        status = response.status_code
        if status in (404, 410):
            raise UpstreamNotFound(f"no such object: {key}")
        if status in (401, 403):
            self._count_failure("rejected")
            raise UpstreamRejected(
                f"{target} refused the pull token (HTTP {status}); check EDGE_PULL_TOKEN"
            )
        h = response.headers
        sha = checked_sha(h.get("x-checksum-sha256"), target)
        if start == 0 and status == 200:
            length = h.get("content-length")
            if length is None or not length.isdigit():
                raise UpstreamError(f"{target}: response for {key!r} has no Content-Length")
            size = int(length)
        elif start > 0 and status == 206:
            m = _CONTENT_RANGE_RE.fullmatch(h.get("content-range", ""))
            if not m or int(m[1]) != start or int(m[2]) != int(m[3]) - 1:
                raise UpstreamError(f"{target}: resume of {key!r} got a wrong Content-Range")
            size = int(m[3])
        else:
            raise UpstreamError(f"{target}: unexpected HTTP {status} for {key!r}")
        got_etag = h.get("etag") or default_etag(key, size, sha)
        if etag is not None and got_etag != etag:
            raise FillIntegrityError(f"{key!r} changed upstream during the fill (ETag differs)")
        return ObjectMeta(
            key=key,
            size=size,
            etag=got_etag,
            content_type=h.get("content-type") or content_type_for(key),
            sha256=sha,
            last_modified=h.get("last-modified"),
        )

    async def ready(self) -> bool:
        checked_at, ok = self._health
        now = time.monotonic()
        if now - checked_at < HEALTH_CACHE_S:
            return ok

        async def probe(target: str) -> bool:
            try:
                # An origin's /readyz checks its store; a parent edge's answers 200 while it
                # can serve (also degraded: its upstream down, its cache still there).
                r = await self.client.get(f"{target}/readyz", headers=self._headers, timeout=2.0)
            except httpx.HTTPError:
                return False
            return r.status_code == 200

        results = await asyncio.gather(*(probe(t) for t in self.targets))
        ok = any(results)
        self._health = (now, ok)
        return ok

    def describe(self) -> list[dict]:
        return [
            {"upstream": t, "breaker": b.state, "failures": b.failures, "trips": b.trips}
            for t, b in self.breakers.items()
        ]

    async def aclose(self) -> None:
        await self.client.aclose()


def http_client(
    *,
    connect_timeout_s: float,
    read_timeout_s: float,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s, pool=read_timeout_s
    )
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport)
