"""``peek`` (what the Subsonic login throttle checks first) agrees with ``try_acquire`` on
both engines of delivery.ratelimit: the database (SQLite and PostgreSQL) and Redis."""

from __future__ import annotations

import uuid

import pytest

from delivery.ratelimit import DatabaseRateLimiter, Gcra, RedisRateLimiter
from delivery.subsonic.errors import SubsonicError
from delivery.subsonic.throttle import LoginThrottle, throttle_key


def check_peek_follows_spending(limiter) -> None:
    key = f"peek-{uuid.uuid4().hex}"
    assert limiter.peek(key) == 0.0  # a rested key
    for _ in range(3):
        assert limiter.peek(key) == 0.0
        assert limiter.try_acquire(key) == 0.0
    wait = limiter.peek(key)
    assert 0 < wait <= limiter.gcra.interval + 1e-6
    assert limiter.try_acquire(key) > 0  # what peek foresaw
    assert limiter.peek(f"peek-{uuid.uuid4().hex}") == 0.0  # keys are separate


def test_peek_on_the_database(database):
    check_peek_follows_spending(DatabaseRateLimiter(database, Gcra(1 / 60, 3)))


@pytest.mark.slow  # a real Redis server
def test_peek_on_redis(redis_url):
    check_peek_follows_spending(RedisRateLimiter.from_url(redis_url, Gcra(1 / 60, 3)))


def test_throttle_refuses_a_spent_key_and_leaves_others(database):
    throttle = LoginThrottle(DatabaseRateLimiter(database, Gcra(1 / 3600, 2)))
    key = throttle_key("192.0.2.9", f"u{uuid.uuid4().hex[:8]}")
    throttle.check(key)
    throttle.failed(key)
    throttle.check(key)
    throttle.failed(key)
    with pytest.raises(SubsonicError) as refused:
        throttle.check(key)
    assert refused.value.code == 40 and "retry in" in refused.value.message
    throttle.check(throttle_key("192.0.2.10", "someone"))
    disabled = LoginThrottle(DatabaseRateLimiter(database, Gcra(0, 1)))
    for _ in range(5):
        disabled.failed(key)
        disabled.check(key)  # 0 per hour: the limit is off
