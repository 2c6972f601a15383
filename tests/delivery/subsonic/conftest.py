"""One delivery app per test module and database backend, with the Subsonic API on it.

The app is :func:`delivery.app.create_app` on the backend's database and a real local
store; stream URLs are signed for our edge with the session's Ed25519 key, so a test can
verify a redirect the way an edge would. App passwords are made through the same service
the ``delivery users app-password`` command uses; the sealing key lives in the module's
temporary data directory.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import pytest

from delivery.app import create_app
from delivery.settings import DeliverySettings
from tests.delivery.conftest import client_for


@pytest.fixture(scope="module")
def app(database, store, tmp_path_factory, stream_keys):
    settings = DeliverySettings(
        dev_mode=False,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_hs256_secrets=[secrets.token_hex(32)],
        jwt_issuer="",
        jwt_audience="",
        signing_key_file=stream_keys[0],
        edge_url="http://edge.test:8080",
        rate_limit_per_s=0,
    )
    return create_app(settings, store=store, db=database)


@pytest.fixture
async def api(app):
    async with client_for(app) as client:
        yield client


@dataclass(frozen=True)
class Login:
    user: str
    password: str
    api_key: str

    def token(self) -> dict[str, str]:
        salt = secrets.token_hex(6)
        token = hashlib.md5((self.password + salt).encode(), usedforsecurity=False).hexdigest()
        return {"u": self.user, "t": token, "s": salt, "v": "1.16.1", "c": "test", "f": "json"}


@pytest.fixture
def login(app):
    """``login()`` -> a fresh user with one app password."""

    def make(prefix: str = "u") -> Login:
        user = f"{prefix}{uuid.uuid4().hex[:10]}"
        made = app.state.services.subsonic.app_passwords.create(user, "test")
        return Login(user, made.password, made.api_key)

    return make
