"""Wiring: install_modules on a bare app, and inside the real delivery app factory."""

from __future__ import annotations

import secrets

import httpx
import pytest
from fastapi import FastAPI

from common.signing_keys import ensure_dev_keypair
from delivery.app import create_app
from delivery.auth import mint_user_token
from delivery.modules import install_modules
from delivery.outbox import OutboxEventBus
from delivery.settings import DeliverySettings
from tests.delivery.modules.conftest import modules_settings
from tests.delivery.modules.support import publish_manifest

pytestmark = pytest.mark.anyio


def test_install_creates_the_bus_and_subscribes_the_handlers(database, store):
    app = FastAPI()
    app.state.db = database
    app.state.store = store
    install_modules(app, modules_settings())
    bus = app.state.events
    assert isinstance(bus, OutboxEventBus)
    assert bus.subscribers("track.published") == ["search.index_track"]
    assert bus.subscribers("playlist.changed") == ["search.index_playlist"]
    assert bus.subscribers("play.recorded") == ["popularity.count_play"]
    paths = set(app.openapi()["paths"])
    for path in (
        "/v1/search",
        "/v1/me/playlists",
        "/v1/playlists/{playlist_id}/items",
        "/v1/me/following",
        "/v1/me/plays",
        "/v1/admin/events",
        "/v1/tracks/{track_id}/friends-listened",
        "/v1/me/player/recently-played",
    ):
        assert path in paths


def test_install_keeps_an_existing_bus(database, store):
    app = FastAPI()
    app.state.db = database
    app.state.store = store
    bus = OutboxEventBus(database)
    app.state.events = bus
    install_modules(app, modules_settings())
    assert app.state.events is bus


def test_install_needs_a_database():
    with pytest.raises(RuntimeError, match="app.state.db"):
        install_modules(FastAPI(), modules_settings())


def test_bad_settings_fail_loudly(monkeypatch):
    from delivery.modules.settings import load_modules_settings

    monkeypatch.setenv("DELIVERY_PLAYLIST_MAX_ITEMS", "0")
    with pytest.raises(ValueError, match="DELIVERY_PLAYLIST_MAX_ITEMS"):
        load_modules_settings()


async def test_inside_the_delivery_app(database, store, tmp_path):
    """The real factory: its admin tokens, its authenticator, our routes and handlers."""
    user_secret = secrets.token_hex(32)
    admin = secrets.token_urlsafe(24)
    settings = DeliverySettings(
        dev_mode=False,
        data_dir=tmp_path / "data",
        store=store.url,
        database_url=database.url,
        jwt_hs256_secrets=[user_secret],
        jwt_issuer="iss-test",
        jwt_audience="aud-test",
        admin_tokens=[admin],
        signing_key_file=ensure_dev_keypair(tmp_path / "keys")[0],
        rate_limit_per_s=0,
    )
    app = create_app(settings, store=store, db=database)
    assert app.state.modules.db is database
    token = mint_user_token(
        user_secret.encode(), "wired-user", ttl_s=600, issuer="iss-test", audience="aud-test"
    )
    user = {"Authorization": f"Bearer {token}"}
    version = publish_manifest(store, "wired-track", title="Wiredsong", artist="Factory")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery.test"
    ) as api:
        r = await api.post(
            "/v1/admin/events",
            json={"event": "track.published", "track_id": "wired-track", "version": version},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 202, r.text
        r = await api.get("/v1/search", params={"q": "wiredsong", "type": "track"}, headers=user)
        assert [t["id"] for t in r.json()["tracks"]["items"]] == ["wired-track"]
        r = await api.post("/v1/me/playlists", json={"name": "Wired"}, headers=user)
        assert r.status_code == 201, r.text
        assert (await api.get("/v1/me/playlists")).status_code == 401
        pid = r.json()["id"]
        r = await api.post(
            f"/v1/playlists/{pid}/items",
            json={"uris": ["audiocdn:track:wired-track"]},
            headers=user,
        )
        assert r.status_code == 201, r.text
        for _ in range(2):  # a miss, then a hit
            assert (await api.get(f"/v1/playlists/{pid}", headers=user)).status_code == 200
        # The cache's hit ratio is on the app's own /metrics.
        metrics = (await api.get("/metrics")).text
        assert 'delivery_playlist_cache_hit_ratio{cache="playlist"} 0.5' in metrics
