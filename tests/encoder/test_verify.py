import json

import pytest

from encoder import VerificationError, ingest
from encoder.listing import list_tracks
from encoder.profile import get_profile
from encoder.verify import check_rendition, decode_problem, verify_track
from origin.keys import latest_key
from tests.encoder.cli_runner import run_encoder

pytestmark = pytest.mark.slow  # ffmpeg encodes, the CLI as a process


@pytest.fixture
def published(media, store, settings):
    return ingest(media["tagged.flac"], "t1", store, settings=settings)


def test_a_published_track_verifies(published, store, ffmpeg_exe):
    report = verify_track(store, "t1", ffmpeg_exe)
    assert report.ok and report.checked == 3 and report.version == published.version


def test_verify_finds_tampering_missing_objects_and_undecodable_audio(published, store, ffmpeg_exe):
    keys = {r.bitrate_kbps: r.key for r in published.manifest.renditions}
    path96 = store.root / keys[96]
    data = bytearray(path96.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    path96.write_bytes(bytes(data))
    store.delete(keys[160])
    path320 = store.root / keys[320]
    path320.write_bytes(path320.read_bytes()[:1000])

    report = verify_track(store, "t1", ffmpeg_exe)
    assert not report.ok
    text = " | ".join(report.problems)
    assert "96.ogg: sha256" in text
    assert "160.ogg: missing" in text
    assert "320.ogg: 1000 bytes stored" in text


def test_decode_check_catches_bit_flips_truncation_and_wrong_duration(media, tmp_path, ffmpeg_exe):
    good = media["vorbis.ogg"]
    assert decode_problem(ffmpeg_exe, good, 6.0) is None
    flipped = tmp_path / "flipped.ogg"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    assert "CRC mismatch" in decode_problem(ffmpeg_exe, flipped)
    assert "truncated" in decode_problem(ffmpeg_exe, media["truncated.ogg"])
    assert "manifest says 9.000s" in decode_problem(ffmpeg_exe, good, 9.0)


def test_verify_without_latest(store, ffmpeg_exe):
    report = verify_track(store, "nothing", ffmpeg_exe)
    assert not report.ok and "missing" in report.problems[0]


def test_check_rendition_rejects_wrong_duration_and_format(media, tmp_path):
    profile = get_profile("quality")
    with pytest.raises(VerificationError, match="source decoded to 5.000s"):
        check_rendition(media["vorbis.ogg"], 96, decoded_duration_s=5.0, profile=profile)
    with pytest.raises(VerificationError, match="does not open as Ogg Vorbis"):
        check_rendition(media["music.flac"], 96, decoded_duration_s=6.0, profile=profile)
    ok = check_rendition(media["vorbis.ogg"], 96, decoded_duration_s=6.0, profile=profile)
    assert ok.avg_bitrate_kbps == pytest.approx(ok.bytes * 8 / 6.0 / 1000, abs=0.1)
    abr = get_profile("abr")
    with pytest.raises(VerificationError, match=r"outside \+-10% of 320"):
        check_rendition(media["vorbis.ogg"], 320, decoded_duration_s=6.0, profile=abr)


def test_cli_verify_and_ls(published, store):
    done = run_encoder("verify", "--store", store.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"ok    t1  {published.version}  3 renditions")

    listing = run_encoder("ls", "--store", store.url, "--json")
    (entry,) = json.loads(listing.stdout)
    assert entry["track_id"] == "t1" and entry["bitrates"] == [96, 160, 320]
    assert entry["title"] == "Blue Sine" and entry["version"] == published.version

    store.delete(published.manifest.renditions[0].key)
    failed = run_encoder("verify", "--store", store.url, "t1", "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)[0]["ok"] is False


def test_ls_shows_tracks_without_latest(published, store):
    store.delete(latest_key("t1"))
    (entry,) = list_tracks(store)
    assert entry.problem == "no latest.json" and entry.versions == 1
