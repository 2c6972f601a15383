"""Subscription tiers: the admin endpoint, the database, the cache."""

from __future__ import annotations

import pytest

from delivery.db import open_database
from delivery.tiers import InvalidUserId, TierStore, UnknownTier
from tests.delivery.conftest import client_for

pytestmark = pytest.mark.anyio


def admin(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_set_tier_upgrades_the_stream(client, auth, admin_token):
    r = await client.get("/v1/tracks/sine/stream?quality=high", headers=auth("hana"))
    assert (r.json()["bitrate_kbps"], r.json()["capped"]) == (160, True)
    r = await client.put(
        "/v1/admin/users/hana/tier", json={"tier": "premium"}, headers=admin(admin_token)
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["user_id"], body["tier"]) == ("hana", "premium")
    assert body["updated_at"].endswith("Z")
    r = await client.get("/v1/tracks/sine/stream?quality=high", headers=auth("hana"))
    assert (r.json()["bitrate_kbps"], r.json()["capped"]) == (320, False)
    r = await client.get("/v1/admin/users/hana", headers=admin(admin_token))
    assert r.json()["tier"] == "premium"


async def test_unknown_users_are_free(client, admin_token):
    r = await client.get("/v1/admin/users/nobody", headers=admin(admin_token))
    assert r.json() == {"user_id": "nobody", "tier": "free", "updated_at": None}


# Every admin route, with a body that would be accepted: the one check (require_admin) decides.
ADMIN_ROUTES = [
    ("PUT", "/v1/admin/users/x/tier", {"tier": "premium"}),
    ("GET", "/v1/admin/users/x", None),
    ("POST", "/v1/admin/events", {"event": "track.published", "track_id": "sine"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-123456", "Basic x", "Bearer", "Bearer {admin} extra", "{admin}"],
)
async def test_admin_token_required(client, admin_token, mint, method, path, body, authorization):
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(admin=admin_token)
    r = await client.request(method, path, json=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == 'Bearer realm="delivery-admin"'
    # A user token is not an admin token.
    r = await client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {mint('x')}"}
    )
    assert r.status_code == 401


async def test_the_admin_check_comes_before_the_body_is_validated(client):
    r = await client.put("/v1/admin/users/x/tier", json={"tier": 5})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/v1/admin/users/x/tier", {"tier": "gold"}, "unknown_tier"),
        ("/v1/admin/users/x/tier", {"tier": ""}, "invalid_request"),
        ("/v1/admin/users/x/tier", {}, "invalid_request"),
        ("/v1/admin/users/x/tier", {"tier": "premium", "extra": 1}, "invalid_request"),
        ("/v1/admin/users/x/tier", ["premium"], "invalid_request"),
        ("/v1/admin/users/has%20space/tier", {"tier": "premium"}, "invalid_user_id"),
    ],
)
async def test_bad_admin_input_is_400(client, admin_token, path, body, code):
    r = await client.put(path, json=body, headers=admin(admin_token))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


async def test_invalid_json_body_is_400(client, admin_token):
    r = await client.put(
        "/v1/admin/users/x/tier",
        content=b"{nope",
        headers={**admin(admin_token), "Content-Type": "application/json"},
    )
    assert r.status_code == 400


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_api_disabled_without_tokens(make_app, method, path, body):
    app = make_app(admin_tokens=[])
    async with client_for(app) as c:
        r = await c.request(method, path, json=body, headers=admin("x" * 20))
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "admin_disabled"
    assert "DELIVERY_ADMIN_TOKENS" in error["message"]


def test_tier_store(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 't.db'}")
    db.migrate()
    store = TierStore(db, ["free", "premium"], "free", cache_ttl_s=60)
    assert store.lookup("ann") is None
    store.set("ann", "premium")
    assert store.lookup("ann") == "premium"  # the writer forgets its cached "None"
    assert store.get("ann").tier == "premium"
    store.set("ann", "free")
    assert store.get("ann").tier == "free"
    with pytest.raises(UnknownTier):
        store.set("ann", "gold")
    with pytest.raises(InvalidUserId):
        store.set("a b", "free")
    db.close()


def test_other_workers_see_a_change_after_the_cache_ttl(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 't.db'}")
    db.migrate()
    worker_a = TierStore(db, ["free", "premium"], "free", cache_ttl_s=3600)
    worker_b = TierStore(db, ["free", "premium"], "free", cache_ttl_s=0)
    assert worker_a.lookup("bo") is None
    worker_b.set("bo", "premium")
    assert worker_a.lookup("bo") is None  # stale until its TTL
    worker_a.forget("bo")
    assert worker_a.lookup("bo") == "premium"
    db.close()
