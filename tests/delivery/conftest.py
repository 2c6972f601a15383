"""Fixtures for the delivery tests: a real catalog (encoder-ingested clips) and app factories."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from common.signing_keys import eddsa_verification_key, ensure_dev_keypair
from delivery.app import create_app
from delivery.auth import mint_user_token
from delivery.db import Database, open_database
from delivery.settings import DeliverySettings
from edge.token import TokenVerifier
from origin.store import open_store
from tests.delivery import media

ISSUER = "audiocdn-test"
AUDIENCE = "delivery-test"


@dataclass(frozen=True)
class MediaCatalog:
    """A LocalStore filled by the encoder: ``versions[track_id]`` oldest first."""

    url: str
    root: Path
    versions: dict[str, list[str]]

    def latest(self, track_id: str) -> str:
        return self.versions[track_id][-1]


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("clips")
    made = {
        name: media.make_clip(out / f"{name}.flac", lavfi, seconds, title)
        for name, (lavfi, seconds, title) in media.CLIPS.items()
    }
    # A different master for "sine": re-ingesting it publishes a second version.
    made["sine-remaster"] = media.make_clip(
        out / "sine-remaster.flac", "sine=frequency=523:sample_rate=44100", 3.0, "Sine, remastered"
    )
    return made


def _ingest(source: Path, track_id: str, store_url: str, title: str) -> media.Ingested:
    # The remaster deliberately becomes a second version of "sine".
    return media.ingest(source, track_id, store_url, title, replace=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An empty local store for the tests of one module."""
    return open_store(tmp_path_factory.mktemp("origin").as_uri())


@pytest.fixture(scope="session")
def media_catalog(tmp_path_factory, clips) -> MediaCatalog:
    root = tmp_path_factory.mktemp("origin")
    url = root.as_uri()
    versions: dict[str, list[str]] = {}
    plan = [
        ("sine", "sine", "Sine at 440"),
        ("sine-remaster", "sine", "Sine, remastered"),
        ("chirp", "chirp", "Beeps"),
        ("noise", "noise", "Pink noise"),
    ]
    for clip, track_id, title in plan:
        done = _ingest(clips[clip], track_id, url, title)
        versions.setdefault(track_id, []).append(done.version)
    return MediaCatalog(url, root, versions)


@pytest.fixture(scope="session")
def stream_keys(tmp_path_factory) -> tuple[Path, Path]:
    """The Ed25519 stream-signing key pair (private, public) the delivery apps sign with."""
    return ensure_dev_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def user_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture(scope="session")
def admin_token() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
def make_settings(tmp_path, media_catalog, stream_keys, user_secret, admin_token):
    def make(**overrides) -> DeliverySettings:
        values = {
            "dev_mode": False,
            "data_dir": tmp_path / "data",
            "store": media_catalog.url,
            "database_url": f"sqlite:///{tmp_path / 'delivery.db'}",
            "jwt_hs256_secrets": [user_secret],
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "admin_tokens": [admin_token],
            "signing_key_file": stream_keys[0],
            "edge_url": "http://edge.test:8080",
            "rate_limit_per_s": 0,
        }
        values.update(overrides)
        return DeliverySettings(**values)

    return make


@pytest.fixture
def make_app(make_settings):
    apps = []

    def make(settings: DeliverySettings | None = None, **overrides):
        app = create_app(settings or make_settings(**overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.services.db.close()


@pytest.fixture
def app(make_app):
    return make_app()


def client_for(app) -> httpx.AsyncClient:
    """A client that calls ``app`` in-process (no socket)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery.test"
    )


@pytest.fixture
async def client(app):
    async with client_for(app) as c:
        yield c


@pytest.fixture
def mint(user_secret) -> Callable[..., str]:
    """``mint("alice", tier="premium")`` -> a valid user JWT for the test apps."""

    def make(user: str, tier: str | None = None, ttl_s: int = 600, **claims) -> str:
        extra = dict(claims)
        if tier is not None:
            extra["tier"] = tier
        return mint_user_token(
            user_secret.encode(), user, ttl_s=ttl_s, issuer=ISSUER, audience=AUDIENCE, extra=extra
        )

    return make


@pytest.fixture
def auth(mint) -> Callable[..., dict[str, str]]:
    def headers(user: str = "alice", tier: str | None = None, **kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(user, tier, **kw)}"}

    return headers


@pytest.fixture(scope="session")
def edge_verifier(stream_keys) -> TokenVerifier:
    """What an edge holding only the public key would run."""
    return TokenVerifier([eddsa_verification_key(stream_keys[1].read_bytes())], cache_size=0)


# -- one database per test module and backend ---------------------------------------------
#
# Every test taking ``database`` runs twice: on SQLite (a temporary file) and on the
# session's real PostgreSQL server, in a fresh schema dropped afterwards.

# PostgreSQL runs in `make test`; `make test-fast` (not slow) keeps to SQLite.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


@pytest.fixture(scope="session")
def pg_server_url(postgres_url):
    """The session's PostgreSQL with the extensions in ``public`` (visible from every schema)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
    return postgres_url


@contextlib.contextmanager
def pg_schema_database(base: str):
    """A migrated database in a fresh schema of ``base``, dropped afterwards."""
    schema = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    db = open_database(f"{base}?options=-csearch_path%3D{schema}%2Cpublic")
    try:
        db.migrate()
        yield db
    finally:
        db.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def backend_database(request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[Database]:
    """A migrated database for a fixture parametrized over :data:`BACKENDS`: SQLite at
    ``sqlite_path``, or a fresh schema of the session's PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        db = open_database(f"sqlite:///{sqlite_path}")
        db.migrate()
        try:
            yield db
        finally:
            db.close()
        return
    with pg_schema_database(request.getfixturevalue("pg_server_url")) as db:
        yield db


@pytest.fixture(scope="module", params=BACKENDS)
def database(request, tmp_path_factory):
    with backend_database(request, tmp_path_factory.mktemp("db") / "delivery.db") as db:
        yield db


@pytest.fixture(scope="module")
def pg_database(pg_server_url):
    """PostgreSQL only, for what only PostgreSQL does (transaction ids, NOTIFY)."""
    with pg_schema_database(pg_server_url) as db:
        yield db
