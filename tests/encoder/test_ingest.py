import base64

import pytest
from mutagen.flac import Picture
from mutagen.oggvorbis import OggVorbis

import encoder.pipeline as ingest_module
from encoder import ConflictError, UsageError, VerificationError, ingest
from encoder.profile import get_profile, version_for
from origin.keys import latest_key, manifest_key
from origin.manifest import Latest, Manifest
from origin.store import sha256_file

pytestmark = pytest.mark.slow  # ffmpeg encodes in every test


def _stored_ogg(store, key, tmp_path):
    path = tmp_path / key.replace("/", "_")
    path.write_bytes(store.get_bytes(key))
    return OggVorbis(path)


def _assert_published(store, result, tmp_path, bitrates=(96, 160, 320)):
    assert result.status == "published"
    manifest = Manifest.from_json(store.get_bytes(manifest_key(result.track_id, result.version)))
    assert manifest == result.manifest
    assert manifest.bitrates == list(bitrates)
    latest = Latest.from_json(store.get_bytes(latest_key(result.track_id)))
    assert latest.version == result.version
    stored = store.list(f"tracks/{result.track_id}/{result.version}/")
    art = [image.key for image in manifest.art.images()] if manifest.art else []
    assert stored == sorted(
        [r.key for r in manifest.renditions] + art + [manifest_key(result.track_id, result.version)]
    )
    for rendition in manifest.renditions:
        info = store.stat(rendition.key)
        assert info.size == rendition.bytes
        ogg = _stored_ogg(store, rendition.key, tmp_path)
        assert (ogg.info.sample_rate, ogg.info.channels) == (44100, 2)
        assert abs(ogg.info.length - manifest.source.duration_s) <= 0.1
        assert rendition.avg_bitrate_kbps == pytest.approx(
            rendition.bytes * 8 / ogg.info.length / 1000, rel=0.01
        )
    return manifest


def test_publishes_three_renditions_manifest_and_latest(media, store, settings, tmp_path):
    result = ingest(media["tagged.flac"], "t1", store, settings=settings)
    manifest = _assert_published(store, result, tmp_path)
    assert result.version == version_for(
        sha256_file(media["tagged.flac"]), get_profile("quality", settings.engine)
    )
    assert manifest.encoder.profile == get_profile("quality", settings.engine).id
    assert manifest.encoder.ffmpeg
    assert manifest.source.lossless and manifest.source.codec == "flac"
    assert manifest.source.sha256 == sha256_file(media["tagged.flac"])
    assert manifest.tags["title"] == "Blue Sine"
    sizes = [r.bytes for r in manifest.renditions]
    assert sizes == sorted(sizes)


def test_renditions_carry_tags_replaygain_and_cover(media, store, settings, tmp_path):
    result = ingest(
        media["tagged.flac"], "t1", store, tags={"title": "Override"}, settings=settings
    )
    loud = result.manifest.loudness
    assert loud.integrated_lufs is not None
    assert loud.track_gain_db == pytest.approx(-18 - loud.integrated_lufs, abs=0.01)
    for rendition in result.manifest.renditions:
        ogg = _stored_ogg(store, rendition.key, tmp_path)
        assert ogg["TITLE"] == ["Override"]
        assert ogg["ARTIST"] == ["The Oscillators"]
        assert ogg["REPLAYGAIN_TRACK_GAIN"] == [f"{loud.track_gain_db:+.2f} dB"]
        peak = float(ogg["REPLAYGAIN_TRACK_PEAK"][0])
        assert peak == pytest.approx(10 ** (loud.true_peak_dbtp / 20), rel=1e-3)
        pic = Picture(base64.b64decode(ogg["METADATA_BLOCK_PICTURE"][0]))
        assert pic.data == media["cover.png"].read_bytes() and pic.type == 3


@pytest.mark.parametrize(
    ("name", "rate", "channels", "container"),
    [
        ("music.wav", 44100, 2, "wav"),
        ("mono.flac", 44100, 1, "flac"),
        ("surround51.flac", 44100, 6, "flac"),
        ("rate8k.wav", 8000, 2, "wav"),
        ("rate48k.flac", 48000, 2, "flac"),
        ("rate96k.flac", 96000, 2, "flac"),
        ("aac.m4a", 44100, 2, "mp4"),
        ("video.mp4", 44100, 2, "mp4"),
        ("vorbis.ogg", 44100, 2, "ogg"),
    ],
)
def test_every_kind_of_good_source_becomes_44k1_stereo(
    media, store, settings, tmp_path, name, rate, channels, container
):
    result = ingest(media[name], "t1", store, settings=settings)
    bitrates = (96, 160) if name == "vorbis.ogg" else (96, 160, 320)  # a 128 kbps Vorbis source
    manifest = _assert_published(store, result, tmp_path, bitrates)
    source = manifest.source
    assert (source.sample_rate, source.channels, source.container) == (rate, channels, container)
    assert result.manifest.loudness.track_gain_db is not None


def test_a_128k_mp3_is_not_upscaled(media, store, settings, tmp_path):
    result = ingest(media["mp3_128.mp3"], "t1", store, settings=settings)
    manifest = _assert_published(store, result, tmp_path, bitrates=(96, 160))
    assert not store.exists(f"tracks/t1/{result.version}/320.ogg")
    assert manifest.source.bitrate_kbps == pytest.approx(128, abs=1)
    assert any("no upscaling" in w for w in result.warnings)


def test_two_audio_streams_encode_the_first_and_say_so(media, store, settings, tmp_path):
    result = ingest(media["two_streams.mka"], "t1", store, settings=settings)
    _assert_published(store, result, tmp_path)
    assert any("2 audio streams" in w for w in result.warnings)
    # the first stream is the music, not the second stream's 440 Hz tone at -3 dBFS peak
    assert result.manifest.loudness.integrated_lufs < -8


@pytest.mark.parametrize("name", ["silence.flac", "short.wav"])
def test_silence_and_tiny_clips_are_valid_but_get_no_gain(media, store, settings, tmp_path, name):
    result = ingest(media[name], "t1", store, settings=settings)
    _assert_published(store, result, tmp_path)
    assert result.manifest.loudness.track_gain_db is None
    for rendition in result.manifest.renditions:
        assert "REPLAYGAIN_TRACK_GAIN" not in _stored_ogg(store, rendition.key, tmp_path)


def test_abr_profile_hits_its_targets(media, store, settings, tmp_path):
    result = ingest(media["music.flac"], "t1", store, profile="abr", settings=settings)
    manifest = _assert_published(store, result, tmp_path)
    assert manifest.encoder.profile == get_profile("abr", settings.engine).id
    quality = version_for(sha256_file(media["music.flac"]), get_profile("quality", settings.engine))
    assert result.version != quality
    for rendition in manifest.renditions:
        # whole-file rate: the ~4 KB of Vorbis headers weigh on a 6 s clip, hence +15%
        assert 0.9 * rendition.bitrate_kbps <= rendition.avg_bitrate_kbps
        assert rendition.avg_bitrate_kbps <= 1.15 * rendition.bitrate_kbps


def test_reingest_is_a_no_op_that_does_not_transcode(media, store, settings, monkeypatch):
    first = ingest(media["music.flac"], "t1", store, settings=settings)

    def no_transcode(*args, **kwargs):
        raise AssertionError("a published version must not be transcoded again")

    monkeypatch.setattr(ingest_module, "transcode", no_transcode)
    monkeypatch.setattr(ingest_module, "probe", no_transcode)
    again = ingest(media["music.flac"], "t1", store, settings=settings)
    assert again.status == "already_published"
    assert again.version == first.version
    assert again.manifest == first.manifest
    assert again.summary()["renditions"] == first.summary()["renditions"]


def test_reingest_repairs_a_missing_latest(media, store, settings):
    first = ingest(media["music.flac"], "t1", store, settings=settings)
    store.delete(latest_key("t1"))  # e.g. killed between manifest and latest.json
    again = ingest(media["music.flac"], "t1", store, settings=settings)
    assert again.status == "already_published" and again.latest_updated
    assert Latest.from_json(store.get_bytes(latest_key("t1"))).version == first.version


def test_a_new_master_is_a_new_version_and_the_old_one_stays(media, store, settings, tmp_path):
    old = ingest(media["music.flac"], "t1", store, settings=settings)
    new = ingest(media["other_master.flac"], "t1", store, settings=settings, replace=True)
    assert new.version != old.version
    _assert_published(store, new, tmp_path)
    assert store.exists(manifest_key("t1", old.version))
    assert store.exists(f"tracks/t1/{old.version}/96.ogg")


def test_another_source_never_takes_over_a_track_without_replace(media, store, settings):
    old = ingest(media["short.wav"], "t1", store, settings=settings)
    before = store.list()
    with pytest.raises(ConflictError) as caught:
        ingest(media["mono.flac"], "t1", store, settings=settings)
    message = str(caught.value)
    assert "'t1'" in message and old.version in message and "mono.flac" in message
    assert "--replace" in message and "\n" not in message
    assert store.list() == before  # nothing uploaded, latest.json untouched
    assert Latest.from_json(store.get_bytes(latest_key("t1"))).version == old.version

    # the same master under another profile is the same track: no --replace needed
    abr = ingest(media["short.wav"], "t1", store, settings=settings, profile="abr")
    assert abr.status == "published" and abr.version != old.version

    new = ingest(media["mono.flac"], "t1", store, settings=settings, replace=True)
    assert Latest.from_json(store.get_bytes(latest_key("t1"))).version == new.version
    # going back to a published version of another source is a replacement too
    with pytest.raises(ConflictError):
        ingest(media["short.wav"], "t1", store, settings=settings)
    assert Latest.from_json(store.get_bytes(latest_key("t1"))).version == new.version
    back = ingest(media["short.wav"], "t1", store, settings=settings, replace=True)
    assert back.status == "already_published" and back.version == old.version
    assert Latest.from_json(store.get_bytes(latest_key("t1"))).version == old.version


def test_force_repairs_a_damaged_version_with_the_same_bytes(media, store, settings, ffmpeg_exe):
    from encoder.verify import verify_track

    first = ingest(media["mono.flac"], "t1", store, settings=settings)
    manifest_bytes = store.get_bytes(manifest_key("t1", first.version))
    store.delete(first.manifest.renditions[1].key)
    assert not verify_track(store, "t1", ffmpeg_exe).ok

    forced = ingest(media["mono.flac"], "t1", store, force=True, settings=settings)
    assert forced.status == "published" and forced.version == first.version
    assert store.get_bytes(manifest_key("t1", first.version)) == manifest_bytes  # untouched
    assert verify_track(store, "t1", ffmpeg_exe).ok


def test_force_refuses_to_replace_published_bytes(media, store, settings, monkeypatch):
    first = ingest(media["mono.flac"], "t1", store, settings=settings)
    before = {k: store.get_bytes(k) for k in store.list()}
    real_write_tags = ingest_module.write_tags

    def other_bytes(path, *args, **kwargs):  # e.g. another ffmpeg build's encoder output
        real_write_tags(path, *args, extra={"COMMENT": "rebuilt elsewhere"})

    monkeypatch.setattr(ingest_module, "write_tags", other_bytes)
    with pytest.raises(VerificationError, match="objects under a version never change"):
        ingest(media["mono.flac"], "t1", store, force=True, settings=settings)
    assert {k: store.get_bytes(k) for k in store.list()} == before
    assert first.status == "published"


def test_force_refuses_to_change_the_tags_of_a_published_version(media, store, settings):
    ingest(media["mono.flac"], "t1", store, settings=settings)
    with pytest.raises(UsageError, match="never change"):
        ingest(
            media["mono.flac"], "t1", store, tags={"title": "New"}, force=True, settings=settings
        )


def test_other_tags_on_reingest_are_reported_not_applied(media, store, settings):
    first = ingest(media["mono.flac"], "t1", store, tags={"title": "A"}, settings=settings)
    again = ingest(media["mono.flac"], "t1", store, tags={"title": "B"}, settings=settings)
    assert again.status == "already_published"
    assert again.manifest.tags == first.manifest.tags == {"title": "A"}
    assert any("other tags" in w for w in again.warnings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"track_id": "../etc"}, "invalid track id"),
        ({"track_id": "t1", "profile": "mp3"}, "unknown profile"),
        ({"track_id": "t1", "tags": {"colour": "red"}}, "unknown tag"),
    ],
)
def test_usage_errors(media, store, settings, kwargs, message):
    with pytest.raises(UsageError, match=message):
        ingest(media["music.flac"], store=store, settings=settings, **kwargs)
    assert store.list() == []


def test_store_given_as_url(media, tmp_path, settings):
    url = (tmp_path / "by-url").as_uri()
    result = ingest(media["mono.flac"], "t1", url, settings=settings)
    assert (tmp_path / "by-url" / manifest_key("t1", result.version)).is_file()


def test_the_work_directory_is_removed(media, store, settings, work_dir):
    ingest(media["mono.flac"], "t1", store, settings=settings)
    assert list(work_dir.iterdir()) == []
