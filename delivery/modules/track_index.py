"""The track index: the database's rows for published tracks (read from their
manifests in the store), with the artists and albums derived from them. Search,
playlists and plays read these rows; this module is the only writer.

Tracks enter it three ways, all ending in :meth:`TrackIndex.upsert`:

* the ``track.published`` event (:meth:`TrackIndex.on_track_published`), raised by the
  admin endpoint ``POST /v1/admin/events`` that ``encoder ingest --notify`` calls;
* ``delivery catalog sync`` (:meth:`TrackIndex.sync`), which walks every
  ``latest.json`` in the store and indexes what changed (``--prune`` also drops
  tracks the store no longer has, each with a ``track.removed`` event), writing a
  ``track.published`` event for each in
  the same transaction, so every worker's catalogue cache hears of it as it would
  from ``--notify``;
* tests and benchmarks, directly.

``latest.json`` is the source of truth for which version is current (it is written
last by the encoder), so an event naming an older version still indexes the
latest one: replays and out-of-order events are harmless.

Artists and albums are derived rows (ids are hashes of the normalised names);
their ``track_count`` and ``plays`` are recomputed from the tracks whenever a
track joins or leaves them (:mod:`.aggregates`), so re-indexing with changed tags
cannot drift. An album is its album artist (``albumartist``, else the artist) and
title, so a compilation is one album.

Rows indexed before the library columns existed (migration 11) carry ``library_rev`` 0:
:meth:`TrackIndex.versions` and the ``track.published`` handler treat them as out of
date, so the next sync or publication re-reads their manifests.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from delivery.db import Database, Transaction
from delivery.events import TRACK_INDEXED, TRACK_PUBLISHED, TRACK_REMOVED, Event, EventBus
from delivery.modules.aggregates import (  # noqa: F401 - TRACK_ORDER, bytewise re-exported
    TRACK_ORDER,
    bytewise,
    refresh_album,
    refresh_artist,
)
from delivery.modules.ids import normalize_name, now_ms, stable_id
from delivery.modules.library_tags import genre_key, position_number, sort_key
from delivery.modules.search_index import add_vocab, track_columns
from delivery.modules.search_text import field_tokens
from origin.errors import StoreError, TrackNotFound, VersionNotFound
from origin.keys import parse_key, validate_version
from origin.manifest import Manifest, read_latest, read_manifest
from origin.store import ObjectStore

log = logging.getLogger("delivery.modules.track_index")

_YEAR_RE = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# Bump when upsert starts deriving something new from manifests: older rows re-index.
LIBRARY_REV = 1


def _tag(tags: Mapping[str, str], *names: str) -> str:
    lowered = {k.lower(): v for k, v in tags.items()}
    for name in names:
        value = lowered.get(name)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:500]
    return ""


def year_from_tags(tags: Mapping[str, str]) -> int | None:
    """The release year from ``date`` (``2001-03-12``, ``2001``) or ``year`` tags."""
    for name in ("date", "year", "originaldate", "originalyear"):
        m = _YEAR_RE.search(_tag(tags, name))
        if m and 1000 <= int(m.group(1)) <= 2999:
            return int(m.group(1))
    return None


@dataclass(frozen=True, slots=True)
class IndexedTrack:
    track_id: str
    version: str
    title: str
    artist: str
    album: str
    year: int | None
    duration_ms: int
    published_at: str | None = None
    genre: str = ""
    album_artist: str = ""  # the tag; empty: the artist
    disc_no: int | None = None
    track_no: int | None = None
    art_key: str | None = None  # the version's cover art, original and thumbnail
    art_thumb_key: str | None = None

    @property
    def artist_id(self) -> str:
        return stable_id("artist", normalize_name(self.artist)) if self.artist else ""

    @property
    def album_artist_name(self) -> str:
        return self.album_artist or self.artist

    @property
    def album_artist_id(self) -> str:
        name = self.album_artist_name
        return stable_id("artist", normalize_name(name)) if name else ""

    @property
    def album_id(self) -> str:
        if not self.album:
            return ""
        return stable_id(
            "album", normalize_name(self.album_artist_name), normalize_name(self.album)
        )

    @classmethod
    def from_manifest(cls, manifest: Manifest, published_at: str | None = None) -> IndexedTrack:
        tags = manifest.tags
        return cls(
            track_id=manifest.track_id,
            version=manifest.version,
            title=_tag(tags, "title") or manifest.track_id,
            artist=_tag(tags, "artist", "album_artist", "albumartist"),
            album=_tag(tags, "album"),
            year=year_from_tags(tags),
            duration_ms=int(round(manifest.duration_s * 1000)),
            published_at=published_at,
            genre=_tag(tags, "genre"),
            album_artist=_tag(tags, "albumartist", "album_artist", "album artist"),
            disc_no=position_number(_tag(tags, "discnumber", "disc")),
            track_no=position_number(_tag(tags, "tracknumber", "track")),
            art_key=manifest.art.original.key if manifest.art else None,
            art_thumb_key=manifest.art.thumbnail.key if manifest.art else None,
        )


def _library_columns(track: IndexedTrack) -> dict[str, object]:
    return {
        "album_artist": track.album_artist_name,
        "album_artist_id": track.album_artist_id,
        "genre_key": genre_key(track.genre),
        "disc_no": track.disc_no,
        "track_no": track.track_no,
        "art_key": track.art_key,
        "art_thumb_key": track.art_thumb_key,
        "sort_title": sort_key(track.title),
        "sort_artist": sort_key(track.artist),
        "sort_album": sort_key(track.album),
        "library_rev": LIBRARY_REV,
    }


@dataclass
class SyncReport:
    seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"catalog sync: {self.seen} tracks in the store, {self.indexed} indexed, "
            f"{self.unchanged} unchanged, {self.removed} removed, {len(self.errors)} errors"
        )


class TrackNotInStore(LookupError):
    """The store holds no manifest for the track (yet)."""


# The search columns (t_*, k_*: delivery.modules.search_index) are computed here; on
# PostgreSQL a trigger builds the tsvector from them, on SQLite triggers feed FTS5.
_SEARCH_COLS = "t_title, t_artist, t_album, t_genre, k_title, k_artist, k_album"
# The library's (migration 11); added_at is set on insert only: when the track first came.
_LIBRARY_COLS = (
    "album_artist, album_artist_id, genre_key, disc_no, track_no, art_key, art_thumb_key, "
    "sort_title, sort_artist, sort_album, library_rev"
)
_UPSERT_TRACK = f"""
    INSERT INTO tracks (track_id, version, title, artist, album, artist_id, album_id, year,
                        duration_ms, published_at, indexed_at, plays, genre, {_SEARCH_COLS},
                        {_LIBRARY_COLS}, added_at)
    VALUES (:track_id, :version, :title, :artist, :album, :artist_id, :album_id, :year,
            :duration_ms, :published_at, :now,
            COALESCE((SELECT plays FROM track_stats WHERE track_id = :track_id), 0), :genre,
            :t_title, :t_artist, :t_album, :t_genre, :k_title, :k_artist, :k_album,
            {", ".join(":" + c for c in _LIBRARY_COLS.split(", "))}, :now)
    ON CONFLICT (track_id) DO UPDATE SET
        version = excluded.version, title = excluded.title, artist = excluded.artist,
        album = excluded.album, artist_id = excluded.artist_id, album_id = excluded.album_id,
        year = excluded.year, duration_ms = excluded.duration_ms,
        published_at = excluded.published_at, indexed_at = excluded.indexed_at,
        genre = excluded.genre, t_title = excluded.t_title, t_artist = excluded.t_artist,
        t_album = excluded.t_album, t_genre = excluded.t_genre, k_title = excluded.k_title,
        k_artist = excluded.k_artist, k_album = excluded.k_album,
        {", ".join(f"{c} = excluded.{c}" for c in _LIBRARY_COLS.split(", "))}
"""


class TrackIndex:
    """Writes the track rows (and their artists and albums); reads manifests to do so."""

    def __init__(
        self, db: Database, store: ObjectStore | None = None, *, events: EventBus | None = None
    ) -> None:
        self.db = db
        self.store = store
        self.events = events  # set: sync() announces what it indexes (track.published)

    # -- writing --------------------------------------------------------------------

    def upsert(self, tracks: Sequence[IndexedTrack], *, announce: bool = False) -> None:
        """Index ``tracks`` (insert or replace) in one transaction; with ``announce``, write
        a ``track.published`` event for each in that same transaction."""
        if not tracks:
            return
        now = now_ms()
        with self.db.transaction() as tx:
            touched_artists: set[str] = set()
            touched_albums: set[str] = set()
            tokens: list[str] = []
            for track in tracks:
                old = tx.fetchone(
                    "SELECT artist_id, album_artist_id, album_id FROM tracks WHERE track_id = :t",
                    {"t": track.track_id},
                )
                if old:
                    touched_artists |= {old["artist_id"], old["album_artist_id"]}
                    touched_albums.add(old["album_id"])
                params = {
                    "track_id": track.track_id,
                    "version": track.version,
                    "title": track.title,
                    "artist": track.artist,
                    "album": track.album,
                    "artist_id": track.artist_id,
                    "album_id": track.album_id,
                    "year": track.year,
                    "duration_ms": track.duration_ms,
                    "published_at": track.published_at,
                    "now": now,
                    "genre": track.genre,
                    **track_columns(track.title, track.artist, track.album, track.genre),
                    **_library_columns(track),
                }
                tx.execute(_UPSERT_TRACK, params)
                tokens += [params["t_title"], params["t_artist"], params["t_album"]]
                tokens += [params["t_genre"], field_tokens(track.album_artist_name)]
                touched_artists |= {track.artist_id, track.album_artist_id}
                touched_albums.add(track.album_id)
                if announce and self.events is not None:
                    self.events.publish(
                        TRACK_PUBLISHED,
                        {"track_id": track.track_id, "version": track.version},
                        tx=tx,
                    )
            add_vocab(tx, self.db.dialect, tokens)
            self._refresh_aggregates(tx, touched_artists, touched_albums)
            self._indexed(tx, [t.track_id for t in tracks])

    def remove(self, track_ids: Iterable[str]) -> int:
        removed = 0
        gone: list[str] = []
        with self.db.transaction() as tx:
            artists: set[str] = set()
            albums: set[str] = set()
            for track_id in track_ids:
                old = tx.fetchone(
                    "SELECT artist_id, album_artist_id, album_id FROM tracks WHERE track_id = :t",
                    {"t": track_id},
                )
                if old is None:
                    continue
                tx.execute("DELETE FROM tracks WHERE track_id = :t", {"t": track_id})
                artists |= {old["artist_id"], old["album_artist_id"]}
                albums.add(old["album_id"])
                removed += 1
                gone.append(track_id)
                if self.events is not None:
                    # Every worker's resolver forgets its cached latest.json: the track
                    # answers 404 at once rather than after DELIVERY_CATALOG_TTL_S.
                    self.events.publish(TRACK_REMOVED, {"track_id": track_id}, tx=tx)
            self._refresh_aggregates(tx, artists, albums)
            self._indexed(tx, gone)
        return removed

    def _indexed(self, tx: Transaction, track_ids: list[str]) -> None:
        # Cached playlist pages carry these rows' metadata: every worker drops the pages
        # holding them once this transaction commits (after the index changed, not before).
        if self.events is not None and track_ids:
            self.events.publish(TRACK_INDEXED, {"track_ids": track_ids}, tx=tx)

    def _refresh_aggregates(self, tx: Transaction, artists: set[str], albums: set[str]) -> None:
        for artist_id in sorted(a for a in artists if a):
            refresh_artist(tx, self.db.dialect, artist_id)
        for album_id in sorted(a for a in albums if a):
            refresh_album(tx, self.db.dialect, album_id)

    # -- reading the store ----------------------------------------------------------

    def _store(self, store: ObjectStore | None) -> ObjectStore:
        store = store or self.store
        if store is None:
            raise RuntimeError("the track index has no object store to read manifests from")
        return store

    def read_track(
        self, track_id: str, version: str | None = None, store: ObjectStore | None = None
    ) -> IndexedTrack:
        """The index row for the track's current version (``latest.json``), else ``version``."""
        store = self._store(store)
        published_at = None
        try:
            latest = read_latest(store, track_id)
        except TrackNotFound:
            latest = None
        if latest is not None:
            if version and version != latest.version:
                log.info(
                    "track %s: event names version %s, latest.json %s; indexing latest",
                    track_id,
                    version,
                    latest.version,
                )
            version, published_at = latest.version, latest.published_at
        if version is None:
            raise TrackNotInStore(f"track {track_id!r} has no latest.json in the store")
        validate_version(version)
        try:
            manifest = read_manifest(store, track_id, version)
        except VersionNotFound:
            raise TrackNotInStore(f"track {track_id!r} has no manifest for {version}") from None
        return IndexedTrack.from_manifest(manifest, published_at)

    def index_track(self, track_id: str, version: str | None = None) -> IndexedTrack:
        track = self.read_track(track_id, version)
        self.upsert([track])
        return track

    def on_track_published(self, event: Event) -> None:
        """``track.published`` handler (idempotent: an upsert of the latest version)."""
        track_id, version = str(event.payload["track_id"]), event.payload.get("version")
        indexed = self._indexed_version(track_id)
        if indexed is not None and indexed == version:
            # Already indexed (e.g. by `catalog sync`, in the event's own transaction):
            # one small read of latest.json instead of the manifest and a write.
            try:
                if read_latest(self._store(None), track_id).version == indexed:
                    return
            except TrackNotFound:
                pass
        self.index_track(track_id, version)

    def _indexed_version(self, track_id: str) -> str | None:
        """The indexed version, or None when there is none or its row is out of date."""
        with self.db.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT version, library_rev FROM tracks WHERE track_id = :t", {"t": track_id}
            )
        return row["version"] if row and row["library_rev"] >= LIBRARY_REV else None

    def versions(self) -> dict[str, str]:
        """Track id -> indexed version; ``""`` for a row out of date (re-index it)."""
        with self.db.transaction(write=False) as tx:
            return {
                r["track_id"]: r["version"] if r["library_rev"] >= LIBRARY_REV else ""
                for r in tx.iterate("SELECT track_id, version, library_rev FROM tracks")
            }

    def sync(
        self, store: ObjectStore | None = None, *, prune: bool = False, batch: int = 200
    ) -> SyncReport:
        """Index every track whose ``latest.json`` names a version the index lacks."""
        store = self._store(store)
        report = SyncReport()
        known = self.versions()
        in_store: set[str] = set()
        pending: list[IndexedTrack] = []
        for key in store.list("tracks/"):
            parsed = parse_key(key)
            if parsed.kind != "latest":
                continue
            report.seen += 1
            in_store.add(parsed.track_id)
            try:
                latest = read_latest(store, parsed.track_id)
                if known.get(parsed.track_id) == latest.version:
                    report.unchanged += 1
                    continue
                manifest = read_manifest(
                    store, parsed.track_id, latest.version, named_by_latest=True
                )
            except StoreError as exc:  # missing, damaged, or the store is down
                report.errors.append(f"{parsed.track_id}: {exc}")
                continue
            pending.append(IndexedTrack.from_manifest(manifest, latest.published_at))
            if len(pending) >= batch:
                self.upsert(pending, announce=True)
                report.indexed += len(pending)
                pending = []
        self.upsert(pending, announce=True)
        report.indexed += len(pending)
        if prune:
            report.removed = self.remove(sorted(set(known) - in_store))
        return report
