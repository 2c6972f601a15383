"""Fixtures for the modules' tests: one database per test module and backend, a real app.

Every test that takes ``database`` (or anything built on it) runs twice: on
SQLite (a temporary file) and on the session's real PostgreSQL server, in a
fresh schema that is dropped afterwards. Users are authenticated by the
delivery service's own HS256 authenticator with a per-session secret.
"""

from __future__ import annotations

import secrets
import uuid
from types import SimpleNamespace

import pytest
from fastapi import FastAPI

from delivery.auth import JwtAuthenticator, mint_user_token
from delivery.errors import install_error_handlers
from delivery.modules import install_modules
from delivery.modules.settings import ModulesSettings
from delivery.tiers import TierResolver, TierStore
from origin.store import open_store
from tests.delivery.conftest import client_for

ADMIN_TOKEN = secrets.token_urlsafe(24)
# Small enough to reach in a test; the default (10,000) is checked on its own.
TEST_PLAYLIST_MAX_ITEMS = 250


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(tmp_path_factory.mktemp("origin").as_uri())


@pytest.fixture(scope="session")
def user_secret_bytes() -> bytes:
    return secrets.token_bytes(32)


def modules_settings(**overrides) -> ModulesSettings:
    values = {"playlist_max_items": TEST_PLAYLIST_MAX_ITEMS}
    values.update(overrides)
    return ModulesSettings(**values)


def build_app(db, store, secret: bytes, settings: ModulesSettings | None = None) -> FastAPI:
    """What the delivery app factory does, reduced to the parts the modules rely on."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.db = db
    app.state.store = store
    app.state.settings = SimpleNamespace(admin_tokens=[ADMIN_TOKEN])
    tiers = TierResolver(TierStore(db, {"free", "premium"}, "free"), claim="tier")
    app.state.authenticator = JwtAuthenticator(
        tiers=tiers, algorithms=["HS256"], hs256_secrets=[secret], cache_size=0
    )
    install_modules(app, settings or modules_settings())
    return app


@pytest.fixture(scope="module")
def app(database, store, user_secret_bytes) -> FastAPI:
    return build_app(database, store, user_secret_bytes)


@pytest.fixture
def modules(app):
    return app.state.modules


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
