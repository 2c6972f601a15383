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


def test_cover_art_keys_parse_in_full_and_carry_their_content_type():
    from origin.keys import art_key, content_type_for, cover_key, thumbnail_key

    assert cover_key("t1", V, "image/jpeg") == f"tracks/t1/{V}/cover.jpg"
    assert cover_key("t1", V, "image/png") == f"tracks/t1/{V}/cover.png"
    assert thumbnail_key("t1", V) == f"tracks/t1/{V}/cover-300.jpg"
    for name, ctype in [
        ("cover.jpg", "image/jpeg"),
        ("cover.png", "image/png"),
        ("cover-300.jpg", "image/jpeg"),
    ]:
        key = f"tracks/t1/{V}/{name}"
        assert parse_key(key) == ObjectKey("art", "t1", V, art=name)
        assert str(parse_key(key)) == key == art_key("t1", V, name)
        assert content_type_for(key) == ctype
    assert content_type_for(f"tracks/t1/{V}/96.ogg") == "audio/ogg"
    for bad in [
        f"tracks/t1/{V}/cover.gif",
        f"tracks/t1/{V}/cover.jpg\n",
        f"tracks/t1/{V}/cover-600.jpg",
        f"tracks/t1/{V}/Cover.jpg",
        f"tracks/t1/{V}/../cover.jpg",
        "tracks/t1/cover.jpg",
    ]:
        with pytest.raises(InvalidKey):
            parse_key(bad)
    with pytest.raises(InvalidKey):
        cover_key("t1", V, "image/gif")
    with pytest.raises(InvalidKey):
        art_key("t1", V, "cover.webp")
