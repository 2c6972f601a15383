import pytest

from encoder.loudness import (
    Measurement,
    loudness_summary,
    parse_ebur128_summary,
    replaygain,
)

SUMMARY = """\
[out#0/ogg @ 0x1] [info] video:0KiB audio:37KiB
[Parsed_ebur128_1 @ 0x7f5610001c00] [info] Summary:

  Integrated loudness:
    I:         -13.2 LUFS
    Threshold: -23.2 LUFS

  Loudness range:
    LRA:         4.7 LU
    Threshold: -33.1 LUFS
    LRA low:   -13.3 LUFS
    LRA high:  -13.0 LUFS

  True peak:
    Peak:       -0.4 dBFS
[info] size=      41KiB time=00:00:03.71
"""


def test_parse_reads_integrated_range_and_true_peak():
    assert parse_ebur128_summary(SUMMARY) == Measurement(-13.2, 4.7, -0.4)


def test_parse_returns_none_without_a_summary_and_none_fields_for_inf():
    assert parse_ebur128_summary("no meter here") is None
    silent = SUMMARY.replace("-13.2 LUFS", "-70.0 LUFS", 1).replace("-0.4 dBFS", "-inf dBFS")
    assert parse_ebur128_summary(silent) == Measurement(-70.0, 4.7, None)


def test_replaygain_2_uses_minus_18_lufs_and_a_linear_peak():
    gain = replaygain(Measurement(-9.1, 5.0, -0.3), duration_s=200)
    assert gain.track_gain_db == pytest.approx(-8.9)
    assert gain.track_peak == pytest.approx(10 ** (-0.3 / 20), abs=1e-6)
    assert gain.comments() == {
        "REPLAYGAIN_TRACK_GAIN": "-8.90 dB",
        "REPLAYGAIN_TRACK_PEAK": f"{10 ** (-0.3 / 20):.6f}",
    }
    assert replaygain(Measurement(-23.0, 1, -10), 10).comments()["REPLAYGAIN_TRACK_GAIN"] == (
        "+5.00 dB"
    )


def test_no_gain_for_silence_or_clips_under_one_gating_block():
    assert replaygain(Measurement(-70.0, 0.0, None), duration_s=10) is None
    assert replaygain(Measurement(-12.0, 0.0, -3.0), duration_s=0.3) is None
    assert replaygain(None, duration_s=10) is None
    summary = loudness_summary(Measurement(-70.0, 0.0, None), 10)
    assert summary.integrated_lufs is None and summary.track_gain_db is None


def test_summary_for_the_manifest():
    summary = loudness_summary(Measurement(-9.1, 5.2, -0.3), 100)
    assert summary.model_dump() == {
        "integrated_lufs": -9.1,
        "true_peak_dbtp": -0.3,
        "lra": 5.2,
        "track_gain_db": -8.9,
    }
