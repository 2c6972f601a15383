"""Rows of the catalogue as Subsonic elements (ID3 browsing: artist, album, song).

Ids: a song is its track id; an artist is ``ar.`` + its artist id and an album ``al.`` + its
album id. A track id never holds a ``.`` (``[A-Za-z0-9][A-Za-z0-9_-]{0,63}``), so the three
can never be confused: ``star`` and ``getCoverArt`` take any of them in one parameter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from delivery.modules.ids import iso_ms
from origin.errors import InvalidKey
from origin.keys import validate_track_id

Row = Mapping[str, Any]
Starred = Mapping[str, Mapping[str, str]]  # kind -> {item id: starred time}

_DERIVED_ID = re.compile(r"(ar|al)\.([0-9A-Za-z]{22})")
IGNORED_ARTICLES = ("The", "El", "La", "Los", "Las", "Le", "Les")
MUSIC_FOLDER_ID = 1
MUSIC_FOLDER_NAME = "Music"


def artist_sid(artist_id: str) -> str:
    return f"ar.{artist_id}"


def album_sid(album_id: str) -> str:
    return f"al.{album_id}"


def parse_sid(value: str) -> tuple[str, str] | None:
    """``(kind, id)`` for a Subsonic id (``song``, ``album`` or ``artist``), else None."""
    m = _DERIVED_ID.fullmatch(value)
    if m:
        return ("artist" if m[1] == "ar" else "album"), m[2]
    try:
        return "song", validate_track_id(value)
    except InvalidKey:
        return None


def _created(added_at_ms: Any) -> str | None:
    return iso_ms(added_at_ms) if isinstance(added_at_ms, int) and added_at_ms > 0 else None


def _art(row: Row, cover_id: str) -> str | None:
    """The ``coverArt`` id to advertise: only for rows that have art (no placeholders)."""
    return cover_id if row.get("art_key") and row.get("art_thumb_key") else None


def artist_element(row: Row, starred: Starred) -> dict[str, Any]:
    sid = artist_sid(row["artist_id"])
    return {
        "id": sid,
        "name": row["name"],
        "albumCount": int(row.get("album_count") or 0),
        "coverArt": _art(row, sid),
        "starred": starred.get("artist", {}).get(row["artist_id"]),
    }


def album_element(row: Row, starred: Starred) -> dict[str, Any]:
    sid = album_sid(row["album_id"])
    return {
        "id": sid,
        "name": row["title"],
        "title": row["title"],
        "album": row["title"],
        "artist": row["artist"] or None,
        "artistId": artist_sid(row["artist_id"]) if row["artist_id"] else None,
        "songCount": int(row["track_count"]),
        "duration": int(round((row.get("duration_ms") or 0) / 1000)),
        "playCount": int(row["plays"]),
        "created": _created(row.get("added_at")),
        "year": row["year"],
        "genre": row.get("genre") or None,
        "coverArt": _art(row, sid),
        "isDir": True,
        "starred": starred.get("album", {}).get(row["album_id"]),
    }


def song_element(row: Row, starred: Starred) -> dict[str, Any]:
    album_id = row.get("album_id") or ""
    return {
        "id": row["track_id"],
        "parent": album_sid(album_id) if album_id else None,
        "isDir": False,
        "title": row["title"],
        "album": row.get("album") or None,
        "artist": row.get("artist") or None,
        "track": row.get("track_no"),
        "discNumber": row.get("disc_no"),
        "year": row.get("year"),
        "genre": row.get("genre") or None,
        "coverArt": _art(row, row["track_id"]),
        # Every rendition is Ogg Vorbis (docs/architecture.md): clients pick a player by it.
        "contentType": "audio/ogg",
        "suffix": "ogg",
        "duration": int(round((row.get("duration_ms") or 0) / 1000)),
        "playCount": int(row.get("plays") or 0),
        "created": _created(row.get("added_at")),
        "albumId": album_sid(album_id) if album_id else None,
        "artistId": artist_sid(row["artist_id"]) if row.get("artist_id") else None,
        "type": "music",
        "mediaType": "song",
        "isVideo": False,
        "starred": starred.get("song", {}).get(row["track_id"]),
    }


def index_letter(name: str) -> str:
    """The index a name is filed under: its first letter without a leading article or
    accent (``The Beatles`` -> ``B``, ``Émile`` -> ``E``); ``#`` when that is no letter."""
    words = name.split()
    if len(words) > 1 and words[0].casefold() in {a.casefold() for a in IGNORED_ARTICLES}:
        words = words[1:]
    first = " ".join(words)[:1]
    base = unicodedata.normalize("NFKD", first)[:1].upper()
    return base if base.isalpha() else "#"


def index_groups(rows: Iterable[Row], starred: Starred) -> list[dict[str, Any]]:
    """Artists grouped by :func:`index_letter`, the groups in order (``#`` last)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(index_letter(row["name"]), []).append(artist_element(row, starred))
    ordered = sorted(groups, key=lambda letter: (letter == "#", letter))
    return [{"name": letter, "artist": groups[letter]} for letter in ordered]


def playlist_element(header: Row, *, duration_s: int | None = None) -> dict[str, Any]:
    return {
        "id": header["playlist_id"],
        "name": header["name"],
        "comment": header.get("description") or None,
        "owner": header["owner_id"],
        "public": bool(header["public"]),
        "songCount": int(header["item_count"]),
        "duration": duration_s if duration_s is not None else 0,
        "created": iso_ms(header["created_at"]),
        "changed": iso_ms(header["updated_at"]),
    }
