"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import re

import pytest

from origin.errors import StoreUnavailable
from tests.delivery.conftest import client_for

pytestmark = pytest.mark.anyio


class UnreachableStore:
    """A store whose backend is down (fault injection for readiness)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def exists(self, key: str) -> bool:
        raise StoreUnavailable("connection refused")

    def get_bytes(self, key: str) -> bytes:
        raise StoreUnavailable("connection refused")


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "store": "ok"}}


async def test_not_ready_when_the_store_is_down(make_settings, auth):
    from delivery.app import create_app

    settings = make_settings()
    app = create_app(settings, store=UnreachableStore(settings.store))
    try:
        async with client_for(app) as c:
            assert (await c.get("/healthz")).status_code == 200  # alive, just not ready
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"]["store"].startswith("failed: StoreUnavailable")
            stream = await c.get("/v1/tracks/sine/stream", headers=auth())
            assert stream.status_code == 503
            assert stream.json()["error"]["code"] == "catalog_unavailable"
    finally:
        app.state.services.db.close()


async def test_metrics_count_requests_and_signatures(client, auth):
    await client.get("/v1/tracks/sine/stream", headers=auth("m", "premium"))
    await client.get("/v1/tracks/sine/stream?quality=high", headers=auth("n", "free"))
    await client.get("/v1/tracks/missing/stream", headers=auth())
    await client.get("/v1/tracks/ghost/stream", headers=auth())
    await client.get("/no/such/route")
    text = (await client.get("/metrics")).text
    assert 'delivery_url_signatures_total{signer="edge"} 5.0' in text
    assert 'delivery_stream_answers_total{bitrate="160",capped="true",tier="free"} 1.0' in text
    assert 'delivery_stream_answers_total{bitrate="320",capped="false",tier="premium"} 1.0' in text
    assert (
        'delivery_http_requests_total{method="GET",route="/v1/tracks/{track_id}/stream",'
        'status="404"} 2.0'
    ) in text
    assert 'route="unmatched",status="404"' in text
    # missing + ghost read latest.json once each; sine read latest + manifest.
    assert "delivery_catalog_store_reads_total 4.0" in text
    assert "delivery_http_request_duration_seconds_bucket" in text


async def test_openapi_documents_the_api(client):
    spec = (await client.get("/openapi.json")).json()
    stream = spec["paths"]["/v1/tracks/{track_id}/stream"]["get"]
    assert {p["name"] for p in stream["parameters"]} >= {"track_id", "quality", "version"}
    assert stream["security"] == [{"bearer": []}]
    assert "StreamAnswer" in spec["components"]["schemas"]
    assert "/v1/admin/users/{user_id}/tier" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_api_docs_load_nothing_from_other_hosts(client):
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    # Every URL the page loads: src/href attributes, url(...) and JS string literals.
    external = re.findall(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>)]*""", html)
    assert external == []
    assets = set(re.findall(r"""(?:src|href)=["']?(/[^"'\s>]+)""", html))
    assets |= set(re.findall(r"""["'](/docs/static/[^"']+)["']""", html))
    assert any(a.endswith(".js") for a in assets), html
    for asset in assets:
        got = await client.get(asset)
        assert got.status_code == 200, asset
        assert len(got.content) > 1000, asset
    # ReDoc's bundle fetches its logo from the vendor's CDN at run time: not offered.
    assert (await client.get("/redoc")).status_code == 404


async def test_root_redirects_to_the_player(client):
    r = await client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/player"
