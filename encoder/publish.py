"""Atomic publication of a version: renditions, then manifest.json, then latest.json.

Readers find a version only through its manifest, and a track only through
``latest.json`` (docs/architecture.md), and every single store write is atomic. So the
order is the whole protocol:

1. upload every rendition and the cover art (invisible: no manifest names them yet);
2. write ``manifest.json`` (the version now exists, immutable from here on);
3. write ``latest.json`` (the track now plays the new version).

A failure or kill anywhere before step 2 leaves nothing visible and the
previous ``latest.json`` untouched. Renditions uploaded by a failed attempt are
left where they are rather than deleted: another process may be publishing the
same content address at the same moment (same source, same profile), and
deleting "our" orphans would pull objects out from under its manifest. They
are invisible, and the next attempt overwrites them with identical bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from encoder.errors import PublishError
from origin import manifest as published
from origin.errors import ManifestError, StoreError, TrackNotFound, VersionNotFound
from origin.keys import latest_key
from origin.manifest import Latest, Manifest
from origin.store import ObjectStore

UploadCallback = Callable[[int, int], None]  # (renditions uploaded, total)


def read_manifest(store: ObjectStore, track_id: str, version: str) -> Manifest | None:
    """The published manifest of ``version``, or None if that version was never completed."""
    try:
        return published.read_manifest(store, track_id, version)
    except VersionNotFound:
        return None
    except ManifestError as exc:
        raise PublishError(
            f"the stored manifest of {track_id}/{version} is damaged: {exc}"
        ) from exc
    except StoreError as exc:
        raise PublishError(f"cannot read the store: {exc}") from exc


def read_latest(store: ObjectStore, track_id: str) -> Latest | None:
    """The track's ``latest.json``, or None if there is none (or only a damaged one)."""
    try:
        return published.read_latest(store, track_id)
    except (TrackNotFound, ManifestError):
        return None  # a damaged pointer is replaced by the next publication
    except StoreError as exc:
        raise PublishError(f"cannot read the store: {exc}") from exc


def point_latest(store: ObjectStore, track_id: str, version: str) -> Latest:
    """Make ``version`` the one ``latest.json`` names (the last step of a publication)."""
    latest = Latest.now(version)
    try:
        store.put_bytes(latest_key(track_id), latest.to_json(), "application/json")
    except StoreError as exc:
        raise PublishError(f"writing latest.json failed: {exc}") from exc
    return latest


def publish(
    store: ObjectStore,
    manifest: Manifest,
    files: Mapping[int | str, Path],
    *,
    write_manifest: bool = True,
    on_upload: UploadCallback | None = None,
) -> Latest:
    """Upload ``files`` (bitrate, or art key -> path) under ``manifest``'s keys, then the
    manifest, then latest.

    ``write_manifest=False`` re-uploads the renditions of an existing version
    (a repair) and leaves its stored manifest untouched.
    """
    total = len(manifest.renditions)
    try:
        for done, rendition in enumerate(manifest.renditions, start=1):
            info = store.put_file(rendition.key, files[rendition.bitrate_kbps], "audio/ogg")
            if info.size != rendition.bytes or (info.sha256 and info.sha256 != rendition.sha256):
                raise PublishError(
                    f"the store holds {info.size} bytes for {rendition.key}, "
                    f"expected {rendition.bytes} with the manifest's sha256"
                )
            if on_upload is not None:
                on_upload(done, total)
        for image in manifest.art.images() if manifest.art else ():
            if image.key not in files:
                raise PublishError(f"{image.key} is listed in the manifest but was not made")
            info = store.put_file(image.key, files[image.key], image.content_type)
            if info.size != image.bytes or (info.sha256 and info.sha256 != image.sha256):
                raise PublishError(
                    f"the store holds {info.size} bytes for {image.key}, "
                    f"expected {image.bytes} with the manifest's sha256"
                )
        if write_manifest:
            store.put_bytes(manifest.key, manifest.to_json(), "application/json")
    except StoreError as exc:
        raise PublishError(f"upload failed, nothing was published: {exc}") from exc
    return point_latest(store, manifest.track_id, manifest.version)
