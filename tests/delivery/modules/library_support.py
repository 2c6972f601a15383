"""Manifests with full tags and cover art, as the encoder writes them, for the library tests."""

from __future__ import annotations

from origin.keys import art_key, cover_key, latest_key, manifest_key, rendition_key
from origin.manifest import Latest, Manifest
from origin.store import ObjectStore
from tests.delivery.modules.support import new_version


def art_doc(track_id: str, version: str) -> dict:
    def image(key: str, ctype: str, size: int) -> dict:
        return {
            "key": key,
            "bytes": 1000,
            "sha256": "a" * 64,
            "content_type": ctype,
            "width": size,
            "height": size,
        }

    return {
        "original": image(cover_key(track_id, version, "image/png"), "image/png", 600),
        "thumbnail": image(art_key(track_id, version, "cover-300.jpg"), "image/jpeg", 300),
    }


def publish_tagged(
    store: ObjectStore,
    track_id: str,
    tags: dict[str, str],
    *,
    art: bool = False,
    seconds: float = 3.5,
    version: str | None = None,
) -> str:
    """A manifest with ``tags`` (and art objects listed when ``art``), then latest.json."""
    version = version or new_version()
    manifest = Manifest.model_validate(
        {
            "schema": 1,
            "track_id": track_id,
            "version": version,
            "created_at": "2026-01-01T00:00:00Z",
            "source": {"sha256": "0" * 64, "bytes": 1, "duration_s": seconds},
            "tags": tags,
            "renditions": [
                {
                    "bitrate_kbps": 96,
                    "key": rendition_key(track_id, version, 96),
                    "bytes": 1,
                    "sha256": "0" * 64,
                    "duration_s": seconds,
                }
            ],
            "encoder": {"profile": "vorbis-96-160-320/1"},
            "art": art_doc(track_id, version) if art else None,
        }
    )
    store.put_bytes(manifest_key(track_id, version), manifest.to_json())
    store.put_bytes(latest_key(track_id), Latest.now(version).to_json())
    return version
