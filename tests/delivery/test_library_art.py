"""Cover art end to end: the encoder extracts it, delivery signs it, the edge serves it.

A real encoder run on a FLAC with an embedded PNG cover publishes into a LocalStore; the
delivery app (edge signer, Ed25519) indexes the track and lists it with signed art URLs;
an edge pulling from the origin server (both in-process, the real apps) answers those
URLs with the image and its Content-Type, and refuses an unsigned or tampered one.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from mutagen.flac import FLAC, Picture

from delivery.app import create_app as create_delivery
from delivery.auth import mint_user_token
from delivery.settings import DeliverySettings
from edge.app import EdgeApp
from edge.settings import EdgeSettings
from encoder import ingest
from encoder.cover_art import image_dimensions
from encoder.settings import load_settings as encoder_settings
from origin.local import LocalStore
from origin.server import create_app as create_origin
from tests.delivery import media
from tests.delivery.conftest import client_for

pytestmark = [pytest.mark.slow, pytest.mark.anyio]  # ffmpeg encodes

PULL_TOKEN = "pull-" + secrets.token_hex(20)
USER_SECRET = secrets.token_hex(32)


def ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    exe = encoder_settings().ffmpeg_exe
    return subprocess.run([exe, "-hide_banner", "-nostdin", *args], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def covered_flac(tmp_path_factory) -> tuple[Path, bytes]:
    """A 2 s FLAC whose front cover is a 400x300 PNG; returns it and the PNG's bytes."""
    folder = tmp_path_factory.mktemp("covered")
    cover = folder / "cover.png"
    ffmpeg("-v", "error", "-f", "lavfi", "-i", "testsrc=s=400x300", "-frames:v", "1", str(cover))
    clip = media.make_clip(folder / "covered.flac", "sine=frequency=330", 2.0, "Covered")
    flac = FLAC(clip)
    flac["album"], flac["genre"] = "Pictures", "Test"
    pic = Picture()
    pic.type, pic.mime, pic.data = 3, "image/png", cover.read_bytes()
    flac.add_picture(pic)
    flac.save()
    return clip, cover.read_bytes()


@pytest.fixture(scope="module")
def published(covered_flac, tmp_path_factory) -> LocalStore:
    store = LocalStore(tmp_path_factory.mktemp("origin"))
    work = tmp_path_factory.mktemp("work")
    ingest(covered_flac[0], "covered", store, settings=encoder_settings(work_dir=work))
    ingest(media.make_clip(work / "bare.flac", "sine=frequency=440", 2.0, "Bare"), "bare", store,
           settings=encoder_settings(work_dir=work))  # fmt: skip
    return store


@pytest.fixture
def delivery(published, stream_keys, tmp_path):
    settings = DeliverySettings(
        dev_mode=False,
        data_dir=tmp_path / "data",
        store=published.url,
        database_url=f"sqlite:///{tmp_path / 'delivery.db'}",
        jwt_hs256_secrets=[USER_SECRET],
        jwt_issuer="",
        jwt_audience="",
        admin_tokens=[secrets.token_urlsafe(24)],
        signing_key_file=stream_keys[0],
        edge_url="http://edge.test",
        rate_limit_per_s=0,
    )
    app = create_delivery(settings)
    for track_id in ("covered", "bare"):
        app.state.services.modules.track_index.index_track(track_id)
    yield app
    app.state.services.db.close()


@pytest.fixture
async def edge(published, stream_keys, tmp_path):
    settings = EdgeSettings(
        upstream="http://origin.test",
        token_public_keys=str(stream_keys[1]),
        cache_dir=tmp_path / "edge-cache",
        access_log="off",
        pull_token=PULL_TOKEN,
        dev_mode=False,
    )
    origin = httpx.ASGITransport(app=create_origin(published, [PULL_TOKEN]))
    app = EdgeApp(settings, transport=origin)
    async with app.running():
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            yield client


def user() -> dict[str, str]:
    token = mint_user_token(USER_SECRET.encode(), "listener", ttl_s=600, issuer=None, audience=None)
    return {"Authorization": f"Bearer {token}"}


def local(url: str) -> str:
    parts = urlsplit(url)
    assert parts.netloc == "edge.test"
    return f"{parts.path}?{parts.query}"


async def library_art(delivery) -> dict[str, dict | None]:
    async with client_for(delivery) as client:
        r = await client.get("/v1/library/tracks", params={"sort": "title"}, headers=user())
    assert r.status_code == 200, r.text
    return {t["id"]: t["art"] for t in r.json()["items"]}


async def test_the_edge_serves_signed_art_with_its_content_type(
    delivery, edge, covered_flac, tmp_path
):
    art = await library_art(delivery)
    assert art["bare"] is None  # no cover: no image, no placeholder
    r = await edge.get(local(art["covered"]["url"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content == covered_flac[1]
    r = await edge.get(local(art["covered"]["thumbnail_url"]))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(r.content)
    report = ffmpeg("-i", f"file:{thumb}", "-f", "null", "-").stderr.decode()
    assert image_dimensions(report) == (300, 225)
    again = await edge.get(local(art["covered"]["thumbnail_url"]))
    assert again.content == r.content and again.headers["x-cache"] == "HIT"
    # Within a URL window the same URLs come back: the browser's cache can answer.
    assert (await library_art(delivery))["covered"] == art["covered"]


async def test_the_edge_refuses_unsigned_and_tampered_art_urls(delivery, edge):
    art = (await library_art(delivery))["covered"]
    cover = urlsplit(art["url"])
    thumb = urlsplit(art["thumbnail_url"])
    r = await edge.get(cover.path)
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_missing"
    r = await edge.get(f"{thumb.path}?{cover.query}")  # the cover's token on the thumbnail
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_path_mismatch"
    token = cover.query.removeprefix("token=")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    r = await edge.get(f"{cover.path}?token={flipped}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_bad_signature"
    r = await edge.get(cover.path.replace("cover.png", "cover.gif") + f"?{cover.query}")
    assert r.status_code in (400, 404)
