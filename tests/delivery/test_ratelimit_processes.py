"""The rate limit holds across real worker processes and hosts, not per worker.

Four ``delivery serve`` workers on one SQLite file, then two delivery processes
("hosts") on different ports sharing PostgreSQL and Redis: one user hammers
them with fresh connections (so the kernel spreads them over the workers) and
the number of stream answers allowed must be the configured ``burst + rate *
elapsed`` within 20% — a per-worker limit would allow up to N times that.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.servers import (
    part_env,
    run_part_cli,
    serve_delivery,
)

ROOT = Path(__file__).resolve().parents[2]
RATE, BURST = 10.0, 5
DURATION_S = 4.0
THREADS = 6

pytestmark = pytest.mark.slow


def delivery_env(tmp_path: Path, media_catalog, **extra: str) -> dict[str, str]:
    return part_env(
        "DELIVERY_",
        DELIVERY_STORE=media_catalog.url,
        DELIVERY_DATA_DIR=str(tmp_path / "data"),  # shared secrets, as a mounted secret store
        DELIVERY_EDGE_URL="http://127.0.0.1:9",
        DELIVERY_DEV_MODE="true",
        DELIVERY_ACCESS_LOG="false",
        DELIVERY_LOG_LEVEL="warning",
        DELIVERY_RATE_LIMIT_PER_S=str(RATE),
        DELIVERY_RATE_LIMIT_BURST=str(BURST),
        **extra,
    )


def user_token(env: dict[str, str], cwd: Path, user: str) -> str:
    done = run_part_cli("delivery", ["token", "--user", user], cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def hammer(bases: list[str], token: str) -> tuple[dict[int, int], float]:
    """Stream requests from several threads for DURATION_S, each on a new connection.

    Returns the count per status and the seconds between the first and last request."""
    counts: dict[int, int] = {}
    stamps: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + DURATION_S

    def worker(n: int) -> None:
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        i = n
        while time.monotonic() < stop:
            base = bases[i % len(bases)]
            i += 1
            sent = time.monotonic()
            status = httpx.get(f"{base}/v1/tracks/sine/stream", headers=headers, timeout=10)
            with lock:
                counts[status.status_code] = counts.get(status.status_code, 0) + 1
                stamps.append(sent)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DURATION_S + 30)
    return counts, max(stamps) - min(stamps)


def assert_within_20_percent(counts: dict[int, int], elapsed: float, label: str) -> None:
    assert set(counts) <= {200, 429}, counts
    allowed = counts.get(200, 0)
    expected = BURST + RATE * elapsed
    print(f"\n[ratelimit] {label}: {allowed} allowed of {sum(counts.values())} in {elapsed:.2f} s"
          f" (setting: {expected:.1f}, {allowed / expected:.2f}x)")  # fmt: skip
    assert counts.get(429, 0) > allowed, "the load must exceed the limit for the test to mean much"
    assert abs(allowed - expected) <= 0.2 * expected, (allowed, expected)


def test_four_workers_on_sqlite_share_one_limit(tmp_path, media_catalog):
    env = delivery_env(
        tmp_path, media_catalog, DELIVERY_DATABASE_URL=f"sqlite:///{tmp_path / 'd.db'}"
    )
    server, base = serve_delivery(env, tmp_path, workers=4)
    try:
        counts, elapsed = hammer([base], user_token(env, tmp_path, "greedy-sqlite"))
    finally:
        server.stop()
    assert_within_20_percent(counts, elapsed, "4 workers, SQLite")


def test_two_hosts_on_postgresql_and_redis_share_one_limit(
    tmp_path, media_catalog, postgres_url, redis_url
):
    schema = f"rl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
        conn.execute(f"CREATE SCHEMA {schema}")
    env = delivery_env(
        tmp_path,
        media_catalog,
        DELIVERY_DATABASE_URL=f"{postgres_url}?options=-csearch_path%3D{schema}%2Cpublic",
        DELIVERY_REDIS_URL=redis_url,
    )
    hosts = []
    try:
        for _ in range(2):
            hosts.append(serve_delivery(env, tmp_path, workers=2))
        token = user_token(env, tmp_path, f"greedy-{uuid.uuid4().hex[:8]}")
        counts, elapsed = hammer([base for _, base in hosts], token)
    finally:
        for server, _ in hosts:
            server.stop()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    assert_within_20_percent(counts, elapsed, "2 hosts x 2 workers, PostgreSQL + Redis")
