"""Every bad input fails with one clear reason, and the store holds nothing new."""

from pathlib import Path

import pytest
from mutagen.oggvorbis import OggVorbis

from encoder import InputError, ingest
from encoder.settings import EncoderSettings, load_settings
from origin.keys import latest_key
from origin.manifest import Latest

pytestmark = pytest.mark.slow  # ffmpeg encodes in most tests

BAD = [
    ("empty.flac", "empty file"),
    ("cover.png", "not audio: the file is an image"),
    ("video_only.mp4", "video without an audio stream"),
    ("text.mp3", "not an audio file"),
    ("truncated.mp3", "truncated or corrupt"),
    ("truncated.flac", "truncated or corrupt"),
    ("truncated.ogg", "truncated or corrupt"),
    ("corrupt.flac", "corrupt source: .* could not be decoded"),
    ("no_samples.wav", "decodes to zero samples"),
]


def assert_rejected_cleanly(
    source: Path, reason: str, store, settings: EncoderSettings, work_dir: Path
) -> None:
    """Ingesting ``source`` fails with one line matching ``reason``; nothing is published
    and no scratch directory is left behind."""
    with pytest.raises(InputError, match=reason) as caught:
        ingest(source, "t1", store, settings=settings)
    assert "\n" not in str(caught.value)
    assert store.list() == []
    assert list(work_dir.iterdir()) == []


@pytest.mark.parametrize(("name", "reason"), BAD)
def test_bad_input_is_rejected_and_nothing_is_published(
    media, store, settings, work_dir, name, reason
):
    assert_rejected_cleanly(media[name], reason, store, settings, work_dir)


def test_too_long_is_configurable(media, store, work_dir):
    short_limit = load_settings(work_dir=work_dir, max_duration_s=3)
    with pytest.raises(InputError, match="the limit is 0:00:03"):
        ingest(media["music.flac"], "t1", store, settings=short_limit)
    assert store.list() == []


def test_missing_file_and_folder(store, settings, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ingest(tmp_path / "missing.flac", "t1", store, settings=settings)
    with pytest.raises(InputError, match="not a regular file"):
        ingest(tmp_path, "t1", store, settings=settings)


def test_a_bad_new_master_leaves_the_published_track_alone(media, store, settings):
    good = ingest(media["music.flac"], "t1", store, settings=settings)
    before = store.list()
    latest_before = store.get_bytes(latest_key("t1"))
    with pytest.raises(InputError):
        ingest(media["truncated.flac"], "t1", store, settings=settings, replace=True)
    assert store.list() == before
    assert store.get_bytes(latest_key("t1")) == latest_before
    assert Latest.from_json(latest_before).version == good.version


def test_a_lost_frame_is_tolerated_with_a_warning(media, store, settings):
    result = ingest(media["glitch.flac"], "t1", store, settings=settings)
    assert result.status == "published"
    assert any("decoding error" in w for w in result.warnings)
    assert 5.85 < result.manifest.source.duration_s < 6.0  # samples decoded, not timestamps


def test_oversized_cover_art_is_left_out_with_a_warning(media, store, work_dir, tmp_path):
    settings = load_settings(work_dir=work_dir, max_cover_bytes=10)
    result = ingest(media["tagged.flac"], "t1", store, settings=settings)
    assert any("ENCODER_MAX_COVER_BYTES" in w for w in result.warnings)
    assert result.manifest.tags["title"] == "Blue Sine"
    ogg = tmp_path / "96.ogg"
    ogg.write_bytes(store.get_bytes(result.manifest.renditions[0].key))
    tags = OggVorbis(ogg)
    assert "METADATA_BLOCK_PICTURE" not in tags and tags["TITLE"] == ["Blue Sine"]
