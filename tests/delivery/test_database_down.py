"""What an operator sees when PostgreSQL goes away under a running ``delivery serve``:
``/healthz`` stays 200 (the process is alive: do not restart it), ``/readyz`` turns 503
naming the database (take it out of rotation), requests that need the database answer
503 ``database_unavailable`` (JSON, never a 500), and everything recovers on its own
once the database is back. A request waits at most ``CONNECTION_WAIT_S`` (5 s) for a
connection. The outage is real: the delivery database refuses new
connections and its open ones are terminated."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from origin.store import open_store
from tests.delivery.test_outbox_processes import delivery_env, publish_full
from tests.support.servers import run_part_cli, serve_delivery
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def own_database(postgres_url) -> Iterator[tuple[str, str]]:
    """(URL, name) of a database of its own in the session's cluster, dropped afterwards."""
    name = f"down_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}", name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def set_outage(admin_url: str, name: str, *, down: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {'false' if down else 'true'}")
        if down:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_the_database_going_away_is_503_and_recovers(tmp_path, postgres_url, own_database):
    db_url, name = own_database
    store_url = f"file://{tmp_path / 'origin'}"
    publish_full(open_store(store_url), "down-track", title="Down")
    env = delivery_env(tmp_path, store_url, DELIVERY_DATABASE_URL=db_url)
    server, base = serve_delivery(env, tmp_path)
    try:
        done = run_part_cli("delivery", ["token", "--user", "u1"], cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        auth = {"Authorization": f"Bearer {done.stdout.strip()}"}
        assert httpx.get(f"{base}/v1/me/playlists", headers=auth).status_code == 200

        set_outage(postgres_url, name, down=True)
        started = time.monotonic()
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("failed")
        assert ready.json()["checks"]["store"] == "ok"
        assert httpx.get(f"{base}/healthz").status_code == 200
        r = httpx.get(f"{base}/v1/me/playlists", headers=auth, timeout=30)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "database_unavailable"
        # At most CONNECTION_WAIT_S (5 s) per request: an answer, not a hang.
        print(
            f"\n[database down] /readyz {ready.status_code} {ready.json()['checks']}; "
            f"{r.status_code} {r.json()['error']['code']} after {time.monotonic() - started:.1f} s"
        )

        set_outage(postgres_url, name, down=False)
        wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=30).status_code == 200,
            what="readiness once the database is back",
            timeout=30,
        )
        assert httpx.get(f"{base}/v1/me/playlists", headers=auth, timeout=30).status_code == 200
        assert "Traceback" not in server.log()
    finally:
        server.stop()
