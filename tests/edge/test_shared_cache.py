"""Two edges sharing one cache directory (as worker processes do), driven in one process.

flock() locks belong to open file descriptions, so two apps in one process
exclude each other exactly like two worker processes: one fetches, the other
tails its part file. These tests pin the tailing paths deterministically; the
same behaviour across real processes is in test_processes.py.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from edge.app import create_app
from edge.cache.entry import entry_name
from tests.edge.conftest import KEY, cut_short, serving
from tests.edge.fakeorigin import FakeOrigin, Fault
from tests.support.waiting import wait_for_async

pytestmark = pytest.mark.anyio
SIZE = 500_000


async def until(predicate, what: str) -> None:
    await wait_for_async(predicate, what=what, timeout=30)


async def fill_on_a_tailed_by_b(a, b, ca, cb, origin_a, url):
    """Start a fill on edge A held at origin A's gate, make edge B join it through the
    shared disk tier, then open the gate; returns both client requests as tasks."""
    first = asyncio.create_task(ca.get(url()))
    await until(lambda: a.stats.misses == 1, "edge A to start the fill")
    second = asyncio.create_task(cb.get(url()))
    await until(lambda: b.stats.coalesced == 1, "edge B to join it through the disk")
    origin_a.gate.set()
    return first, second


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def pair(make_settings, data):
    """Edge A and edge B on one cache directory, each with its own upstream client."""
    origin_a, origin_b = FakeOrigin({KEY: data}), FakeOrigin({KEY: data})

    def build(**overrides):
        a = create_app(make_settings(**overrides), transport=origin_a.transport())
        b = create_app(make_settings(**overrides), transport=origin_b.transport())
        return a, b, origin_a, origin_b

    return build


async def test_the_second_edge_tails_the_first_ones_fill(pair, url, data):
    a, b, origin_a, origin_b = pair()
    origin_a.faults = [Fault(gate_after=100_000)]
    async with serving(a) as ca, serving(b) as cb:
        first, second = await fill_on_a_tailed_by_b(a, b, ca, cb, origin_a, url)
        ra, rb = await first, await second
        again = await cb.get(url())
    assert ra.content == data and ra.headers["x-cache"] == "MISS"
    assert rb.content == data and rb.headers["x-cache"] == "COALESCED"
    assert again.headers["x-cache"] == "HIT"
    assert len(origin_a.object_requests()) == 1 and origin_b.object_requests() == []


async def test_a_failed_fill_aborts_the_tailing_edge_too(pair, url, tmp_path):
    a, b, origin_a, origin_b = pair(upstream_retries=0)
    origin_a.faults = [Fault(gate_after=100_000, reset_after=150_000)]
    async with serving(a) as ca, serving(b) as cb:
        first, second = await fill_on_a_tailed_by_b(a, b, ca, cb, origin_a, url)
        for task in (first, second):
            with pytest.raises(cut_short()):
                await task
    assert origin_b.object_requests() == []
    assert not list((tmp_path / "cache" / "objects").rglob("*.*"))


async def test_tailer_verifies_an_object_too_big_for_the_disk_tier_itself(pair, url, data):
    # The filler cannot keep it (bigger than the disk bound) and deletes its part; the
    # tailer holds every byte and checks the sha256 itself instead of failing.
    a, b, origin_a, origin_b = pair(cache_disk_max_bytes=100_000)
    origin_a.faults = [Fault(gate_after=100_000)]
    async with serving(a) as ca, serving(b) as cb:
        first, second = await fill_on_a_tailed_by_b(a, b, ca, cb, origin_a, url)
        ra, rb = await first, await second
    assert ra.content == data and rb.content == data
    assert origin_b.object_requests() == []


async def test_tailer_rejects_bytes_that_do_not_verify(pair, url, tmp_path):
    a, b, origin_a, origin_b = pair()
    origin_a.faults = [Fault(gate_after=100_000, corrupt=True)]
    async with serving(a) as ca, serving(b) as cb:
        first, second = await fill_on_a_tailed_by_b(a, b, ca, cb, origin_a, url)
        for task in (first, second):
            with pytest.raises(cut_short()):
                await task
    assert not list((tmp_path / "cache" / "objects").rglob("*.*"))


async def test_a_stale_part_from_a_crashed_filler_is_not_served(pair, url, data):
    a, _, _, _ = pair()
    async with serving(a) as ca:
        with open(
            a.disk.part_path(entry_name(KEY)), "wb"
        ) as fh:  # a crashed filler's leftover, lock not held
            fh.write(b"garbage")
        r = await ca.get(url())
    assert r.status_code == 200 and r.content == data and r.headers["x-cache"] == "MISS"
