"""The library: browsing the indexed catalogue by track, album, artist and genre.

Reads the rows :mod:`.track_index` writes (migration 11's columns) and maps them, with
pure functions, to the objects the HTTP API (:mod:`.api_library`) and the Subsonic API
answer with. Stable entry points (the Subsonic module calls them)::

    lib = Library(db)
    lib.tracks(sort, limit=, offset=)          -> Page of track rows   (TRACK_SORTS)
    lib.recent(limit=, offset=)                 -> Page, newest first (tracks "added")
    lib.track(track_id) / lib.tracks_by_id(ids) -> a row or None / {id: row}
    lib.albums_by_id(ids) / lib.artists_by_id(ids) -> {id: row}
    lib.artists(sort, limit=, offset=)          -> Page of artist rows  (ARTIST_SORTS)
    lib.artist(artist_id)                       -> an artist row or None
    lib.artist_albums(artist_id)                -> album rows, by year then title
    lib.artist_top_tracks(artist_id, limit=)    -> track rows, most played first
    lib.albums(sort, limit=, offset=, genre=, years=) -> Page of album rows (ALBUM_SORTS)
    lib.album(album_id) / lib.album_tracks(album_id)  -> a row or None / rows, disc order
    lib.genres(limit=, offset=)                 -> Page of genre rows, by name
    lib.genre_tracks(name, limit=, offset=)     -> Page of track rows (artist, album order)

and the row -> object mappers :func:`track_item`, :func:`album_item`, :func:`artist_item`,
:func:`genre_item`, each taking an ``art`` function that turns a row's art keys into
``{"url", "thumbnail_url"}`` (signed URLs: :mod:`.art_urls`) or None.

Orders are total (ids break ties) and the same on SQLite and PostgreSQL: sort keys are
folded text compared byte-wise (:mod:`.library_tags`). Albums group tracks by album
artist and title; an artist's albums are those it performs on or is credited with.
Genres group by their folded form and show the spelling first seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from delivery.db import Database
from delivery.db.base import in_list
from delivery.modules.aggregates import TRACK_ORDER, bytewise
from delivery.modules.ids import iso_ms
from delivery.modules.library_tags import genre_key

Row = Mapping[str, Any]
ArtUrls = Callable[[str | None, str | None], dict[str, str] | None]

MAX_ALBUM_TRACKS = 1000  # an album's track list (a box set stays whole)
MAX_ARTIST_ALBUMS = 500

TRACK_SORTS: dict[str, str] = {
    "added": "t.added_at DESC, t.track_id{C}",
    "title": "t.sort_title, t.track_id{C}",
    "artist": f"t.sort_artist, t.sort_album, {TRACK_ORDER}",
    "plays": "t.plays DESC, t.sort_title, t.track_id{C}",
}
ALBUM_SORTS: dict[str, str] = {
    "added": "a.added_at DESC, a.album_id{C}",
    "title": "a.sort_title, a.album_id{C}",
    "artist": "a.sort_artist, a.year IS NULL, a.year, a.sort_title, a.album_id{C}",
    "year": "a.year IS NULL, a.year DESC, a.sort_title, a.album_id{C}",
    "plays": "a.plays DESC, a.sort_title, a.album_id{C}",
}
ARTIST_SORTS: dict[str, str] = {
    "name": "r.sort_name, r.artist_id{C}",
    "plays": "r.plays DESC, r.sort_name, r.artist_id{C}",
}

TRACK_COLS = (
    "t.track_id, t.version, t.title, t.artist, t.artist_id, t.album, t.album_id, "
    "t.album_artist, t.album_artist_id, t.genre, t.year, t.disc_no, t.track_no, "
    "t.duration_ms, t.plays, t.added_at, t.art_key, t.art_thumb_key"
)
ALBUM_COLS = (
    "a.album_id, a.title, a.artist, a.artist_id, a.year, a.track_count, a.duration_ms, "
    "a.plays, a.added_at, a.genre, a.art_key, a.art_thumb_key"
)
ARTIST_COLS = (
    "r.artist_id, r.name, r.track_count, r.album_count, r.plays, r.art_key, r.art_thumb_key"
)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows and how many rows there are in all."""

    items: list[Row]
    total: int


def _order(sorts: Mapping[str, str], sort: str) -> str:
    if sort not in sorts:
        raise ValueError(f"unknown sort {sort!r}: use {', '.join(sorts)}")
    return sorts[sort]


class Library:
    """Read-only queries over the track index (one short read transaction each)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        with self.db.transaction(write=False) as tx:
            return tx.fetchall(bytewise(sql, self.db.dialect), params)

    def _page(
        self, select: str, count: str, params: Mapping[str, Any], limit: int, offset: int
    ) -> Page:
        with self.db.transaction(write=False) as tx:
            total = tx.fetchone(count, params)["n"]
            rows = tx.fetchall(
                bytewise(select, self.db.dialect) + " LIMIT :limit OFFSET :offset",
                {**params, "limit": limit, "offset": offset},
            )
        return Page(rows, int(total))

    # -- tracks ----------------------------------------------------------------------

    def tracks(self, sort: str = "added", *, limit: int = 20, offset: int = 0) -> Page:
        order = _order(TRACK_SORTS, sort)
        return self._page(
            f"SELECT {TRACK_COLS} FROM tracks t ORDER BY {order}",
            "SELECT COUNT(*) AS n FROM tracks",
            {},
            limit,
            offset,
        )

    def recent(self, *, limit: int = 20, offset: int = 0) -> Page:
        """Recently added tracks, newest first."""
        return self.tracks("added", limit=limit, offset=offset)

    def track(self, track_id: str) -> Row | None:
        rows = self._all(
            f"SELECT {TRACK_COLS} FROM tracks t WHERE t.track_id = :t", {"t": track_id}
        )
        return rows[0] if rows else None

    def tracks_by_id(self, track_ids: Iterable[str]) -> dict[str, Row]:
        return self._by_id("tracks t", "t.track_id", TRACK_COLS, track_ids)

    def albums_by_id(self, album_ids: Iterable[str]) -> dict[str, Row]:
        return self._by_id("albums a", "a.album_id", ALBUM_COLS, album_ids)

    def artists_by_id(self, artist_ids: Iterable[str]) -> dict[str, Row]:
        return self._by_id("artists r", "r.artist_id", ARTIST_COLS, artist_ids)

    def _by_id(self, table: str, key: str, cols: str, ids: Iterable[str]) -> dict[str, Row]:
        """``{id: row}`` of the rows among ``ids`` (unknown ones left out), 500 per query."""
        wanted = list(dict.fromkeys(ids))
        name = key.split(".")[1]
        out: dict[str, Row] = {}
        for i in range(0, len(wanted), 500):
            placeholders, params = in_list(wanted[i : i + 500], "k")
            sql = f"SELECT {cols} FROM {table} WHERE {key} IN ({placeholders})"
            out.update((r[name], r) for r in self._all(sql, params))
        return out

    # -- artists ---------------------------------------------------------------------

    def artists(self, sort: str = "name", *, limit: int = 20, offset: int = 0) -> Page:
        order = _order(ARTIST_SORTS, sort)
        return self._page(
            f"SELECT {ARTIST_COLS} FROM artists r ORDER BY {order}",
            "SELECT COUNT(*) AS n FROM artists",
            {},
            limit,
            offset,
        )

    def artist(self, artist_id: str) -> Row | None:
        rows = self._all(
            f"SELECT {ARTIST_COLS} FROM artists r WHERE r.artist_id = :id", {"id": artist_id}
        )
        return rows[0] if rows else None

    def artist_albums(self, artist_id: str, *, limit: int = MAX_ARTIST_ALBUMS) -> list[Row]:
        """Albums the artist performs on or is credited with, oldest first."""
        return self._all(
            f"SELECT {ALBUM_COLS} FROM albums a WHERE a.album_id IN ("
            "SELECT t.album_id FROM tracks t WHERE (t.artist_id = :id OR "
            "t.album_artist_id = :id) AND t.album_id <> '') "
            "ORDER BY a.year IS NULL, a.year, a.sort_title, a.album_id{C} LIMIT :limit",
            {"id": artist_id, "limit": limit},
        )

    def artist_top_tracks(self, artist_id: str, *, limit: int = 10) -> list[Row]:
        return self._all(
            f"SELECT {TRACK_COLS} FROM tracks t "
            "WHERE t.artist_id = :id OR t.album_artist_id = :id "
            f"ORDER BY {TRACK_SORTS['plays']} LIMIT :limit",
            {"id": artist_id, "limit": limit},
        )

    # -- albums ----------------------------------------------------------------------

    def albums(
        self,
        sort: str = "added",
        *,
        limit: int = 20,
        offset: int = 0,
        genre: str | None = None,
        years: tuple[int, int] | None = None,
    ) -> Page:
        """Albums in ``sort`` order; ``genre`` (any spelling) and ``years`` (inclusive,
        either way round) narrow them down."""
        order = _order(ALBUM_SORTS, sort)
        where, params = [], {}
        if genre is not None and genre_key(genre):  # a blank genre filters nothing
            where.append("a.album_id IN (SELECT t.album_id FROM tracks t WHERE t.genre_key = :g)")
            params["g"] = genre_key(genre)
        if years is not None:
            where.append("a.year BETWEEN :y0 AND :y1")
            params["y0"], params["y1"] = min(years), max(years)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self._page(
            f"SELECT {ALBUM_COLS} FROM albums a{clause} ORDER BY {order}",
            f"SELECT COUNT(*) AS n FROM albums a{clause}",
            params,
            limit,
            offset,
        )

    def album(self, album_id: str) -> Row | None:
        rows = self._all(
            f"SELECT {ALBUM_COLS} FROM albums a WHERE a.album_id = :id", {"id": album_id}
        )
        return rows[0] if rows else None

    def album_tracks(self, album_id: str) -> list[Row]:
        """The album's tracks in disc/track order (unnumbered ones last, by title)."""
        return self._all(
            f"SELECT {TRACK_COLS} FROM tracks t WHERE t.album_id = :id "
            f"ORDER BY {TRACK_ORDER} LIMIT {MAX_ALBUM_TRACKS}",
            {"id": album_id},
        )

    # -- genres ----------------------------------------------------------------------

    def genres(self, *, limit: int = 20, offset: int = 0) -> Page:
        page = self._page(
            "SELECT t.genre_key, COUNT(*) AS track_count, "
            "COUNT(DISTINCT CASE WHEN t.album_id <> '' THEN t.album_id END) AS album_count "
            "FROM tracks t WHERE t.genre_key <> '' GROUP BY t.genre_key ORDER BY t.genre_key",
            "SELECT COUNT(DISTINCT genre_key) AS n FROM tracks WHERE genre_key <> ''",
            {},
            limit,
            offset,
        )
        # The spelling first seen: one indexed lookup per genre of the page.
        first = bytewise(
            "SELECT t.genre FROM tracks t WHERE t.genre_key = :g "
            "ORDER BY t.added_at, t.track_id{C} LIMIT 1",
            self.db.dialect,
        )
        with self.db.transaction(write=False) as tx:
            items = []
            for row in page.items:
                seen = tx.fetchone(first, {"g": row["genre_key"]})  # None: removed meanwhile
                items.append({**row, "name": seen["genre"] if seen else row["genre_key"]})
        return Page(items, page.total)

    def genre_tracks(self, name: str, *, limit: int = 20, offset: int = 0) -> Page:
        """The genre's tracks (``name`` in any spelling of it), by artist then album."""
        params = {"g": genre_key(name)}
        return self._page(
            f"SELECT {TRACK_COLS} FROM tracks t WHERE t.genre_key = :g "
            f"ORDER BY {TRACK_SORTS['artist']}",
            "SELECT COUNT(*) AS n FROM tracks WHERE genre_key = :g",
            params,
            limit,
            offset,
        )


# -- rows -> objects (pure) ----------------------------------------------------------------


def _text(value: str | None) -> str | None:
    return value or None


def _added(ms: int | None) -> str | None:
    return iso_ms(ms) if ms else None


def track_item(row: Row, art: ArtUrls) -> dict[str, Any]:
    return {
        "id": row["track_id"],
        "title": row["title"],
        "artist": _text(row["artist"]),
        "artist_id": _text(row["artist_id"]),
        "album": _text(row["album"]),
        "album_id": _text(row["album_id"]),
        "album_artist": _text(row["album_artist"]),
        "album_artist_id": _text(row["album_artist_id"]),
        "genre": _text(row["genre"]),
        "year": row["year"],
        "disc": row["disc_no"],
        "track": row["track_no"],
        "duration_ms": int(row["duration_ms"]),
        "plays": int(row["plays"]),
        "added_at": _added(row["added_at"]),
        "art": art(row["art_key"], row["art_thumb_key"]),
    }


def album_item(row: Row, art: ArtUrls) -> dict[str, Any]:
    return {
        "id": row["album_id"],
        "title": row["title"],
        "artist": _text(row["artist"]),
        "artist_id": _text(row["artist_id"]),
        "year": row["year"],
        "track_count": int(row["track_count"]),
        "duration_ms": int(row["duration_ms"]),
        "plays": int(row["plays"]),
        "added_at": _added(row["added_at"]),
        "genre": _text(row["genre"]),
        "art": art(row["art_key"], row["art_thumb_key"]),
    }


def artist_item(row: Row, art: ArtUrls) -> dict[str, Any]:
    return {
        "id": row["artist_id"],
        "name": row["name"],
        "track_count": int(row["track_count"]),
        "album_count": int(row["album_count"]),
        "plays": int(row["plays"]),
        "art": art(row["art_key"], row["art_thumb_key"]),
    }


def genre_item(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "track_count": int(row["track_count"]),
        "album_count": int(row["album_count"]),
    }
