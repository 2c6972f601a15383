"""JSON shapes of the modules' objects, after the Spotify Web API's.

Every builder takes ``base``, the service's absolute base URL without a trailing
slash (``str(request.base_url).rstrip("/")``), for ``href`` fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from delivery.modules.ids import iso_ms, uri

Row = Mapping[str, Any]


def user_object(base: str, user_id: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "type": "user",
        "uri": uri("user", user_id),
        "href": f"{base}/v1/users/{user_id}",
    }


def artist_object(base: str, artist_id: str, name: str, row: Row | None = None) -> dict[str, Any]:
    out = {"id": artist_id, "type": "artist", "uri": uri("artist", artist_id), "name": name}
    if row is not None:
        out["track_count"] = row["track_count"]
        out["play_count"] = int(row["plays"])
    return out


def album_object(base: str, row: Row, *, full: bool = False) -> dict[str, Any]:
    """From an ``albums`` row (``full``) or the album fields of a ``tracks`` row."""
    album_id = row["album_id"]
    name = row["title"] if full else row["album"]
    out: dict[str, Any] = {
        "id": album_id,
        "type": "album",
        "uri": uri("album", album_id),
        "name": name,
        "release_date": str(row["year"]) if row.get("year") else None,
        "release_date_precision": "year" if row.get("year") else None,
        "artists": (
            [artist_object(base, row["artist_id"], row["artist"])] if row.get("artist_id") else []
        ),
    }
    if full:
        out["total_tracks"] = row["track_count"]
        out["play_count"] = int(row["plays"])
    return out


def track_object(base: str, track_id: str, row: Row | None) -> dict[str, Any]:
    """A track from a ``tracks`` row; ``row=None`` (not in the catalog) gives a stub."""
    out: dict[str, Any] = {
        "id": track_id,
        "type": "track",
        "uri": uri("track", track_id),
        "href": f"{base}/v1/tracks/{track_id}",
        "stream_href": f"{base}/v1/tracks/{track_id}/stream",
    }
    if row is None or row.get("title") is None:
        out.update(name=None, artists=[], album=None, duration_ms=None, is_playable=False)
        return out
    out.update(
        name=row["title"],
        version=row["version"],
        artists=(
            [artist_object(base, row["artist_id"], row["artist"])] if row.get("artist_id") else []
        ),
        album=album_object(base, row) if row.get("album_id") else None,
        duration_ms=row["duration_ms"],
        is_playable=True,
    )
    if "plays" in row and row["plays"] is not None:
        out["play_count"] = int(row["plays"])
    return out


def playlist_object(base: str, p: Row, tracks: dict[str, Any] | None = None) -> dict[str, Any]:
    """A playlist; ``tracks`` is the embedded paging object (full) or None (simplified)."""
    pid = p["playlist_id"]
    items_href = f"{base}/v1/playlists/{pid}/items"
    return {
        "id": pid,
        "type": "playlist",
        "uri": uri("playlist", pid),
        "href": f"{base}/v1/playlists/{pid}",
        "name": p["name"],
        "description": p["description"],
        "public": bool(p["public"]),
        "collaborative": bool(p["collaborative"]),
        "owner": user_object(base, p["owner_id"]),
        "snapshot_id": p["snapshot_id"],
        "followers": {"href": None, "total": p["follower_count"]},
        "tracks": tracks if tracks is not None else {"href": items_href, "total": p["item_count"]},
        "created_at": iso_ms(p["created_at"]),
        "updated_at": iso_ms(p["updated_at"]),
    }


def playlist_item_object(base: str, item: Row) -> dict[str, Any]:
    return {
        "added_at": iso_ms(item["added_at"]),
        "added_by": user_object(base, item["added_by"]),
        "is_local": False,
        "track": track_object(base, item["track_id"], item),
    }
