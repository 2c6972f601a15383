"""Subscription tiers: a trusted token claim first, then the ``users`` table, then the default.

The table (migration 1: ``users(user_id, tier, updated_at)``) is the source of
truth the ``delivery users set-tier`` command and the admin endpoint write.
Lookups are cached per worker for ``DELIVERY_TIER_CACHE_TTL_S`` seconds (the
stream endpoint asks on every request). A change is written with a
``tier.changed`` event in the same transaction (when the store has an event bus:
the app's, or the CLI's), and every worker forgets the user's cached tier when
the event reaches it (within ``DELIVERY_EVENTS_POLL_S`` on SQLite, at once with
PostgreSQL or Redis); the TTL is only the fallback, should an event be lost, so it
is long (5 minutes by default): a cached tier costs the stream route no database
round trip.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from delivery.db import Database
from delivery.events import TIER_CHANGED
from origin.manifest import utc_now

USER_ID_MAX = 128
# Printable ASCII without spaces or quotes: safe in URLs, logs and signed claims.
_USER_ID_RE = re.compile(r"[A-Za-z0-9._@:+=-]{1,128}")
MISSING = object()


class UnknownTier(ValueError):
    """A tier name that is not configured in the entitlements."""


class InvalidUserId(ValueError):
    """A user id outside the accepted characters or length."""


def validate_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not _USER_ID_RE.fullmatch(user_id):
        raise InvalidUserId(
            f"invalid user id {str(user_id)[:40]!r}: use 1-{USER_ID_MAX} characters "
            "A-Z a-z 0-9 . _ @ : + = -"
        )
    return user_id


@dataclass(frozen=True, slots=True)
class TierRecord:
    user_id: str
    tier: str
    updated_at: str | None  # None: the user is not in the table (default tier)


class TierStore:
    """The ``users`` table with a small read cache in front of it."""

    def __init__(
        self,
        db: Database,
        tiers: Collection[str],
        default_tier: str,
        *,
        cache_ttl_s: float = 10.0,
        cache_size: int = 100_000,
    ) -> None:
        self._db = db
        self._tiers = frozenset(tiers)
        self.default_tier = default_tier
        self._cache: TTLCache[str, str | None] | None = (
            TTLCache(maxsize=cache_size, ttl=cache_ttl_s) if cache_ttl_s > 0 else None
        )
        # Read on the event loop, written from request threads: cachetools needs a lock.
        self._lock = threading.Lock()
        self.events: Any = None  # an EventBus: set() then announces tier.changed

    @property
    def tiers(self) -> frozenset[str]:
        return self._tiers

    def cached(self, user_id: str) -> Any:
        """The cached tier (``None`` = not in the table) or :data:`MISSING`."""
        if self._cache is None:
            return MISSING
        with self._lock:
            return self._cache.get(user_id, MISSING)

    def lookup(self, user_id: str) -> str | None:
        """The stored tier of ``user_id`` (``None`` when the table has no row)."""
        found = self.cached(user_id)
        if found is not MISSING:
            return found
        with self._db.transaction(write=False) as tx:
            row = tx.fetchone("SELECT tier FROM users WHERE user_id = :u", {"u": user_id})
        tier = row["tier"] if row else None
        if self._cache is not None:
            with self._lock:
                self._cache[user_id] = tier
        return tier

    def get(self, user_id: str) -> TierRecord:
        validate_user_id(user_id)
        with self._db.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT tier, updated_at FROM users WHERE user_id = :u", {"u": user_id}
            )
        if row is None:
            return TierRecord(user_id, self.default_tier, None)
        return TierRecord(user_id, row["tier"], row["updated_at"])

    def set(self, user_id: str, tier: str) -> TierRecord:
        validate_user_id(user_id)
        if tier not in self._tiers:
            raise UnknownTier(
                f"unknown tier {tier[:40]!r}: choose from {', '.join(sorted(self._tiers))}"
            )
        now = utc_now()
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO users (user_id, tier, updated_at) VALUES (:u, :t, :n) "
                "ON CONFLICT (user_id) DO UPDATE SET tier = :t, updated_at = :n",
                {"u": user_id, "t": tier, "n": now},
            )
            if self.events is not None:
                self.events.publish(TIER_CHANGED, {"user_id": user_id, "tier": tier}, tx=tx)
        self.forget(user_id)
        return TierRecord(user_id, tier, now)

    def forget(self, user_id: str) -> None:
        if self._cache is not None:
            with self._lock:
                self._cache.pop(user_id, None)


class TierResolver:
    """Decide a caller's tier from verified claims and the store."""

    def __init__(self, store: TierStore, claim: str | None) -> None:
        self.store = store
        self.claim = claim

    def from_claims(self, claims: Mapping[str, Any]) -> str | None:
        """The tier a trusted claim states, if it names a configured tier."""
        if not self.claim:
            return None
        value = claims.get(self.claim)
        # A claim naming a tier we do not sell is ignored rather than trusted blindly.
        return value if isinstance(value, str) and value in self.store.tiers else None

    def resolve(self, user_id: str, claims: Mapping[str, Any]) -> str:
        tier = self.from_claims(claims)
        if tier is not None:
            return tier
        stored = self.store.lookup(user_id)
        return self._known(stored)

    def _known(self, stored: str | None) -> str:
        # A row written before a tier was removed from the configuration falls back to the default.
        if stored is None or stored not in self.store.tiers:
            return self.store.default_tier
        return stored

    def resolve_cached(self, user_id: str, claims: Mapping[str, Any]) -> Any:
        """Like :meth:`resolve` without touching the database; :data:`MISSING` on a cache miss."""
        tier = self.from_claims(claims)
        if tier is not None:
            return tier
        stored = self.store.cached(user_id)
        return stored if stored is MISSING else self._known(stored)
