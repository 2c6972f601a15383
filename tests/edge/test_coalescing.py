"""One upstream fetch per object however many clients ask, served while it is written."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from edge.app import create_app
from tests.edge.conftest import KEY, serving
from tests.edge.fakeorigin import FakeOrigin, Fault
from tests.support.waiting import wait_for_async

pytestmark = pytest.mark.anyio


async def wait_for(predicate, what: str) -> None:
    await wait_for_async(predicate, what=what, timeout=30)


async def test_200_concurrent_clients_on_a_cold_object_make_one_upstream_fetch(make_settings, url):
    data = os.urandom(1_000_000)
    origin = FakeOrigin({KEY: data})
    # Hold the upstream mid-body until every client has joined, so all 200 are
    # provably concurrent with the one fill (no timing assumptions).
    origin.faults = [Fault(gate_after=100_000)]
    app = create_app(make_settings(), transport=origin.transport())
    async with serving(app) as client:
        target = url()
        tasks = [asyncio.create_task(client.get(target)) for _ in range(200)]
        await wait_for(lambda: app.stats.misses + app.stats.coalesced == 200, "all joined")
        assert len(origin.object_requests()) == 1
        origin.gate.set()
        responses = await asyncio.gather(*tasks)
    assert len(origin.object_requests()) == 1
    assert all(r.status_code == 200 for r in responses)
    digests = {hashlib.sha256(r.content).hexdigest() for r in responses}
    assert digests == {hashlib.sha256(data).hexdigest()}
    caches = sorted(r.headers["x-cache"] for r in responses)
    assert caches.count("MISS") == 1 and caches.count("COALESCED") == 199


async def test_ranges_during_a_fill_are_served_from_the_bytes_already_there(make_settings, url):
    """Read-while-write: with EDGE_HOLD_UNVERIFIED=false a range inside the downloaded
    prefix completes while the upstream is still stuck mid-body."""
    data = os.urandom(600_000)
    origin = FakeOrigin({KEY: data})
    origin.faults = [Fault(gate_after=200_000)]
    app = create_app(make_settings(hold_unverified=False), transport=origin.transport())
    async with serving(app) as client:
        full = asyncio.create_task(client.get(url()))
        await wait_for(lambda: app.stats.misses == 1, "fill started")
        early = await client.get(url(), headers={"range": "bytes=1000-150999"})
        assert not full.done()  # the whole object is still blocked upstream
        origin.gate.set()
        whole = await full
    assert early.status_code == 206 and early.content == data[1000:151000]
    assert early.headers["x-cache"] == "COALESCED"
    assert early.headers["content-range"] == "bytes 1000-150999/600000"
    assert whole.content == data
    assert len(origin.object_requests()) == 1


async def test_held_back_range_completes_once_the_object_verified(make_settings, url):
    data = os.urandom(400_000)
    origin = FakeOrigin({KEY: data})
    origin.faults = [Fault(gate_after=300_000)]
    app = create_app(make_settings(), transport=origin.transport())
    async with serving(app) as client:
        early = asyncio.create_task(client.get(url(), headers={"range": "bytes=0-999"}))
        await wait_for(lambda: app.stats.misses == 1, "fill started")
        # edge_origin_bytes counts what the fill wrote, so the range's bytes are there.
        await wait_for(lambda: app.stats.origin_bytes >= 300_000, "the gated prefix in the fill")
        assert not early.done()  # its bytes are there, but the last one waits for the sha
        origin.gate.set()
        r = await early
    assert r.status_code == 206 and r.content == data[:1000]


async def test_a_client_that_leaves_does_not_stop_the_fill(make_settings, url, tmp_path):
    data = os.urandom(300_000)
    origin = FakeOrigin({KEY: data})
    origin.faults = [Fault(gate_after=50_000)]
    app = create_app(make_settings(), transport=origin.transport())
    async with serving(app) as client:
        leaving = asyncio.create_task(client.get(url()))
        await wait_for(lambda: app.stats.misses == 1, "fill started")
        leaving.cancel()
        origin.gate.set()
        await wait_for(lambda: len(app.fills) == 0, "fill finished")
        r = await client.get(url())
    assert r.headers["x-cache"] == "HIT" and r.content == data
    assert len(origin.object_requests()) == 1


async def test_head_and_conditional_requests_on_a_cold_object(make_settings, url):
    data = os.urandom(10_000)
    origin = FakeOrigin({KEY: data})
    app = create_app(make_settings(), transport=origin.transport())
    async with serving(app) as client:
        head = await client.head(url())
        etag = head.headers["etag"]
        cond = await client.get(url(), headers={"if-none-match": etag})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "10000"
    assert cond.status_code == 304 and cond.content == b""
    assert len(origin.object_requests()) == 1
