"""Per-user rate limit on URL issuance: one token bucket per user, in this worker.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``; issuing
one stream answer costs one token. An empty bucket answers 429 with
``Retry-After`` (whole seconds until the next token). The state is per worker
process and bounded (LRU over users), so the effective limit with N workers
is up to N times the setting: cheap and good enough against a runaway client;
a shared limiter belongs in front of the service.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from cachetools import LRUCache

from delivery.errors import TooManyRequests


class TokenBucketLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s < 0 or burst < 1:
            raise ValueError("rate_per_s must be >= 0 and burst >= 1")
        self.rate = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        # key -> (tokens, last refill time). A forgotten key simply starts full again.
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(max_keys)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def try_acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0.0 on success, else seconds until it would succeed."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate

    def check(self, key: str) -> None:
        """Raise the 429 :class:`TooManyRequests` when ``key`` is out of tokens."""
        wait = self.try_acquire(key)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"too many stream requests; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
