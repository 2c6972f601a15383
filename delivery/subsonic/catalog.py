"""Artists, albums and songs for the Subsonic endpoints: the library module, adapted.

Browsing reads go through :class:`delivery.modules.library.Library` (album artists, disc
and track order, genres, cover-art keys), so the web player, the library API and Subsonic
apps see one catalogue in one order. What only Subsonic asks for is here, in one place:
rows by lists of ids (search results, stars), and the album lists the library has no
sort for (``random``, ``recent`` by this user's plays, ``starred``, ``byYear`` oldest
first). Every list is bounded: Subsonic has no paging for artists or an album's songs, so
:data:`MAX_ROWS` caps what one answer can hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from delivery.db import Database
from delivery.modules.library import ALBUM_COLS, TRACK_COLS, Library
from delivery.modules.library_tags import genre_key
from delivery.modules.track_index import bytewise

Row = dict[str, Any]
MAX_ROWS = 10_000
MAX_ALBUM_LIST = 500  # getAlbumList2 ``size`` (the spec's own maximum)

# getAlbumList2 ``type`` -> the library's album sort.
_LIBRARY_SORTS = {
    "newest": "added",
    "frequent": "plays",
    "highest": "plays",  # no ratings here: the most played instead
    "alphabeticalByName": "title",
    "alphabeticalByArtist": "artist",
    "byGenre": "title",
}
# ... and the orders only Subsonic asks for (``:u`` is the caller).
_OWN_ORDERS = {
    "random": ("", "RANDOM()"),
    "recent": (
        " WHERE a.album_id IN (SELECT t.album_id FROM plays p JOIN tracks t "
        "ON t.track_id = p.track_id WHERE p.user_id = :u)",
        "(SELECT MAX(p.played_at) FROM plays p JOIN tracks t ON t.track_id = p.track_id "
        "WHERE p.user_id = :u AND t.album_id = a.album_id) DESC, a.album_id{C}",
    ),
    "starred": (
        " WHERE a.album_id IN (SELECT item_id FROM stars WHERE user_id = :u AND kind = 'album')",
        "a.sort_title, a.album_id{C}",
    ),
    "byYear": (" WHERE a.year BETWEEN :lo AND :hi", "a.year, a.sort_title, a.album_id{C}"),
}
ALBUM_LIST_TYPES = (*_LIBRARY_SORTS, *_OWN_ORDERS)


def _in_order(found: dict[str, Row], ids: Sequence[str]) -> list[Row]:
    """The rows of ``found`` in the order of ``ids`` (unknown ones left out)."""
    return [dict(found[i]) for i in ids if i in found]


class Catalog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.library = Library(db)

    def _all(self, sql: str, params: dict[str, Any]) -> list[Row]:
        with self.db.transaction(write=False) as tx:
            return tx.fetchall(bytewise(sql, self.db.dialect), params)

    def artists(self) -> list[Row]:
        rows = self.library.artists("name", limit=MAX_ROWS).items
        return [dict(r) for r in rows if r["name"]]

    def artist(self, artist_id: str) -> tuple[Row, list[Row]] | None:
        """The artist and their albums (oldest first), or None."""
        row = self.library.artist(artist_id)
        if row is None:
            return None
        return dict(row), [dict(a) for a in self.library.artist_albums(artist_id)]

    def album(self, album_id: str) -> tuple[Row, list[Row]] | None:
        """The album and its songs in disc and track order, or None."""
        row = self.library.album(album_id)
        if row is None:
            return None
        return dict(row), [dict(t) for t in self.library.album_tracks(album_id)]

    def songs(self, track_ids: Sequence[str]) -> list[Row]:
        """The indexed songs among ``track_ids``, in the order given (unknown ones left out)."""
        return _in_order(self.library.tracks_by_id(track_ids), track_ids)

    def song(self, track_id: str) -> Row | None:
        row = self.library.track(track_id)
        return dict(row) if row is not None else None

    def albums_by_id(self, album_ids: Sequence[str]) -> list[Row]:
        return _in_order(self.library.albums_by_id(album_ids), album_ids)

    def artists_by_id(self, artist_ids: Sequence[str]) -> list[Row]:
        return _in_order(self.library.artists_by_id(artist_ids), artist_ids)

    def album_list(
        self,
        kind: str,
        *,
        size: int,
        offset: int,
        user_id: str,
        from_year: int | None = None,
        to_year: int | None = None,
        genre: str | None = None,
    ) -> list[Row]:
        """One page of getAlbumList2 (``kind`` is one of :data:`ALBUM_LIST_TYPES`; the
        caller has checked the parameters that kind needs)."""
        if kind in _LIBRARY_SORTS:
            page = self.library.albums(_LIBRARY_SORTS[kind], limit=size, offset=offset, genre=genre)
            return [dict(r) for r in page.items]
        if kind == "byYear" and (from_year or 0) > (to_year or 0):
            # The spec: fromYear after toYear lists newest first, which is the library's.
            years = (from_year or 0, to_year or 0)
            page = self.library.albums("year", limit=size, offset=offset, years=years)
            return [dict(r) for r in page.items]
        where, order = _OWN_ORDERS[kind]
        params: dict[str, Any] = {"n": size, "o": offset, "u": user_id}
        params["lo"], params["hi"] = sorted((from_year or 0, to_year or 0))
        return self._all(
            f"SELECT {ALBUM_COLS} FROM albums a{where} ORDER BY {order} LIMIT :n OFFSET :o",
            params,
        )

    def listing(self, counts: dict[str, tuple[int, int]]) -> tuple[list[Row], list[Row], list[Row]]:
        """Artists, albums and songs by name, each ``(count, offset)`` of ``counts``
        (``artist``, ``album``, ``track``): search3's empty query, a whole-library sync."""
        lib = self.library
        (na, oa), (nb, ob), (nt, ot) = counts["artist"], counts["album"], counts["track"]
        artists = lib.artists("name", limit=na, offset=oa).items if na else []
        albums = lib.albums("title", limit=nb, offset=ob).items if nb else []
        songs = lib.tracks("title", limit=nt, offset=ot).items if nt else []
        return [dict(r) for r in artists], [dict(r) for r in albums], [dict(r) for r in songs]

    def random_songs(
        self,
        size: int,
        *,
        genre: str | None = None,
        from_year: int | None = None,
        to_year: int | None = None,
    ) -> list[Row]:
        where, params = [], {"n": size}
        if genre is not None:
            where.append("t.genre_key = :g")
            params["g"] = genre_key(genre)
        if from_year is not None:
            where.append("t.year >= :y0")
            params["y0"] = from_year
        if to_year is not None:
            where.append("t.year <= :y1")
            params["y1"] = to_year
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self._all(
            f"SELECT {TRACK_COLS} FROM tracks t{clause} ORDER BY RANDOM() LIMIT :n", params
        )

    def genres(self) -> list[Row]:
        return [dict(r) for r in self.library.genres(limit=MAX_ROWS).items]

    def genre_songs(self, genre: str, *, count: int, offset: int) -> list[Row]:
        return [dict(r) for r in self.library.genre_tracks(genre, limit=count, offset=offset).items]

    def song_count(self) -> int:
        return self.library.tracks(limit=0).total
