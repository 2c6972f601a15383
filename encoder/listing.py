"""What a store holds, track by track (``encoder ls``; the track ids ``encoder verify`` checks)."""

from __future__ import annotations

from dataclasses import dataclass

from origin.errors import InvalidKey, StoreError, TrackNotFound
from origin.keys import parse_key
from origin.manifest import read_latest, read_manifest
from origin.store import ObjectStore


@dataclass(frozen=True)
class TrackEntry:
    track_id: str
    version: str | None  # the latest version; None when no latest.json exists
    published_at: str | None
    versions: int  # complete versions (with a manifest) in the store
    bitrates: tuple[int, ...] = ()
    duration_s: float | None = None
    title: str | None = None
    artist: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "track_id": self.track_id,
            "version": self.version,
            "published_at": self.published_at,
            "versions": self.versions,
            "bitrates": list(self.bitrates),
            "duration_s": self.duration_s,
            "title": self.title,
            "artist": self.artist,
            "problem": self.problem,
        }


def track_ids(store: ObjectStore) -> list[str]:
    """Every track id with at least one object in the store, sorted."""
    ids = set()
    for key in store.list("tracks/"):
        try:
            ids.add(parse_key(key).track_id)
        except InvalidKey:
            continue
    return sorted(ids)


def list_tracks(store: ObjectStore) -> list[TrackEntry]:
    """One entry per track id in the store; a damaged track is listed with its problem."""
    manifests: dict[str, int] = {}
    for key in store.list("tracks/"):
        try:
            parsed = parse_key(key)
        except InvalidKey:
            continue
        count = manifests.setdefault(parsed.track_id, 0)
        if parsed.kind == "manifest":
            manifests[parsed.track_id] = count + 1
    return [_entry(store, track_id, versions) for track_id, versions in sorted(manifests.items())]


def _entry(store: ObjectStore, track_id: str, versions: int) -> TrackEntry:
    try:
        latest = read_latest(store, track_id)
    except TrackNotFound:
        return TrackEntry(track_id, None, None, versions, problem="no latest.json")
    except StoreError as exc:  # damaged, or the store is down
        return TrackEntry(track_id, None, None, versions, problem=str(exc))
    try:
        manifest = read_manifest(store, track_id, latest.version, named_by_latest=True)
    except StoreError as exc:
        return TrackEntry(track_id, latest.version, latest.published_at, versions, problem=str(exc))
    return TrackEntry(
        track_id,
        latest.version,
        latest.published_at,
        versions,
        tuple(manifest.bitrates),
        manifest.duration_s,
        manifest.tags.get("title"),
        manifest.tags.get("artist"),
    )
