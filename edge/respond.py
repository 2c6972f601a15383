"""Answering an authorised object request: from the memory tier, the disk tier, or a fill.

Each answer fills in a :class:`Outcome` as it goes (status, cache result,
bytes sent), so the access log and metrics are right even when a body is cut
short. A memory hit is the hot path: one header list copied from the cached
object, one ``memoryview`` slice, two ``send`` calls.
"""

from __future__ import annotations

import asyncio
import os

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
    content_range,
    plan_response,
    send_error,
)
from edge.metrics import EdgeStats
from origin.ranges import unsatisfied_range

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

    __slots__ = ("key", "head", "cache_control", "range", "if_none_match", "if_range", "shield")

    def __init__(self, key, head, cache_control, range_h, if_none_match, if_range, shield):
        self.key = key
        self.head = head
        self.cache_control = cache_control
        self.range = range_h
        self.if_none_match = if_none_match
        self.if_range = if_range
        self.shield = shield  # a child edge pulling with the pull token


async def until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def pread_body(fd: int, size: int) -> bytes:
    data = os.pread(fd, size, HEADER_SIZE)
    if len(data) != size:
        raise OSError(f"cache entry shrank: read {len(data)} of {size} bytes")
    return data


def _shield_headers(meta: ObjectMeta, headers: Headers) -> None:
    # A child edge verifies what it caches, as we do: give it the whole object's sha256.
    if meta.sha256:
        headers.append((b"x-checksum-sha256", meta.sha256.encode()))


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
        meta = entry.meta
        out.cache = "HIT"
        if req.range is None and req.if_none_match is None:
            status, first, last = 200, 0, meta.size - 1
        else:
            status, first, last = plan_response(
                meta.size, meta.etag, meta.last_modified, req.range, req.if_none_match,
                req.if_range,
            )  # fmt: skip
        headers = entry.headers.copy()
        if req.shield:
            _shield_headers(meta, headers)
        if status == 200:
            headers += ((b"content-length", entry.length_header), req.cache_control, HIT)
            body = entry.data
        elif status == 206:
            headers += (
                (b"content-length", b"%d" % (last - first + 1)),
                content_range(first, last, meta.size),
                req.cache_control,
                HIT,
            )
            body = entry.view[first : last + 1]
        else:
            return await self._bodyless(send, req, status, headers, HIT, meta.size, out)
        out.status = status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if req.head:
            await send({"type": "http.response.body", "body": b""})
            return
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
            planned = await self._start_streamed(send, req, meta, HIT, out)
            if planned is None:
                return
            first, last = planned
            if req.head or first > last:
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
            planned = await self._start_streamed(send, req, meta, X_CACHE[out.cache], out)
            if planned is None:
                return
            first, last = planned
            if req.head:
                await send({"type": "http.response.body", "body": b""})
                return
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
        to stream, or None after a 304/416 has been sent whole.
        """
        status, first, last = plan_response(
            meta.size, meta.etag, meta.last_modified, req.range, req.if_none_match,
            req.if_range,
        )  # fmt: skip
        headers = base_headers(meta)
        if req.shield:
            _shield_headers(meta, headers)
        if status not in (200, 206):
            await self._bodyless(send, req, status, headers, xcache, meta.size, out)
            return None
        headers += ((b"content-length", b"%d" % (last - first + 1)), req.cache_control, xcache)
        if status == 206:
            headers.append(content_range(first, last, meta.size))
        out.status = status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        return first, last

    async def _bodyless(self, send, req, status, headers, xcache, size, out: Outcome) -> None:
        """304 (validators, no body) or 416 (JSON error with Content-Range: */size)."""
        out.status = status
        if status == 304:
            headers = [h for h in headers if h[0] in (b"etag", b"last-modified")]
            headers += (req.cache_control, xcache, CORS_ORIGIN, CORS_EXPOSE)
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        out.error = "range_not_satisfiable"
        out.nbytes = await send_error(
            send,
            416,
            "range_not_satisfiable",
            f"the range lies outside the object ({size} bytes)",
            head=req.head,
            extra=[(b"content-range", unsatisfied_range(size).encode()), CORS_EXPOSE],
        )
