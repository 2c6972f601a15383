"""Per-user token bucket on URL issuance."""

from __future__ import annotations

import pytest

from delivery.errors import TooManyRequests
from delivery.ratelimit import TokenBucketLimiter
from tests.delivery.conftest import client_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill():
    clock = FakeClock()
    limiter = TokenBucketLimiter(2.0, 3, clock=clock)
    assert [limiter.try_acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("a") == pytest.approx(0.5)
    assert limiter.try_acquire("b") == 0.0  # users do not share buckets
    clock.now += 0.5
    assert limiter.try_acquire("a") == 0.0
    assert limiter.try_acquire("a") > 0
    clock.now += 100
    assert [limiter.try_acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("a") > 0  # never more than the burst


def test_retry_after_is_whole_seconds():
    clock = FakeClock()
    limiter = TokenBucketLimiter(0.25, 1, clock=clock)
    limiter.check("a")
    with pytest.raises(TooManyRequests) as err:
        limiter.check("a")
    assert err.value.headers == {"Retry-After": "4"}


def test_zero_rate_disables():
    limiter = TokenBucketLimiter(0, 1)
    assert all(limiter.try_acquire("a") == 0.0 for _ in range(1000))


def test_bounded_memory():
    limiter = TokenBucketLimiter(1, 1, max_keys=10)
    for i in range(1000):
        limiter.try_acquire(f"user-{i}")
    assert len(limiter._buckets) == 10


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
