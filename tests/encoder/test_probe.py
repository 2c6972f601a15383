import pytest

from encoder.errors import InputError
from encoder.probe import (
    SourceProbe,
    check_decoded_duration,
    ogg_tail_complete,
    parse_ffmpeg_info,
    probe,
)

MP4_REPORT = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':
  Metadata:
    major_brand     : isom
    title           : Movie Title
    artist          : Someone
  Duration: 00:01:02.50, start: 0.000000, bitrate: 166 kb/s
  Stream #0:0[0x1](und): Video: mpeg4 (Simple Profile) (mp4v / 0x7634706D), yuv420p, 64x48, \
31 kb/s, 10 fps, 10 tbr, 10240 tbn (default)
    Metadata:
      handler_name    : VideoHandler
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1(side), fltp, \
127 kb/s (default)
    Metadata:
      title           : not the track title
At least one output file must be specified
"""


def test_parse_reads_container_duration_streams_and_input_metadata():
    info = parse_ffmpeg_info(MP4_REPORT)
    assert info.container == "mp4"
    assert info.duration_s == pytest.approx(62.5)
    assert info.bitrate_kbps == 166
    assert info.video_streams == 1
    (audio,) = info.audio
    assert (audio.codec, audio.sample_rate, audio.channels, audio.bitrate_kbps) == (
        "aac",
        48000,
        6,
        127,
    )
    # stream-level metadata must not leak into the input's tags
    assert info.metadata["title"] == "Movie Title"
    assert info.metadata["artist"] == "Someone"


def test_parse_ignores_attached_pictures_and_counts_audio_streams():
    report = """\
Input #0, matroska,webm, from 'x.mka':
  Duration: N/A, bitrate: N/A
  Stream #0:0: Audio: flac, 44100 Hz, stereo, s32 (24 bit) (default)
  Stream #0:1: Audio: opus, 48000 Hz, 8 channels, fltp
  Stream #0:2: Video: png, rgb24(pc), 64x64, 90k tbr, 90k tbn (attached pic)
"""
    info = parse_ffmpeg_info(report)
    assert info.duration_s is None
    assert info.video_streams == 0
    assert [a.channels for a in info.audio] == [2, 8]
    assert info.container == "matroska"


def test_parse_reports_the_error_when_there_is_no_input():
    info = parse_ffmpeg_info("x.bin: Invalid data found when processing input\n")
    assert info.error == "x.bin: Invalid data found when processing input"
    assert info.audio == ()


def test_parse_flags_durations_guessed_from_the_bitrate():
    report = (
        "[mp3 @ 0x1] Estimating duration from bitrate, this may be inaccurate\n"
        "Input #0, mp3, from 'a.mp3':\n"
        "  Duration: 00:00:10.00, start: 0.000000, bitrate: 128 kb/s\n"
        "  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 128 kb/s\n"
    )
    assert parse_ffmpeg_info(report).duration_estimated


def _page(eos: bool, body: bytes = b"x" * 10) -> bytes:
    header = b"OggS\x00" + bytes([0x04 if eos else 0]) + bytes(20) + bytes([1, len(body)])
    return header + body


def test_ogg_tail_complete_wants_a_whole_final_page_with_the_eos_flag():
    assert ogg_tail_complete(_page(False) + _page(True))
    assert not ogg_tail_complete(_page(False) + _page(False))
    assert not ogg_tail_complete((_page(False) + _page(True))[:-3])  # cut inside the page
    assert not ogg_tail_complete(b"no pages here")
    # "OggS" inside packet data of the final page is not mistaken for a page start
    assert ogg_tail_complete(_page(True, b"..OggS..xx"))


def test_probe_reads_a_tagged_flac_with_its_cover(media, ffmpeg_exe):
    found = probe(media["tagged.flac"], ffmpeg_exe, max_duration_s=60)
    assert found.container == "flac" and found.codec == "flac" and found.lossless
    assert found.bitrate_kbps is None
    assert found.duration_s == pytest.approx(6.0, abs=0.01)
    assert found.tags["title"] == "Blue Sine" and found.tags["artist"] == "The Oscillators"
    assert found.cover is not None and found.cover.mime == "image/png"
    assert found.cover.data == media["cover.png"].read_bytes()


@pytest.mark.parametrize(
    ("name", "codec", "rate", "channels", "lossless"),
    [
        ("mp3_128.mp3", "mp3", 44100, 2, False),
        ("aac.m4a", "aac", 44100, 2, False),
        ("mono.flac", "flac", 44100, 1, True),
        ("surround51.flac", "flac", 44100, 6, True),
        ("rate8k.wav", "pcm_s16le", 8000, 2, True),
        ("rate96k.flac", "flac", 96000, 2, True),
        ("video.mp4", "aac", 44100, 2, False),
    ],
)
def test_probe_describes_the_first_audio_stream(
    media, ffmpeg_exe, name, codec, rate, channels, lossless
):
    found = probe(media[name], ffmpeg_exe, max_duration_s=60)
    assert (found.codec, found.sample_rate, found.channels, found.lossless) == (
        codec,
        rate,
        channels,
        lossless,
    )


def test_probe_reads_id3_tags_and_the_mp3_bitrate(media, ffmpeg_exe):
    found = probe(media["mp3_128.mp3"], ffmpeg_exe, max_duration_s=60)
    assert found.bitrate_kbps == pytest.approx(128, abs=1)
    assert found.tags["album"] == "Test Tones" and found.tags["date"] == "2024"


def test_probe_warns_about_extra_audio_streams(media, ffmpeg_exe):
    found = probe(media["two_streams.mka"], ffmpeg_exe, max_duration_s=60)
    assert found.audio_streams == 2
    assert any("2 audio streams" in w for w in found.warnings)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.flac", "empty file"),
        ("cover.png", "image"),
        ("video_only.mp4", "video without an audio stream"),
        ("text.mp3", "not an audio file"),
        ("truncated.ogg", "truncated"),
    ],
)
def test_probe_rejects_what_the_headers_already_condemn(media, ffmpeg_exe, name, reason):
    with pytest.raises(InputError, match=reason):
        probe(media[name], ffmpeg_exe, max_duration_s=60)


def test_probe_rejects_sources_over_the_duration_limit(media, ffmpeg_exe):
    with pytest.raises(InputError, match="ENCODER_MAX_DURATION_S"):
        probe(media["music.flac"], ffmpeg_exe, max_duration_s=5)


def test_probe_rejects_missing_files_and_folders(tmp_path, ffmpeg_exe):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "nope.flac", ffmpeg_exe, max_duration_s=60)
    with pytest.raises(InputError, match="not a regular file"):
        probe(tmp_path, ffmpeg_exe, max_duration_s=60)


def _probe(duration, trusted=True):
    return SourceProbe(
        path=None,
        bytes=1,
        container="mp3",
        codec="mp3",
        sample_rate=44100,
        channels=2,
        duration_s=duration,
        duration_trusted=trusted,
        bitrate_kbps=128,
        lossless=False,
        audio_streams=1,
        tags={},
        cover=None,
    )


def test_decoded_duration_check_tolerates_priming_but_not_truncation():
    check_decoded_duration(_probe(6.03), 6.0)  # encoder padding
    check_decoded_duration(_probe(180.0), 179.2)  # within 0.5 s + 0.5%
    with pytest.raises(InputError, match="truncated"):
        check_decoded_duration(_probe(6.0), 3.7)
    check_decoded_duration(_probe(6.0, trusted=False), 3.7)  # a guessed header proves nothing
    check_decoded_duration(_probe(None), 1.0)
    check_decoded_duration(_probe(6.0), 5.95, timeline_s=6.0)  # one lost 50 ms frame
    with pytest.raises(InputError, match="0.50s of audio inside the file"):
        check_decoded_duration(_probe(None), 5.5, timeline_s=6.0)
