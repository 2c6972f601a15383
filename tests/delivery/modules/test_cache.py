"""The hot-playlist cache: snapshot keys, single-flight, XFetch, metrics."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY

from delivery.modules.cache import SnapshotCache
from tests.support.clock import FakeClock


def test_hits_after_a_miss_and_stats():
    cache = SnapshotCache(10, 60)
    loads = []

    def load():
        loads.append(1)
        return "page", True

    assert cache.get_or_load(("p", "s1"), load) == "page"
    assert cache.get_or_load(("p", "s1"), load) == "page"
    assert cache.get_or_load(("p", "s2"), load) == "page"  # a new snapshot is a new key
    stats = cache.stats()
    assert (len(loads), stats.hits, stats.misses, stats.size) == (2, 1, 2, 2)
    assert stats.hit_ratio == pytest.approx(1 / 3)


def test_uncacheable_results_are_returned_but_not_kept():
    cache = SnapshotCache(10, 60)
    assert cache.get_or_load("k", lambda: ("newer snapshot", False)) == "newer snapshot"
    assert cache.stats().size == 0


def test_entries_expire():
    clock = FakeClock(100.0)
    cache = SnapshotCache(10, 5, clock=clock)
    n = iter(range(10))
    assert cache.get_or_load("k", lambda: (next(n), True)) == 0
    clock.now += 4.9
    assert cache.get_or_load("k", lambda: (next(n), True)) == 0
    clock.now += 0.2
    assert cache.get_or_load("k", lambda: (next(n), True)) == 1


def test_concurrent_misses_load_once():
    cache = SnapshotCache(10, 60)
    gate = threading.Event()
    loads = []

    def slow_load():
        loads.append(1)
        gate.wait(5)
        return "value", True

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", slow_load)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    # Wait until every thread is either loading or waiting on the flight.
    for _ in range(500):
        s = cache.stats()
        if s.misses + s.coalesced == 8:
            break
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join(5)
    assert results == ["value"] * 8
    assert len(loads) == 1
    s = cache.stats()
    assert (s.misses, s.coalesced) == (1, 7)


def test_a_failed_load_reaches_every_waiter_and_is_not_cached():
    cache = SnapshotCache(10, 60)
    with pytest.raises(RuntimeError):
        cache.get_or_load("k", lambda: (_ for _ in ()).throw(RuntimeError("db down")))
    assert cache.get_or_load("k", lambda: ("ok", True)) == "ok"


def test_xfetch_refreshes_early_near_expiry_and_serves_the_old_value_meanwhile():
    clock = FakeClock(100.0)
    # rng -> 1 - tiny: -ln(tiny) is large, so the refresh fires whenever delta > 0.
    cache = SnapshotCache(10, 10, xfetch_beta=1.0, clock=clock, rng=lambda: 0.999999)
    values = iter(["v1", "v2"])

    def load():
        clock.now += 0.5  # the load takes 0.5 s: delta = 0.5
        return next(values), True

    assert cache.get_or_load("k", load) == "v1"
    clock.now += 1.0  # far from expiry: delta * beta * 13.8 = 6.9 s < 9.5 s left
    assert cache.get_or_load("k", lambda: ("never", True)) == "v1"
    clock.now += 5.0  # 4.5 s left < 6.9 s: refresh early
    assert cache.get_or_load("k", load) == "v2"
    assert cache.stats().early_refreshes == 1


def test_xfetch_off_never_refreshes_early():
    clock = FakeClock(100.0)
    cache = SnapshotCache(10, 10, xfetch_beta=0.0, clock=clock, rng=lambda: 0.999999)
    cache.get_or_load("k", lambda: ("v1", True))
    clock.now += 9.9
    assert cache.get_or_load("k", lambda: ("v2", True)) == "v1"


def test_disabled_cache_always_loads():
    cache = SnapshotCache(0, 10)
    n = iter(range(3))
    assert [cache.get_or_load("k", lambda: (next(n), True)) for _ in range(3)] == [0, 1, 2]


def test_prometheus_metrics():
    def sample(name, labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    cache = SnapshotCache(10, 60, name="metrics-test")
    before = sample(
        "delivery_playlist_cache_requests_total", {"cache": "metrics-test", "result": "hit"}
    )
    cache.get_or_load("k", lambda: (1, True))
    cache.get_or_load("k", lambda: (1, True))
    cache.get_or_load("k", lambda: (1, True))
    after = sample(
        "delivery_playlist_cache_requests_total", {"cache": "metrics-test", "result": "hit"}
    )
    assert after - before == 2
