"""A circuit breaker per upstream, so a dead origin does not pile up work.

closed  --(N consecutive failures)-->  open  --(reset_s elapsed)-->  half-open
half-open lets ONE probe through: success closes the breaker, failure re-opens it.

While open, fetches fail fast (or fail over to the next shield) instead of
each waiting out connect timeouts and retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(
        self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or reset_s <= 0:
            raise ValueError("a breaker needs failures >= 1 and reset_s > 0")
        self.threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.trips = 0
        self._probe_started = 0.0

    def allow(self) -> bool:
        """May a request go to this upstream now? (In half-open, only one probe at a time.)"""
        if self.state == CLOSED:
            return True
        now = self._clock()
        if self.state == OPEN:
            if now - self.opened_at < self.reset_s:
                return False
            self.state = HALF_OPEN
            self._probe_started = now
            return True
        # Half-open: a probe is out. A probe that never reported (its task was
        # cancelled) must not wedge the breaker, so another is allowed after reset_s.
        if now - self._probe_started >= self.reset_s:
            self._probe_started = now
            return True
        return False

    def success(self) -> None:
        self.state = CLOSED
        self.failures = 0

    def failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            if self.state != OPEN:
                self.trips += 1
            self.state = OPEN
            self.opened_at = self._clock()
