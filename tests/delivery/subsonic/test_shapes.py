"""Ids, index letters and the bitrate choice: pure functions."""

from __future__ import annotations

import pytest

from delivery.subsonic.media import pick_bitrate
from delivery.subsonic.shapes import (
    album_sid,
    artist_sid,
    index_groups,
    index_letter,
    parse_sid,
)

ID22 = "a" * 21 + "Z"


def test_ids_of_each_kind_cannot_be_confused():
    assert parse_sid(artist_sid(ID22)) == ("artist", ID22)
    assert parse_sid(album_sid(ID22)) == ("album", ID22)
    assert parse_sid("demo-sunrise") == ("song", "demo-sunrise")
    assert parse_sid("ar-" + ID22) == ("song", "ar-" + ID22)  # a legal track id


@pytest.mark.parametrize(
    "bad", ["", "ar." + ID22[:-1], "al." + ID22 + "x", "x.y", "a" * 65, "demo\n", "../etc"]
)
def test_anything_else_is_no_id(bad):
    assert parse_sid(bad) is None


@pytest.mark.parametrize(
    ("name", "letter"),
    [("The Beatles", "B"), ("Émile", "E"), ("abba", "A"), ("2Pac", "#"), ("The", "T"),
     ("Los Lobos", "L"), ("", "#")],
)  # fmt: skip
def test_index_letter(name, letter):
    assert index_letter(name) == letter


def test_index_groups_sorted_with_hash_last():
    rows = [{"artist_id": ID22, "name": n} for n in ("Zed", "2Pac", "Abba", "The Alarm")]
    groups = index_groups(rows, {})
    assert [g["name"] for g in groups] == ["A", "Z", "#"]
    assert [a["name"] for a in groups[0]["artist"]] == ["Abba", "The Alarm"]


@pytest.mark.parametrize(
    ("entitled", "max_bitrate", "chosen"),
    [
        ([96, 160, 320], 0, 320),  # no limit: the best entitled
        ([96, 160], 0, 160),  # a free tier never gets 320
        ([96, 160, 320], 320, 320),
        ([96, 160, 320], 256, 160),  # down to the rung below
        ([96, 160, 320], 160, 160),
        ([96, 160, 320], 128, 96),
        ([96, 160, 320], 64, 96),  # below the lowest rung: the lowest
        ([160, 320], 96, 160),  # a manifest without 96: the smallest there is
    ],
)
def test_max_bitrate_is_honoured_down_to_the_rungs_that_exist(entitled, max_bitrate, chosen):
    assert pick_bitrate(entitled, max_bitrate) == chosen


def test_the_documented_examples_hold():
    import doctest

    from delivery.subsonic import envelope, media

    for module in (envelope, media):
        assert doctest.testmod(module).failed == 0
