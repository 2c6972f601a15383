"""Per-user rate limit on URL issuance: GCRA, shared through the database or Redis."""

from __future__ import annotations

import logging
import uuid

import pytest

from delivery.db import open_database
from delivery.errors import TooManyRequests
from delivery.ratelimit import (
    DatabaseRateLimiter,
    Gcra,
    GuardedRateLimiter,
    RateLimitUnavailable,
    RedisRateLimiter,
    refuse_if_limited,
)
from tests.delivery.conftest import client_for
from tests.support.clock import FakeClock

# The database lives as long as the module: every test has keys of its own.
KEY = uuid.uuid4().hex


# -- the decision, pure ------------------------------------------------------------------


def test_gcra_burst_then_one_per_interval():
    gcra, now = Gcra(2.0, 3), 100.0
    tat = None
    for _ in range(3):
        tat, wait = gcra.decide(tat, now)
        assert wait == 0.0
    assert gcra.decide(tat, now) == (tat, pytest.approx(0.5))
    tat, wait = gcra.decide(tat, now + 0.5)
    assert wait == 0.0
    assert gcra.decide(tat, now + 0.5)[1] > 0
    # Rested for long: the full burst again, never more.
    tat, waits = tat, []
    for _ in range(4):
        tat, wait = gcra.decide(tat, now + 1000)
        waits.append(wait)
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0


def test_gcra_refuses_bad_numbers():
    with pytest.raises(ValueError):
        Gcra(-1, 3)
    with pytest.raises(ValueError):
        Gcra(1, 0)
    assert not Gcra(0, 1).enabled


# -- the shared backends ---------------------------------------------------------------


def test_database_limiter_burst_refill_and_users_apart(database):
    clock = FakeClock(1_800_000_000.0)
    limiter = DatabaseRateLimiter(database, Gcra(2.0, 3), clock=clock)
    assert [limiter.try_acquire(KEY + "a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire(KEY + "a") == pytest.approx(0.5)
    assert limiter.try_acquire(KEY + "b") == 0.0  # users do not share a limit
    clock.now += 0.5
    assert limiter.try_acquire(KEY + "a") == 0.0
    assert limiter.try_acquire(KEY + "a") > 0
    clock.now += 100
    assert [limiter.try_acquire(KEY + "a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire(KEY + "a") > 0  # never more than the burst


def test_two_limiters_on_one_database_share_the_limit(database):
    # Two workers (or hosts) are two limiter objects over one database.
    clock = FakeClock(1_800_000_000.0)
    first = DatabaseRateLimiter(database, Gcra(1.0, 4), clock=clock)
    second = DatabaseRateLimiter(database, Gcra(1.0, 4), clock=clock)
    allowed = [lim.try_acquire(KEY + "u") == 0.0 for lim in (first, second) * 4]
    assert allowed.count(True) == 4


def test_a_database_that_fails_is_unavailable_not_a_crash(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")  # never migrated: no table
    limiter = DatabaseRateLimiter(db, Gcra(1.0, 1))
    with pytest.raises(RateLimitUnavailable):
        limiter.try_acquire("u")
    errors = []
    refuse_if_limited(limiter, "u", lambda: errors.append(1))  # fails open, counted
    assert errors == [1]
    db.close()


def test_redis_limiter_burst_and_shared(redis_url):
    prefix = f"t-{uuid.uuid4().hex}:"
    a = RedisRateLimiter.from_url(redis_url, Gcra(0.5, 3), prefix=prefix)
    b = RedisRateLimiter.from_url(redis_url, Gcra(0.5, 3), prefix=prefix)
    waits = [lim.try_acquire("u") for lim in (a, b, a, b)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 1.5 < waits[3] <= 2.0  # one interval (2 s) minus the time the calls took


def test_redis_down_fails_open():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{port}/0", Gcra(1.0, 1))
    errors = []
    for _ in range(3):
        refuse_if_limited(limiter, "u", lambda: errors.append(1))
    assert errors == [1, 1, 1]


class Counting:
    """Counts what reaches the engine's limiter; ``target`` can be switched."""

    def __init__(self, target) -> None:
        self.target, self.gcra, self.calls = target, target.gcra, 0

    def try_acquire(self, key: str) -> float:
        self.calls += 1
        return self.target.try_acquire(key)

    def peek(self, key: str) -> float:
        self.calls += 1
        return self.target.peek(key)


def test_an_unanswering_redis_is_asked_once_per_retry_not_once_per_request(redis_url, caplog):
    """A Redis that accepts connections and never answers (a host dropping packets):
    without the guard every request would wait out the 0.5 s timeout."""
    import socket

    gcra = Gcra(1.0, 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing ever reads them
        port = silent.getsockname()[1]
        engine = Counting(RedisRateLimiter.from_url(f"redis://127.0.0.1:{port}/0", gcra))
        clock = FakeClock(1_800_000_000.0)
        limiter = GuardedRateLimiter(engine, "redis", retry_s=2.0, clock=clock)
        errors: list[int] = []
        with caplog.at_level(logging.WARNING, logger="delivery.ratelimit"):
            for _ in range(20):
                refuse_if_limited(limiter, f"{KEY}-silent", lambda: errors.append(1))
            assert errors == [1] * 20 and engine.calls == 1  # let through, asked once
            # Redis is back: the next request after the retry interval asks it again.
            engine.target = RedisRateLimiter.from_url(
                redis_url, gcra, prefix=f"t-{uuid.uuid4().hex}:"
            )
            refuse_if_limited(limiter, f"{KEY}-silent", lambda: errors.append(1))
            assert engine.calls == 1  # still within the 2 s
            clock.now += 2.0
            refuse_if_limited(limiter, f"{KEY}-silent", lambda: errors.append(1))
            with pytest.raises(TooManyRequests):  # checked again: the burst of 1 is spent
                refuse_if_limited(limiter, f"{KEY}-silent", lambda: errors.append(1))
    assert engine.calls == 3 and len(errors) == 21
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("rate limits: redis failed (redis: Timeout")
    assert messages[1] == "rate limits: redis answers again"


def test_retry_after_is_whole_seconds(database):
    limiter = DatabaseRateLimiter(database, Gcra(0.25, 1), clock=FakeClock(1_800_000_000.0))
    refuse_if_limited(limiter, KEY + "retry", lambda: None)
    with pytest.raises(TooManyRequests) as err:
        refuse_if_limited(limiter, KEY + "retry", lambda: None)
    assert err.value.headers == {"Retry-After": "4"}


def test_zero_rate_disables(database):
    limiter = DatabaseRateLimiter(database, Gcra(0, 1))
    for _ in range(100):
        refuse_if_limited(limiter, KEY + "zero", lambda: None)


@pytest.mark.anyio
async def test_api_answers_429_with_retry_after(make_app, auth):
    app = make_app(rate_limit_per_s=0.5, rate_limit_burst=3)
    async with client_for(app) as c:
        statuses = [
            (await c.get("/v1/tracks/chirp/stream", headers=auth("greedy"))).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        r = await c.get("/v1/tracks/chirp/stream", headers=auth("greedy"))
        assert r.status_code == 429
        assert r.headers["retry-after"] in ("1", "2")
        assert r.json()["error"]["code"] == "rate_limited"
        assert (await c.get("/v1/tracks/chirp/stream", headers=auth("polite"))).status_code == 200
        metrics = (await c.get("/metrics")).text
    assert "delivery_rate_limited_total 1.0" in metrics
