"""Settings of the playlists, search, social and plays modules (``DELIVERY_`` prefix).

Read once by :func:`delivery.modules.install_modules` (or passed in) and
validated loudly. Every setting, its default and what it is for:

Playlists
    ``DELIVERY_PLAYLIST_MAX_ITEMS`` (``10000``)       Items one playlist may hold; a write
                                                      beyond it is a 400 ``playlist_full``.
    ``DELIVERY_PLAYLIST_PAGE_MAX`` (``50``)           Largest ``limit`` on item pages (Spotify: 50).
    ``DELIVERY_PLAYLIST_EMBED_ITEMS`` (``100``)       Items embedded in ``GET /v1/playlists/{id}``.
    ``DELIVERY_PLAYLIST_CACHE_ENTRIES`` (``4096``)    Hot-playlist cache size (pages, LRU);
                                                      ``0`` disables the cache.
    ``DELIVERY_PLAYLIST_CACHE_TTL_S`` (``300``)       Lifetime of a cached page. Entries are keyed
                                                      by snapshot, so this only bounds memory.
    ``DELIVERY_PLAYLIST_CACHE_XFETCH_BETA`` (``0``)   XFetch early refresh; ``1.0`` is the
                                                      paper's default, ``0`` turns it off.

Search
    ``DELIVERY_SEARCH_POPULARITY_WEIGHT`` (``0.2``)   ``a`` in ``rel * (1 + a*ln(1 + plays))``.
    ``DELIVERY_SEARCH_MAX_OFFSET`` (``1000``)         Deepest ``offset`` accepted (Spotify: 1000).
    ``DELIVERY_SEARCH_FUZZY`` (``true``)              PostgreSQL: when words match nothing, retry
                                                      with similar indexed words (typos).
    ``DELIVERY_SEARCH_FUZZY_THRESHOLD`` (``0.4``)     pg_trgm ``similarity_threshold`` for those.

Social and plays
    ``DELIVERY_FOLLOW_SUGGESTIONS_SCAN`` (``2000``)   Friends-of-friends rows considered per
                                                      suggestion request (bounds its cost).
    ``DELIVERY_PLAY_MAX_FUTURE_S`` (``300``)          Clock skew allowed on a client ``played_at``.
    ``DELIVERY_PLAY_MAX_AGE_S`` (``1209600``)         Oldest ``played_at`` accepted (14 days; at
                                                      least 60 s, at most ten years); older
                                                      plays are a 400 ``play_too_old``.

Events
    ``DELIVERY_EVENTS_MAX_ATTEMPTS`` (``8``)          Deliveries of one event to one handler
                                                      before it is dead-lettered.
    ``DELIVERY_EVENTS_POLL_S`` (``0.25``)             Each worker reads the outbox at least this
                                                      often (SQLite's only cross-process signal;
                                                      PostgreSQL and Redis also wake it at once).
    ``DELIVERY_EVENTS_LEASE_S`` (``5``)               Lease of a durable consumer: after a worker
                                                      dies, another one takes over within this.
    ``DELIVERY_EVENTS_RETENTION_S`` (``604800``)      Events older than this (7 days) that every
                                                      durable consumer has passed are deleted.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModulesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DELIVERY_", extra="ignore", frozen=True)

    playlist_max_items: int = Field(10_000, ge=1, le=1_000_000)
    playlist_page_max: int = Field(50, ge=1, le=100)
    playlist_embed_items: int = Field(100, ge=0, le=100)
    playlist_cache_entries: int = Field(4096, ge=0)
    playlist_cache_ttl_s: float = Field(300.0, gt=0)
    playlist_cache_xfetch_beta: float = Field(0.0, ge=0)

    search_popularity_weight: float = Field(0.2, ge=0, le=100)
    search_max_offset: int = Field(1000, ge=0)
    search_fuzzy: bool = True
    search_fuzzy_threshold: float = Field(0.4, gt=0, le=1)

    follow_suggestions_scan: int = Field(2000, ge=10)
    play_max_future_s: int = Field(300, ge=0)
    play_max_age_s: int = Field(14 * 86400, ge=60, le=3650 * 86400)

    events_max_attempts: int = Field(8, ge=2, le=100)
    events_poll_s: float = Field(0.25, gt=0, le=60)
    events_lease_s: float = Field(5.0, ge=0.5, le=3600)
    events_retention_s: float = Field(7 * 86400.0, ge=60)


def load_modules_settings(**overrides: object) -> ModulesSettings:
    """Environment + overrides, with a one-line error naming the variable on failure."""
    from pydantic import ValidationError

    try:
        return ModulesSettings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "DELIVERY_" + str(err["loc"][0]).upper() if err.get("loc") else "DELIVERY_*"
        raise ValueError(f"{name}: {err.get('msg')}") from None
