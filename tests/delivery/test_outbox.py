"""The event outbox (delivery.outbox) on both backends: one database, several buses.

Each :class:`OutboxEventBus` here stands for one worker process; the tests drive
their dispatch cycles by hand (``run_once``) unless they test the thread.
Topics and consumer names are unique per test: the database is shared by the module.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from prometheus_client import CollectorRegistry

from delivery.cli import main as delivery_main
from delivery.db import open_database
from delivery.events import Event, EventBus
from delivery.outbox import OutboxEventBus, list_failures, retry_dead
from delivery.tiers import TierStore


def topic() -> str:
    return f"t{uuid.uuid4().hex[:10]}.happened"


def name() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def bus(database, **kw) -> OutboxEventBus:
    kw.setdefault("backoff_s", 0.01)
    return OutboxEventBus(database, **kw)


def test_is_the_event_bus_port(database):
    b: EventBus = bus(database)
    assert hasattr(b, "publish") and hasattr(b, "subscribe")
    for bad in ("", "track", "Track.Published", "a..b", "a.b c"):
        with pytest.raises(ValueError):
            b.publish(bad, {})


def test_a_durable_handler_runs_right_after_the_commit_of_its_transaction(database):
    t, seen = topic(), []
    b = bus(database)
    b.subscribe(t, seen.append, name=name())
    with database.transaction() as tx:
        event = b.publish(t, {"n": 1}, tx=tx)
        assert seen == []  # not before the commit
    assert [e.id for e in seen] == [event.id] and seen[0].payload == {"n": 1}
    assert isinstance(seen[0], Event) and seen[0].topic == t


def test_a_rolled_back_transaction_publishes_nothing(database):
    t, seen = topic(), []
    b = bus(database)
    b.subscribe(t, seen.append, name=name())
    with pytest.raises(RuntimeError), database.transaction() as tx:
        b.publish(t, {"n": 1}, tx=tx)
        raise RuntimeError("the change failed")
    b.publish(t, {"n": 2})
    b.run_once()
    assert [e.payload["n"] for e in seen] == [2]


def test_durable_consumers_process_each_event_once_per_deployment(database):
    t, c = topic(), name()
    seen: list[str] = []
    lock = threading.Lock()

    def handler(event: Event) -> None:
        with lock:
            seen.append(event.id)

    workers = [bus(database, worker_id=f"w{i}") for i in range(2)]
    for w in workers:
        w.subscribe(t, handler, name=c)
    publisher = bus(database)  # a third process (the CLI): publishes, handles nothing
    ids = [publisher.publish(t, {"i": i}).id for i in range(30)]
    ids += [workers[i % 2].publish(t, {"i": i}).id for i in range(30, 40)]

    def spin(w: OutboxEventBus) -> None:
        for _ in range(20):
            w.run_once()

    threads = [threading.Thread(target=spin, args=(w,)) for w in workers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_every_worker_handlers_run_in_every_bus_from_their_start(database):
    t = topic()
    before = bus(database).publish(t, {"old": True})
    seen: dict[str, list[str]] = {"a": [], "b": []}
    buses = {}
    for key in seen:
        buses[key] = bus(database)
        buses[key].subscribe(t, lambda e, k=key: seen[k].append(e.id), every_worker=True)
    event = buses["a"].publish(t, {"new": True})
    assert seen["a"] == [event.id]  # the publishing worker at once (after commit)
    buses["b"].run_once()
    assert seen["b"] == [event.id]  # the other worker at its next cycle
    assert before.id not in seen["a"] + seen["b"]  # caches start empty: no replay


def test_a_failing_handler_is_retried_then_dead_and_never_blocks_later_events(database):
    t, c = topic(), name()
    calls: list[str] = []
    fixed = threading.Event()

    def handler(event: Event) -> None:
        calls.append(event.payload["k"])
        if event.payload["k"] == "bad" and not fixed.is_set():
            raise RuntimeError("index down")

    registry = CollectorRegistry()
    b = bus(database, max_attempts=3, registry=registry)
    b.subscribe(t, handler, name=c)
    bad = b.publish(t, {"k": "bad"})
    b.publish(t, {"k": "good"})
    # The failure did not hold "good" back (on a slow machine the first retry, 10 ms
    # later, may already have come after it).
    assert calls[:2] == ["bad", "good"]
    [row] = [r for r in list_failures(database) if r["consumer"] == c]
    assert (row["event_id"], row["status"]) == (bad.id, "retrying")
    assert row["attempts"] == calls.count("bad") < 3
    assert "index down" in row["error"] and row["topic"] == t
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        b.run_once()
        rows = [r for r in list_failures(database, "dead") if r["consumer"] == c]
        if rows:
            break
        time.sleep(0.02)
    assert rows and rows[0]["attempts"] == 3
    assert calls.count("bad") == 3 and calls.count("good") == 1
    value = registry.get_sample_value
    assert value("delivery_events_dead_total", {"consumer": c}) == 1
    assert value("delivery_events_failures_total", {"consumer": c}) == 3
    assert value("delivery_events_processed_total", {"consumer": c}) == 1
    assert value("delivery_events_lag", {"consumer": c}) == 0
    # `delivery events retry` requeues it; fixed, it goes through and the row is gone.
    fixed.set()
    assert retry_dead(database, c) == 1
    b.run_once()
    assert calls.count("bad") == 4
    assert not [r for r in list_failures(database) if r["consumer"] == c]


def test_another_worker_takes_over_when_the_lease_holder_stops_renewing(database):
    t, c = topic(), name()
    seen_a, seen_b = [], []
    a = bus(database, lease_s=0.5, worker_id="holder")
    b = bus(database, lease_s=0.5, worker_id="heir")
    a.subscribe(t, seen_a.append, name=c)
    b.subscribe(t, seen_b.append, name=c)
    assert a._lease(c, time.time())  # a takes the lease, then dies (never renews)
    event = bus(database).publish(t, {"x": 1})
    b.run_once()
    assert seen_b == []  # a still holds it
    time.sleep(0.6)
    b.run_once()
    assert [e.id for e in seen_b] == [event.id] and seen_a == []


def test_the_dispatcher_thread_delivers_other_processes_events(database):
    t, seen = topic(), threading.Event()
    worker = bus(database, poll_s=0.05)
    worker.subscribe(t, lambda e: seen.set(), every_worker=True)
    worker.start()
    try:
        bus(database).publish(t, {})  # another process
        assert seen.wait(3)
    finally:
        worker.stop()


def test_postgresql_never_skips_an_event_committed_after_a_later_one(pg_database):
    # (SQLite serialises writers: there seq order is commit order.)
    database = pg_database
    t, seen = topic(), []
    reader = bus(database)
    reader.subscribe(t, lambda e: seen.append(e.payload["n"]), every_worker=True)
    durable: list[int] = []
    reader.subscribe(t, lambda e: durable.append(e.payload["n"]), name=name())
    publisher = bus(database)
    first = database.transaction()
    tx1 = first.__enter__()
    publisher.publish(t, {"n": 1}, tx=tx1)  # the lower seq, still open
    with database.transaction() as tx2:
        publisher.publish(t, {"n": 2}, tx=tx2)  # the higher seq, committed first
    reader.run_once()
    assert seen == [] and durable == []  # a seq reader would have passed n=1 here
    first.__exit__(None, None, None)
    reader.run_once()
    assert seen == [1, 2] and durable == [1, 2]


def test_postgresql_orders_by_transaction_id_as_a_number(pg_database):
    """txid 9 before txid 10 (as text, '10' < '9': a consumer would stall behind)."""
    database = pg_database
    t, seen = topic(), []
    with database.transaction() as tx:
        for n, txid in ((1, "10"), (2, "9")):  # seq order: 10 first
            tx.execute(
                "INSERT INTO events (txid, id, topic, payload, occurred_at) VALUES "
                "(CAST(:x AS xid8), :id, :t, :p, 0)",
                {"x": txid, "id": uuid.uuid4().hex, "t": t, "p": f'{{"n": {n}}}'},
            )
    b = bus(database, batch=1)  # a page boundary between the two
    b.subscribe(t, lambda e: seen.append(e.payload["n"]), name=name())
    b.run_once()
    assert seen == [2, 1]
    assert b._head()[0] > 10  # the newest is a real transaction, not "9"


def test_old_events_every_consumer_passed_are_deleted(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    db.migrate()
    try:
        t = topic()
        b = bus(db, retention_s=0)
        b.subscribe(t, lambda e: None, name="keeper")
        lagging = bus(db)  # a worker that has not run yet: it still needs the event
        lagging.subscribe(t, lambda e: None, name="lagging")
        b.publish(t, {})  # "keeper" handles it at once; retention runs, keeps it
        time.sleep(0.01)
        assert b._maybe_retain(force=True) == 0
        lagging.run_once()
        time.sleep(0.01)
        assert b._maybe_retain(force=True) == 1
        with db.transaction(write=False) as tx:
            assert tx.fetchone("SELECT COUNT(*) AS n FROM events")["n"] == 0
    finally:
        db.close()


def test_tier_changes_reach_every_worker(database):
    workers = []
    for _ in range(2):
        store = TierStore(database, {"free", "premium"}, "free", cache_ttl_s=60)
        store.events = bus(database)
        store.events.subscribe(
            "tier.changed",
            lambda e, s=store: s.forget(e.payload["user_id"]),
            every_worker=True,
        )
        workers.append(store)
    user = f"u-{uuid.uuid4().hex[:8]}"
    assert [w.lookup(user) for w in workers] == [None, None]  # cached in both
    workers[0].set(user, "premium")
    workers[1].events.run_once()
    assert [w.lookup(user) for w in workers] == ["premium", "premium"]


def test_cli_lists_and_requeues_failed_deliveries(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = open_database(url)
    db.migrate()
    try:
        t = topic()
        b = bus(db, max_attempts=2)

        def broken(event: Event) -> None:
            raise ValueError("no such index")

        b.subscribe(t, broken, name="search.index_track")
        event = b.publish(t, {})
        time.sleep(0.05)
        b.run_once()
    finally:
        db.close()
    assert delivery_main(["events", "failed", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "search.index_track" in out and event.id in out and t in out
    assert "dead" in out and "no such index" in out
    assert delivery_main(["events", "retry", "--database", url]) == 0
    assert "requeued 1 dead delivery" in capsys.readouterr().out
    assert delivery_main(["events", "failed", "--status", "dead", "--database", url]) == 0
    assert event.id not in capsys.readouterr().out


# -- the delivery app: two "workers" (two apps) on one SQLite file ---------------------------


@pytest.fixture
def two_workers(make_settings, tmp_path):
    from delivery.app import create_app
    from origin.store import open_store

    store_root = tmp_path / "origin"
    store = open_store(store_root.as_uri())
    settings = make_settings(
        store=store_root.as_uri(), catalog_ttl_s=300, catalog_negative_ttl_s=300
    )
    apps = [create_app(settings, store=store) for _ in range(2)]
    yield apps, store
    for app in apps:
        app.state.services.db.close()


@pytest.mark.anyio
async def test_a_publication_reaches_the_other_workers_caches(two_workers, auth, admin_token):
    from tests.delivery.conftest import client_for
    from tests.delivery.modules.support import publish_manifest

    (a, b), store = two_workers
    stream = "/v1/tracks/fresh/stream"
    async with client_for(a) as ca, client_for(b) as cb:
        assert (await cb.get(stream, headers=auth())).status_code == 404  # cached "missing"
        first = publish_manifest(store, "fresh", title="Fresh")
        r = await ca.post(
            "/v1/admin/events",
            json={"event": "track.published", "track_id": "fresh", "version": first},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert r.status_code == 202, r.text
        assert (await ca.get(stream, headers=auth())).json()["version"] == first
        b.state.services.events.run_once()  # b's next dispatch cycle (its thread, in a server)
        assert (await cb.get(stream, headers=auth())).json()["version"] == first
        # A new version announced by `delivery catalog sync` (no HTTP call at all).
        second = publish_manifest(store, "fresh", title="Fresh, again")
        assert delivery_main(
            ["catalog", "sync", "--store", store.url, "--database", a.state.services.db.url]
        ) in (0, None)
        for app in (a, b):
            app.state.services.events.run_once()
        for client in (ca, cb):
            assert (await client.get(stream, headers=auth())).json()["version"] == second


def test_a_silent_redis_is_logged_once_and_never_holds_commits_or_events(database, caplog):
    """Redis accepting connections and never answering (a host dropping packets): the
    events still go through the database, and each commit does not wait on Redis."""
    import socket

    t, seen = topic(), []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing reads them
        b = bus(database, redis_url=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        b.subscribe(t, lambda e: seen.append(e.payload["n"]), name=name())
        with caplog.at_level(logging.WARNING, logger="delivery.events"):
            b.start()
            try:
                for n in range(5):
                    b.publish(t, {"n": n})
            finally:
                b.stop()
    assert seen == [0, 1, 2, 3, 4]
    warnings = [r.getMessage() for r in caplog.records if "redis" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("events: redis failed"), warnings
