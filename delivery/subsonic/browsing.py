"""The read-only and per-user library endpoints: system, browsing by ID3 tags, search,
stars and the user.

Each handler takes a :class:`Call` and returns the response's elements as plain data
(:mod:`delivery.subsonic.envelope` renders them). They run in a worker thread: all of
them read the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from delivery.modules.ids import now_ms
from delivery.modules.search_query import parse_query
from delivery.services import Services
from delivery.subsonic.catalog import ALBUM_LIST_TYPES, MAX_ALBUM_LIST
from delivery.subsonic.errors import NOT_AUTHORIZED, SubsonicError, invalid, not_found
from delivery.subsonic.params import Params
from delivery.subsonic.shapes import (
    IGNORED_ARTICLES,
    MUSIC_FOLDER_ID,
    MUSIC_FOLDER_NAME,
    album_element,
    artist_element,
    index_groups,
    parse_sid,
    song_element,
)
from delivery.subsonic.stars import KINDS, TooManyStars, UnknownItem

MAX_SEARCH_COUNT = 500
MAX_OFFSET = 100_000  # album lists and genre pages (the library API's deepest offset)
EXTENSIONS = [
    {"name": "apiKeyAuthentication", "versions": [1]},
    {"name": "formPost", "versions": [1]},
]


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request: who, with what parameters, on which services."""

    s: Services
    user: str
    params: Params
    request: Request


Body = dict[str, Any]


def starred_of(call: Call) -> dict[str, dict[str, str]]:
    return call.s.subsonic.stars.starred(call.user)


def _id_of(call: Call, kind: str, name: str = "id") -> str:
    raw = call.params.required(name)
    parsed = parse_sid(raw)
    if parsed is None or parsed[0] != kind:
        raise not_found(kind.capitalize())
    return parsed[1]


def ping(call: Call) -> Body:
    return {}


def get_license(call: Call) -> Body:
    return {"license": {"valid": True}}


def get_open_subsonic_extensions(call: Call) -> Body:
    return {"openSubsonicExtensions": EXTENSIONS}


def get_music_folders(call: Call) -> Body:
    return {"musicFolders": {"musicFolder": [{"id": MUSIC_FOLDER_ID, "name": MUSIC_FOLDER_NAME}]}}


def _check_folder(call: Call) -> None:
    folder = call.params.integer("musicFolderId", None, -(2**31), 2**31 - 1)
    if folder is not None and folder != MUSIC_FOLDER_ID:
        raise not_found("Music folder")


def get_artists(call: Call) -> Body:
    _check_folder(call)
    rows = call.s.subsonic.catalog.artists()
    return {
        "artists": {
            "ignoredArticles": " ".join(IGNORED_ARTICLES),
            "index": index_groups(rows, starred_of(call)),
        }
    }


def get_indexes(call: Call) -> Body:
    _check_folder(call)
    rows = call.s.subsonic.catalog.artists()
    return {
        "indexes": {
            "lastModified": now_ms(),
            "ignoredArticles": " ".join(IGNORED_ARTICLES),
            "index": index_groups(rows, starred_of(call)),
        }
    }


def get_artist(call: Call) -> Body:
    found = call.s.subsonic.catalog.artist(_id_of(call, "artist"))
    if found is None:
        raise not_found("Artist")
    row, albums = found
    starred = starred_of(call)
    return {
        "artist": {
            **artist_element(row, starred),
            "album": [album_element(a, starred) for a in albums],
        }
    }


def get_album(call: Call) -> Body:
    found = call.s.subsonic.catalog.album(_id_of(call, "album"))
    if found is None:
        raise not_found("Album")
    row, songs = found
    starred = starred_of(call)
    return {
        "album": {**album_element(row, starred), "song": [song_element(t, starred) for t in songs]}
    }


def get_song(call: Call) -> Body:
    row = call.s.subsonic.catalog.song(_id_of(call, "song"))
    if row is None:
        raise not_found("Song")
    return {"song": song_element(row, starred_of(call))}


def get_album_list2(call: Call) -> Body:
    p = call.params
    kind = p.required("type")
    if kind not in ALBUM_LIST_TYPES:
        raise invalid("type", f"use one of {', '.join(ALBUM_LIST_TYPES)}")
    _check_folder(call)
    size = p.integer("size", 10, 1, MAX_ALBUM_LIST)
    offset = p.integer("offset", 0, 0, MAX_OFFSET)
    extra: dict[str, Any] = {}
    if kind == "byYear":
        extra = {
            "from_year": p.required_int("fromYear", 0, 9999),
            "to_year": p.required_int("toYear", 0, 9999),
        }
    elif kind == "byGenre":
        genre = p.required("genre")
        if len(genre) > 200:
            raise invalid("genre", "at most 200 characters")
        extra = {"genre": genre}
    rows = call.s.subsonic.catalog.album_list(
        kind, size=size or 10, offset=offset or 0, user_id=call.user, **extra
    )
    starred = starred_of(call)
    return {"albumList2": {"album": [album_element(r, starred) for r in rows]}}


def search3(call: Call) -> Body:
    p = call.params
    raw = (p.get("query") or "").strip()
    counts = {}
    for kind, name in (("artist", "artist"), ("album", "album"), ("track", "song")):
        counts[kind] = (
            p.integer(f"{name}Count", 20, 0, MAX_SEARCH_COUNT) or 0,
            p.integer(f"{name}Offset", 0, 0, call.s.settings.search_max_offset) or 0,
        )
    catalog, starred = call.s.subsonic.catalog, starred_of(call)
    if raw in ("", '""'):
        # An empty query lists everything (OpenSubsonic): how apps sync a whole library.
        artists, albums, songs = catalog.listing(counts)
    else:
        search = call.s.modules.search
        query = search.expand(parse_query(raw))
        ids: dict[str, list[str]] = {}
        for kind, (count, offset) in counts.items():
            rows: list[dict[str, Any]] = []
            if count:
                rows, _ = search.search(query, kind, limit=count, offset=offset, expanded=True)
            ids[kind] = [r[f"{kind}_id"] for r in rows]
        artists = catalog.artists_by_id(ids["artist"])
        albums = catalog.albums_by_id(ids["album"])
        songs = catalog.songs(ids["track"])
    return {
        "searchResult3": {
            "artist": [artist_element(r, starred) for r in artists],
            "album": [album_element(r, starred) for r in albums],
            "song": [song_element(r, starred) for r in songs],
        }
    }


def _star_items(call: Call) -> dict[str, list[str]]:
    """kind -> ids from ``id`` (a song, album or artist id), ``albumId`` and ``artistId``."""
    items: dict[str, list[str]] = {k: [] for k in KINDS}
    for name, want in (("id", None), ("albumId", "album"), ("artistId", "artist")):
        for raw in call.params.all(name):
            parsed = parse_sid(raw)
            if parsed is None or (want is not None and parsed[0] != want):
                raise not_found("Item")
            items[parsed[0]].append(parsed[1])
    return items


def star(call: Call) -> Body:
    try:
        call.s.subsonic.stars.star(call.user, _star_items(call))
    except UnknownItem as exc:
        raise not_found(exc.kind.capitalize()) from None
    except TooManyStars as exc:
        raise SubsonicError(0, str(exc)) from None
    return {}


def unstar(call: Call) -> Body:
    call.s.subsonic.stars.unstar(call.user, _star_items(call))
    return {}


def get_starred2(call: Call) -> Body:
    _check_folder(call)
    starred = starred_of(call)
    catalog = call.s.subsonic.catalog
    return {
        "starred2": {
            "artist": [
                artist_element(r, starred) for r in catalog.artists_by_id(list(starred["artist"]))
            ],
            "album": [
                album_element(r, starred) for r in catalog.albums_by_id(list(starred["album"]))
            ],
            "song": [song_element(r, starred) for r in catalog.songs(list(starred["song"]))],
        }
    }


def get_user(call: Call) -> Body:
    username = call.params.required("username")
    if username != call.user:
        # Only an admin may look at other users; Subsonic users here are never admins.
        raise SubsonicError(NOT_AUTHORIZED, "User is not authorized for the given operation")
    return {
        "user": {
            "username": call.user,
            "scrobblingEnabled": True,
            "adminRole": False,
            "settingsRole": False,
            "downloadRole": True,
            "uploadRole": False,
            "playlistRole": True,
            "coverArtRole": True,
            "commentRole": False,
            "podcastRole": False,
            "streamRole": True,
            "jukeboxRole": False,
            "shareRole": False,
            "videoConversionRole": False,
            "folder": [MUSIC_FOLDER_ID],
        }
    }


# -- beyond the required set: what many apps ask for at start-up ----------------------------


def _genre(call: Call) -> str:
    genre = call.params.required("genre")
    if len(genre) > 200:
        raise invalid("genre", "at most 200 characters")
    return genre


def get_genres(call: Call) -> Body:
    rows = call.s.subsonic.catalog.genres()
    return {
        "genres": {
            "genre": [
                {"value": r["name"], "songCount": r["track_count"], "albumCount": r["album_count"]}
                for r in rows
            ]
        }
    }


def get_songs_by_genre(call: Call) -> Body:
    p = call.params
    _check_folder(call)
    count = p.integer("count", 10, 0, MAX_SEARCH_COUNT) or 0
    offset = p.integer("offset", 0, 0, MAX_OFFSET) or 0
    rows = call.s.subsonic.catalog.genre_songs(_genre(call), count=count, offset=offset)
    starred = starred_of(call)
    return {"songsByGenre": {"song": [song_element(r, starred) for r in rows]}}


def get_random_songs(call: Call) -> Body:
    p = call.params
    _check_folder(call)
    rows = call.s.subsonic.catalog.random_songs(
        p.integer("size", 10, 1, MAX_SEARCH_COUNT) or 10,
        genre=_genre(call) if p.get("genre") else None,
        from_year=p.integer("fromYear", None, 0, 9999),
        to_year=p.integer("toYear", None, 0, 9999),
    )
    starred = starred_of(call)
    return {"randomSongs": {"song": [song_element(r, starred) for r in rows]}}


def get_scan_status(call: Call) -> Body:
    # The catalogue is indexed as tracks are published: there is never a scan to wait for.
    return {"scanStatus": {"scanning": False, "count": call.s.subsonic.catalog.song_count()}}
