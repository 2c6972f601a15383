import os
import shutil
import struct
import threading
from pathlib import Path

import pytest
from mutagen.oggvorbis import OggVorbis

from encoder.errors import TranscodeError
from encoder.fanout import build_fanout_commands, transcode_fanout, wav_header
from encoder.profile import get_profile
from encoder.transcode import build_command, ffmpeg_version, transcode

pytestmark = pytest.mark.slow  # ffmpeg encodes in every test


def _outputs(profile, tmp=Path("/w")):
    return [(r, tmp / f"{r.bitrate_kbps}.ogg") for r in profile.rungs]


def _assert_six_seconds_in_every_rung(result, seen: list[float]) -> None:
    """The 6 s stereo test music, transcoded into every rung of "quality" and measured."""
    sizes = {b: p.stat().st_size for b, p in result.outputs.items()}
    assert sizes[96] < sizes[160] < sizes[320]
    for path in result.outputs.values():
        info = OggVorbis(path).info
        assert (info.sample_rate, info.channels) == (44100, 2)
        assert info.length == pytest.approx(6.0, abs=0.02)
    assert result.decoded_samples == 6 * 44100
    assert result.timeline_s == pytest.approx(6.0, abs=0.01)
    assert seen and seen[-1] == pytest.approx(6.0, abs=0.02)
    assert -30 < result.loudness.integrated_lufs < -5
    assert result.loudness.true_peak_dbtp < 0
    assert result.decode_errors == 0


def test_one_invocation_with_a_map_per_output_and_no_asplit():
    profile = get_profile("quality")
    argv = build_command("ffmpeg", Path("/in/song.flac"), profile, _outputs(profile))
    assert argv.count("-i") == 1
    assert "asplit" not in " ".join(argv)
    maps = [argv[i + 1] for i, a in enumerate(argv) if a == "-map"]
    assert maps.count("0:a:0") == 2 and len(maps) == 3  # the metered branch maps the graph
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.startswith("[0:a:0]aformat=")
    assert "ebur128=" in graph and "peak=true" in graph
    for flag, value in (("-ar", "44100"), ("-ac", "2"), ("-c:a", "libvorbis")):
        assert [argv[i + 1] for i, a in enumerate(argv) if a == flag] == [value] * 3
    assert argv.count("-vn") == 3
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-q:a"] == ["2", "5", "9"]
    assert argv[argv.index("-progress") + 1] == "pipe:1"


def test_abr_outputs_carry_bitrate_min_and_max():
    profile = get_profile("abr")
    argv = build_command("ffmpeg", Path("/in/x.wav"), profile, _outputs(profile))
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-maxrate"] == ["96k", "160k", "320k"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-minrate"] == ["96k", "160k", "320k"]
    assert "-q:a" not in argv


def test_transcode_writes_every_rung_and_measures_loudness(media, ffmpeg_exe, tmp_path):
    profile = get_profile("quality")
    seen = []
    result = transcode(
        ffmpeg_exe, media["music.wav"], profile, profile.rungs, tmp_path, on_progress=seen.append
    )
    assert sorted(result.outputs) == [96, 160, 320]
    _assert_six_seconds_in_every_rung(result, seen)
    assert result.decoded_duration_s == 6.0


def test_output_is_byte_for_byte_reproducible(media, ffmpeg_exe, tmp_path):
    profile = get_profile("quality")
    rungs = profile.rungs[:1]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = transcode(ffmpeg_exe, media["mono.flac"], profile, rungs, tmp_path / "a")
    second = transcode(ffmpeg_exe, media["mono.flac"], profile, rungs, tmp_path / "b")
    assert first.outputs[96].read_bytes() == second.outputs[96].read_bytes()


def test_ffmpeg_version_is_reported(ffmpeg_exe):
    assert ffmpeg_version(ffmpeg_exe)[0].isalnum()


def test_fanout_decodes_once_and_runs_one_oggenc_per_rung():
    profile = get_profile("quality", "oggenc")
    decoder, encoders = build_fanout_commands(
        "ffmpeg", "oggenc", Path("/in/song.flac"), profile, _outputs(profile), progress_fd=7
    )
    assert decoder.count("-i") == 1 and "file:/in/song.flac" in decoder
    graph = decoder[decoder.index("-af") + 1]
    assert graph.startswith("aformat=") and "ebur128=peak=true" in graph
    assert "astats" not in graph  # the samples are counted from the PCM's bytes instead
    assert decoder[-3:] == ["-f", "f32le", "pipe:1"] and "pcm_f32le" in decoder
    assert decoder[decoder.index("-progress") + 1] == "pipe:7"
    assert [e[e.index("-q") + 1] for e in encoders] == ["2", "5", "9"]
    for enc, (rung, path) in zip(encoders, _outputs(profile), strict=True):
        assert enc[0] == "oggenc" and enc[-1] == "-" and enc[enc.index("-o") + 1] == str(path)
        assert enc[enc.index("-s") + 1] == str(rung.bitrate_kbps)  # fixed serial: same bytes


def test_the_fanout_wav_header_announces_float_pcm_of_unknown_length():
    header = wav_header(44100, 2)
    assert len(header) == 44 and header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    fmt, channels, rate, byte_rate, block, bits = struct.unpack("<HHIIHH", header[20:36])
    assert (fmt, channels, rate, byte_rate, block, bits) == (3, 2, 44100, 352800, 8, 32)
    assert header[36:40] == b"data" and header[40:] == b"\xff\xff\xff\xff"


@pytest.fixture
def oggenc_exe():
    found = shutil.which("oggenc")
    assert found, "oggenc is missing: `make deps` installs vorbis-tools"
    return found


def test_fanout_writes_every_rung_measures_and_counts(media, ffmpeg_exe, oggenc_exe, tmp_path):
    profile = get_profile("quality", "oggenc")
    seen = []
    result = transcode_fanout(
        ffmpeg_exe,
        oggenc_exe,
        media["music.wav"],
        profile,
        profile.rungs,
        tmp_path,
        on_progress=seen.append,
    )
    _assert_six_seconds_in_every_rung(result, seen)


@pytest.mark.parametrize(
    "name", ["music.flac", "mono.flac", "surround51.flac", "rate48k.flac", "mp3_128.mp3"]
)
def test_fanout_loudness_and_samples_match_the_one_pass(
    media, ffmpeg_exe, oggenc_exe, tmp_path, name
):
    """The samples counted from the PCM's bytes are the ones astats counts in the one pass."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rungs = get_profile("quality").rungs[:1]
    one = transcode(ffmpeg_exe, media[name], get_profile("quality"), rungs, tmp_path / "a")
    fan = transcode_fanout(
        ffmpeg_exe,
        oggenc_exe,
        media[name],
        get_profile("quality", "oggenc"),
        rungs,
        tmp_path / "b",
    )
    assert fan.loudness == one.loudness
    assert fan.decoded_samples == one.decoded_samples
    assert fan.timeline_s == pytest.approx(one.timeline_s, abs=0.001)


def test_fanout_output_is_byte_for_byte_reproducible(media, ffmpeg_exe, oggenc_exe, tmp_path):
    profile = get_profile("quality", "oggenc")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = transcode_fanout(
        ffmpeg_exe, oggenc_exe, media["mono.flac"], profile, profile.rungs, tmp_path / "a"
    )
    second = transcode_fanout(
        ffmpeg_exe, oggenc_exe, media["mono.flac"], profile, profile.rungs, tmp_path / "b"
    )
    for rate in (96, 160, 320):
        assert first.outputs[rate].read_bytes() == second.outputs[rate].read_bytes()


def test_fanout_reports_a_failing_encoder_in_one_line(media, ffmpeg_exe, tmp_path):
    profile = get_profile("quality", "oggenc")
    with pytest.raises(TranscodeError, match=r"oggenc failed for 96\.ogg|cannot run") as info:
        transcode_fanout(
            ffmpeg_exe, "/bin/false", media["music.wav"], profile, profile.rungs[:1], tmp_path
        )
    assert "\n" not in str(info.value)


def test_fanout_without_its_encoder_binary_raises_and_leaves_nothing_running(
    media, ffmpeg_exe, tmp_path
):
    profile = get_profile("quality", "oggenc")
    with pytest.raises(TranscodeError, match="cannot run"):
        transcode_fanout(
            ffmpeg_exe, "/no/such/oggenc", media["music.wav"], profile, profile.rungs, tmp_path
        )


def _children() -> list[int]:
    """Our live (not yet reaped) child processes, from /proc."""
    mine = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue  # exited meanwhile
        if fields.get("PPid", "").strip() == str(os.getpid()):
            mine.append(int(status.parent.name))
    return mine


def _feeders_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.__class__.__name__ == "_Feeder"]


def test_fanout_an_encoder_dying_midway_stops_everything(media, ffmpeg_exe, tmp_path):
    dies = tmp_path / "oggenc"
    dies.write_text("#!/bin/sh\nhead -c 65536 >/dev/null\necho 'oggenc: disk full' >&2\nexit 3\n")
    dies.chmod(0o755)
    profile = get_profile("quality", "oggenc")
    (tmp_path / "out").mkdir()
    before = set(_children())
    with pytest.raises(TranscodeError, match=r"oggenc failed for 96\.ogg \(exit 3\): .*disk full"):
        transcode_fanout(
            ffmpeg_exe, str(dies), media["music.wav"], profile, profile.rungs, tmp_path / "out"
        )
    assert set(_children()) <= before and not _feeders_alive()


def test_fanout_interrupted_leaves_no_process_or_thread_behind(
    media, ffmpeg_exe, oggenc_exe, tmp_path
):
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    profile = get_profile("quality", "oggenc")
    before = set(_children())
    with pytest.raises(KeyboardInterrupt):
        transcode_fanout(
            ffmpeg_exe,
            oggenc_exe,
            media["music.flac"],
            profile,
            profile.rungs,
            tmp_path,
            on_progress=interrupt,
        )
    assert set(_children()) <= before and not _feeders_alive()
