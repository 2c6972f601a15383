"""Bitrate selection and URL lifetime: pure functions."""

from __future__ import annotations

import pytest

from delivery.entitlements import NotEntitled, select_bitrate, url_ttl_s

Q = {"low": 96, "normal": 160, "high": 320}
FREE, PREMIUM = (96, 160), (96, 160, 320)
ALL = (96, 160, 320)


@pytest.mark.parametrize(
    ("quality", "allowed", "available", "bitrate", "capped", "entitled"),
    [
        ("low", FREE, ALL, 96, False, (96, 160)),
        ("normal", FREE, ALL, 160, False, (96, 160)),
        ("high", FREE, ALL, 160, True, (96, 160)),
        ("auto", FREE, ALL, 160, False, (96, 160)),
        ("high", PREMIUM, ALL, 320, False, ALL),
        ("auto", PREMIUM, ALL, 320, False, ALL),
        # Only renditions the manifest holds are offered.
        ("high", PREMIUM, (96, 160), 160, False, (96, 160)),
        ("auto", PREMIUM, (96,), 96, False, (96,)),
        ("normal", PREMIUM, (96, 320), 96, False, (96, 320)),
        # Nothing at or below the request: the smallest entitled rendition.
        ("low", PREMIUM, (160, 320), 160, False, (160, 320)),
        ("high", FREE, (160, 320), 160, True, (160,)),
    ],
)
def test_select(quality, allowed, available, bitrate, capped, entitled):
    s = select_bitrate(quality, allowed, available, Q)
    assert (s.bitrate_kbps, s.capped, s.entitled) == (bitrate, capped, entitled)


def test_requested_is_reported():
    assert select_bitrate("high", FREE, ALL, Q).requested_kbps == 320
    assert select_bitrate("auto", FREE, ALL, Q).requested_kbps == 160


def test_custom_quality_map_and_tiers():
    s = select_bitrate("high", (96,), ALL, {"low": 96, "normal": 96, "high": 160})
    assert (s.bitrate_kbps, s.capped) == (96, True)


def test_nothing_entitled():
    with pytest.raises(NotEntitled):
        select_bitrate("auto", FREE, (320,), Q)
    with pytest.raises(NotEntitled):
        select_bitrate("auto", (), ALL, Q)


def test_unknown_quality():
    with pytest.raises(ValueError, match="quality"):
        select_bitrate("ultra", FREE, ALL, Q)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (0.0, 900),
        (3.0, 900),
        (450.0, 900),
        (451.0, 902),
        (3600.0, 7200),
        (50_000.0, 86_400),
        (float("nan"), 900),
        (float("inf"), 900),
        (-5.0, 900),
    ],
)
def test_url_ttl(duration, expected):
    assert url_ttl_s(duration, base_s=900, factor=2.0, max_s=86_400) == expected


def test_url_ttl_never_beyond_the_cap():
    assert url_ttl_s(10.0, base_s=900, factor=2.0, max_s=60) == 60
