"""The modules' services (playlists, search, social, plays, recommendations, library), built
once per app.

:func:`build_modules` makes them from the delivery settings; ``create_app`` keeps the
result in :attr:`delivery.services.Services.modules`, where routes find it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from prometheus_client import CollectorRegistry

from delivery.db import Database
from delivery.events import (
    PLAY_RECORDED,
    PLAYLIST_CHANGED,
    TRACK_INDEXED,
    TRACK_PUBLISHED,
    Event,
    EventBus,
)
from delivery.modules.cache import SnapshotCache
from delivery.modules.library import Library
from delivery.modules.playlist_sharing import PlaylistSharing
from delivery.modules.playlists import PlaylistService
from delivery.modules.plays import PlayService
from delivery.modules.recommend import RecommendService
from delivery.modules.search import SearchService
from delivery.modules.social import SocialService
from delivery.modules.track_index import TrackIndex
from delivery.settings import DeliverySettings
from origin.store import ObjectStore


@dataclass(frozen=True, slots=True)
class Modules:
    cache: SnapshotCache
    track_index: TrackIndex
    search: SearchService
    playlists: PlaylistService
    sharing: PlaylistSharing
    social: SocialService
    plays: PlayService
    recommend: RecommendService
    library: Library  # browsing: tracks, albums, artists, genres (read-only)

    def subscribe_handlers(self, events: EventBus) -> None:
        """The modules' event handlers (each idempotent: delivery is at least once).

        Durable ones run once per deployment (whichever worker holds the consumer's
        lease); ``every_worker`` ones in every worker process (per-process caches).
        """
        events.subscribe(
            TRACK_PUBLISHED, self.track_index.on_track_published, name="search.index_track"
        )
        events.subscribe(
            PLAYLIST_CHANGED, self.search.on_playlist_changed, name="search.index_playlist"
        )
        events.subscribe(PLAY_RECORDED, self.plays.on_play_recorded, name="popularity.count_play")
        # Per worker: hot-playlist pages are keyed by snapshot, so a playlist's own changes
        # never need an invalidation (every read checks the header's current snapshot_id
        # in the database first); the track metadata a page joins in does, once re-indexed.
        events.subscribe(
            TRACK_INDEXED, self.forget_pages_of, name="playlists.cache.forget", every_worker=True
        )

    def forget_pages_of(self, event: Event) -> None:
        ids = set(event.payload.get("track_ids") or ())
        self.cache.discard(lambda page: any(i["track_id"] in ids for i in page.items))


def build_modules(
    settings: DeliverySettings,
    db: Database,
    store: ObjectStore | None,
    events: EventBus,
    registry: CollectorRegistry | None = None,
) -> Modules:
    """The services on one database; ``store`` None (benchmarks): no track index reads."""
    cache: SnapshotCache = SnapshotCache(
        settings.playlist_cache_entries,
        settings.playlist_cache_ttl_s,
        xfetch_beta=settings.playlist_cache_xfetch_beta,
        registry=registry,
    )
    playlists = PlaylistService(db, settings, events, cache)
    return Modules(
        cache=cache,
        track_index=TrackIndex(db, store, events=events),
        search=SearchService(db, settings),
        playlists=playlists,
        sharing=PlaylistSharing(playlists.access),
        social=SocialService(db, settings),
        plays=PlayService(db, settings, events, store),
        recommend=RecommendService(db, settings),
        library=Library(db),
    )


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")
