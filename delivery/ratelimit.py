"""Per-user rate limit on URL issuance, shared by every worker and host.

The algorithm is GCRA (the generic cell rate algorithm), a token bucket kept as
ONE number per user: the theoretical arrival time ``tat`` of the next request.
A request at ``now`` is allowed when ``max(tat, now) + interval - now <=
tolerance`` and then moves ``tat`` forward by one ``interval``; ``interval`` is
``1 / rate_per_s`` and ``tolerance`` is ``burst * interval``, so a rested user
may issue ``burst`` requests at once and ``rate_per_s`` per second after that.
An allowed request costs one atomic read-modify-write of that number, which an
engine can do in one statement, so the limit holds however many processes ask:

* :class:`DatabaseRateLimiter` (default): one ``INSERT ... ON CONFLICT DO UPDATE
  ... WHERE ... RETURNING`` on delivery's own database. On SQLite that is every
  worker of one host; on PostgreSQL every host sharing it (clocks are the hosts',
  kept by NTP: a skew of a few ms moves a limit of a few per second by nothing).
* :class:`RedisRateLimiter` (``DELIVERY_REDIS_URL`` set): a short Lua script,
  atomic in Redis and timed by Redis' own clock, the usual shape of GCRA on Redis.

A refusal is a 429 with ``Retry-After`` (whole seconds until the request would
pass). ``rate_per_s = 0`` disables the limit. When the engine cannot be reached
the limit fails open: a limiter protects the service, it is not a reason to
refuse every listener; each such request is counted
(``delivery_rate_limit_errors_total``). :func:`open_rate_limiter` puts the engine
behind a :class:`common.breaker.EngineGuard`: after a failure requests are let
through at once instead of each waiting out a timeout (a Redis host that drops
packets would otherwise add 0.5 s to every stream answer), one request asks the
engine again every 2 s, and the outage and the recovery are logged once each.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from common.breaker import EngineGuard
from delivery.db import Database, DatabaseError
from delivery.errors import TooManyRequests

log = logging.getLogger("delivery.ratelimit")
# Float sums of the interval must not refuse the burst's last request by a rounding error.
_EPSILON = 1e-9


class RateLimitUnavailable(Exception):
    """The engine holding the limits did not answer (the request is let through)."""


@dataclass(frozen=True)
class Gcra:
    """The limit's two numbers, and the decision as a pure function."""

    rate_per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or self.burst < 1:
            raise ValueError("rate_per_s must be >= 0 and burst >= 1")

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    @property
    def interval(self) -> float:
        return 1.0 / self.rate_per_s

    @property
    def tolerance(self) -> float:
        return self.burst * self.interval

    def decide(self, tat: float | None, now: float) -> tuple[float, float]:
        """``(new_tat, wait)``: ``wait`` 0.0 allows the request and ``new_tat`` is stored;
        otherwise ``wait`` is how long until it would pass and ``tat`` stays as it was."""
        base = now if tat is None or tat < now else tat
        new_tat = base + self.interval
        over = new_tat - now - self.tolerance
        if over > _EPSILON:
            return (tat if tat is not None else now), over
        return new_tat, 0.0


class RateLimiter(Protocol):
    gcra: Gcra

    def try_acquire(self, key: str) -> float:
        """Spend one request of ``key``; 0.0 when allowed, else seconds to wait."""
        ...

    def peek(self, key: str) -> float:
        """Seconds until ``key`` could spend one (0.0: now), spending nothing."""
        ...


def refuse_if_limited(limiter: RateLimiter, key: str, on_error: Callable[[], Any]) -> None:
    """Raise the 429 :class:`TooManyRequests` when ``key`` is over its limit.

    ``on_error`` is called (and the request allowed) when the engine is unreachable.
    """
    if not limiter.gcra.enabled:
        return
    try:
        wait = limiter.try_acquire(key)
    except RateLimitUnavailable as exc:
        log.debug("rate limit not checked: %s", exc)  # the guard logs the outage once
        on_error()
        return
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"too many stream requests; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


# -- the database --------------------------------------------------------------------------

# One statement decides and records: the row changes (and is returned) only when allowed.
_ACQUIRE = """
INSERT INTO rate_limits (limit_key, tat) VALUES (:key, :first)
ON CONFLICT (limit_key) DO UPDATE
   SET tat = {greatest}(rate_limits.tat, :now) + :interval
 WHERE {greatest}(rate_limits.tat, :now) + :interval - :now <= :tolerance
RETURNING tat
"""
_GREATEST = {"sqlite": "MAX", "postgresql": "GREATEST"}
# Rows whose tat has passed are the same as no row: dropped now and then to bound the table.
_FORGET = "DELETE FROM rate_limits WHERE tat < :now"
_SWEEP_EVERY = 10_000


class DatabaseRateLimiter:
    def __init__(self, db: Database, gcra: Gcra, *, clock: Callable[[], float] = time.time) -> None:
        self.gcra = gcra
        self._db = db
        self._clock = clock
        self._acquire = _ACQUIRE.format(greatest=_GREATEST[db.dialect])
        self._calls = 0

    def try_acquire(self, key: str) -> float:
        gcra, now = self.gcra, self._clock()
        params = {
            "key": key,
            "now": now,
            "first": now + gcra.interval,
            "interval": gcra.interval,
            "tolerance": gcra.tolerance + _EPSILON,
        }
        try:
            with self._db.transaction() as tx:
                if tx.fetchone(self._acquire, params) is not None:
                    self._sweep(tx, now)
                    return 0.0
                row = tx.fetchone("SELECT tat FROM rate_limits WHERE limit_key = :key", params)
        except DatabaseError as exc:
            raise RateLimitUnavailable(f"database: {exc}") from exc
        return gcra.decide(row["tat"] if row else None, now)[1]

    def peek(self, key: str) -> float:
        now = self._clock()
        try:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone(
                    "SELECT tat FROM rate_limits WHERE limit_key = :key", {"key": key}
                )
        except DatabaseError as exc:
            raise RateLimitUnavailable(f"database: {exc}") from exc
        return self.gcra.decide(row["tat"] if row else None, now)[1]

    def _sweep(self, tx: Any, now: float) -> None:
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            tx.execute(_FORGET, {"now": now})


def open_rate_limiter(settings: Any, db: Database, gcra: Gcra | None = None) -> RateLimiter:
    """Redis when ``DELIVERY_REDIS_URL`` is set, else delivery's database, behind a
    :class:`GuardedRateLimiter`; ``gcra`` for another limit than URL issuance (keys of
    different limits must not collide)."""
    gcra = gcra or Gcra(settings.rate_limit_per_s, settings.rate_limit_burst)
    if settings.redis_url:
        return GuardedRateLimiter(RedisRateLimiter.from_url(settings.redis_url, gcra), "redis")
    return GuardedRateLimiter(DatabaseRateLimiter(db, gcra), "database")


class GuardedRateLimiter:
    """``limiter`` asked only while its engine answers: after a failure every call raises
    :class:`RateLimitUnavailable` at once (callers fail open) until one call, every
    ``retry_s``, finds the engine answering again."""

    def __init__(
        self,
        limiter: RateLimiter,
        engine: str,
        *,
        retry_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.gcra = limiter.gcra
        self.guard = EngineGuard(
            f"rate limits: {engine}",
            "limits not checked meanwhile",
            retry_s=retry_s,
            log=log,
            clock=clock,
        )

    def try_acquire(self, key: str) -> float:
        return self._ask(self.limiter.try_acquire, key)

    def peek(self, key: str) -> float:
        return self._ask(self.limiter.peek, key)

    def _ask(self, call: Callable[[str], float], key: str) -> float:
        if not self.guard.allow():
            raise RateLimitUnavailable(f"{self.guard.what}: not asked, it failed just now")
        try:
            answer = call(key)
        except RateLimitUnavailable as exc:
            self.guard.failed(exc)
            raise
        self.guard.answered()
        return answer


# -- Redis -----------------------------------------------------------------------------------

# KEYS[1]: the user's key; ARGV: interval, tolerance (seconds). Returns the wait as a string
# (Lua numbers become integers on the way out). Redis' TIME is the one clock for all hosts.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local over = new_tat - now - tolerance
if over > 0.000000001 then return tostring(over) end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX',
           math.ceil((new_tat - now) * 1000) + 1)
return '0'
"""


class RedisRateLimiter:
    def __init__(self, client: Any, gcra: Gcra, *, prefix: str = "audiocdn:rl:") -> None:
        self.gcra = gcra
        self._prefix = prefix
        self._client = client
        self._script = client.register_script(_GCRA_LUA)

    @classmethod
    def from_url(
        cls, url: str, gcra: Gcra, *, timeout_s: float = 0.5, prefix: str = "audiocdn:rl:"
    ) -> RedisRateLimiter:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        return cls(client, gcra, prefix=prefix)

    def try_acquire(self, key: str) -> float:
        from redis.exceptions import RedisError

        gcra = self.gcra
        try:
            wait = self._script(keys=[self._prefix + key], args=[gcra.interval, gcra.tolerance])
        except RedisError as exc:
            raise RateLimitUnavailable(f"redis: {exc}") from exc
        return float(wait)

    def peek(self, key: str) -> float:
        from redis.exceptions import RedisError

        try:
            raw = self._client.get(self._prefix + key)
            seconds, micros = self._client.time()  # Redis' clock, as the script uses
        except RedisError as exc:
            raise RateLimitUnavailable(f"redis: {exc}") from exc
        return self.gcra.decide(float(raw) if raw is not None else None, seconds + micros / 1e6)[1]
