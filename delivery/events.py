"""The delivery service's event bus: a small port, and the in-process implementation.

Topics used today (payloads are small JSON-able dicts, so a broker can carry them):

``track.published``   ``{"track_id", "version"}``           -> search indexing
``playlist.changed``  ``{"playlist_id", "snapshot_id", "change"}`` -> playlist search index
``play.recorded``     ``{"user_id", "play_id", "track_id"}`` -> popularity, friends-listened

Delivery is **at least once**: a handler may see the same event twice (a retry
after it failed half-way, or a broker redelivering), so every handler must be
idempotent — the ones in :mod:`delivery.modules` are (upserts, and play counts
guarded by a per-play "counted" flag).

:class:`InProcessEventBus` runs handlers in the publishing thread right after
``publish`` is called (call it *after* your transaction commits). A handler that
raises is retried a few times at once, then parked and retried by
:meth:`InProcessEventBus.redeliver` (run on every later publish, and callable by
a timer), with exponential back-off, until ``max_attempts``; after that the
event goes to :attr:`InProcessEventBus.dead_letters` and is logged. Events live
in memory: a crash loses parked retries — the reason the handlers' work can
also be rebuilt in bulk (``delivery catalog sync``).

To put a broker (Kafka, NATS, SQS...) behind the same port, implement
:class:`EventBus`: ``publish`` serialises :class:`Event` to the topic,
``subscribe`` registers a consumer-group handler.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("delivery.events")

TRACK_PUBLISHED = "track.published"
PLAYLIST_CHANGED = "playlist.changed"
PLAY_RECORDED = "play.recorded"

_TOPIC_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    payload: Mapping[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "occurred_at": self.occurred_at,
            "payload": dict(self.payload),
        }


Handler = Callable[[Event], None]


class EventBus(Protocol):
    """What publishers and subscribers rely on; nothing else."""

    def publish(self, topic: str, payload: Mapping[str, Any]) -> Event:
        """Hand ``payload`` to every subscriber of ``topic`` (at least once, eventually)."""

    def subscribe(self, topic: str, handler: Handler, *, name: str | None = None) -> None:
        """Call ``handler(event)`` for every event on ``topic``. ``name`` identifies it in logs."""


def validate_topic(topic: str) -> str:
    if not isinstance(topic, str) or not _TOPIC_RE.fullmatch(topic):
        raise ValueError(
            f"invalid event topic {str(topic)[:60]!r}: expected e.g. 'track.published'"
        )
    return topic


@dataclass
class _Subscription:
    topic: str
    handler: Handler
    name: str


@dataclass
class _Parked:
    event: Event
    subscription: _Subscription
    attempts: int
    due: float
    error: str = ""


@dataclass(frozen=True)
class DeadLetter:
    event: Event
    handler: str
    attempts: int
    error: str


class InProcessEventBus:
    """Synchronous, in-memory delivery with retries (see the module docstring)."""

    def __init__(
        self,
        *,
        immediate_attempts: int = 2,
        max_attempts: int = 8,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if immediate_attempts < 1 or max_attempts < immediate_attempts:
            raise ValueError("need 1 <= immediate_attempts <= max_attempts")
        self.immediate_attempts = immediate_attempts
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._subs: dict[str, list[_Subscription]] = {}
        self._parked: list[_Parked] = []
        self.dead_letters: list[DeadLetter] = []
        self._lock = threading.Lock()
        self.delivered = 0
        self.failures = 0

    def subscribe(self, topic: str, handler: Handler, *, name: str | None = None) -> None:
        validate_topic(topic)
        sub = _Subscription(topic, handler, name or getattr(handler, "__qualname__", "handler"))
        with self._lock:
            self._subs.setdefault(topic, []).append(sub)

    def subscribers(self, topic: str) -> list[str]:
        with self._lock:
            return [s.name for s in self._subs.get(topic, [])]

    def publish(self, topic: str, payload: Mapping[str, Any]) -> Event:
        validate_topic(topic)
        event = Event(topic, dict(payload))
        self.redeliver()
        with self._lock:
            subs = list(self._subs.get(topic, []))
        for sub in subs:
            self._deliver(event, sub, attempts_so_far=0, budget=self.immediate_attempts)
        return event

    def redeliver(self, *, force: bool = False) -> int:
        """Retry the parked deliveries that are due (all with ``force``); return how many ran."""
        now = self._clock()
        with self._lock:
            due = [p for p in self._parked if force or p.due <= now]
            if not due:
                return 0
            self._parked = [p for p in self._parked if p not in due]
        for parked in due:
            self._deliver(parked.event, parked.subscription, parked.attempts, budget=1)
        return len(due)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._parked)

    def _deliver(self, event: Event, sub: _Subscription, attempts_so_far: int, budget: int) -> None:
        attempts = attempts_so_far
        error = ""
        for _ in range(budget):
            attempts += 1
            try:
                sub.handler(event)
            except Exception as exc:  # a handler's failure must never reach the publisher
                error = f"{type(exc).__name__}: {exc}"
                self.failures += 1
                log.warning(
                    "event %s %s: handler %s failed (attempt %d): %s",
                    event.topic,
                    event.id,
                    sub.name,
                    attempts,
                    error,
                )
                if attempts >= self.max_attempts:
                    break
                continue
            self.delivered += 1
            return
        if attempts >= self.max_attempts:
            log.error(
                "event %s %s dead-lettered after %d attempts of %s: %s",
                event.topic,
                event.id,
                attempts,
                sub.name,
                error,
            )
            with self._lock:
                self.dead_letters.append(DeadLetter(event, sub.name, attempts, error))
            return
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempts - 1))
        with self._lock:
            self._parked.append(_Parked(event, sub, attempts, self._clock() + delay, error))
