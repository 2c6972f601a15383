import json

import pytest

from origin.manifest import Latest, Manifest, ManifestError

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
