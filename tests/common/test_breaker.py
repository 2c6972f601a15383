"""Circuit breakers: the state machine, and the guard delivery puts around its engines."""

from __future__ import annotations

import logging
import threading

from common.breaker import CircuitBreaker, EngineGuard
from tests.support.clock import FakeClock


def test_breaker_opens_after_n_failures_and_probes_after_reset():
    clock = FakeClock()
    b = CircuitBreaker(3, 10.0, clock)
    for _ in range(2):
        b.failure()
    assert b.allow() and b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow() and b.trips == 1
    clock.now = 9.9
    assert not b.allow()  # still open until reset_s has passed
    clock.now = 10.0
    assert b.allow() and b.state == "half_open"
    assert not b.allow()  # one probe at a time
    b.failure()
    assert b.state == "open" and b.trips == 2
    clock.now = 20.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.failures == 0 and b.allow()


def test_breaker_success_resets_the_count():
    b = CircuitBreaker(2, 1.0, FakeClock())
    b.failure()
    b.success()
    b.failure()
    assert b.state == "closed"


def test_the_guard_logs_an_outage_and_the_recovery_once_each(caplog):
    clock, log = FakeClock(), logging.getLogger("test.guard")
    guard = EngineGuard("redis", "polling only", retry_s=2.0, log=log, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.guard"):
        assert guard.allow() and not guard.down
        guard.failed(ConnectionError("refused"))
        assert guard.down and not guard.allow()  # told at once not to try
        clock.now = 2.0
        assert guard.allow() and not guard.allow()  # one probe per retry_s
        guard.failed("timed out")  # the probe failed too: no second warning
        clock.now = 4.0
        assert guard.allow()
        guard.answered()
        guard.answered()
    assert not guard.down and guard.allow()
    assert [r.getMessage() for r in caplog.records] == [
        "redis failed (refused): polling only; asked again every 2 s",
        "redis answers again",
    ]


def test_the_guard_lets_one_of_many_threads_probe():
    clock = FakeClock()
    guard = EngineGuard("db", "-", retry_s=1.0, log=logging.getLogger("test.guard"), clock=clock)
    guard.failed("down")
    clock.now = 1.0
    allowed: list[bool] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        allowed.append(guard.allow())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(allowed) == [False] * 7 + [True]
