"""Wiring: the delivery app factory builds the modules, subscribes their handlers, routes them."""

from __future__ import annotations

import secrets

import httpx
import pytest

from common.signing_keys import ensure_dev_keypair
from delivery.app import create_app
from delivery.auth import mint_user_token
from delivery.modules.container import Modules
from delivery.outbox import OutboxEventBus
from delivery.services import Services
from delivery.settings import DeliverySettings, SettingsError, load_settings
from tests.delivery.modules.support import publish_manifest

pytestmark = pytest.mark.anyio


def test_one_container_holds_the_modules_and_their_bus(app, database, store):
    services = app.state.services
    assert isinstance(services, Services) and isinstance(services.modules, Modules)
    assert (services.db, services.store) == (database, store)
    # Nothing else is kept on app.state: routes read the container through one dependency.
    assert set(vars(app.state)["_state"]) == {"services"}
    bus = services.events
    assert isinstance(bus, OutboxEventBus)
    assert bus.subscribers("track.published") == ["search.index_track", "delivery.catalog.forget"]
    assert bus.subscribers("playlist.changed") == ["search.index_playlist"]
    assert bus.subscribers("play.recorded") == ["popularity.count_play"]
    assert bus.subscribers("track.indexed") == ["playlists.cache.forget"]
    assert bus.subscribers("tier.changed") == ["delivery.tiers.forget"]
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


def test_a_bad_module_setting_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DELIVERY_PLAYLIST_MAX_ITEMS", "0")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith("DELIVERY_PLAYLIST_MAX_ITEMS: ")
    assert "\n" not in str(err.value)


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
    assert app.state.services.db is database
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
        # The cache's lookups are on the app's own /metrics.
        metrics = (await api.get("/metrics")).text
        for result in ("miss", "hit"):
            sample = (
                f'delivery_playlist_cache_requests_total{{cache="playlist",result="{result}"}} 1.0'
            )
            assert sample in metrics
