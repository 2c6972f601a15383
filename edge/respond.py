"""Answering an authorised object request: from the memory tier, the disk tier, or a fill.

Each answer fills in a :class:`Outcome` as it goes (status, cache result,
bytes sent), so the access log and metrics are right even when a body is cut
short. Status, validators, lengths and range come from
:func:`common.http_plan.plan_response`, as at the origin. A memory hit costs one
plan looked up on the cached object, one header list, one ``memoryview`` slice,
two ``send`` calls (and under ``edge serve`` a plain one is answered below ASGI
with the same plan and headers, see :mod:`edge.server`).
"""

from __future__ import annotations

import asyncio
import os

from common.http_plan import Conditionals, Plan, plan_response
from edge.cache.disk import DiskCache, OpenEntry
from edge.cache.entry import HEADER_SIZE, ObjectMeta
from edge.cache.memory import CachedObject, MemoryCache
from edge.errors import CircuitOpen, EdgeError, ResponseAborted
from edge.fill import ClientGone, FillRegistry
from edge.http import (
    CORS_EXPOSE,
    CORS_ORIGIN,
    X_CACHE,
    Headers,
    base_headers,
    representation,
    send_error,
)
from edge.metrics import EdgeStats

STREAM_CHUNK = 1 << 20
PROMOTE_IN_THREAD_BYTES = 1 << 20
HIT = X_CACHE["HIT"]


class Outcome:
    """What was answered, for the access log and the metrics."""

    __slots__ = ("status", "nbytes", "cache", "error", "aborted")

    def __init__(self) -> None:
        self.status = 500
        self.nbytes = 0
        self.cache: str | None = None
        self.error: str | None = None
        self.aborted = False


class ObjectRequest:
    """The parts of an authorised GET/HEAD that decide the answer."""

    __slots__ = ("key", "method", "head", "cache_control", "range", "conditionals", "shield")

    def __init__(
        self, key, method, cache_control, range_h, conditionals: Conditionals, shield
    ) -> None:
        self.key = key
        self.method = method  # GET or HEAD
        self.head = method == "HEAD"
        self.cache_control = cache_control
        self.range = range_h
        self.conditionals = conditionals  # common.http_plan.NO_CONDITIONS when none
        self.shield = shield  # a child edge pulling with the pull token


async def until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def pread_body(fd: int, size: int) -> bytes:
    data = os.pread(fd, size, HEADER_SIZE)
    if len(data) != size:
        raise OSError(f"cache entry shrank: read {len(data)} of {size} bytes")
    return data


def shield_headers(meta: ObjectMeta) -> Headers:
    """What a shield's child edge gets besides: it verifies what it caches, as we do, so
    it is given the whole object's sha256."""
    return [(b"x-checksum-sha256", meta.sha256.encode())] if meta.sha256 else []


class Responder:
    def __init__(
        self,
        memory: MemoryCache,
        disk: DiskCache,
        fills: FillRegistry,
        stats: EdgeStats,
        *,
        hold_unverified: bool,
        retry_after_s: float,
    ) -> None:
        self.memory = memory
        self.disk = disk
        self.fills = fills
        self.stats = stats
        self.hold_unverified = hold_unverified
        self.retry_after = (b"retry-after", b"%d" % max(1, int(retry_after_s)))

    async def from_memory(self, send, req: ObjectRequest, entry: CachedObject, out: Outcome):
        out.cache = "HIT"
        plan = plan_response(entry.rep, req.method, req.range, req.conditionals)
        status = plan.status
        if status > 206:
            return await self._bodyless(send, req, plan, HIT, entry.meta.size, out)
        headers = [*entry.headers, *plan.headers, req.cache_control, HIT]
        if req.shield:
            headers += shield_headers(entry.meta)
        out.status = status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        span = plan.span
        if span is None:  # HEAD
            await send({"type": "http.response.body", "body": b""})
            return
        body = entry.data if status == 200 else entry.view[span[0] : span[1] + 1]
        await send({"type": "http.response.body", "body": body})
        out.nbytes = len(body)

    async def from_disk(self, send, receive, req: ObjectRequest, opened: OpenEntry, out, now):
        meta = opened.meta
        watcher: asyncio.Future | None = None
        try:
            self.disk.touch(meta.key)
            if self.memory.admits(meta.size):
                # Promote: the next hit is served from memory without a syscall.
                if meta.size > PROMOTE_IN_THREAD_BYTES:
                    data = await asyncio.to_thread(pread_body, opened.fd, meta.size)
                else:
                    data = pread_body(opened.fd, meta.size)
                entry = CachedObject(meta, data)
                entry.last_touch = now
                self.memory.put(entry)
                return await self.from_memory(send, req, entry, out)
            out.cache = "HIT"
            span = await self._start_streamed(send, req, meta, HIT, out)
            if span is None:
                return
            first, last = span
            if first > last:
                await send({"type": "http.response.body", "body": b""})
                return
            pos, end = first, last + 1
            if end - pos > STREAM_CHUNK:
                watcher = asyncio.ensure_future(until_disconnect(receive))
            while pos < end:
                n = min(STREAM_CHUNK, end - pos)
                data = os.pread(opened.fd, n, HEADER_SIZE + pos)
                if len(data) != n:
                    raise ResponseAborted(f"{meta.key!r}: cache entry shorter than its header")
                pos += n
                await send({"type": "http.response.body", "body": data, "more_body": pos < end})
                out.nbytes += n
                if watcher is not None and watcher.done() and pos < end:
                    raise ClientGone
        finally:
            os.close(opened.fd)
            if watcher is not None:
                watcher.cancel()

    async def from_fill(self, send, receive, req: ObjectRequest, out: Outcome) -> None:
        fill, created = self.fills.get(req.key)
        fill.acquire()
        watcher: asyncio.Future | None = None
        try:
            try:
                meta = await fill.wait_meta()
            except EdgeError as exc:
                extra = [self.retry_after] if isinstance(exc, CircuitOpen) else None
                out.status, out.error = exc.status, exc.code
                out.nbytes = await send_error(
                    send, exc.status, exc.code, exc.message, head=req.head, extra=extra
                )
                return
            if created and fill.local:
                out.cache = "MISS"
                self.stats.misses += 1
            else:
                out.cache = "COALESCED"
                self.stats.coalesced += 1
            span = await self._start_streamed(send, req, meta, X_CACHE[out.cache], out)
            if span is None:
                return
            first, last = span
            watcher = asyncio.ensure_future(until_disconnect(receive))
            await fill.stream(
                send, first, last, out,
                hold_unverified=self.hold_unverified, client_gone=watcher.done,
            )  # fmt: skip
        finally:
            fill.release()
            if watcher is not None:
                watcher.cancel()

    async def _start_streamed(
        self, send, req, meta, xcache, out: Outcome
    ) -> tuple[int, int] | None:
        """Send the head of a response streamed from disk or a fill; None when bodyless.

        Disk hits and fills build the same head (only the memory tier keeps
        prebuilt headers), so they plan it here once and cannot disagree on
        validators, ranges or shield headers. Returns the inclusive byte range
        to stream, or None after the whole answer was sent (HEAD, 304, 412, 416).
        """
        plan = plan_response(representation(meta), req.method, req.range, req.conditionals)
        if plan.status > 206:
            await self._bodyless(send, req, plan, xcache, meta.size, out)
            return None
        headers = base_headers(meta)
        headers += (*plan.headers, req.cache_control, xcache)
        if req.shield:
            headers += shield_headers(meta)
        out.status = plan.status
        await send({"type": "http.response.start", "status": plan.status, "headers": headers})
        if plan.span is None:  # HEAD
            await send({"type": "http.response.body", "body": b""})
        return plan.span

    async def _bodyless(self, send, req, plan: Plan, xcache, size: int, out: Outcome) -> None:
        """304 (validators, no body), or 412 / 416 (a JSON error; 416 with Content-Range)."""
        out.status = status = plan.status
        if status == 304:
            headers = [*plan.headers, req.cache_control, xcache, CORS_ORIGIN, CORS_EXPOSE]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if status == 412:
            code, message = "precondition_failed", "If-Match or If-Unmodified-Since failed"
        else:
            code, message = (
                "range_not_satisfiable",
                f"the range lies outside the object ({size} bytes)",
            )
        out.error = code
        out.nbytes = await send_error(
            send, status, code, message, head=req.head, extra=[*plan.headers, CORS_EXPOSE]
        )
