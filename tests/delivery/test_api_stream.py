"""GET /v1/tracks/{id}/stream over the real catalog (encoder-ingested clips)."""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from origin.manifest import Manifest
from origin.store import open_store

pytestmark = pytest.mark.anyio

CASES = [
    # tier, quality, bitrate, capped
    ("free", "low", 96, False),
    ("free", "normal", 160, False),
    ("free", "high", 160, True),
    ("free", "auto", 160, False),
    ("premium", "low", 96, False),
    ("premium", "normal", 160, False),
    ("premium", "high", 320, False),
    ("premium", "auto", 320, False),
]
ENTITLED = {"free": [96, 160], "premium": [96, 160, 320]}


def manifest_of(catalog, track_id: str, version: str | None = None) -> Manifest:
    store = open_store(catalog.url)
    version = version or catalog.latest(track_id)
    return Manifest.from_json(store.get_bytes(f"tracks/{track_id}/{version}/manifest.json"))


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


@pytest.mark.parametrize(("tier", "quality", "bitrate", "capped"), CASES)
async def test_tier_and_quality_pick_the_bitrate(
    client, auth, media_catalog, edge_verifier, tier, quality, bitrate, capped
):
    r = await client.get(f"/v1/tracks/sine/stream?quality={quality}", headers=auth("alice", tier))
    assert r.status_code == 200, r.text
    body = r.json()
    manifest = manifest_of(media_catalog, "sine")
    assert body["bitrate_kbps"] == bitrate
    assert body["capped"] is capped
    assert body["tier"] == tier
    assert (body["track_id"], body["version"]) == ("sine", media_catalog.latest("sine"))
    assert (body["codec"], body["container"]) == ("vorbis", "ogg")
    assert [r["bitrate_kbps"] for r in body["renditions"]] == ENTITLED[tier]
    for rendition in body["renditions"]:
        expected = manifest.rendition(rendition["bitrate_kbps"])
        assert rendition["bytes"] == expected.bytes
        path = urlsplit(rendition["url"]).path
        assert path == "/" + expected.key
        # Every rendition is signed for exactly its own path.
        claims = edge_verifier.verify(token_of(rendition["url"]), path)
        assert claims.exp == int(
            datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
        )
    chosen = [r for r in body["renditions"] if r["bitrate_kbps"] == bitrate]
    assert body["url"] == chosen[0]["url"]
    assert body["url"].startswith("http://edge.test:8080/tracks/sine/")
    assert body["duration_s"] == pytest.approx(manifest.duration_s, abs=0.01)
    assert body["loudness"] == manifest.loudness.model_dump(mode="json")
    assert r.headers["cache-control"] == "private, no-store"


async def test_default_quality_is_auto(client, auth):
    body = (await client.get("/v1/tracks/noise/stream", headers=auth("p", "premium"))).json()
    assert (body["bitrate_kbps"], body["capped"]) == (320, False)


async def test_url_lives_at_least_15_minutes(client, auth, edge_verifier):
    before = int(time.time())
    body = (await client.get("/v1/tracks/chirp/stream", headers=auth())).json()
    claims = edge_verifier.verify(token_of(body["url"]), urlsplit(body["url"]).path)
    assert claims.exp - claims.iat == 900
    assert before <= claims.iat <= int(time.time())


async def test_ttl_stretches_to_twice_the_duration_and_stops_at_the_cap(
    make_app, auth, edge_verifier, media_catalog
):
    from tests.delivery.conftest import client_for

    duration = manifest_of(media_catalog, "noise").duration_s
    app = make_app(url_ttl_s=10, url_ttl_duration_factor=50)
    async with client_for(app) as c:
        body = (await c.get("/v1/tracks/noise/stream", headers=auth())).json()
    claims = edge_verifier.verify(token_of(body["url"]), urlsplit(body["url"]).path)
    assert claims.exp - claims.iat == pytest.approx(duration * 50, abs=1)

    app = make_app(url_ttl_s=10, url_ttl_duration_factor=50, url_ttl_max_s=60)
    async with client_for(app) as c:
        body = (await c.get("/v1/tracks/noise/stream", headers=auth())).json()
    claims = edge_verifier.verify(token_of(body["url"]), urlsplit(body["url"]).path)
    assert claims.exp - claims.iat == 60


async def test_pinned_version_is_served(client, auth, media_catalog):
    old, new = media_catalog.versions["sine"]
    assert old != new
    body = (await client.get(f"/v1/tracks/sine/stream?version={old}", headers=auth())).json()
    assert body["version"] == old
    assert f"/tracks/sine/{old}/" in body["url"]
    latest = (await client.get("/v1/tracks/sine/stream", headers=auth())).json()
    assert latest["version"] == new


async def test_unknown_track_is_404_track_not_found(client, auth):
    r = await client.get("/v1/tracks/no-such-track/stream", headers=auth())
    assert r.status_code == 404
    assert r.json() == {
        "error": {"status": 404, "code": "track_not_found", "message": "no track 'no-such-track'"}
    }


async def test_unknown_version_is_404(client, auth):
    r = await client.get("/v1/tracks/sine/stream?version=0000000000000000", headers=auth())
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "version_not_found"
    r = await client.get("/v1/tracks/nothing/stream?version=0000000000000000", headers=auth())
    assert r.json()["error"]["code"] == "track_not_found"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("quality=ultra", "invalid_request"),
        ("quality=", "invalid_request"),
        ("version=ABCDEF0123456789", "invalid_version"),
        ("version=../../etc", "invalid_version"),
        ("version=" + "a" * 65, "invalid_version"),
    ],
)
async def test_bad_parameters_are_400(client, auth, query, code):
    r = await client.get(f"/v1/tracks/sine/stream?{query}", headers=auth())
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


@pytest.mark.parametrize("track_id", ["-dash-first", "a.b", "x" * 65, "%2e%2e", "sp%20ace", "%00"])
async def test_bad_track_ids_are_400(client, auth, track_id):
    r = await client.get(f"/v1/tracks/{track_id}/stream", headers=auth())
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in ("invalid_track_id", "invalid_request")


@pytest.mark.parametrize("path", ["..%2F..%2Fetc", "..", "%2e%2e%2f%2e%2e", "a%2Fb"])
async def test_path_traversal_never_reaches_the_store(app, client, auth, path):
    resolver = app.state.services.resolver
    reads = resolver.store_reads
    r = await client.get(f"/v1/tracks/{path}/stream", headers=auth())
    assert r.status_code in (400, 404)
    assert r.json()["error"]["code"] in ("invalid_track_id", "not_found")
    assert resolver.store_reads == reads


async def test_client_ip_binding(make_app, auth, edge_verifier):
    from edge.token import TokenIpMismatch
    from tests.delivery.conftest import client_for

    app = make_app(bind_client_ip=True)
    async with client_for(app) as c:
        body = (await c.get("/v1/tracks/chirp/stream", headers=auth())).json()
    path = urlsplit(body["url"]).path
    # httpx's ASGITransport presents the client as 127.0.0.1.
    assert (
        edge_verifier.verify(token_of(body["url"]), path, client_ip="127.0.0.1").ip == "127.0.0.1"
    )
    with pytest.raises(TokenIpMismatch):
        edge_verifier.verify(token_of(body["url"]), path, client_ip="10.0.0.9")


async def test_sub_claim_is_an_opaque_stable_pseudonym(client, auth, edge_verifier):
    urls = []
    for _ in range(2):
        body = (await client.get("/v1/tracks/chirp/stream", headers=auth("alice"))).json()
        urls.append(body["url"])
    other = (await client.get("/v1/tracks/chirp/stream", headers=auth("bob"))).json()["url"]
    subs = [edge_verifier.verify(token_of(u), urlsplit(u).path).sub for u in [*urls, other]]
    assert subs[0] == subs[1] != subs[2]
    assert "alice" not in subs[0] and subs[0].startswith("u-")


async def test_track_metadata(client, auth, media_catalog):
    r = await client.get("/v1/tracks/sine", headers=auth("f", "free"))
    assert r.status_code == 200
    body = r.json()
    manifest = manifest_of(media_catalog, "sine")
    assert body["version"] == manifest.version
    assert body["tags"]["title"] == manifest.tags["title"]
    assert [r["bitrate_kbps"] for r in body["renditions"]] == [96, 160, 320]
    assert [r["entitled"] for r in body["renditions"]] == [True, True, False]
    assert body["entitled_bitrates"] == [96, 160]
    assert body["duration_s"] == pytest.approx(manifest.duration_s, abs=0.01)
    assert "url" not in str(body["renditions"])
    r = await client.get("/v1/tracks/none-here", headers=auth())
    assert r.json()["error"]["code"] == "track_not_found"


async def test_me(client, auth):
    r = await client.get("/v1/me", headers=auth("carol", "premium"))
    assert r.json() == {"user_id": "carol", "tier": "premium", "entitled_bitrates": [96, 160, 320]}
