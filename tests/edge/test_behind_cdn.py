"""Edges behind a CDN or shield (issue 10): Cache-Control by credential, CORS expose
headers, and health that keeps an edge with its origin down in rotation."""

from __future__ import annotations

import httpx
import pytest

from edge.app import create_app
from tests.edge.conftest import KEY, PULL_TOKEN, serving
from tests.edge.fakeorigin import FakeOrigin

pytestmark = pytest.mark.anyio

PATH = "/" + KEY
OTHER = "tracks/t2/0123456789abcdef/96.ogg"
PULL = {"authorization": f"Bearer {PULL_TOKEN}"}
PUBLIC = "public, max-age=31536000, immutable"
EXPOSED = {"content-range", "accept-ranges", "etag", "x-cache", "content-length"}


@pytest.fixture
def origin() -> FakeOrigin:
    return FakeOrigin({KEY: b"a" * 200_000, OTHER: b"b" * 50_000})


@pytest.fixture
def edge(make_settings, origin):
    def build(**overrides):
        return create_app(make_settings(**overrides), transport=origin.transport())

    return build


def exposed(response: httpx.Response) -> set[str]:
    value = response.headers.get("access-control-expose-headers", "")
    return {name.strip().lower() for name in value.split(",") if name.strip()}


async def test_pull_token_responses_are_public_and_user_token_ones_private(edge, url):
    # A big memory bound for the first app, none for the second: every tier is checked
    # (fill, memory hit, disk hit) for both credentials.
    for memory in (64 << 20, 0):
        app = edge(cache_memory_max_bytes=memory, cache_memory_max_object_bytes=memory)
        async with serving(app) as client:
            answers = [
                await client.get(PATH, headers=PULL),  # MISS (or a disk hit, second round)
                await client.get(PATH, headers=PULL),  # HIT
                await client.get(PATH, headers={**PULL, "range": "bytes=0-99"}),
                await client.head(PATH, headers=PULL),
            ]
            for r in answers:
                assert r.status_code in (200, 206), r.text
                assert r.headers["cache-control"] == PUBLIC
            etag = answers[0].headers["etag"]
            not_modified = await client.get(PATH, headers={**PULL, "if-none-match": etag})
            assert not_modified.status_code == 304
            assert not_modified.headers["cache-control"] == PUBLIC

            user = [
                await client.get(url(ttl=600)),
                await client.get(url(), headers={"range": "bytes=5-9"}),
            ]
            for r in user:
                assert r.status_code in (200, 206)
                cc = r.headers["cache-control"]
                assert cc.startswith("private, max-age=") and cc.endswith(", immutable")
                assert 0 < int(cc.split("max-age=")[1].split(",")[0]) <= 600


async def test_pull_max_age_is_a_setting(edge):
    async with serving(edge(pull_max_age_s=3600)) as client:
        r = await client.get(PATH, headers=PULL)
    assert r.headers["cache-control"] == "public, max-age=3600, immutable"


async def test_audio_responses_expose_headers_to_other_origins(edge, url):
    async with serving(edge()) as client:
        miss = await client.get(url())
        hit = await client.get(url())
        ranged = await client.get(url(), headers={"range": "bytes=10-19"})
        cond = await client.get(url(), headers={"if-none-match": hit.headers["etag"]})
        pulled = await client.get(PATH, headers=PULL)
        outside = await client.get(url(), headers={"range": "bytes=999999999-"})
    for r in (miss, hit, ranged, cond, pulled, outside):
        assert r.headers["access-control-allow-origin"] == "*"
        assert exposed(r) == EXPOSED, r.headers
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert ranged.status_code == 206 and cond.status_code == 304 and outside.status_code == 416


async def test_origin_down_keeps_the_edge_serving_its_cache(edge, origin, url):
    app = edge(upstream_retries=0, breaker_failures=2)
    async with serving(app) as client:
        assert (await client.get(url())).status_code == 200  # cached while the origin is up
        assert (await client.get("/readyz")).json()["status"] == "ok"

        origin.down = True
        app.upstream._health = (0.0, True)  # forget the probe result cached while it was up
        cached = await client.get(url())
        ranged = await client.get(url(), headers={"range": "bytes=100-199"})
        uncached = [await client.get(url(OTHER)) for _ in range(3)]
        health = await client.get("/healthz")
        live = await client.get("/livez")
        ready = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
    assert cached.status_code == 200 and cached.headers["x-cache"] == "HIT"
    assert cached.content == b"a" * 200_000
    assert ranged.status_code == 206 and ranged.content == b"a" * 100
    # Misses fail cleanly: a JSON error (502, then 503 with Retry-After once the breaker
    # opens), never a hang or a 500.
    for r in uncached:
        assert r.status_code in (502, 503), r.text
        assert r.json()["error"]["code"] in ("upstream_unavailable", "upstream_circuit_open")
    assert uncached[-1].status_code == 503 and "retry-after" in uncached[-1].headers
    assert health.status_code == 200 and live.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["upstream"] == "down"
    assert "edge_upstream_up 0.0" in metrics
