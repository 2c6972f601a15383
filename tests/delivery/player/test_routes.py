"""The player's routes on the real delivery app: the page, its assets, config, dev tokens."""

from __future__ import annotations

import re

import jwt
import pytest

from delivery.player.routes import ASSETS, DEMO_USERS, PAGE_CSP, STATIC_DIR
from tests.delivery.conftest import AUDIENCE, ISSUER, client_for

pytestmark = pytest.mark.anyio


async def test_page_is_served_with_its_content_security_policy(client):
    r = await client.get("/player")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == PAGE_CSP
    assert "script-src 'self'" in PAGE_CSP and "unsafe" not in PAGE_CSP
    assert '<script type="module" src="/player/assets/player.js">' in r.text
    assert '<audio id="audio"' in r.text and 'crossorigin="anonymous"' in r.text
    # Plain files, no external URL anywhere (no CDN, no fonts).
    for name in ("/player", *(f"/player/assets/{a}" for a in ASSETS if a != "icon.svg")):
        body = (await client.get(name)).text
        assert "https://" not in body and "http://" not in body.replace("http://www.w3.org", ""), (
            name
        )


def test_every_module_the_page_imports_is_served():
    # The modules import each other by relative URL; a file missing from ASSETS would be
    # a 404 in the browser and a page that never starts.
    imported = set()
    for js in STATIC_DIR.glob("*.js"):
        imported |= set(re.findall(r'from "\./([a-z]+\.js)"', js.read_text()))
    assert imported, "no relative imports found: the pattern is stale"
    assert imported | {"player.js"} == {name for name in ASSETS if name.endswith(".js")}
    assert all((STATIC_DIR / name).is_file() for name in ASSETS)


async def test_assets_have_types_and_revalidate_with_etag(client):
    js = await client.get("/player/assets/player.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert (
        (await client.get("/player/assets/player.css"))
        .headers["content-type"]
        .startswith("text/css")
    )
    again = await client.get(
        "/player/assets/player.js", headers={"If-None-Match": js.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "name", ["routes.py", "..%2Froutes.py", "index.html", "%2E%2E%2F__init__.py", "PLAYER.JS"]
)
async def test_only_the_listed_assets_are_served(client, name):
    r = await client.get(f"/player/assets/{name}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_trailing_slash_redirects_to_the_page(client):
    r = await client.get("/player/")
    assert r.status_code == 308 and r.headers["location"] == "/player"


async def test_without_dev_mode_there_are_no_demo_users_and_no_dev_tokens(client):
    config = (await client.get("/player/config.json")).json()
    assert config["dev_mode"] is False and config["demo_users"] == []
    assert config["qualities"] == ["auto", "low", "normal", "high"]
    assert config["library"] is True  # the page shows the library views
    r = await client.post("/v1/dev/token", json={"user_id": "free-user"})
    assert r.status_code == 404
    assert r.json() == {"error": {"status": 404, "code": "not_found", "message": "Not Found"}}


@pytest.fixture
def dev_app(make_app, user_secret):
    return make_app(dev_mode=True, jwt_hs256_secrets=[user_secret])


async def test_dev_tokens_work_on_the_api_with_the_database_tier(dev_app, user_secret):
    dev_app.state.services.tiers.set("free-user", "free")
    async with client_for(dev_app) as c:
        config = (await c.get("/player/config.json")).json()
        assert [u["user_id"] for u in config["demo_users"]] == list(DEMO_USERS)
        r = await c.post("/v1/dev/token", json={"user_id": "free-user"})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        body = r.json()
        assert (body["user_id"], body["tier"], body["token_type"]) == (
            "free-user",
            "free",
            "Bearer",
        )
        claims = jwt.decode(
            body["access_token"],
            user_secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
        )
        assert claims["sub"] == "free-user" and "tier" not in claims  # the database decides
        assert claims["exp"] - claims["iat"] == body["expires_in"] == 3600
        me = await c.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json() == {"user_id": "free-user", "tier": "free", "entitled_bitrates": [96, 160]}
        stream = await c.get(
            "/v1/tracks/sine/stream",
            params={"quality": "high"},
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
        assert (stream.json()["bitrate_kbps"], stream.json()["capped"]) == (160, True)


async def test_a_demo_user_the_database_does_not_know_gets_the_demo_tier(dev_app):
    async with client_for(dev_app) as c:
        body = (await c.post("/v1/dev/token", json={"user_id": "premium-user"})).json()
        assert body["tier"] == "premium"
        me = await c.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json()["tier"] == "premium"
        # Once the database knows the user, it wins (`delivery users set-tier`).
        dev_app.state.services.tiers.set("premium-user", "free")
        body = (await c.post("/v1/dev/token", json={"user_id": "premium-user"})).json()
        assert body["tier"] == "free"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"user_id": "alice"}, "unknown_demo_user"),
        ({"user_id": "free-user", "tier": "premium"}, "invalid_request"),
        ({}, "invalid_request"),
        ({"user_id": "x" * 65}, "invalid_request"),
    ],
)
async def test_dev_tokens_only_for_demo_users(dev_app, payload, code):
    async with client_for(dev_app) as c:
        r = await c.post("/v1/dev/token", json=payload)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == code
