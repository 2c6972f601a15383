"""The delivery service's event bus: the port, the event, the topics.

Topics (payloads are small JSON-able dicts):

``track.published``   ``{"track_id", "version"}``    -> search indexing (durable),
                                                        catalogue cache forget (every worker)
``track.removed``     ``{"track_id"}``                -> catalogue cache forget (every worker):
                                                        ``delivery catalog sync --prune``
``track.indexed``     ``{"track_ids"}``              -> hot-playlist pages holding those
                                                        tracks dropped (every worker)
``tier.changed``      ``{"user_id", "tier"}``        -> tier cache forget (every worker)
``playlist.changed``  ``{"playlist_id", "snapshot_id", "change"}`` -> playlist search index
``play.recorded``     ``{"user_id", "play_id", "track_id", "played_at"}`` -> popularity,
                                                        friends-listened (durable)

There is ONE implementation in the app, :class:`delivery.outbox.OutboxEventBus`: a
transactional outbox in delivery's database, delivered at least once per deployment
(durable subscriptions) or to every worker process (``every_worker=True``). Publish
IN the transaction of the change (``publish(topic, payload, tx=tx)``) so the two
commit together. Delivery is **at least once**: a handler may see the same event
twice (a retry after it failed half-way, a worker killed before it moved its
position), so every handler is idempotent — the ones in :mod:`delivery.modules`
are (upserts, play counts guarded by a per-play "counted" flag, cache forgets).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("delivery.events")

TRACK_PUBLISHED = "track.published"
PLAYLIST_CHANGED = "playlist.changed"
PLAY_RECORDED = "play.recorded"
TIER_CHANGED = "tier.changed"
TRACK_INDEXED = "track.indexed"
TRACK_REMOVED = "track.removed"

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

    def publish(self, topic: str, payload: Mapping[str, Any], *, tx: Any = None) -> Event:
        """Hand ``payload`` to every subscriber of ``topic`` (at least once, eventually);
        with ``tx`` (a :class:`delivery.db.Transaction`) only if that transaction commits."""

    def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        name: str | None = None,
        every_worker: bool = False,
    ) -> None:
        """Call ``handler(event)`` for every event on ``topic``: once per deployment under
        ``name``, or in every worker process with ``every_worker``."""


def validate_topic(topic: str) -> str:
    if not isinstance(topic, str) or not _TOPIC_RE.fullmatch(topic):
        raise ValueError(
            f"invalid event topic {str(topic)[:60]!r}: expected e.g. 'track.published'"
        )
    return topic
