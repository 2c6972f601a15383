import pytest

from origin.errors import InvalidKey
from origin.keys import (
    ObjectKey,
    latest_key,
    manifest_key,
    parse_key,
    rendition_key,
    validate_key,
    validate_prefix,
    validate_track_id,
)

V = "0123456789abcdef"


def test_layout_keys_round_trip():
    assert rendition_key("t1", V, 96) == f"tracks/t1/{V}/96.ogg"
    assert manifest_key("t1", V) == f"tracks/t1/{V}/manifest.json"
    assert latest_key("t1") == "tracks/t1/latest.json"
    assert parse_key(f"tracks/t1/{V}/320.ogg") == ObjectKey("rendition", "t1", V, 320)
    assert parse_key(f"tracks/t1/{V}/manifest.json") == ObjectKey("manifest", "t1", V)
    assert parse_key("tracks/t1/latest.json") == ObjectKey("latest", "t1")
    assert str(parse_key(f"tracks/t1/{V}/160.ogg")) == f"tracks/t1/{V}/160.ogg"


@pytest.mark.parametrize(
    "key",
    [
        "tracks/../../etc/passwd",
        "/etc/passwd",
        "/tracks/t1/latest.json",
        "tracks/t1/../t2/latest.json",
        f"tracks/t1/{V}/96.ogg\x00",
        f"tracks/t1/{V}/96.ogg\n",
        "tracks\\t1\\latest.json",
        f"tracks/t1/{V}/97.ogg",
        f"tracks/t1/{V.upper()}/96.ogg",
        f"tracks/t1/{V}0/96.ogg",
        "tracks/_t1/latest.json",
        "tracks/" + "a" * 65 + "/latest.json",
        "tracks/t1/latest.json/",
        "tracks//latest.json",
        "",
        "tracks/t1/other.json",
        "tracks/tëst/latest.json",
    ],
)
def test_invalid_keys_are_refused(key):
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_invalid_key_message_escapes_control_characters():
    with pytest.raises(InvalidKey) as exc:
        validate_key("tracks/\x00\n")
    assert "\x00" not in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("prefix", ["", "tracks/", "tracks/t1/", f"tracks/t1/{V}/"])
def test_valid_prefixes(prefix):
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["tracks", "tracks/t", "tracks/t1", "../", "tracks/../", "/"])
def test_invalid_prefixes(prefix):
    with pytest.raises(InvalidKey):
        validate_prefix(prefix)


def test_track_id_bounds():
    assert validate_track_id("a") == "a"
    assert validate_track_id("A" + "b_-9" * 15 + "xyz") == "A" + "b_-9" * 15 + "xyz"
    for bad in ["", "-a", "a b", "a/b", "a.b", "a" * 65]:
        with pytest.raises(InvalidKey):
            validate_track_id(bad)
