"""The event bus of delivery: a transactional outbox in delivery's own database.

``publish(topic, payload, tx=tx)`` writes the event as a row of ``events`` IN the
caller's transaction, so a change and its announcement commit together or not
at all (a crash between the two cannot lose the event). Without ``tx`` the row
is written in a transaction of its own.

Two kinds of subscription (:meth:`OutboxEventBus.subscribe`):

* **durable** (the default; "once per deployment": search indexing, play
  counts). Each ``name`` is a row of ``event_consumers`` holding a position in
  the outbox and a short lease (``DELIVERY_EVENTS_LEASE_S``). A worker that sees
  the consumer behind takes the lease with one ``UPDATE ... WHERE leased_by = me
  OR leased_until < now``, processes the events after the position in batches,
  advances the position (renewing the lease) and releases the lease once caught
  up; a worker killed half-way leaves its lease to expire and another one takes
  over from the last position (at least once: handlers are idempotent). A
  handler that raises gets an ``event_failures`` row, retried with exponential
  back-off up to ``DELIVERY_EVENTS_MAX_ATTEMPTS`` and then marked ``dead``; it
  never blocks the events after it. ``delivery events failed`` lists them,
  ``delivery events retry`` requeues the dead ones.
* **every worker** (``every_worker=True``; per-process caches: the catalogue,
  tiers). Each bus tails the outbox from its end at start-up (its caches are
  empty then), in memory, no lease, no retries (a failure is logged).

Ordering without gaps. SQLite serialises writers, so ``seq`` order is commit
order and a position is a ``seq``. On PostgreSQL a later ``seq`` can commit
first, so readers read ``WHERE (txid, seq) > position AND txid <
pg_snapshot_xmin(pg_current_snapshot())`` in ``(txid, seq)`` order: every
transaction below the snapshot's xmin has ended, so nothing can later appear
before a position already passed. (A transaction left open holds delivery back
until it ends.) The dialect is branched on in :func:`_sql` only.

Wake-ups, per worker process: the commit of a local publish dispatches at once
in the publishing thread (``Transaction.after_commit``: a worker reads its own
writes, with or without the dispatcher thread); the dispatcher thread
(:meth:`start`, run by the app's lifespan) wakes on PostgreSQL ``LISTEN
delivery_events`` (publishers ``pg_notify`` inside their transaction), on
Redis pub/sub when ``DELIVERY_REDIS_URL`` is set, and polls every
``DELIVERY_EVENTS_POLL_S`` (SQLite's only cross-process signal). Events older
than ``DELIVERY_EVENTS_RETENTION_S`` that every durable consumer has passed are
deleted now and then (the ones with a failure row are kept).

Metrics (the app's registry): ``delivery_events_processed_total{consumer}``,
``delivery_events_failures_total{consumer}``, ``delivery_events_dead_total{consumer}``
``delivery_events_lag{consumer}`` (newest ``seq`` minus the consumer's) and
``delivery_events_delay_seconds`` (publication to every-worker handling, here); each
cycle that applied every-worker events logs one line naming them with their age.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.breaker import EngineGuard
from delivery.db import Database, DatabaseError, Transaction
from delivery.events import Event, Handler, validate_topic

log = logging.getLogger("delivery.events")

CHANNEL = "delivery_events"  # PostgreSQL NOTIFY channel and Redis pub/sub channel
Position = tuple[int, int]  # (txid, seq); txid is always 0 on SQLite
START: Position = (0, 0)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _ms(iso: str) -> int:
    try:
        return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return _now_ms()


# -- the one place the dialects differ ------------------------------------------------------

_COLS = "CAST(txid AS TEXT) AS txid, seq, id, topic, payload, occurred_at"


def _sql(dialect: str) -> dict[str, str]:
    if dialect == "postgresql":
        visible = "txid < pg_snapshot_xmin(pg_current_snapshot())"
        return {
            "after": f"SELECT {_COLS} FROM events WHERE (txid, seq) > "
            f"(CAST(:txid AS xid8), :seq) AND {visible} "
            # events.txid: a bare "txid" would sort by the TEXT output column ('999' > '1000')
            "ORDER BY events.txid, events.seq LIMIT :n",
            "head": f"SELECT {_COLS} FROM events WHERE {visible} "
            "ORDER BY events.txid DESC, events.seq DESC LIMIT 1",
            "notify": f"SELECT pg_notify('{CHANNEL}', '')",
            "behind_all": "NOT EXISTS (SELECT 1 FROM event_consumers c WHERE "
            "(events.txid, events.seq) > (CAST(c.position_txid AS xid8), c.position_seq))",
        }
    return {
        "after": f"SELECT {_COLS} FROM events WHERE seq > :seq ORDER BY seq LIMIT :n",
        "head": f"SELECT {_COLS} FROM events ORDER BY seq DESC LIMIT 1",
        "notify": "",
        "behind_all": "NOT EXISTS (SELECT 1 FROM event_consumers c "
        "WHERE events.seq > c.position_seq)",
    }


def _position(row: Mapping[str, Any]) -> Position:
    return (int(row["txid"]), int(row["seq"]))


def _event(row: Mapping[str, Any]) -> Event:
    return Event(
        row["topic"], json.loads(row["payload"]), id=row["id"], occurred_at=_iso(row["occurred_at"])
    )


@dataclass
class _Subscription:
    topic: str
    handler: Handler
    name: str
    every_worker: bool


@dataclass
class _Consumer:
    """A durable consumer: one name, the topics it handles and their handlers."""

    name: str
    handlers: dict[str, list[Handler]] = field(default_factory=dict)


class _Flag(threading.local):
    active = False


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry or CollectorRegistry()
        self.processed = Counter(
            "delivery_events_processed", "Events handled by a consumer", ["consumer"], registry=r
        )
        self.failures = Counter(
            "delivery_events_failures", "Failed event deliveries", ["consumer"], registry=r
        )
        self.dead = Counter(
            "delivery_events_dead", "Event deliveries dead-lettered", ["consumer"], registry=r
        )
        self.delay = Histogram(
            "delivery_events_delay_seconds",
            "From an event's publication to its every-worker handlers (cache forgets) here",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.lag = Gauge(
            "delivery_events_lag",
            "Newest event seq minus the consumer's position (durable consumers)",
            ["consumer"],
            registry=r,
            # Shared state (the database): with several workers, the latest reading wins.
            multiprocess_mode="livemostrecent",
        )


class OutboxEventBus:
    """:class:`delivery.events.EventBus` over the ``events`` table (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        max_attempts: int = 8,
        poll_s: float = 0.25,
        lease_s: float = 5.0,
        retention_s: float = 7 * 86400,
        backoff_s: float = 0.5,
        max_backoff_s: float = 300.0,
        batch: int = 200,
        redis_url: str | None = None,
        registry: CollectorRegistry | None = None,
        worker_id: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.db = db
        self.max_attempts = max_attempts
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.retention_s = retention_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch = batch
        self.redis_url = redis_url
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.metrics = OutboxMetrics(registry)
        self._sql = _sql(db.dialect)
        self._subs: list[_Subscription] = []
        self._consumers: dict[str, _Consumer] = {}
        self._local_position: Position | None = None  # every-worker tail, set lazily
        self._cycle = threading.Lock()
        self._dispatching = _Flag()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listen_conn: Any = None
        self._redis: Any = None
        # Redis is only a wake-up: while it is down, commits do not wait on it (one try
        # every 2 s) and the outage is logged once.
        self._redis_guard = EngineGuard(
            "events: redis", "wake-ups by LISTEN/NOTIFY and polling only", log=log
        )
        self._last_retention = 0.0

    # -- the port -------------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        name: str | None = None,
        every_worker: bool = False,
    ) -> None:
        """Call ``handler(event)`` for every ``topic`` event: once per deployment under
        ``name`` (durable), or in every worker process (``every_worker=True``)."""
        validate_topic(topic)
        name = name or getattr(handler, "__qualname__", "handler")
        self._subs.append(_Subscription(topic, handler, name, every_worker))
        if every_worker:
            if self._local_position is None:
                self._local_position = self._head()
            return
        consumer = self._consumers.get(name)
        if consumer is None:
            consumer = self._consumers[name] = _Consumer(name)
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT INTO event_consumers (name) VALUES (:n) ON CONFLICT (name) DO NOTHING",
                    {"n": name},
                )
        consumer.handlers.setdefault(topic, []).append(handler)

    def subscribers(self, topic: str) -> list[str]:
        return [s.name for s in self._subs if s.topic == topic]

    def publish(
        self, topic: str, payload: Mapping[str, Any], *, tx: Transaction | None = None
    ) -> Event:
        """Write the event in ``tx`` (it commits with the caller's change), else on its own."""
        validate_topic(topic)
        event = Event(topic, dict(payload))
        if tx is None:
            with self.db.transaction() as own:
                self._write(own, event)
        else:
            self._write(tx, event)
        return event

    def _write(self, tx: Transaction, event: Event) -> None:
        tx.execute(
            "INSERT INTO events (id, topic, payload, occurred_at) "
            "VALUES (:id, :topic, :payload, :at)",
            {
                "id": event.id,
                "topic": event.topic,
                "payload": json.dumps(dict(event.payload), separators=(",", ":")),
                "at": _ms(event.occurred_at),
            },
        )
        if self._sql["notify"]:
            tx.execute(self._sql["notify"])
        tx.after_commit(self._committed)

    def _committed(self) -> None:
        # This worker reads its own writes: dispatch now, in the committing thread.
        if self._redis is not None and self._redis_guard.allow():
            try:
                self._redis.publish(CHANNEL, self.worker_id)
            except Exception as exc:  # Redis is only a wake-up: the poll still finds it
                self._redis_guard.failed(exc)
            else:
                self._redis_guard.answered()
        if self._subs:
            self.run_once()

    # -- dispatching ----------------------------------------------------------------------

    def run_once(self) -> int:
        """One dispatch cycle (local tail, durable consumers, retries); return events handled."""
        if self._dispatching.active:
            # A handler published: its events go in the next cycle, not recursively.
            self._wake.set()
            return 0
        with self._cycle:
            self._dispatching.active = True
            handled = 0
            try:
                handled += self._tail_local()
                handled += self._run_durable()
                self._maybe_retain()
            except DatabaseError as exc:
                log.warning("events: database unavailable: %s", exc)
            finally:
                self._dispatching.active = False
            return handled

    def _head(self) -> Position:
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(self._sql["head"])
        return _position(row) if row else START

    def _read_after(self, position: Position, n: int) -> list[dict[str, Any]]:
        with self.db.transaction(write=False) as tx:
            return tx.fetchall(
                self._sql["after"], {"txid": str(position[0]), "seq": position[1], "n": n}
            )

    def _tail_local(self) -> int:
        local = [s for s in self._subs if s.every_worker]
        if not local or self._local_position is None:
            return 0
        handled = 0
        applied: list[str] = []
        while True:
            rows = self._read_after(self._local_position, self.batch)
            for row in rows:
                event = _event(row)
                delay_ms = _now_ms() - int(row["occurred_at"])
                for sub in local:
                    if sub.topic != event.topic:
                        continue
                    try:
                        sub.handler(event)
                        handled += 1
                        if len(applied) < 10:
                            applied.append(f"{event.id}+{delay_ms}ms")
                        self.metrics.delay.observe(max(0, delay_ms) / 1000)
                    except Exception as exc:
                        self.metrics.failures.labels(sub.name).inc()
                        log.warning(
                            "event %s %s: handler %s failed: %s",
                            event.topic,
                            event.id,
                            sub.name,
                            exc,
                        )
                self._local_position = _position(row)
            if len(rows) < self.batch:
                break
        if applied:
            # One line per cycle: which events this worker applied, and how old they were.
            more = f" (+{handled - len(applied)} more)" if handled > len(applied) else ""
            log.info("events applied in pid %d: %s%s", os.getpid(), " ".join(applied), more)
        return handled

    def _run_durable(self) -> int:
        if not self._consumers:
            return 0
        now = time.time()
        with self.db.transaction(write=False) as tx:
            head_row = tx.fetchone(self._sql["head"])
            rows = tx.fetchall(
                "SELECT name, position_txid, position_seq, leased_by, leased_until "
                "FROM event_consumers"
            )
            due = {
                r["consumer"]
                for r in tx.fetchall(
                    "SELECT DISTINCT consumer FROM event_failures "
                    "WHERE status = 'retrying' AND next_attempt_at <= :now",
                    {"now": now},
                )
            }
        head = _position(head_row) if head_row else START
        state = {r["name"]: r for r in rows}
        handled = 0
        for name, consumer in self._consumers.items():
            row = state.get(name)
            if row is None:
                continue
            position = (int(row["position_txid"]), int(row["position_seq"]))
            self.metrics.lag.labels(name).set(max(0, head[1] - position[1]))
            if position >= head and name not in due:
                continue
            if not self._lease(name, now):
                continue
            try:
                handled += self._consume(consumer, position)
                handled += self._retry_due(consumer)
            finally:
                self._release(name)
        return handled

    def _lease(self, name: str, now: float) -> bool:
        with self.db.transaction() as tx:
            return (
                tx.execute(
                    "UPDATE event_consumers SET leased_by = :me, leased_until = :until "
                    "WHERE name = :n AND (leased_by = :me OR leased_by IS NULL "
                    "OR leased_until < :now)",
                    {"me": self.worker_id, "until": now + self.lease_s, "n": name, "now": now},
                )
                == 1
            )

    def _release(self, name: str) -> None:
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "UPDATE event_consumers SET leased_by = NULL, leased_until = 0 "
                    "WHERE name = :n AND leased_by = :me",
                    {"n": name, "me": self.worker_id},
                )
        except DatabaseError as exc:
            log.warning("events: releasing %s: %s (it expires on its own)", name, exc)

    def _consume(self, consumer: _Consumer, position: Position) -> int:
        handled = 0
        while True:
            rows = self._read_after(position, self.batch)
            if not rows:
                return handled
            failed: list[tuple[dict[str, Any], str]] = []
            for row in rows:
                handlers = consumer.handlers.get(row["topic"])
                if not handlers:
                    continue
                event = _event(row)
                for handler in handlers:
                    try:
                        handler(event)
                    except Exception as exc:
                        failed.append((row, f"{type(exc).__name__}: {exc}"))
                        self._count_failure(consumer.name, event, 1, str(exc))
                        break
                else:
                    handled += 1
                    self.metrics.processed.labels(consumer.name).inc()
            position = _position(rows[-1])
            if not self._advance(consumer.name, position, failed):
                log.warning("events: lost the lease of %s; another worker goes on", consumer.name)
                return handled
            if len(rows) < self.batch:
                return handled

    def _advance(
        self, name: str, position: Position, failed: list[tuple[dict[str, Any], str]]
    ) -> bool:
        now = time.time()
        with self.db.transaction() as tx:
            held = tx.execute(
                "UPDATE event_consumers SET position_txid = :txid, position_seq = :seq, "
                "leased_until = :until WHERE name = :n AND leased_by = :me",
                {
                    "txid": str(position[0]),
                    "seq": position[1],
                    "until": now + self.lease_s,
                    "n": name,
                    "me": self.worker_id,
                },
            )
            if held != 1:
                return False
            for row, error in failed:
                dead = self.max_attempts <= 1
                tx.execute(
                    "INSERT INTO event_failures (consumer, seq, event_id, topic, attempts, error, "
                    "next_attempt_at, status, updated_at) VALUES (:c, :seq, :id, :topic, 1, :err, "
                    ":next, :status, :now) ON CONFLICT (consumer, seq) DO NOTHING",
                    {
                        "c": name,
                        "seq": row["seq"],
                        "id": row["id"],
                        "topic": row["topic"],
                        "err": error[:2000],
                        "next": now + self._delay(1),
                        "status": "dead" if dead else "retrying",
                        "now": _now_ms(),
                    },
                )
                if dead:
                    self.metrics.dead.labels(name).inc()
        return True

    def _delay(self, attempts: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempts - 1))

    def _retry_due(self, consumer: _Consumer) -> int:
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(
                "SELECT f.seq, f.attempts, e.id, e.topic, e.payload, e.occurred_at "
                "FROM event_failures f JOIN events e ON e.id = f.event_id "
                "WHERE f.consumer = :c AND f.status = 'retrying' AND f.next_attempt_at <= :now "
                "ORDER BY f.seq LIMIT :n",
                {"c": consumer.name, "now": time.time(), "n": self.batch},
            )
        handled = 0
        for row in rows:
            event = _event(row)
            error = None
            for handler in consumer.handlers.get(event.topic, []):
                try:
                    handler(event)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    break
            attempts = int(row["attempts"]) + 1
            with self.db.transaction() as tx:
                if error is None:
                    tx.execute(
                        "DELETE FROM event_failures WHERE consumer = :c AND seq = :seq",
                        {"c": consumer.name, "seq": row["seq"]},
                    )
                    handled += 1
                    self.metrics.processed.labels(consumer.name).inc()
                    continue
                dead = attempts >= self.max_attempts
                tx.execute(
                    "UPDATE event_failures SET attempts = :a, error = :err, next_attempt_at = "
                    ":next, status = :status, updated_at = :now WHERE consumer = :c AND seq = :seq",
                    {
                        "a": attempts,
                        "err": error[:2000],
                        "next": time.time() + self._delay(attempts),
                        "status": "dead" if dead else "retrying",
                        "now": _now_ms(),
                        "c": consumer.name,
                        "seq": row["seq"],
                    },
                )
            self._count_failure(consumer.name, event, attempts, error, dead=dead)
        return handled

    def _count_failure(
        self, name: str, event: Event, attempts: int, error: str, *, dead: bool = False
    ) -> None:
        self.metrics.failures.labels(name).inc()
        if dead:
            self.metrics.dead.labels(name).inc()
            log.error(
                "event %s %s dead-lettered after %d attempts of %s: %s",
                event.topic,
                event.id,
                attempts,
                name,
                error,
            )
        else:
            log.warning(
                "event %s %s: handler %s failed (attempt %d): %s",
                event.topic,
                event.id,
                name,
                attempts,
                error,
            )

    def _maybe_retain(self, *, force: bool = False) -> int:
        now = time.monotonic()
        if not force and now - self._last_retention < 60:
            return 0
        self._last_retention = now
        with self.db.transaction() as tx:
            return tx.execute(
                "DELETE FROM events WHERE occurred_at < :cutoff AND "
                + self._sql["behind_all"]
                + " AND NOT EXISTS (SELECT 1 FROM event_failures f WHERE f.event_id = events.id)",
                {"cutoff": _now_ms() - int(self.retention_s * 1000)},
            )

    # -- failures (the CLI) ---------------------------------------------------------------

    def failures(self, status: str | None = None) -> list[dict[str, Any]]:
        return list_failures(self.db, status)

    # -- the dispatcher thread ------------------------------------------------------------

    def start(self) -> None:
        """Run the dispatcher thread (and its wake-up listeners) until :meth:`stop`."""
        if self._threads:
            return
        self._stop.clear()
        if self.redis_url:
            self._start_redis()
        if self.db.dialect == "postgresql":
            self._spawn(self._listen_postgres, "events-listen")
        self._spawn(self._dispatch_loop, "events-dispatch")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self._redis is not None:
            try:
                self._redis.close()
            except Exception:
                pass
            self._redis = None

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except Exception:
                log.exception("events: dispatch cycle failed")

    def _listen_postgres(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.db.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._wake.set()
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("events: LISTEN %s: %s; polling meanwhile", CHANNEL, exc)
                self._stop.wait(2.0)

    def _start_redis(self) -> None:
        try:
            import redis

            self._redis = redis.Redis.from_url(
                self.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
        except Exception as exc:
            log.warning("events: redis %s: %s; polling only", self.redis_url, exc)
            return
        self._spawn(self._listen_redis, "events-redis")

    def _listen_redis(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                self._redis_guard.answered()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message.get("data") != self.worker_id.encode():
                        self._wake.set()
                pubsub.close()
            except Exception as exc:
                if self._stop.is_set():
                    return
                self._redis_guard.failed(exc)
                self._stop.wait(self._redis_guard.retry_s)


def list_failures(db: Database, status: str | None = None) -> list[dict[str, Any]]:
    """Failed deliveries (``retrying`` and ``dead``, or one of them), oldest first."""
    where = "WHERE status = :s" if status else ""
    with db.transaction(write=False) as tx:
        return tx.fetchall(
            "SELECT consumer, seq, event_id, topic, attempts, error, status, next_attempt_at, "
            f"updated_at FROM event_failures {where} ORDER BY seq, consumer",
            {"s": status} if status else {},
        )


def retry_dead(db: Database, consumer: str | None = None) -> int:
    """Requeue dead deliveries (of ``consumer``, else all): retried at the next cycle."""
    where = " AND consumer = :c" if consumer else ""
    with db.transaction() as tx:
        return tx.execute(
            "UPDATE event_failures SET status = 'retrying', attempts = 0, next_attempt_at = 0 "
            f"WHERE status = 'dead'{where}",
            {"c": consumer} if consumer else {},
        )
