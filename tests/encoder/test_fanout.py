"""The fan-out arrangement (ENCODER_ARRANGEMENT=fanout) end to end: the same behaviour,
checks and loudness as the one pass, its own (reproducible) bytes and versions."""

import pytest

from encoder import ingest
from encoder.profile import get_profile, version_for
from encoder.settings import load_settings
from origin.store import sha256_file
from tests.encoder.test_bad_input import BAD, assert_rejected_cleanly
from tests.encoder.test_ingest import _assert_published

# ffmpeg and oggenc encode in every test; `make deps` installs vorbis-tools (oggenc), so a
# missing oggenc fails here rather than skipping.
pytestmark = pytest.mark.slow


@pytest.fixture
def fanout(work_dir):
    return load_settings(
        work_dir=work_dir, store="file:///nonexistent-use-the-store-fixture", arrangement="fanout"
    )


@pytest.fixture
def onepass(work_dir):
    return load_settings(
        work_dir=work_dir, store="file:///nonexistent-use-the-store-fixture", arrangement="onepass"
    )


def test_publishes_verified_renditions_with_the_same_loudness_as_the_one_pass(
    media, store, fanout, onepass, tmp_path
):
    fan = ingest(media["tagged.flac"], "fan", store, settings=fanout)
    manifest = _assert_published(store, fan, tmp_path)
    assert manifest.encoder.profile == "vorbis-q-96-160-320/2"
    assert "oggenc" in manifest.encoder.ffmpeg
    assert fan.version == version_for(
        sha256_file(media["tagged.flac"]), get_profile("quality", "oggenc")
    )
    one = ingest(media["tagged.flac"], "one", store, settings=onepass)
    assert one.version != fan.version  # other bytes, other version
    assert manifest.loudness == one.manifest.loudness
    assert manifest.source.duration_s == one.manifest.source.duration_s
    assert manifest.tags == one.manifest.tags
    sizes = [r.bytes for r in manifest.renditions]
    assert sizes == sorted(sizes)


def test_force_reencodes_to_the_same_bytes(media, store, fanout):
    first = ingest(media["music.flac"], "t1", store, settings=fanout)
    again = ingest(media["music.flac"], "t1", store, settings=fanout, force=True)
    assert again.status == "published" and again.version == first.version
    assert [r.sha256 for r in again.manifest.renditions] == [
        r.sha256 for r in first.manifest.renditions
    ]


def test_abr_hits_its_targets(media, store, fanout, tmp_path):
    result = ingest(media["music.flac"], "t1", store, profile="abr", settings=fanout)
    manifest = _assert_published(store, result, tmp_path)
    assert manifest.encoder.profile == "vorbis-abr-96-160-320/2"
    for rendition in manifest.renditions:
        assert 0.9 * rendition.bitrate_kbps <= rendition.avg_bitrate_kbps
        assert rendition.avg_bitrate_kbps <= 1.15 * rendition.bitrate_kbps


def test_no_upscaling_and_mono_sources(media, store, fanout, tmp_path):
    lossy = ingest(media["aac.m4a"], "aac", store, settings=fanout)
    assert lossy.manifest.bitrates[-1] <= 320
    mono = ingest(media["mono.flac"], "mono", store, settings=fanout)
    _assert_published(store, mono, tmp_path)


@pytest.mark.parametrize(("name", "reason"), BAD)
def test_bad_input_is_rejected_and_nothing_is_published(
    media, store, fanout, work_dir, name, reason
):
    assert_rejected_cleanly(media[name], reason, store, fanout, work_dir)


def test_a_lost_frame_is_tolerated_with_a_warning(media, store, fanout):
    result = ingest(media["glitch.flac"], "t1", store, settings=fanout)
    assert result.status == "published"
    assert any("decoding error" in w for w in result.warnings)
    assert 5.85 < result.manifest.source.duration_s < 6.0  # samples decoded, not timestamps
