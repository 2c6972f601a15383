"""Subsonic's playlist endpoints on the playlist module (``delivery.modules.playlists``).

The module's rules hold unchanged: a private playlist is visible to its owner and
collaborators only and answers anyone else exactly like an unknown id (error 70); only
editors change items, only the owner changes details. Subsonic's playlists are private
unless made ``public``. ``deletePlaylist`` removes the playlist from the caller's library,
as unfollowing does in the v1 API (Spotify's model: a playlist is never destroyed under
its followers).
"""

from __future__ import annotations

from typing import Any

from delivery.modules.playlists import MAX_ITEMS_PER_REQUEST, PlaylistService
from delivery.subsonic.browsing import Body, Call, starred_of
from delivery.subsonic.catalog import MAX_ROWS
from delivery.subsonic.errors import missing, not_found
from delivery.subsonic.shapes import parse_sid, playlist_element, song_element

MAX_PLAYLISTS = 500


def _song_ids(call: Call, name: str) -> list[str]:
    ids = []
    for raw in call.params.all(name):
        parsed = parse_sid(raw)
        if parsed is None or parsed[0] != "song":
            raise not_found("Song")
        ids.append(parsed[1])
    return ids


def _add(service: PlaylistService, playlist_id: str, user: str, ids: list[str]) -> None:
    for start in range(0, len(ids), MAX_ITEMS_PER_REQUEST):
        service.add(playlist_id, user, ids[start : start + MAX_ITEMS_PER_REQUEST])


def _full(call: Call, playlist_id: str) -> Body:
    """The playlist with its entries (songs no longer in the catalogue are left out)."""
    service = call.s.modules.playlists
    header = service.get(playlist_id, call.user)
    items: list[dict[str, Any]] = []
    if header["item_count"]:
        limit = min(int(header["item_count"]), MAX_ROWS)
        items = service.page(playlist_id, call.user, offset=0, limit=limit).items
    catalog = call.s.subsonic.catalog
    songs = {r["track_id"]: r for r in catalog.songs([i["track_id"] for i in items])}
    starred = starred_of(call)
    entries = [song_element(songs[i["track_id"]], starred) for i in items if i["track_id"] in songs]
    duration = sum(int(round((songs[i["track_id"]]["duration_ms"] or 0) / 1000))
                   for i in items if i["track_id"] in songs)  # fmt: skip
    return {"playlist": {**playlist_element(header, duration_s=duration), "entry": entries}}


def get_playlists(call: Call) -> Body:
    owner = call.params.get("username") or call.user
    sharing = call.s.modules.sharing
    if owner == call.user:
        rows, _ = sharing.library(call.user, offset=0, limit=MAX_PLAYLISTS)
    else:
        rows, _ = sharing.user_playlists(owner, call.user, offset=0, limit=MAX_PLAYLISTS)
    return {"playlists": {"playlist": [playlist_element(h) for h in rows]}}


def get_playlist(call: Call) -> Body:
    return _full(call, call.params.required("id"))


def create_playlist(call: Call) -> Body:
    """A new playlist (``name``), or the songs of ``playlistId`` replaced (both: the spec's
    "create or update")."""
    p = call.params
    service = call.s.modules.playlists
    ids = _song_ids(call, "songId")
    playlist_id = p.get("playlistId")
    if playlist_id:
        service.replace(playlist_id, call.user, ids[:MAX_ITEMS_PER_REQUEST])
        _add(service, playlist_id, call.user, ids[MAX_ITEMS_PER_REQUEST:])
        return _full(call, playlist_id)
    name = p.get("name")
    if not name:
        raise missing("name")
    header = service.create(call.user, name=name, public=False)
    _add(service, header["playlist_id"], call.user, ids)
    return _full(call, header["playlist_id"])


def update_playlist(call: Call) -> Body:
    p = call.params
    service = call.s.modules.playlists
    playlist_id = p.required("playlistId")
    name, comment = p.get("name"), p.get("comment")
    public = p.boolean("public", False) if p.get("public") not in (None, "") else None
    if name is not None or comment is not None or public is not None:
        service.change_details(
            playlist_id, call.user, name=name, description=comment, public=public
        )
    positions = p.integers("songIndexToRemove", 0, 10**9)
    if positions:
        service.remove(playlist_id, call.user, positions=sorted(set(positions)))
    _add(service, playlist_id, call.user, _song_ids(call, "songIdToAdd"))
    return {}


def delete_playlist(call: Call) -> Body:
    call.s.modules.sharing.unfollow(call.params.required("id"), call.user)
    return {}
