"""The hot-playlist cache: in-process, keyed by snapshot, with single-flight and XFetch.

Keys include the playlist's ``snapshot_id`` (see :mod:`delivery.modules.playlists`),
and every write makes a new snapshot, so an entry can never be stale: writes
never invalidate, and no "read old data, then cache it after the write" race
exists as long as the loader refuses to cache data of another snapshot (it
tells us so by returning ``cacheable=False``).

Concurrent misses on one key are coalesced: the first caller loads, the
others wait for its result (single-flight), so a playlist going viral costs
one query per snapshot, not one per request.

Entries still expire after ``ttl_s`` (memory is bounded by LRU size; the TTL
lets cold snapshots go). With ``xfetch_beta > 0``, a hit may refresh early with
probability growing as expiry nears — XFetch (Vattani, Chierichetti, Lowenstein,
"Optimal Probabilistic Cache Stampede Prevention", VLDB 2015): refresh when
``now - delta * beta * ln(random()) >= expiry``, ``delta`` being the last load's
duration. The refreshing caller loads; everyone else keeps getting the cached
value meanwhile.

Metrics (prometheus_client; in the delivery app's registry, so on its ``/metrics``,
else the default registry): ``delivery_playlist_cache_requests_total`` by ``result``
(hit, miss, coalesced) and ``delivery_playlist_cache_early_refreshes_total``. The hit
ratio is computed where the series meet (PromQL: hit + coalesced over all results), so it
stays right summed over every worker; a per-process ratio gauge could not be summed.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from cachetools import LRUCache
from prometheus_client import REGISTRY, CollectorRegistry, Counter

V = TypeVar("V")


class CacheMetrics:
    """The cache's Prometheus series in one registry (the app's, or the default one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "delivery_playlist_cache_requests",
            "Hot-playlist cache lookups by result (hit, miss, coalesced).",
            ["cache", "result"],
            registry=registry,
        )
        self.early_refreshes = Counter(
            "delivery_playlist_cache_early_refreshes",
            "XFetch early refreshes of hot-playlist cache entries.",
            ["cache"],
            registry=registry,
        )


_METRICS: WeakKeyDictionary[CollectorRegistry, CacheMetrics] = WeakKeyDictionary()
_METRICS_LOCK = threading.Lock()


def cache_metrics(registry: CollectorRegistry | None = None) -> CacheMetrics:
    """One set of series per registry: a registry refuses the same name twice."""
    registry = registry or REGISTRY
    with _METRICS_LOCK:
        metrics = _METRICS.get(registry)
        if metrics is None:
            metrics = _METRICS[registry] = CacheMetrics(registry)
        return metrics


@dataclass(slots=True)
class _Entry:
    value: Any
    delta: float  # seconds the load took
    expires: float


class _Flight:
    __slots__ = ("done", "value", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    coalesced: int
    early_refreshes: int
    size: int

    @property
    def requests(self) -> int:
        return self.hits + self.misses + self.coalesced

    @property
    def hit_ratio(self) -> float:
        return (self.hits + self.coalesced) / self.requests if self.requests else 0.0


Loader = Callable[[], tuple[V, bool]]


class SnapshotCache(Generic[V]):
    """``get_or_load(key, loader)``; ``loader() -> (value, cacheable)``."""

    def __init__(
        self,
        maxsize: int,
        ttl_s: float,
        *,
        xfetch_beta: float = 0.0,
        name: str = "playlist",
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.enabled = maxsize > 0
        self._data: LRUCache[Hashable, _Entry] = LRUCache(maxsize=max(1, maxsize))
        self._ttl = ttl_s
        self._beta = xfetch_beta
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}
        self._hits = self._misses = self._coalesced = self._early = 0
        self._name = name
        metrics = cache_metrics(registry)
        self._m_hit = metrics.requests.labels(name, "hit")
        self._m_miss = metrics.requests.labels(name, "miss")
        self._m_coalesced = metrics.requests.labels(name, "coalesced")
        self._m_early = metrics.early_refreshes.labels(name)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits, self._misses, self._coalesced, self._early, len(self._data)
            )

    def _refresh_early(self, entry: _Entry, now: float) -> bool:
        if self._beta <= 0:
            return False
        # 1 - random() is in (0, 1], so the log is defined; -ln(u) >= 0 moves expiry closer.
        return now - entry.delta * self._beta * math.log(1.0 - self._rng()) >= entry.expires

    def _count(self, result: str) -> None:
        # Called with the lock held.
        if result == "hit":
            self._hits += 1
            self._m_hit.inc()
        elif result == "miss":
            self._misses += 1
            self._m_miss.inc()
        else:
            self._coalesced += 1
            self._m_coalesced.inc()

    def discard(self, stale: Callable[[V], bool]) -> int:
        """Drop every entry whose value ``stale(value)`` says is out of date; return how many.

        Snapshot keys cover the playlist's own changes; this is for what a page JOINs
        from elsewhere (the tracks' metadata, re-indexed by a publication).
        """
        with self._lock:
            keys = [k for k, entry in self._data.items() if stale(entry.value)]
            for key in keys:
                self._data.pop(key, None)
        return len(keys)

    def get_or_load(self, key: Hashable, loader: Loader) -> V:
        if not self.enabled:
            return loader()[0]
        now = self._clock()
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry.expires <= now:
                entry = None  # expired: treat as a miss (the LRU slot is overwritten below)
            flight = self._flights.get(key)
            if entry is not None:
                self._count("hit")
                if flight is not None or not self._refresh_early(entry, now):
                    return entry.value
                # This caller refreshes; the rest keep reading the entry meanwhile.
                self._early += 1
                self._m_early.inc()
                flight = self._flights[key] = _Flight()
                leader, stale = True, entry.value
            elif flight is not None:
                self._count("coalesced")
                leader, stale = False, None
            else:
                self._count("miss")
                flight = self._flights[key] = _Flight()
                leader, stale = True, None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        started = self._clock()
        try:
            value, cacheable = loader()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
            if stale is not None:
                return stale  # an early refresh failing must not fail a request we could answer
            raise
        finished = self._clock()
        flight.value = value
        with self._lock:
            if cacheable:
                self._data[key] = _Entry(value, finished - started, finished + self._ttl)
            self._flights.pop(key, None)
        flight.done.set()
        return value
