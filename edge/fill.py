"""The miss path: one upstream fetch per object, shared by every request that wants it.

A :class:`Fill` brings one object into the cache. :class:`FillRegistry` keeps at
most one per key per process, and the disk tier's lock file keeps at most one
*fetching* fill per key across all worker processes sharing the cache directory:

* The process that takes ``locks/<name>.lock`` (``flock``, never blocking)
  fetches the whole object from upstream into ``parts/<name>.part`` (header
  first, then the body as it arrives).
* Every other process that wants the object meanwhile opens that part file and
  tails it, polling its size (1-50 ms); it learns success when the part's inode
  becomes the published entry. If the filler lets go otherwise, a tailer holding
  every byte checks the sha256 itself (the filler may simply have been unable
  to keep an object larger than the disk tier); one holding fewer bytes fails.
* Inside a process, every request for the object waits on the same Fill and is
  served from the bytes already written, as they arrive ("read-while-write").

There is no lock timeout: a waiter waits exactly as long as the fill makes
progress. The fill itself is bounded by the upstream's read timeout and retries,
and a crashed filler's lock is released by the kernel.

Verification and what a client sees when things go wrong
---------------------------------------------------------
An object becomes a cache entry only after its size equals the stated
``Content-Length`` and, when the upstream stated ``X-Checksum-SHA256``, its
sha256 matches. A transfer that breaks is resumed with ``Range: bytes=N-``
(pinned to the same ETag) up to ``EDGE_UPSTREAM_RETRIES`` times; objects are
immutable, so the resumed bytes continue the same object.

While a fill with a stated sha256 is running, every response that depends on it
streams its bytes as they arrive but holds back its LAST byte until the whole
object verified (``EDGE_HOLD_UNVERIFIED``, on by default). If the fill fails —
upstream died for good, fewer bytes than Content-Length, sha256 mismatch — the
connection is closed before ``Content-Length`` is reached. A client therefore
never receives a *complete* response whose bytes differ from the object: it
sees a truncated body (an HTTP client reports "incomplete read"; a player
retries the range) and a fresh request starts a fresh fill. A request that
arrives before the upstream answered at all gets a JSON 502/503/404 instead.

Costs of holding back: a small range answered during a cold fill completes when
the fill completes. Set ``EDGE_HOLD_UNVERIFIED=false`` to complete ranges as soon
as their bytes arrived; a later sha256 mismatch then only keeps the object out
of the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable

from edge.cache.disk import DiskCache, OpenEntry
from edge.cache.entry import HEADER_SIZE, ObjectMeta, encode_header, entry_name, read_header
from edge.cache.memory import CachedObject, MemoryCache
from edge.errors import (
    EdgeError,
    FillIntegrityError,
    ResponseAborted,
    UpstreamError,
    UpstreamUnavailable,
)
from edge.metrics import EdgeStats
from edge.upstream import Upstream, UpstreamBody, backoff_delay

log = logging.getLogger("edge.fill")

SEND_CHUNK = 256 * 1024
POLL_MIN_S = 0.001
POLL_MAX_S = 0.05


class ClientGone(Exception):
    """The client disconnected; stop serving it (the fill itself carries on)."""


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


class Fill:
    """One object on its way into the cache, readable while it is being written."""

    def __init__(
        self,
        key: str,
        *,
        disk: DiskCache,
        memory: MemoryCache,
        upstream: Upstream,
        stats: EdgeStats,
        retries: int,
        backoff_s: float,
        on_published: Callable[[], None] = lambda: None,
    ) -> None:
        self.key = key
        self.name = entry_name(key)
        self.disk = disk
        self.memory = memory
        self.upstream = upstream
        self.stats = stats
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_published = on_published
        self.meta: ObjectMeta | None = None
        self.available = 0
        self.done = False
        self.verified = False
        self.error: EdgeError | None = None
        self.local: bool | None = None  # True: this process fetches; False: tails another's
        self._fd: int | None = None
        self._refs = 1  # the fill's own reference to _fd
        self._changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    # -- waiting ---------------------------------------------------------------------

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_meta(self) -> ObjectMeta:
        """The object's metadata once the upstream answered; raises the fill's error."""
        while self.meta is None and not self.done:
            await self._changed.wait()
        if self.meta is None:
            raise self.error or UpstreamUnavailable("fill ended without an answer")
        return self.meta

    async def wait_done(self) -> None:
        while not self.done:
            await self._changed.wait()

    # -- reading (many requests at once) ---------------------------------------------

    async def stream(
        self,
        send,
        first: int,
        last: int,
        out,
        *,
        hold_unverified: bool,
        client_gone: Callable[[], bool],
    ) -> None:
        """Send bytes ``first..last`` as body messages as they arrive (``out.nbytes`` counts).

        Raises :class:`ResponseAborted` when the fill fails before this range can
        be completed, and :class:`ClientGone` when the client left.
        """
        meta = self.meta
        assert meta is not None and self._fd is not None
        hold = hold_unverified and meta.sha256 is not None
        pos, end = first, last + 1
        while pos < end:
            sendable = end if (self.verified or not hold) else end - 1
            if pos >= sendable:
                # Only the held-back last byte is left: release it once verified.
                await self.wait_done()
                if not self.verified:
                    raise ResponseAborted(self._abort_reason())
                continue
            while self.available <= pos and not self.done:
                await self._changed.wait()
            top = min(self.available, sendable)
            if top <= pos:
                if self.done:
                    raise ResponseAborted(self._abort_reason())
                continue
            n = min(top - pos, SEND_CHUNK)
            data = os.pread(self._fd, n, HEADER_SIZE + pos)
            if len(data) != n:
                raise ResponseAborted(f"{self.key!r}: short read from the fill")
            await send({"type": "http.response.body", "body": data, "more_body": True})
            pos += n
            out.nbytes += n
            if client_gone():
                raise ClientGone
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _abort_reason(self) -> str:
        err = self.error.message if self.error else "fill failed"
        return f"{self.key!r}: {err}"

    def acquire(self) -> None:
        """Keep the fill's file open for this request (call before awaiting anything)."""
        self._refs += 1

    def release(self) -> None:
        self._refs -= 1
        if self._refs == 0 and self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- running ---------------------------------------------------------------------

    async def run(self) -> None:
        delay = POLL_MIN_S
        try:
            while True:
                entry = self.disk.open(self.key)
                if entry is not None:
                    self._adopt(entry)  # another worker finished it meanwhile
                    return
                lock = self.disk.try_lock(self.name)
                if lock is not None:
                    try:
                        entry = self.disk.open(self.key)
                        if entry is not None:
                            self._adopt(entry)
                            return
                        self.local = True
                        await self._fetch()
                        return
                    finally:
                        self.disk.unlock(lock)
                if await self._tail():
                    return
                # Another worker holds the lock but has not created its part yet
                # (it is waiting for the upstream's headers): look again shortly.
                await asyncio.sleep(delay)
                delay = min(delay * 2, POLL_MAX_S)
        except EdgeError as exc:
            self._fail(exc)
        except asyncio.CancelledError:
            self._fail(UpstreamUnavailable("the edge is shutting down"))
            raise
        except Exception as exc:  # a bug or an OS error (disk full): fail this fill loudly
            log.exception("fill of %r failed", self.key)
            self._fail(UpstreamError(f"fill failed: {type(exc).__name__}: {exc}"))
        finally:
            self.done = True
            self._notify()
            self.release()

    def _fail(self, exc: EdgeError) -> None:
        self.error = exc
        self.verified = False
        reason = exc.code
        self.stats.fill_failures[reason] = self.stats.fill_failures.get(reason, 0) + 1
        if self.local is not False:
            log.warning("fill of %r failed: %s", self.key, exc.message)

    def _adopt(self, entry: OpenEntry) -> None:
        self.local = False
        self._fd = entry.fd
        self.meta = entry.meta
        self.available = entry.meta.size
        self.verified = True

    async def _fetch(self) -> None:
        """Fetch the whole object into a part file, verify it, publish it (lock held)."""
        # A part left by a crashed filler must not be tailed by anyone meanwhile.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.disk.part_path(self.name))
        started = time.monotonic()
        body = await self.upstream.fetch(self.key)
        self.stats.origin_fetches += 1
        self.stats.origin_ttfb.observe(time.monotonic() - started)
        meta = body.meta
        part = self.disk.part_path(self.name)
        try:
            tmp = self.disk.tmp_path(self.name)
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self._fd = fd
            try:
                _pwrite_all(fd, encode_header(meta), 0)
                # The part becomes visible to other workers only with a complete header.
                os.replace(tmp, part)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self.meta = meta
            self._notify()
            keep = self.memory.admits(meta.size)
            chunks: list[bytes] = []
            digest = hashlib.sha256()
            await self._receive(body, fd, digest, chunks if keep else None)
            if meta.sha256 is not None and digest.hexdigest() != meta.sha256:
                raise FillIntegrityError(
                    f"sha256 of {self.key!r} does not match the upstream's X-Checksum-SHA256"
                )
            await asyncio.to_thread(os.fsync, fd)
            published = self.disk.publish(self.name, part, meta.size)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(part)
            with contextlib.suppress(Exception):
                await body.aclose()  # idempotent; the body may not have been consumed yet
            raise
        self.verified = True
        self.stats.fill_duration.observe(time.monotonic() - started)
        if keep:
            self.memory.put(CachedObject(meta, b"".join(chunks)))
        if published:
            self.on_published()

    async def _receive(
        self, body: UpstreamBody, fd: int, digest, chunks: list[bytes] | None
    ) -> None:
        meta = body.meta
        size = meta.size
        resumes = 0
        while True:
            reason = ""
            try:
                async for chunk in body.chunks():
                    offset = self.available
                    if offset + len(chunk) > size:
                        raise FillIntegrityError(
                            f"upstream sent more than the {size} bytes it announced"
                        )
                    _pwrite_all(fd, chunk, HEADER_SIZE + offset)
                    digest.update(chunk)
                    if chunks is not None:
                        chunks.append(chunk)
                    self.available = offset + len(chunk)
                    self.stats.origin_bytes += len(chunk)
                    self._notify()
                if self.available == size:
                    return
                reason = f"upstream ended after {self.available} of {size} bytes"
            except UpstreamUnavailable as exc:
                reason = exc.message
            finally:
                await body.aclose()
            if resumes >= self.retries:
                raise UpstreamUnavailable(f"{reason}; gave up after {resumes} resume(s)")
            resumes += 1
            self.stats.origin_resumes += 1
            log.info("resuming %r at byte %d: %s", self.key, self.available, reason)
            await asyncio.sleep(backoff_delay(self.backoff_s, resumes))
            body = await self.upstream.fetch(self.key, self.available, meta.etag)
            if body.meta.size != size:
                await body.aclose()
                raise FillIntegrityError(f"{self.key!r} changed size upstream during the fill")

    async def _tail(self) -> bool:
        """Follow another worker's fill; False if its part file is not there (yet)."""
        part = self.disk.part_path(self.name)
        try:
            fd = os.open(part, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            meta = read_header(fd)
            ino = os.fstat(fd).st_ino
        except BaseException:
            os.close(fd)
            raise
        self.local = False
        self._fd, self.meta = fd, meta
        self._notify()
        final = self.disk.object_path(self.name)
        delay = POLL_MIN_S
        while True:
            if self._grow(fd, meta.size):
                delay = POLL_MIN_S
                continue
            # Order matters: the filler renames part -> final atomically, so reading the
            # part's inode first can never see "in neither place" for a published file.
            in_part = _inode(part) == ino
            in_final = _inode(final) == ino
            if self.available >= meta.size and in_final:
                self.verified = True  # published by the filler, after it verified
                return True
            filler_gone = False
            if not in_part and not in_final:
                filler_gone = True  # unlinked (failed or too big to keep), or published+evicted
            else:
                lock = self.disk.try_lock(self.name)
                if lock is not None:
                    self.disk.unlock(lock)
                    filler_gone = True
            if filler_gone:
                self._grow(fd, meta.size)  # the last bytes may have landed meanwhile
                if self.available < meta.size:
                    raise UpstreamUnavailable("the worker filling this object failed")
                # Every byte is here but nobody vouched for it: check it ourselves.
                if not await asyncio.to_thread(_matches, fd, meta):
                    raise FillIntegrityError(f"{self.key!r} from another worker did not verify")
                self.verified = True
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX_S)

    def _grow(self, fd: int, size: int) -> bool:
        grown = min(os.fstat(fd).st_size - HEADER_SIZE, size)
        if grown > self.available:
            self.available = grown
            self._notify()
            return True
        return False


def _matches(fd: int, meta: ObjectMeta) -> bool:
    """Whether the body in ``fd`` has the object's sha256 (True when none was stated)."""
    if meta.sha256 is None:
        return True
    digest = hashlib.sha256()
    offset = 0
    while offset < meta.size:
        chunk = os.pread(fd, min(1 << 20, meta.size - offset), HEADER_SIZE + offset)
        if not chunk:
            return False
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest() == meta.sha256


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


class FillRegistry:
    """At most one :class:`Fill` per key in this process; starts them and forgets them."""

    def __init__(
        self,
        disk: DiskCache,
        memory: MemoryCache,
        upstream: Upstream,
        stats: EdgeStats,
        *,
        retries: int,
        backoff_s: float,
    ) -> None:
        self.disk = disk
        self.memory = memory
        self.upstream = upstream
        self.stats = stats
        self.retries = retries
        self.backoff_s = backoff_s
        self._fills: dict[str, Fill] = {}
        self._evicting: asyncio.Task | None = None
        self._evict_again = False

    def __len__(self) -> int:
        return len(self._fills)

    def get(self, key: str) -> tuple[Fill, bool]:
        """The fill for ``key`` and whether this call started it."""
        fill = self._fills.get(key)
        if fill is not None:
            return fill, False
        fill = Fill(
            key,
            disk=self.disk,
            memory=self.memory,
            upstream=self.upstream,
            stats=self.stats,
            retries=self.retries,
            backoff_s=self.backoff_s,
            on_published=self._schedule_eviction,
        )
        self._fills[key] = fill
        fill.task = asyncio.create_task(self._run(fill), name=f"fill {key}")
        return fill, True

    async def _run(self, fill: Fill) -> None:
        try:
            await fill.run()
        finally:
            if self._fills.get(fill.key) is fill:
                del self._fills[fill.key]

    def _schedule_eviction(self) -> None:
        if self._evicting is not None and not self._evicting.done():
            self._evict_again = True
            return
        self._evicting = asyncio.create_task(self._evict())

    async def _evict(self) -> None:
        while True:
            self._evict_again = False
            try:
                await asyncio.to_thread(self.disk.enforce_bound)
            except OSError:
                log.exception("disk cache eviction failed")
            if not self._evict_again:
                return

    async def aclose(self) -> None:
        tasks = [f.task for f in self._fills.values() if f.task is not None]
        if self._evicting is not None:
            tasks.append(self._evicting)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
