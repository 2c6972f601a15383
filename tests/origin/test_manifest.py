import json

import pytest

from origin.errors import (
    InvalidKey,
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
    TrackNotFound,
    VersionNotFound,
)
from origin.manifest import (
    Latest,
    Manifest,
    ManifestError,
    read_latest,
    read_manifest,
)

V = "0123456789abcdef"


def manifest_dict(**overrides):
    data = {
        "schema": 1,
        "track_id": "t1",
        "version": V,
        "created_at": "2026-11-27T22:00:00Z",
        "source": {"sha256": "ab" * 32, "bytes": 10, "duration_s": 3.5, "lossless": True},
        "tags": {"title": "Song", "artist": "Band"},
        "loudness": {"integrated_lufs": -9.1, "track_gain_db": -8.9},
        "renditions": [
            {
                "bitrate_kbps": b,
                "key": f"tracks/t1/{V}/{b}.ogg",
                "bytes": 100 * b,
                "sha256": "cd" * 32,
                "duration_s": 3.5,
            }
            for b in (96, 160)
        ],
        "encoder": {"profile": "vorbis-q-96-160-320/1", "ffmpeg": "9.0.2"},
    }
    data.update(overrides)
    return data


def test_round_trip_and_unknown_fields_ignored():
    raw = manifest_dict(future_field={"x": 1})
    raw["source"]["new_source_field"] = 3
    m = Manifest.from_json(json.dumps(raw))
    assert m.bitrates == [96, 160]
    assert m.rendition(160).bytes == 16000
    assert m.rendition(320) is None
    assert m.duration_s == 3.5
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert "future_field" not in m.to_dict()
    assert m.to_dict()["schema"] == 1


def test_missing_optional_fields_get_defaults():
    raw = manifest_dict()
    del raw["tags"], raw["loudness"]
    m = Manifest.from_json(json.dumps(raw))
    assert m.tags == {} and m.loudness.integrated_lufs is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"schema": 2},
        {"track_id": "../etc"},
        {"version": "XYZ"},
        {
            "renditions": [
                {"bitrate_kbps": 96, "key": "tracks/other/x/96.ogg", "bytes": 1, "sha256": "x"}
            ]
        },
        {
            "renditions": [
                {"bitrate_kbps": 97, "key": f"tracks/t1/{V}/97.ogg", "bytes": 1, "sha256": "x"}
            ]
        },
    ],
)
def test_invalid_manifests(overrides):
    with pytest.raises(ManifestError):
        Manifest.from_json(json.dumps(manifest_dict(**overrides)))


def test_not_json():
    with pytest.raises(ManifestError):
        Manifest.from_json(b"\x89PNG")


def test_latest():
    latest = Latest.now(V)
    assert Latest.from_json(latest.to_json()).version == V
    assert latest.published_at.endswith("Z")
    with pytest.raises(ManifestError):
        Latest.from_json(b'{"version": "nope", "published_at": "x"}')


# -- reading the current version from a store (the one reader every part uses) -------


class DownStore:
    """A store whose backend is unreachable."""

    def get_bytes(self, key: str) -> bytes:
        raise StoreUnavailable(f"{key}: connection refused")


LATEST = Latest.now(V).to_json()
GOOD = json.dumps(manifest_dict()).encode()
OTHER = GOOD.replace(b'"t1"', b'"t2"').replace(b"tracks/t1/", b"tracks/t2/")


def publish_raw(store, track_id="t1", latest=None, manifest=None):
    if latest is not None:
        store.put_bytes(f"tracks/{track_id}/latest.json", latest)
    if manifest is not None:
        store.put_bytes(f"tracks/{track_id}/{V}/manifest.json", manifest)


def read_current(store, track_id):
    """How every caller reads the current version: latest.json, then what it names."""
    latest = read_latest(store, track_id)
    return latest, read_manifest(store, track_id, latest.version, named_by_latest=True)


def test_read_current(local_store):
    publish_raw(local_store, latest=Latest.now(V).to_json(), manifest=GOOD)
    latest, manifest = read_current(local_store, "t1")
    assert latest.version == V
    assert manifest.bitrates == [96, 160]
    assert read_manifest(local_store, "t1", V) == manifest


@pytest.mark.parametrize(
    ("latest", "manifest", "error", "match"),
    [
        (None, GOOD, TrackNotFound, "has no latest.json"),
        (b"{not json", GOOD, ManifestError, "latest.json: invalid latest.json"),
        (LATEST, None, ManifestError, "names version .* but its manifest is missing"),
        (LATEST, b'{"schema": 1}', ManifestError, "manifest.json: invalid manifest"),
        (LATEST, OTHER, ManifestError, "names another track"),
    ],
    ids=["no-latest", "bad-latest", "dangling", "bad-manifest", "other-track"],
)
def test_read_current_maps_each_failure_once(local_store, latest, manifest, error, match):
    publish_raw(local_store, latest=latest, manifest=manifest)
    with pytest.raises(error, match=match) as raised:
        read_current(local_store, "t1")
    assert isinstance(raised.value, StoreError)


def test_read_manifest_of_a_missing_version_is_not_found(local_store):
    with pytest.raises(VersionNotFound) as raised:
        read_manifest(local_store, "t1", V)
    assert isinstance(raised.value, ObjectNotFound)


def test_a_store_outage_is_unavailable():
    with pytest.raises(StoreUnavailable):
        read_latest(DownStore(), "t1")
    with pytest.raises(StoreUnavailable):
        read_manifest(DownStore(), "t1", V)


def test_ids_are_validated_before_any_read():
    with pytest.raises(InvalidKey):
        read_latest(DownStore(), "../etc")
    with pytest.raises(InvalidKey):
        read_manifest(DownStore(), "t1", "../../x")
