"""The catalog on S3 (moto) and the ``s3`` signer: presigned URLs straight from the bucket."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from origin.manifest import Manifest
from origin.store import open_store
from tests.delivery.conftest import _ingest, client_for
from tests.delivery.sigv4 import presign_signature

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # slow: moto S3 server


async def test_s3_catalog_and_presigned_urls(make_app, auth, clips, s3_store_url):
    done = _ingest(clips["chirp"], "s3-chirp", s3_store_url, "Beeps on S3")
    app = make_app(store=s3_store_url, signer="s3")
    async with client_for(app) as c:
        r = await c.get("/v1/tracks/s3-chirp/stream?quality=high", headers=auth("sam", "premium"))
        assert r.status_code == 200, r.text
        answer = r.json()
        missing = await c.get("/v1/tracks/not-on-s3/stream", headers=auth())
        assert missing.json()["error"]["code"] == "track_not_found"
    assert answer["version"] == done.version
    store = open_store(s3_store_url)
    manifest = Manifest.from_json(store.get_bytes(f"tracks/s3-chirp/{done.version}/manifest.json"))
    async with httpx.AsyncClient(timeout=10) as http:
        for rendition in answer["renditions"]:
            url = rendition["url"]
            q = parse_qs(urlsplit(url).query)
            assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]  # SigV4 even on a custom endpoint
            assert q["X-Amz-Expires"] == ["900"]
            # moto does not check signatures, so check it independently.
            assert q["X-Amz-Signature"] == [
                presign_signature(
                    method="GET",
                    url=url,
                    secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                    region="us-east-1",
                )
            ]
            got = await http.get(url)
            assert got.status_code == 200
            expected = manifest.rendition(rendition["bitrate_kbps"])
            assert len(got.content) == expected.bytes
            assert got.content == store.get_bytes(expected.key)
