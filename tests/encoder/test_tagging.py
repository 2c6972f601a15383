import base64
import shutil

import mutagen
from mutagen.flac import Picture
from mutagen.oggvorbis import OggVorbis

from encoder.tagging import (
    Cover,
    ReplayGain,
    clean_tags,
    cover_from_mutagen,
    tags_from_ffmpeg,
    tags_from_mutagen,
    write_tags,
)


def test_clean_tags_keeps_known_names_and_single_lines():
    assert clean_tags({"title": "  A\nB ", "artist": "", "bogus": "x", "date": 2024}) == {
        "title": "A B",
        "date": "2024",
    }


def test_tags_from_ffmpeg_maps_aliases():
    assert tags_from_ffmpeg({"title": "T", "album_artist": "AA", "track": "3", "encoder": "x"}) == {
        "title": "T",
        "albumartist": "AA",
        "tracknumber": "3",
    }


def test_tags_from_id3_and_mp4(media, tmp_path):
    mp3 = mutagen.File(media["mp3_128.mp3"])
    assert tags_from_mutagen(mp3)["artist"] == "The Oscillators"

    from mutagen.mp4 import MP4, MP4Cover

    m4a = tmp_path / "t.m4a"
    shutil.copy(media["aac.m4a"], m4a)
    f = MP4(m4a)
    f["\xa9nam"] = ["MP4 Title"]
    f["trkn"] = [(3, 12)]
    f["covr"] = [MP4Cover(media["cover.png"].read_bytes(), imageformat=MP4Cover.FORMAT_PNG)]
    f.save()
    reread = mutagen.File(m4a)
    assert tags_from_mutagen(reread) == {"title": "MP4 Title", "tracknumber": "3/12"}
    assert cover_from_mutagen(reread).mime == "image/png"


def test_tagless_file_is_falsy_but_not_none(media):
    f = mutagen.File(media["music.flac"])
    assert f is not None  # mutagen.File() is falsy without tags: the code tests `is None`
    assert tags_from_mutagen(f) == {}


def test_write_tags_replaces_comments_and_adds_replaygain_and_picture(tmp_path, media):
    ogg = tmp_path / "x.ogg"
    shutil.copy(media["vorbis.ogg"], ogg)
    cover = Cover(media["cover.png"].read_bytes(), "image/png", width=32, height=32, depth=24)
    write_tags(ogg, {"title": "T", "artist": "A"}, ReplayGain(-3.25, 0.891251), cover)

    f = OggVorbis(ogg)
    assert f["TITLE"] == ["T"] and f["ARTIST"] == ["A"]
    assert "encoder" not in {k.lower() for k in f.keys()}  # ffmpeg's own comment is gone
    assert f["REPLAYGAIN_TRACK_GAIN"] == ["-3.25 dB"]
    assert f["REPLAYGAIN_TRACK_PEAK"] == ["0.891251"]
    pic = Picture(base64.b64decode(f["METADATA_BLOCK_PICTURE"][0]))
    assert (pic.type, pic.mime, pic.width) == (3, "image/png", 32)
    assert pic.data == media["cover.png"].read_bytes()
    assert f.info.length > 5  # the audio survived the rewrite
