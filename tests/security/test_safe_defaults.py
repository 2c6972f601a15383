"""Safe by default (issue 11): what an anonymous caller or a bad token gets from defaults.

* Dev mode (generated secrets, ``POST /v1/dev/token``) is opt-in in delivery and
  the edge; ``delivery serve`` refuses it on a non-loopback address unless forced.
* Without dev mode and without secrets, ``delivery serve`` stops with one line
  naming what to configure.
* The delivery database is private (0600) like the secrets beside it.
* The edge refuses correctly signed tokens issued in the future or valid for
  longer than delivery ever issues (a leaked key or a signer bug), every time.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import httpx
import jwt
import pytest

from common.signing_keys import eddsa_signing_key, ensure_dev_keypair
from delivery.app import create_app as create_delivery
from delivery.settings import DeliverySettings
from edge.app import create_app as create_edge
from edge.settings import EdgeSettings
from edge.token import sign_stream_token
from origin.local import LocalStore
from tests.edge.conftest import serving
from tests.support.servers import part_env, run_part_cli

ROOT = Path(__file__).resolve().parents[2]
KEY = "tracks/t1/0123456789abcdef/160.ogg"
PATH = "/" + KEY
YEAR = 365 * 86400


def delivery_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m delivery ARGS`` with only the given DELIVERY_ variables set."""
    full = part_env(("DELIVERY_", "EDGE_"), **env)
    return run_part_cli("delivery", args, cwd=cwd, env=full)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("delivery: error: ")
    return lines[0]


# -- dev mode is opt-in -------------------------------------------------------------------


def test_dev_mode_is_off_by_default_in_delivery_and_edge():
    assert DeliverySettings.model_fields["dev_mode"].default is False
    assert DeliverySettings.model_fields["dev_mode_allow_remote"].default is False
    assert EdgeSettings.model_fields["dev_mode"].default is False


@pytest.fixture
def default_delivery(tmp_path, monkeypatch):
    """A delivery app on default settings plus the secrets production must configure."""
    for name in [n for n in os.environ if n.startswith("DELIVERY_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    private, _ = ensure_dev_keypair(tmp_path / "keys")
    settings = DeliverySettings(
        store=(tmp_path / "origin").as_uri(),
        jwt_hs256_secrets=["u" * 40],
        signing_key_file=private,
    )
    app = create_delivery(settings)
    yield app
    app.state.services.db.close()


@pytest.mark.anyio
async def test_anonymous_caller_cannot_mint_tokens_on_defaults(default_delivery, tmp_path):
    transport = httpx.ASGITransport(app=default_delivery)
    async with httpx.AsyncClient(transport=transport, base_url="http://delivery.test") as c:
        for user in ("premium-user", "free-user", "alice"):
            r = await c.post("/v1/dev/token", json={"user_id": user})
            assert r.status_code == 404, r.text
            assert "access_token" not in r.text
        config = (await c.get("/player/config.json")).json()
        assert config["dev_mode"] is False and config["demo_users"] == []
    # ... and nothing was generated on disk.
    assert not (tmp_path / "data" / "secrets").exists()
    assert not (tmp_path / "data" / "keys").exists()


def test_default_database_is_private(default_delivery, tmp_path):
    db = tmp_path / "data" / "delivery.db"  # DELIVERY_DATABASE_URL's default, relative
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["serve", "--host", "0.0.0.0"], {}),
        (["serve"], {"DELIVERY_HOST": "0.0.0.0"}),
        (["serve"], {"DELIVERY_HOST": "::"}),
        (["serve", "--host", "192.0.2.10"], {}),
        (["serve", "--host", "delivery.example"], {}),
    ],
)
def test_dev_mode_refuses_a_non_loopback_bind(tmp_path, args, env):
    done = delivery_cli(args, tmp_path, DELIVERY_DEV_MODE="true", **env)
    line = one_error_line(done)
    assert "DELIVERY_DEV_MODE" in line and "DELIVERY_HOST" in line
    assert "DELIVERY_DEV_MODE_ALLOW_REMOTE" in line
    assert not (tmp_path / "data").exists()  # refused before anything was generated


@pytest.mark.slow
def test_a_non_loopback_bind_in_dev_mode_can_be_forced(tmp_path):
    # Forced: the check passes and start-up goes on (here to a key file that does not
    # exist, so the test never actually listens on every interface).
    done = delivery_cli(
        ["serve", "--host", "0.0.0.0"],
        tmp_path,
        DELIVERY_DEV_MODE="true",
        DELIVERY_DEV_MODE_ALLOW_REMOTE="true",
        DELIVERY_SIGNING_KEY_FILE=str(tmp_path / "absent.pem"),
        DELIVERY_STORE=(tmp_path / "origin").as_uri(),
    )
    assert done.returncode == 2, done.stderr
    assert "DELIVERY_DEV_MODE_ALLOW_REMOTE" in done.stderr  # a loud warning, logged
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("delivery: error: DELIVERY_SIGNING_KEY_FILE")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_loopback_addresses(host):
    from delivery.cli import is_loopback

    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "delivery", "", "127.0.0.1.nip.io"])
def test_non_loopback_addresses(host):
    from delivery.cli import is_loopback

    assert not is_loopback(host)


@pytest.mark.slow
def test_without_dev_mode_missing_secrets_are_one_line_naming_what_to_set(tmp_path):
    line = one_error_line(delivery_cli(["serve"], tmp_path))
    for name in ("DELIVERY_JWKS", "DELIVERY_JWT_HS256_SECRETS", "DELIVERY_DEV_MODE"):
        assert name in line
    # With a user-token secret, the stream-signing key is what is missing next.
    line = one_error_line(delivery_cli(["serve"], tmp_path, DELIVERY_JWT_HS256_SECRETS="u" * 40))
    assert "DELIVERY_SIGNING_KEY_FILE" in line and "DELIVERY_SIGNING_HS256_SECRET" in line
    assert not (tmp_path / "data" / "secrets").exists()
    assert not (tmp_path / "data" / "keys").exists()


# -- the edge bounds token times ----------------------------------------------------------


@pytest.fixture
def edge_setup(tmp_path):
    private, public = ensure_dev_keypair(tmp_path / "keys")
    store = LocalStore(tmp_path / "origin")
    store.put_bytes(KEY, os.urandom(4096))
    settings = EdgeSettings(
        upstream=store.url,
        token_public_keys=str(public),
        cache_dir=tmp_path / "cache",
        access_log="off",
        pull_token="pull-" + "p" * 40,
    )
    return create_edge(settings), eddsa_signing_key(private.read_bytes())


@pytest.mark.anyio
async def test_edge_refuses_far_future_and_endless_tokens_signed_with_the_real_key(edge_setup):
    app, key = edge_setup
    now = int(time.time())

    def forged(**claims) -> str:
        body = {"path": PATH, "sub": "attacker", **claims}
        return jwt.encode(body, key.key, algorithm="EdDSA", headers={"kid": key.kid})

    attacks = {
        "token_not_yet_valid": [
            sign_stream_token(PATH, key=key, ttl_s=3600, sub="a", now=now + 3 * YEAR),
            forged(iat=now + 10 * YEAR, exp=now + 10 * YEAR + 60),
        ],
        "token_lifetime_too_long": [
            forged(iat=now, exp=10**30),
            forged(iat=now - 60, exp=now + 2 * 86400),
            forged(iat=0, exp=2**62),
        ],
        "token_malformed": [
            forged(iat=now, exp=1e30),
            forged(iat=now, exp=float("inf")),
            forged(iat=True, exp=now + 60),
        ],
    }
    async with serving(app) as client:
        legit = sign_stream_token(PATH, key=key, ttl_s=900, sub="listener")
        ok = await client.get(f"{PATH}?token={legit}")
        assert ok.status_code == 200
        max_age = int(ok.headers["cache-control"].split("max-age=")[1].split(",")[0])
        assert 0 < max_age <= 900
        for code, tokens in attacks.items():
            for token in tokens:
                for _ in range(2):  # a refusal is never memoised into an acceptance
                    r = await client.get(f"{PATH}?token={token}")
                    assert r.status_code == 403, (code, r.text)
                    assert r.json()["error"]["code"] == code
                    assert r.content != ok.content
