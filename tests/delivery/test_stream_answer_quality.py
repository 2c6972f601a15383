"""What the stream answer tells a player about quality: each rendition's real average
bitrate beside its rung, and the source it was made from (the web player's badge)."""

from __future__ import annotations

import pytest

from tests.delivery.test_api_stream import manifest_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("tier", ["free", "premium"])
async def test_renditions_carry_their_real_average_and_the_source(
    client, auth, media_catalog, tier
):
    r = await client.get("/v1/tracks/noise/stream", headers=auth("alice", tier))
    assert r.status_code == 200, r.text
    body = r.json()
    manifest = manifest_of(media_catalog, "noise")
    for rendition in body["renditions"]:
        expected = manifest.rendition(rendition["bitrate_kbps"])
        assert rendition["avg_bitrate_kbps"] == expected.avg_bitrate_kbps
        assert 0 < rendition["avg_bitrate_kbps"]
    assert body["source"] == {
        "codec": manifest.source.codec,
        "lossless": manifest.source.lossless,
        "bitrate_kbps": manifest.source.bitrate_kbps,
    }


async def test_the_openapi_document_shows_the_new_fields(client):
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert "avg_bitrate_kbps" in schemas["SignedRendition"]["properties"]
    assert "source" in schemas["StreamAnswer"]["properties"]
    assert set(schemas["StreamSource"]["properties"]) == {"codec", "lossless", "bitrate_kbps"}
