"""The upstream port (:class:`Upstream`, :class:`UpstreamBody`) and helpers its backends share."""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import AsyncIterator
from typing import Protocol

from edge.cache.entry import ObjectMeta, entry_name

log = logging.getLogger("edge.upstream")

SHA_RE = re.compile(r"[0-9a-fA-F]{64}")
HEALTH_CACHE_S = 2.0


class UpstreamBody(Protocol):
    """An open upstream response: ``meta`` describes the whole object, bytes from ``start``."""

    meta: ObjectMeta
    start: int
    target: str

    def chunks(self) -> AsyncIterator[bytes]:
        """The body; raises :class:`UpstreamUnavailable` if the transfer breaks."""

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    requests: int  # requests sent, retries and resumes included (edge_upstream_requests_total)
    failures: dict[str, int]  # failed attempts by reason (edge_upstream_failures_total)

    async def fetch(self, key: str, start: int = 0, etag: str | None = None) -> UpstreamBody:
        """Open ``key`` from byte ``start``; ``etag`` pins a resume to the same object."""

    async def ready(self) -> bool:
        """True when at least one upstream answers (for /healthz)."""

    def describe(self) -> list[dict]:
        """State of each upstream target (for /healthz and /metrics)."""

    async def aclose(self) -> None: ...


def rendezvous_order(targets: list[str], key: str) -> list[str]:
    """Targets ranked for ``key`` by highest random weight (HRW) hashing.

    Adding or removing a target only moves the objects whose top choice it was.
    """

    def weight(target: str) -> int:
        digest = hashlib.blake2b(f"{target}\0{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return sorted(targets, key=weight, reverse=True)


def default_etag(key: str, size: int, sha256: str | None) -> str:
    # Objects under a version are immutable, so key + size identify the bytes.
    if sha256:
        return f'"{sha256[:32]}"'
    return f'"{entry_name(key)[:16]}-{size:x}"'


def checked_sha(value: str | None, source: str) -> str | None:
    if value is None:
        return None
    if not SHA_RE.fullmatch(value.strip()):
        log.warning("ignoring malformed X-Checksum-SHA256 from %s", source)
        return None
    return value.strip().lower()


def backoff_delay(base_s: float, attempt: int) -> float:
    """Delay before retry ``attempt`` (1-based): base * 2^(attempt-1), jittered +-50%."""
    return base_s * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter
