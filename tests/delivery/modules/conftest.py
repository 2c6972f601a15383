"""Fixtures for the modules' tests: one database per test module and backend, a real app.

Every test that takes ``database`` (or anything built on it) runs twice: on
SQLite (a temporary file) and on the session's real PostgreSQL server, in a
fresh schema that is dropped afterwards. The app is the delivery service's own,
built by :func:`delivery.app.create_app` on that database and a store; users are
authenticated by its HS256 authenticator with a per-session secret.
"""

from __future__ import annotations

import secrets
import uuid

import pytest
from fastapi import FastAPI

from delivery.app import create_app
from delivery.auth import mint_user_token
from delivery.settings import DeliverySettings
from tests.delivery.conftest import client_for

ADMIN_TOKEN = secrets.token_urlsafe(24)
# Small enough to reach in a test; the default (10,000) is checked on its own.
TEST_PLAYLIST_MAX_ITEMS = 250


@pytest.fixture(scope="session")
def user_secret_bytes() -> bytes:
    return secrets.token_hex(32).encode()


def modules_settings(**overrides) -> DeliverySettings:
    """Delivery settings for the modules' tests (``overrides`` on top).

    The modules sign no URLs: the nginx signer needs no key file. Tokens carry no
    issuer or audience.
    """
    values = {
        "dev_mode": False,
        "playlist_max_items": TEST_PLAYLIST_MAX_ITEMS,
        "admin_tokens": [ADMIN_TOKEN],
        "jwt_issuer": "",
        "jwt_audience": "",
        "signer": "nginx",
        "nginx_secret": "modules-tests-nginx-secret",
        "edge_url": "http://edge.test:8080",
        "rate_limit_per_s": 0,
    }
    values.update(overrides)
    return DeliverySettings(**values)


def build_app(db, store, secret: bytes, settings: DeliverySettings | None = None) -> FastAPI:
    """The delivery app (``create_app``) on this database and store, accepting ``secret``."""
    settings = (settings or modules_settings()).model_copy(
        update={"jwt_hs256_secrets": [secret.decode()]}
    )
    return create_app(settings, store=store, db=db)


@pytest.fixture(scope="module")
def app(database, store, user_secret_bytes) -> FastAPI:
    return build_app(database, store, user_secret_bytes)


@pytest.fixture
def modules(app):
    return app.state.services.modules


@pytest.fixture
async def api(app):
    async with client_for(app) as client:
        yield client


@pytest.fixture
def auth(user_secret_bytes):
    """``auth("alice")`` -> the Authorization header of a valid token for alice."""

    def headers(user: str) -> dict[str, str]:
        token = mint_user_token(user_secret_bytes, user, ttl_s=600, issuer=None, audience=None)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def uid():
    """Fresh ids per test, so tests sharing a module's database never see each other."""

    def make(prefix: str = "u") -> str:
        return f"{prefix}{uuid.uuid4().hex[:10]}"

    return make
