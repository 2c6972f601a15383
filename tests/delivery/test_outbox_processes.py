"""Events reach every worker process and host: real ``delivery serve`` processes.

Four workers on one SQLite file (the outbox polled), then two delivery processes
("hosts", two workers each) sharing PostgreSQL (LISTEN/NOTIFY) and Redis. Caches
are made long (300 s) so only an event can refresh them. Requests go out on fresh
connections (``Connection: close``) from several threads, so the kernel spreads
them over the workers; after each change every answer must be the new one within
1 s. A worker killed with SIGKILL right after a write still gets its durable event
handled (by another worker, after the lease). Propagation latency (publish -> the
last stale answer, i.e. the slowest worker, per trial) is printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from origin.keys import latest_key, manifest_key, rendition_key
from origin.manifest import Latest
from origin.store import open_store
from tests.delivery.media import CLIPS, make_clip
from tests.delivery.modules.support import publish_manifest
from tests.support.servers import (
    ServerProcess,
    part_env,
    run_part_cli,
    serve_delivery,
)

pytestmark = pytest.mark.slow

WITHIN_S = 1.0
TRIALS = 8
THREADS = 8


def publish_full(store, track_id: str, title: str) -> str:
    """A new version with 96, 160 and 320 kbps renditions (what the encoder writes)."""
    version = publish_manifest(store, track_id, title=title, write_latest=False)
    manifest = json.loads(store.get_bytes(manifest_key(track_id, version)))
    first = manifest["renditions"][0]
    manifest["renditions"] = [
        {**first, "bitrate_kbps": b, "key": rendition_key(track_id, version, b)}
        for b in (96, 160, 320)
    ]
    store.put_bytes(manifest_key(track_id, version), json.dumps(manifest).encode())
    store.put_bytes(latest_key(track_id), Latest.now(version).to_json())
    return version


def delivery_env(tmp_path: Path, store_url: str, **extra: str) -> dict[str, str]:
    return part_env(
        "DELIVERY_",
        DELIVERY_STORE=store_url,
        DELIVERY_DATA_DIR=str(tmp_path / "data"),
        DELIVERY_EDGE_URL="http://127.0.0.1:9",
        DELIVERY_DEV_MODE="true",
        DELIVERY_ACCESS_LOG="false",
        DELIVERY_LOG_LEVEL="info",  # the "events applied" lines are measured
        DELIVERY_RATE_LIMIT_PER_S="0",
        DELIVERY_CATALOG_TTL_S="300",
        DELIVERY_CATALOG_NEGATIVE_TTL_S="300",
        DELIVERY_TIER_CACHE_TTL_S="300",
        DELIVERY_TIER_CLAIM="",  # tiers from the database only
        DELIVERY_EVENTS_LEASE_S="2",
        **extra,
    )


def worker_pids(server: ServerProcess) -> list[int]:
    """The uvicorn worker processes under ``server`` (multiprocessing spawn children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server.pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


_APPLIED = re.compile(r"events applied in pid (\d+): ([^\"]*)")


class Stack:
    def __init__(
        self,
        tmp_path: Path,
        env: dict[str, str],
        bases: list[str],
        store,
        servers: list[ServerProcess],
        workers: int,
    ) -> None:
        self.tmp_path, self.env, self.bases, self.store = tmp_path, env, bases, store
        self.servers, self.workers = servers, workers
        self.db_url = env["DELIVERY_DATABASE_URL"]
        self.admin = {
            "Authorization": "Bearer "
            + (tmp_path / "data" / "secrets" / "delivery-admin-token").read_text().strip()
        }

    def token(self, user: str) -> str:
        done = run_part_cli("delivery", ["token", "--user", user], cwd=self.tmp_path, env=self.env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def answers(self, path: str, token: str, seconds: float) -> list[tuple[float, dict]]:
        """(time sent, answer) for every request of ``seconds`` of load on every base."""
        out: list[tuple[float, dict]] = []
        lock = threading.Lock()
        stop = time.monotonic() + seconds
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}

        def run(n: int) -> None:
            i = n
            while i == n or time.monotonic() < stop:  # at least one request per thread
                base = self.bases[i % len(self.bases)]
                i += 1
                sent = time.monotonic()
                r = httpx.get(base + path, headers=headers, timeout=10)
                body = r.json() if r.status_code == 200 else {"status": r.status_code}
                with lock:
                    out.append((sent, body))

        threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 30)
        return out

    def applied(self, event_id: str) -> dict[int, int]:
        """{worker pid: ms from publication} for every worker that applied ``event_id``."""
        found: dict[int, int] = {}
        for server in self.servers:
            for pid, items in _APPLIED.findall(server.log()):
                for item in items.split():
                    eid, _, ms = item.partition("+")
                    if eid == event_id:
                        found[int(pid)] = int(ms.removesuffix("ms"))
        return found

    def wait_every_worker(self, event_id: str) -> list[int]:
        """Every worker applied the event, each within WITHIN_S; their delays (ms)."""
        deadline = time.monotonic() + 5
        while len(self.applied(event_id)) < self.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        found = self.applied(event_id)
        assert len(found) == self.workers, f"{event_id} applied by {found}"
        assert max(found.values()) <= WITHIN_S * 1000, found
        return list(found.values())

    def last_event_id(self, topic: str) -> str:
        sql = f"SELECT id FROM events WHERE topic = '{topic}' ORDER BY seq DESC LIMIT 1"
        if self.db_url.startswith("sqlite:"):
            conn = sqlite3.connect(self.db_url.removeprefix("sqlite:///"))
            try:
                return conn.execute(sql).fetchone()[0]
            finally:
                conn.close()
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(sql).fetchone()[0]

    def announce(self, track_id: str, version: str) -> float:
        r = httpx.post(
            self.bases[0] + "/v1/admin/events",
            json={"event": "track.published", "track_id": track_id, "version": version},
            headers=self.admin,
            timeout=10,
        )
        assert r.status_code == 202, r.text
        self.event_id = r.json()["event_id"]
        return time.monotonic()


def check_fresh_after(stack: Stack, path: str, token: str, since: float, fresh) -> None:
    """Load until the deadline (``since + WITHIN_S``), then every answer requested after
    it, from every thread, must be the new one."""
    stack.answers(path, token, max(0.0, since + WITHIN_S - time.monotonic()))
    time.sleep(max(0.0, since + WITHIN_S - time.monotonic()))
    late = stack.answers(path, token, 0.3)
    assert len(late) >= THREADS and min(sent for sent, _ in late) >= since + WITHIN_S
    bad = [body for _, body in late if not fresh(body)]
    assert not bad, f"{len(bad)} stale answers more than {WITHIN_S}s after the change: {bad[:3]}"


def check_propagation(stack: Stack, label: str) -> None:
    token = stack.token(f"listener-{uuid.uuid4().hex[:6]}")
    track = f"prop-{uuid.uuid4().hex[:6]}"
    path = f"/v1/tracks/{track}/stream"

    # 1. A track asked for (404, cached as missing everywhere) before its publication.
    warm = stack.answers(path, token, 0.6)
    assert {b.get("status") for _, b in warm} == {404}
    version = publish_full(stack.store, track, "Propagation")
    since = stack.announce(track, version)
    check_fresh_after(stack, path, token, since, lambda b: b.get("version") == version)
    delays = stack.wait_every_worker(stack.event_id)

    # 2. New versions of it, announced like `encoder ingest --notify` does.
    for _ in range(TRIALS):
        version = publish_full(stack.store, track, "Propagation")
        since = stack.announce(track, version)
        check_fresh_after(stack, path, token, since, lambda b, v=version: b.get("version") == v)
        delays += stack.wait_every_worker(stack.event_id)

    # 2b. A new version found by `delivery catalog sync` (no HTTP call: its event is written
    # with the index rows). The window starts when the command has committed and exited.
    version = publish_full(stack.store, track, "Propagation")
    done = run_part_cli("delivery", ["catalog", "sync"], cwd=stack.tmp_path, env=stack.env)
    assert done.returncode == 0, done.stderr
    since = time.monotonic()
    check_fresh_after(stack, path, token, since, lambda b: b.get("version") == version)
    delays += stack.wait_every_worker(stack.last_event_id("track.published"))

    # 2c. A new version made by the real encoder, `encoder ingest --notify` (to the last host).
    clip = make_clip(stack.tmp_path / f"{track}.flac", *CLIPS["chirp"])
    args = ["ingest", str(clip), "--track-id", track, "--replace", "--quiet"]
    args += ["--store", stack.store.url, "--notify", stack.bases[-1]]
    admin_token = stack.admin["Authorization"].removeprefix("Bearer ")
    env = part_env("ENCODER_", ENCODER_NOTIFY_TOKEN=admin_token)
    done = run_part_cli("encoder", args, cwd=stack.tmp_path, env=env, timeout=180)
    assert done.returncode == 0 and "warning" not in done.stderr.lower(), done.stderr
    version = json.loads(done.stdout)["version"]
    since = time.monotonic()
    check_fresh_after(stack, path, token, since, lambda b: b.get("version") == version)
    delays += stack.wait_every_worker(stack.last_event_id("track.published"))

    # 3. A tier change (no tier claim: the database decides, cached 300 s per worker).
    user = f"tiered-{uuid.uuid4().hex[:6]}"
    tiered = stack.token(user)
    high = f"{path}?quality=high"
    assert {b.get("bitrate_kbps") for _, b in stack.answers(high, tiered, 0.6)} == {160}
    r = httpx.put(
        f"{stack.bases[-1]}/v1/admin/users/{user}/tier",
        json={"tier": "premium"},
        headers=stack.admin,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    since = time.monotonic()
    check_fresh_after(stack, high, tiered, since, lambda b: b.get("bitrate_kbps") == 320)
    delays += stack.wait_every_worker(stack.last_event_id("tier.changed"))

    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(
        f"\n[events] {label}: publication -> applied, {len(delays)} (event, worker) pairs over "
        f"{stack.workers} workers: p50 {statistics.median(delays):.0f} ms, p99 {p99} ms, "
        f"max {max(delays)} ms"
    )


def count_uncounted(db_url: str, play_ids: list[str]) -> int:
    marks = ", ".join("?" * len(play_ids))
    if db_url.startswith("sqlite:"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            rows = conn.execute(
                f"SELECT COUNT(*) FROM plays WHERE counted = 0 AND play_id IN ({marks})",
                play_ids,
            ).fetchone()
        finally:
            conn.close()
        return rows[0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM plays WHERE NOT counted AND play_id = ANY(%s)", (play_ids,)
        ).fetchone()[0]


def diagnose(db_url: str, server: ServerProcess) -> str:
    sql = (
        "SELECT name, position_txid, position_seq, leased_by, leased_until FROM event_consumers",
        "SELECT consumer, seq, status, attempts, error FROM event_failures",
        "SELECT pid, state, CAST(backend_xid AS TEXT), CAST(backend_xmin AS TEXT), "
        "LEFT(query, 80), CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) "
        "FROM pg_stat_activity WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL"
        if not db_url.startswith("sqlite:")
        else "SELECT 1",
        "SELECT CAST(txid AS TEXT), seq, topic, occurred_at FROM events ORDER BY seq DESC LIMIT 5"
        if not db_url.startswith("sqlite:")
        else "SELECT txid, seq, topic, occurred_at FROM events ORDER BY seq DESC LIMIT 5",
    )
    if db_url.startswith("sqlite:"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            found = [conn.execute(q).fetchall() for q in sql]
        finally:
            conn.close()
    else:
        with psycopg.connect(db_url, autocommit=True) as conn:
            found = [conn.execute(q).fetchall() for q in sql]
    lines = (
        [
            x
            for x in open(server.log_path.parent / "all-delivery.log").read().splitlines()
            if "delivery.events" in x or "rror" in x
        ]
        if False
        else [x for x in server.log().splitlines() if "delivery.events" in x or "rror" in x]
    )
    return f"{found}\n" + "\n".join(lines[-30:])


def check_kill_9(stack: Stack, server: ServerProcess, db_url: str) -> None:
    """Plays written while workers are SIGKILLed are all counted (the durable consumer)."""
    track = f"killed-{uuid.uuid4().hex[:6]}"
    publish_manifest(stack.store, track, title="Killed")
    token = stack.token(f"player-{uuid.uuid4().hex[:6]}")
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def play(n: int) -> None:
        i = 0
        while not stop.is_set():
            play_id = f"p{n}-{i}-{uuid.uuid4().hex[:6]}"
            i += 1
            try:
                r = httpx.post(
                    stack.bases[0] + "/v1/me/plays",
                    json={"play_id": play_id, "track_id": track, "ms_played": 30000},
                    headers=headers,
                    timeout=10,
                )
            except httpx.HTTPError:
                r = None
            with lock:  # answered or not, the play may be committed: check them all
                accepted.append(play_id)
            if r is not None and r.status_code not in (200, 201, 202):
                raise AssertionError(r.text)

    threads = [threading.Thread(target=play, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    killed = worker_pids(server)[:2]
    for pid in killed:  # right in the middle of writes
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(15)
    assert killed and accepted
    deadline = time.monotonic() + 15
    while count_uncounted(db_url, accepted) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert count_uncounted(db_url, accepted) == 0, diagnose(db_url, server)
    print(f"\n[events] kill -9 of {len(killed)} workers during {len(accepted)} plays: all counted")


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "origin").as_uri())


def test_four_workers_on_sqlite(tmp_path, store):
    db_url = f"sqlite:///{tmp_path / 'delivery.db'}"
    env = delivery_env(tmp_path, store.url, DELIVERY_DATABASE_URL=db_url)
    server, base = serve_delivery(env, tmp_path, workers=4)
    try:
        stack = Stack(tmp_path, env, [base], store, [server], workers=4)
        check_propagation(stack, "4 workers, SQLite (polled)")
        check_kill_9(stack, server, db_url)
    finally:
        server.stop()


@pytest.fixture
def pg_schema_url(postgres_url) -> Iterator[str]:
    schema = f"ev_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_url}?options=-csearch_path%3D{schema}%2Cpublic"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_two_hosts_on_postgresql_and_redis(tmp_path, store, pg_schema_url, redis_url):
    env = delivery_env(
        tmp_path, store.url, DELIVERY_DATABASE_URL=pg_schema_url, DELIVERY_REDIS_URL=redis_url
    )
    hosts = []
    try:
        for _ in range(2):
            hosts.append(serve_delivery(env, tmp_path, workers=2))
        bases = [base for _, base in hosts]
        stack = Stack(tmp_path, env, bases, store, [h for h, _ in hosts], workers=4)
        check_propagation(stack, "2 hosts x 2 workers, PostgreSQL + Redis")
        check_kill_9(stack, hosts[0][0], pg_schema_url)
    finally:
        for server, _ in hosts:
            server.stop()
