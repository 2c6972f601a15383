import dataclasses
import re

import pytest

from encoder.errors import UsageError
from encoder.profile import PROFILES, get_profile, select_rungs, version_for

SHA = "ab" * 32


def test_profile_ids_name_the_rate_control_and_the_ladder():
    assert get_profile("quality").id == "vorbis-q-96-160-320/1"
    assert get_profile("abr").id == "vorbis-abr-96-160-320/1"
    with pytest.raises(UsageError, match="unknown profile"):
        get_profile("cbr")


def test_quality_mode_uses_q2_q5_q9_and_abr_pins_min_and_max_rate():
    q = get_profile("quality")
    assert [r.codec_options("quality") for r in q.rungs] == [
        {"q:a": "2"},
        {"q:a": "5"},
        {"q:a": "9"},
    ]
    abr = get_profile("abr")
    assert abr.rung(160).codec_options("abr") == {
        "b:a": "160k",
        "minrate": "160k",
        "maxrate": "160k",
    }


def test_version_is_16_hex_of_sha256_of_source_and_fingerprint():
    import hashlib

    profile = get_profile("quality")
    version = version_for(SHA, profile)
    assert re.fullmatch(r"[0-9a-f]{16}", version)
    expected = hashlib.sha256(f"{SHA}:{profile.fingerprint}".encode()).hexdigest()[:16]
    assert version == expected
    assert version_for(SHA, profile) == version  # deterministic
    assert version_for("cd" * 32, profile) != version  # new master, new version
    assert version_for(SHA, get_profile("abr")) != version  # new profile, new version


def test_any_setting_change_changes_the_fingerprint():
    q = PROFILES["quality"]
    louder = dataclasses.replace(
        q, rungs=(q.rungs[0], q.rungs[1], dataclasses.replace(q.rungs[2], quality=8))
    )
    assert louder.fingerprint != q.fingerprint
    assert dataclasses.replace(q, sample_rate=48000).fingerprint != q.fingerprint


@pytest.mark.parametrize(
    ("lossless", "bitrate", "expected"),
    [
        (True, None, [96, 160, 320]),
        (False, None, [96, 160, 320]),  # unknown rate: nothing to compare against
        (False, 127.7, [96, 160]),  # a 128 kbps MP3
        (False, 64, [96]),
        (False, 96.2, [96]),
        (False, 163, [96, 160]),
        (False, 192, [96, 160, 320]),
        (False, 320, [96, 160, 320]),
    ],
)
def test_no_upscaling_keeps_rungs_up_to_the_first_that_covers_the_source(
    lossless, bitrate, expected
):
    rungs = select_rungs(get_profile("quality"), lossless=lossless, bitrate_kbps=bitrate)
    assert [r.bitrate_kbps for r in rungs] == expected


def test_the_oggenc_engine_is_another_fingerprint_and_revision():
    for name in ("quality", "abr"):
        onepass, fanout = get_profile(name), get_profile(name, "oggenc")
        assert fanout.id == onepass.id.replace("/1", "/2")
        assert fanout.fingerprint != onepass.fingerprint
        assert '"encoder":"oggenc"' in fanout.fingerprint
        assert '"encoder"' not in onepass.fingerprint  # published one-pass versions stay
        assert version_for(SHA, fanout) != version_for(SHA, onepass)
    assert [r.oggenc_args("quality") for r in get_profile("quality").rungs] == [
        ["-q", "2"],
        ["-q", "5"],
        ["-q", "9"],
    ]
    assert get_profile("abr").rung(96).oggenc_args("abr") == ["-b", "96", "-m", "96", "-M", "96"]


def test_the_onepass_fingerprint_is_unchanged():
    # versions published before the fan-out arrangement must keep their address
    assert version_for(SHA, get_profile("quality")) == version_for(SHA, PROFILES["quality"])
    assert '"id":"vorbis-q-96-160-320/1"' in get_profile("quality").fingerprint
