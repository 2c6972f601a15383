"""A store URL (``file://``, ``s3://``, ``gs://``) read directly, in worker threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import format_datetime

from common.breaker import CircuitBreaker
from edge.cache.entry import ObjectMeta
from edge.errors import (
    CircuitOpen,
    FillIntegrityError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from edge.upstream.port import (
    HEALTH_CACHE_S,
    UpstreamBody,
    backoff_delay,
    checked_sha,
    default_etag,
)
from origin.errors import ObjectNotFound, RangeNotSatisfiable, StoreError, StoreUnavailable
from origin.keys import content_type_for
from origin.store import ObjectReader, ObjectStore


class StoreBody:
    def __init__(self, reader: ObjectReader, meta: ObjectMeta, start: int, target: str):
        self._reader = reader
        self.meta = meta
        self.start = start
        self.target = target

    async def chunks(self) -> AsyncIterator[bytes]:
        it = iter(self._reader)
        while True:
            try:
                chunk = await asyncio.to_thread(next, it, None)
            except StoreError as exc:
                raise UpstreamUnavailable(f"store read of {self.meta.key!r} broke: {exc}") from exc
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        await asyncio.to_thread(self._reader.close)


class StoreUpstream:
    """A store read directly (the edge then needs no origin server)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        retries: int = 2,
        backoff_s: float = 0.2,
        breaker_failures: int = 5,
        breaker_reset_s: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.target = store.url
        self.retries = retries
        self.backoff_s = backoff_s
        self.breaker = CircuitBreaker(breaker_failures, breaker_reset_s)
        self.breakers = {self.target: self.breaker}
        self._sleep = sleep
        self.requests = 0
        self.failures: dict[str, int] = {}
        self._health: tuple[float, bool] = (0.0, False)

    async def fetch(self, key: str, start: int = 0, etag: str | None = None) -> UpstreamBody:
        if not self.breaker.allow():
            raise CircuitOpen(f"{self.target}: circuit open")
        reason = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                if self.breaker.state == "open":
                    break
                await self._sleep(backoff_delay(self.backoff_s, attempt))
            self.requests += 1
            try:
                reader = await asyncio.to_thread(self.store.open_range, key, start)
            except ObjectNotFound:
                self.breaker.success()
                raise UpstreamNotFound(f"no such object: {key}") from None
            except RangeNotSatisfiable:
                self.breaker.success()
                raise UpstreamError(f"resume of {key!r} at {start} is past its end") from None
            except StoreUnavailable as exc:
                self.breaker.failure()
                self.failures["unavailable"] = self.failures.get("unavailable", 0) + 1
                reason = str(exc)
                continue
            self.breaker.success()
            info = reader.info
            sha = checked_sha(info.sha256, self.target)
            meta = ObjectMeta(
                key=key,
                size=info.size,
                etag=info.etag or default_etag(key, info.size, sha),
                content_type=info.content_type or content_type_for(key),
                sha256=sha,
                last_modified=format_datetime(info.modified, usegmt=True),
            )
            if etag is not None and meta.etag != etag:
                await asyncio.to_thread(reader.close)
                raise FillIntegrityError(f"{key!r} changed in the store during the fill")
            return StoreBody(reader, meta, start, self.target)
        raise UpstreamUnavailable(f"{self.target}: {reason} after {attempt + 1} attempt(s)")

    async def ready(self) -> bool:
        checked_at, ok = self._health
        now = time.monotonic()
        if now - checked_at < HEALTH_CACHE_S:
            return ok
        try:
            # Any cheap call that reaches the backend; the key need not exist.
            await asyncio.to_thread(self.store.exists, "tracks/healthz/0000000000000000/96.ogg")
            ok = True
        except StoreError:
            ok = False
        self._health = (now, ok)
        return ok

    def describe(self) -> list[dict]:
        b = self.breaker
        return [
            {"upstream": self.target, "breaker": b.state, "failures": b.failures, "trips": b.trips}
        ]

    async def aclose(self) -> None:
        return None
