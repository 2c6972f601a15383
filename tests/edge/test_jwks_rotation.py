"""Stream-token keys from delivery's JWKS (``EDGE_TOKEN_JWKS_URL``): rotation without restarts.

A small HTTP server plays delivery's ``/.well-known/jwks.json`` (the document
itself is :func:`common.signing_keys.jwks_document`, what delivery serves; delivery's
route is tested in ``tests/delivery/test_stream_jwks.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.signing_keys import SigningKey, eddsa_signing_key, jwks_document, verification_key_for
from edge.app import create_app
from edge.errors import EdgeConfigError
from edge.token import sign_stream_token
from tests.edge.conftest import KEY, put_random, serving
from tests.support.http_stub import QuietHandler, StubServer
from tests.support.servers import VENV_BIN, free_port, serve_edge

PATH = "/" + KEY


def new_key() -> SigningKey:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return eddsa_signing_key(pem)


class JwksServer:
    """Serves a JWKS document that tests change at will, and counts the fetches."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.fetches += 1
                doc = jwks_document(verification_key_for(k) for k in outer.keys)
                self.send_body(200, json.dumps(doc).encode())

        self._server = StubServer(Handler)
        self.url = f"{self._server.url}/.well-known/jwks.json"

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def jwks_server(ed_key):
    server = JwksServer(ed_key)
    try:
        yield server
    finally:
        server.stop()


def token(key: SigningKey, path: str = PATH, ttl: int = 600) -> str:
    return sign_stream_token(path, key=key, ttl_s=ttl, sub="user-1")


# -- in-process ----------------------------------------------------------------------


@pytest.fixture
def jwks_edge(make_settings, store, jwks_server):
    put_random(store, KEY, 1000)

    def build(**overrides):
        values = {
            "upstream": store.url,
            "token_jwks_url": jwks_server.url,
            "token_public_keys": "",
            "token_hs256_secrets": "",
        }
        values.update(overrides)
        return create_app(make_settings(**values))

    return build


@pytest.mark.anyio
async def test_unknown_kid_refreshes_once_and_concurrent_requests_share_it(
    jwks_edge, jwks_server, ed_key
):
    rotated = new_key()
    async with serving(jwks_edge(token_jwks_min_refresh_interval_s=0)) as client:
        assert (await client.get(f"{PATH}?token={token(ed_key)}")).status_code == 200
        assert jwks_server.fetches == 1  # at start-up
        jwks_server.keys.append(rotated)
        answers = await asyncio.gather(
            *(client.get(f"{PATH}?token={token(rotated, ttl=600 + i)}") for i in range(20))
        )
    assert [r.status_code for r in answers] == [200] * 20
    assert jwks_server.fetches == 2  # one refresh, shared by the twenty requests


@pytest.mark.anyio
async def test_junk_kids_cannot_make_the_edge_hammer_delivery(jwks_edge, jwks_server):
    async with serving(jwks_edge()) as client:  # default: one refresh per 30 s at most
        codes = []
        for i in range(50):
            forged = jwt.encode(
                {"path": PATH, "sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60},
                new_key().key,
                algorithm="EdDSA",
                headers={"kid": f"junk-{i}"},
            )
            r = await client.get(f"{PATH}?token={forged}")
            codes.append(r.json()["error"]["code"])
    assert codes == ["token_bad_signature"] * 50
    assert jwks_server.fetches == 1  # the start-up fetch; the limit held every refresh back


@pytest.mark.slow
@pytest.mark.anyio
async def test_periodic_refresh_picks_up_a_new_key(jwks_edge, jwks_server):
    rotated = new_key()
    app = jwks_edge(token_jwks_refresh_s=1, token_jwks_min_refresh_interval_s=0)
    async with app.running():
        jwks_server.keys.append(rotated)
        deadline = time.monotonic() + 10
        while rotated.kid not in app.verifier.kids:
            assert time.monotonic() < deadline, "the periodic refresh never ran"
            await asyncio.sleep(0.05)
        assert jwks_server.fetches >= 2


@pytest.mark.anyio
async def test_start_up_fails_without_jwks_unless_other_keys_are_configured(make_settings):
    dead = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    only_jwks = create_app(
        make_settings(token_jwks_url=dead, token_public_keys="", token_hs256_secrets="")
    )
    with pytest.raises(EdgeConfigError, match="EDGE_TOKEN_JWKS_URL: cannot fetch JWKS"):
        await only_jwks.startup()
    await only_jwks.shutdown()
    # With an HS256 secret configured as well, the edge starts (and keeps retrying).
    fallback = create_app(make_settings(token_jwks_url=dead, token_public_keys=""))
    async with serving(fallback) as client:
        assert (await client.get("/livez")).status_code == 200
        assert fallback.verifier.kids  # the HS256 key


@pytest.mark.anyio
async def test_an_empty_jwks_is_refused_when_it_is_the_only_source(make_settings):
    server = JwksServer()  # what an HS256-signing delivery publishes: no keys at all
    try:
        app = create_app(
            make_settings(token_jwks_url=server.url, token_public_keys="", token_hs256_secrets="")
        )
        with pytest.raises(EdgeConfigError, match="no usable signing key"):
            await app.startup()
        await app.shutdown()
    finally:
        server.stop()


# -- a real edge process -------------------------------------------------------------


@pytest.mark.slow
def test_key_rotation_through_jwks_without_restarting_the_edge(
    tmp_path, store, jwks_server, ed_key
):
    put_random(store, KEY, 100_000)

    edge, base = serve_edge(
        {
            "EDGE_UPSTREAM": store.url,
            "EDGE_TOKEN_JWKS_URL": jwks_server.url,
            "EDGE_TOKEN_JWKS_MIN_REFRESH_INTERVAL_S": "0.2",
            "EDGE_CACHE_DIR": str(tmp_path / "cache"),
            "EDGE_ACCESS_LOG": "off",
            "EDGE_DEV_MODE": "false",
            "EDGE_LOG_LEVEL": "warning",
        },
        cwd=tmp_path,  # no ./data/keys here: every key comes from the JWKS
    )
    with edge, httpx.Client(base_url=base, timeout=10) as c:
        pid = c.get("/readyz").json()["pid"]
        assert c.get(f"{PATH}?token={token(ed_key)}").status_code == 200
        rotated = new_key()  # a kid the edge has never seen
        time.sleep(0.3)  # past the refresh rate limit of the start-up fetch
        before = c.get(f"{PATH}?token={token(rotated)}")
        assert before.status_code == 403
        assert before.json()["error"]["code"] == "token_bad_signature"
        jwks_server.keys.append(rotated)  # delivery now publishes it
        time.sleep(0.3)
        after = c.get(f"{PATH}?token={token(rotated, ttl=900)}")
        assert after.status_code == 200, after.text
        assert c.get(f"{PATH}?token={token(ed_key, ttl=700)}").status_code == 200
        assert c.get("/readyz").json()["pid"] == pid  # the same process: no restart


@pytest.mark.slow
def test_edge_serve_with_an_unreachable_jwks_stops_with_one_line(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    env = {
        **os.environ,
        "EDGE_UPSTREAM": f"file://{tmp_path / 'store'}",
        "EDGE_TOKEN_JWKS_URL": dead,
        "EDGE_CACHE_DIR": str(tmp_path / "cache"),
        "EDGE_DEV_MODE": "false",
        "EDGE_TOKEN_JWKS_TIMEOUT_S": "2",
    }
    env.pop("EDGE_TOKEN_PUBLIC_KEYS", None)
    env.pop("EDGE_TOKEN_HS256_SECRETS", None)
    done = subprocess.run(
        [str(VENV_BIN / "edge"), "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge serve: EDGE_TOKEN_JWKS_URL: "), lines
