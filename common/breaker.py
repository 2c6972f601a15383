"""Circuit breakers, so a dead dependency does not pile up work or latency.

closed  --(N consecutive failures)-->  open  --(reset_s elapsed)-->  half-open
half-open lets ONE probe through: success closes the breaker, failure re-opens it.

While open, calls fail fast (the edge fails over to the next shield; delivery lets a
request through without its rate limit) instead of each waiting out connect timeouts.

:class:`CircuitBreaker` is the state machine, for one thread (the edge's event loop);
:class:`EngineGuard` wraps one for calls made from many threads (delivery's request
threads asking Redis or the database) and logs the outage and the recovery once each
instead of once per request.
"""

from __future__ import annotations

import logging
import threading
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


class EngineGuard:
    """One breaker (opening at the first failure) around an engine that many threads
    call: ``allow()`` before a call, then ``answered()`` or ``failed(exc)``.

    While it is open every caller is told not to try, at once, and one caller
    probes the engine every ``retry_s``. The first failure logs a warning naming
    ``what`` and what the callers do meanwhile (``meanwhile``); the first success
    after it logs that the engine answers again."""

    def __init__(
        self,
        what: str,
        meanwhile: str,
        *,
        retry_s: float = 2.0,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.meanwhile, self.retry_s, self._log = what, meanwhile, retry_s, log
        self._breaker = CircuitBreaker(1, retry_s, clock)
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._breaker.state != CLOSED

    def allow(self) -> bool:
        if self._breaker.state == CLOSED:  # the usual case, without the lock
            return True
        with self._lock:
            return self._breaker.allow()

    def answered(self) -> None:
        if self._breaker.state == CLOSED:
            return
        with self._lock:
            was_down = self._breaker.state != CLOSED
            self._breaker.success()
        if was_down:
            self._log.warning("%s answers again", self.what)

    def failed(self, exc: BaseException | str) -> None:
        with self._lock:
            was_up = self._breaker.state == CLOSED
            self._breaker.failure()
        if was_up:
            self._log.warning(
                "%s failed (%s): %s; asked again every %g s",
                self.what,
                exc,
                self.meanwhile,
                self.retry_s,
            )
