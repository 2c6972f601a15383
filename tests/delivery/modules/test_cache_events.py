"""Hot-playlist pages on another worker follow a re-indexed track (track.indexed)."""

from __future__ import annotations

import pytest

from tests.delivery.conftest import client_for
from tests.delivery.modules.conftest import ADMIN_TOKEN, build_app
from tests.delivery.modules.support import publish_manifest

pytestmark = pytest.mark.anyio


async def test_a_cached_page_on_another_worker_shows_the_new_metadata(
    app, api, auth, uid, store, database, user_secret_bytes
):
    other = build_app(database, store, user_secret_bytes)  # a second worker process
    owner, track = uid("o"), uid("t")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    first = publish_manifest(store, track, title="Before")
    r = await api.post(
        "/v1/admin/events",
        json={"event": "track.published", "track_id": track, "version": first},
        headers=admin,
    )
    assert r.status_code == 202
    r = await api.post("/v1/me/playlists", json={"name": "p"}, headers=auth(owner))
    pid = r.json()["id"]
    r = await api.post(
        f"/v1/playlists/{pid}/items",
        json={"uris": [f"audiocdn:track:{track}"]},
        headers=auth(owner),
    )
    assert r.status_code == 201
    other.state.services.events.run_once()
    async with client_for(other) as b:
        page = f"/v1/playlists/{pid}/items"
        r = await b.get(page, headers=auth(owner))
        assert r.json()["items"][0]["track"]["name"] == "Before"  # now cached on "other"
        second = publish_manifest(store, track, title="After")
        r = await api.post(
            "/v1/admin/events",
            json={"event": "track.published", "track_id": track, "version": second},
            headers=admin,
        )
        assert r.status_code == 202
        other.state.services.events.run_once()
        r = await b.get(page, headers=auth(owner))
        assert r.json()["items"][0]["track"]["name"] == "After"
