"""Helpers: manifests in a real LocalStore, track index seeding, error assertions."""

from __future__ import annotations

import hashlib
import uuid

from delivery.modules.track_index import IndexedTrack, TrackIndex
from origin.keys import latest_key, manifest_key, rendition_key
from origin.manifest import Latest, Manifest
from origin.store import ObjectStore


def new_version(seed: str | None = None) -> str:
    return hashlib.sha256((seed or uuid.uuid4().hex).encode()).hexdigest()[:16]


def publish_manifest(
    store: ObjectStore,
    track_id: str,
    *,
    title: str,
    artist: str = "",
    album: str = "",
    date: str | None = None,
    genre: str | None = None,
    version: str | None = None,
    write_latest: bool = True,
) -> str:
    """Write what the encoder would: a manifest (no audio needed here), then latest.json."""
    version = version or new_version()
    tags = {"title": title, "artist": artist, "album": album}
    if date:
        tags["date"] = date
    if genre:
        tags["genre"] = genre
    manifest = Manifest.model_validate(
        {
            "schema": 1,
            "track_id": track_id,
            "version": version,
            "created_at": "2026-01-01T00:00:00Z",
            "source": {"sha256": "0" * 64, "bytes": 1, "duration_s": 3.5},
            "tags": {k: v for k, v in tags.items() if v},
            "renditions": [
                {
                    "bitrate_kbps": 96,
                    "key": rendition_key(track_id, version, 96),
                    "bytes": 1,
                    "sha256": "0" * 64,
                    "duration_s": 3.5,
                }
            ],
            "encoder": {"profile": "vorbis-96-160-320/1"},
        }
    )
    store.put_bytes(manifest_key(track_id, version), manifest.to_json())
    if write_latest:
        store.put_bytes(latest_key(track_id), Latest.now(version).to_json())
    return version


def seed_tracks(index: TrackIndex, prefix: str, n: int, **fields) -> list[str]:
    """``n`` tracks ``{prefix}-0..n-1`` indexed directly (no store needed)."""
    tracks = [
        IndexedTrack(
            track_id=f"{prefix}-{i}",
            version=new_version(f"{prefix}-{i}"),
            title=fields.get("title", f"Song {prefix} {i}"),
            artist=fields.get("artist", f"Artist {prefix}"),
            album=fields.get("album", f"Album {prefix}"),
            year=fields.get("year", 2000),
            duration_ms=180_000,
        )
        for i in range(n)
    ]
    index.upsert(tracks)
    return [t.track_id for t in tracks]


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["status"] == status
    if code is not None:
        assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


def playlist_track_ids(service, playlist_id: str, user: str, *, page_size: int):
    """Every track id of a playlist in order, read page by page, and the header's item count.

    Reading through ``page`` (not one big query) also checks that pages tile the
    whole playlist without gaps or repeats.
    """
    out, offset = [], 0
    while True:
        page = service.page(playlist_id, user, offset=offset, limit=page_size)
        out += [i["track_id"] for i in page.items]
        offset += page_size
        if offset >= page.header["item_count"]:
            return out, page.header["item_count"]
