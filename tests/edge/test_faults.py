"""Upstream faults injected through httpx.MockTransport: what clients see, what gets cached."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from edge.app import create_app
from edge.errors import ResponseAborted
from tests.edge.conftest import KEY, access_lines, call_raw, cut_short, serving
from tests.edge.fakeorigin import FakeOrigin, Fault

pytestmark = pytest.mark.anyio

SIZE = 200_000


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def origin(data) -> FakeOrigin:
    return FakeOrigin({KEY: data})


@pytest.fixture
def edge(make_settings, origin):
    def build(**overrides):
        return create_app(make_settings(**overrides), transport=origin.transport())

    return build


def cache_files(tmp_path) -> list:
    return [p for p in (tmp_path / "cache" / "objects").rglob("*") if p.is_file()]


async def test_clean_fill_is_cached_and_served_from_cache_after(edge, origin, data, url, tmp_path):
    async with serving(edge()) as client:
        first = await client.get(url())
        second = await client.get(url())
    assert first.status_code == 200 and first.content == data
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT" and second.content == data
    assert len(origin.object_requests()) == 1
    assert origin.object_requests()[0].headers["authorization"].startswith("Bearer ")
    assert len(cache_files(tmp_path)) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_persistent_5xx_is_retried_then_502_and_nothing_cached(
    edge, origin, url, tmp_path, status
):
    origin.faults = [Fault(status=status)] * 10
    async with serving(edge(upstream_retries=2)) as client:
        r = await client.get(url())
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unavailable"
    assert len(origin.object_requests()) == 3  # one try + two retries, then give up
    assert cache_files(tmp_path) == []


async def test_transient_503_is_retried_and_served(edge, origin, data, url):
    origin.faults = [Fault(status=503)]
    async with serving(edge(upstream_retries=2)) as client:
        r = await client.get(url())
    assert r.status_code == 200 and r.content == data
    assert len(origin.object_requests()) == 2


async def test_upstream_requests_and_failures_are_metrics(edge, origin, url):
    origin.faults = [Fault(status=503), Fault(raise_exc=httpx.ConnectError)]
    async with serving(edge(upstream_retries=2)) as client:
        assert (await client.get(url())).status_code == 200
        text = (await client.get("/metrics")).text
    assert "edge_upstream_requests_total 3.0" in text
    assert 'edge_upstream_failures_total{reason="http_503"} 1.0' in text
    assert 'edge_upstream_failures_total{reason="connect"} 1.0' in text


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout])
async def test_connect_errors_and_timeouts_are_retried(edge, origin, data, url, exc):
    origin.faults = [Fault(raise_exc=exc)]
    async with serving(edge(upstream_retries=1)) as client:
        r = await client.get(url())
    assert r.status_code == 200 and r.content == data
    assert len(origin.object_requests()) == 2


async def test_timeouts_exhausting_retries_give_502(edge, origin, url, tmp_path):
    origin.faults = [Fault(raise_exc=httpx.ReadTimeout)] * 5
    async with serving(edge(upstream_retries=1)) as client:
        r = await client.get(url())
    assert r.status_code == 502
    assert "ReadTimeout" in r.json()["error"]["message"]
    assert cache_files(tmp_path) == []


async def test_reset_mid_body_is_resumed_with_a_range_and_bytes_are_exact(
    edge, origin, data, url, tmp_path
):
    origin.faults = [Fault(reset_after=70_000)]
    async with serving(edge()) as client:
        r = await client.get(url())
        again = await client.get(url())
    assert r.status_code == 200 and r.content == data
    requests = origin.object_requests()
    assert len(requests) == 2
    assert requests[1].headers["range"] == "bytes=70000-"
    assert again.headers["x-cache"] == "HIT" and again.content == data
    assert len(cache_files(tmp_path)) == 1


async def test_reset_mid_body_every_time_aborts_the_client_and_caches_nothing(
    edge, origin, url, tmp_path
):
    origin.faults = [Fault(reset_after=50_000)] * 10
    app = edge(upstream_retries=2)
    async with serving(app) as client:
        with pytest.raises(cut_short()):
            await client.get(url())
        assert app.stats.fill_failures == {"upstream_unavailable": 1}
    assert len(origin.object_requests()) == 3  # the fetch + two resumes
    assert cache_files(tmp_path) == []
    assert list((tmp_path / "cache" / "parts").iterdir()) == []
    line = access_lines(tmp_path)[-1]
    assert line["aborted"] is True and line["status"] == 200


async def test_aborted_response_carries_fewer_bytes_than_content_length(edge, origin, url):
    """What a client sees when the upstream dies for good: an incomplete body, never a
    complete wrong one (over real sockets too, in test_processes.py)."""
    origin.faults = [Fault(reset_after=50_000)] * 10
    app = edge(upstream_retries=1)
    async with app.running():
        with pytest.raises(ResponseAborted):
            await call_raw(app, url())
    assert 0 < len(call_raw.last_body) < SIZE


async def test_fewer_bytes_than_content_length_is_resumed(edge, origin, data, url):
    origin.faults = [Fault(short_after=30_000)]
    async with serving(edge()) as client:
        r = await client.get(url())
    assert r.status_code == 200 and r.content == data
    assert origin.object_requests()[1].headers["range"] == "bytes=30000-"


async def test_persistently_short_body_is_never_cached(edge, origin, url, tmp_path):
    origin.faults = [Fault(short_after=30_000)] + [Fault(short_after=0)] * 5
    async with serving(edge(upstream_retries=2)) as client:
        with pytest.raises(cut_short()):
            await client.get(url())
    assert cache_files(tmp_path) == []


async def test_sha_mismatch_aborts_before_the_last_byte_and_is_not_cached(
    edge, origin, url, tmp_path
):
    origin.faults = [Fault(corrupt=True)]
    app = edge()
    async with app.running():
        with pytest.raises(ResponseAborted):
            await call_raw(app, url())
        assert app.stats.fill_failures == {"upstream_integrity": 1}
    # Everything but the held-back last byte went out; the response never completed.
    assert len(call_raw.last_body) == SIZE - 1
    assert cache_files(tmp_path) == []


async def test_sha_mismatch_then_a_clean_fetch_recovers(edge, origin, data, url):
    origin.faults = [Fault(corrupt=True)]
    async with serving(edge()) as client:
        with pytest.raises(cut_short()):
            await client.get(url())
        r = await client.get(url())
    assert r.status_code == 200 and r.content == data
    assert r.headers["x-cache"] == "MISS"


async def test_upstream_404_is_a_404_and_401_is_a_502(edge, origin, url):
    async with serving(edge()) as client:
        missing = await client.get(url("tracks/nope/0123456789abcdef/96.ogg"))
        origin.faults = [Fault(status=401)]
        refused = await client.get(url())
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "object_not_found"
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "upstream_rejected"


async def test_circuit_breaker_opens_and_fails_fast(edge, origin, url):
    origin.faults = [Fault(status=500)] * 100
    app = edge(upstream_retries=0, breaker_failures=3, breaker_reset_s=60)
    async with serving(app) as client:
        for _ in range(3):
            assert (await client.get(url())).status_code == 502
        before = len(origin.object_requests())
        r = await client.get(url())
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "upstream_circuit_open"
    assert "retry-after" in r.headers
    assert len(origin.object_requests()) == before  # the open breaker sent nothing upstream


async def test_breaker_half_open_probe_closes_it_again(edge, origin, data, url):
    origin.faults = [Fault(status=500)] * 2
    app = edge(upstream_retries=0, breaker_failures=2, breaker_reset_s=60)
    async with serving(app) as client:
        for _ in range(2):
            await client.get(url())
        breaker = next(iter(app.upstream.breakers.values()))
        assert breaker.state == "open"
        breaker.opened_at -= 61  # as if reset_s had elapsed
        r = await client.get(url())
    assert r.status_code == 200 and r.content == data
    assert breaker.state == "closed"


async def test_shields_fail_over_and_each_object_has_one_home(make_settings, data, url, tmp_path):
    keys = [f"tracks/t{i}/0123456789abcdef/96.ogg" for i in range(12)]
    objects = {k: os.urandom(1000) for k in keys}
    alive = FakeOrigin(objects)
    seen: dict[str, list[str]] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.setdefault(request.url.host, []).append(request.url.path)
        if request.url.host == "dead.test":
            raise httpx.ConnectError("refused", request=request)
        return await alive.handler(request)

    settings = make_settings(upstream="http://a.test,http://dead.test", upstream_retries=0)
    app = create_app(settings, transport=httpx.MockTransport(handler))
    async with serving(app) as client:
        for k in keys:
            r = await client.get(url(k))
            assert r.status_code == 200 and r.content == objects[k]
    # Every object was served; the ones whose home was the dead shield failed over.
    homed_dead = set(seen.get("dead.test", []))
    assert homed_dead and len(homed_dead) < len(keys)
    assert {p for p in seen["a.test"]} == {"/" + k for k in keys}


async def test_store_upstream_serves_and_maps_missing_to_404(store_edge, store, url):
    data = os.urandom(50_000)
    store.put_bytes(KEY, data)
    async with serving(store_edge()) as client:
        r = await client.get(url())
        missing = await client.get(url("tracks/t9/0123456789abcdef/96.ogg"))
    assert r.status_code == 200 and r.content == data and r.headers["x-cache"] == "MISS"
    assert missing.status_code == 404


async def test_readyz_reports_upstream_readiness(edge, origin, make_settings):
    async with serving(edge()) as client:
        ok = await client.get("/readyz")
    assert ok.status_code == 200 and ok.json()["status"] == "ok" and ok.json()["ready"] is True

    async def down(request):
        raise httpx.ConnectError("refused", request=request)

    app = create_app(make_settings(), transport=httpx.MockTransport(down))
    async with serving(app) as client:
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
        live = await client.get("/livez")
        metrics = (await client.get("/metrics")).text
    # Degraded, not unready: an edge with its upstream down still serves its cache.
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["upstream"] == "down"
    assert health.status_code == 200 and live.status_code == 200
    assert "edge_upstream_up 0.0" in metrics


async def test_readyz_is_503_when_the_cache_is_unusable(edge, tmp_path):
    async with serving(edge()) as client:
        shutil.rmtree(tmp_path / "cache")
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert health.status_code == 200
