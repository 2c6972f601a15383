"""Cover art at ingest (encoder.cover_art): extracted, thumbnailed, listed, verified."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mutagen.flac import FLAC, Picture

from encoder import ingest
from encoder.cover_art import (
    MAX_SIDE_PX,
    extract_cover_art,
    image_dimensions,
    image_type,
    thumbnail_size,
)
from encoder.tagging import Cover
from encoder.verify import verify_track
from origin.errors import ManifestError
from origin.keys import manifest_key
from origin.local import LocalStore
from origin.manifest import Manifest
from origin.store import sha256_file


def _ffmpeg(ffmpeg: str, *args: str) -> None:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


def decoded_size(ffmpeg: str, data: bytes, tmp_path: Path) -> tuple[int, int]:
    """Width and height of ``data`` as ffmpeg DECODES it (raw frame bytes, not the header)."""
    src = tmp_path / "decode-me"
    src.write_bytes(data)
    probe = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", f"file:{src}"], capture_output=True, timeout=60
    )
    width, height = image_dimensions(probe.stderr.decode())
    raw = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-i", f"file:{src}", "-f", "rawvideo"]
        + ["-pix_fmt", "gray", "-frames:v", "1", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert len(raw) == width * height  # one byte per pixel: the decoded frame has that size
    return width, height


@pytest.fixture(scope="module")
def jpeg_cover(tmp_path_factory, ffmpeg_exe) -> Path:
    path = tmp_path_factory.mktemp("art") / "cover.jpg"
    _ffmpeg(ffmpeg_exe, "-f", "lavfi", "-i", "testsrc=s=640x480", "-frames:v", "1", str(path))
    return path


@pytest.fixture(scope="module")
def jpeg_flac(tmp_path_factory, media, jpeg_cover) -> Path:
    """A FLAC whose front cover is a 640x480 JPEG."""
    path = tmp_path_factory.mktemp("art") / "with-jpeg.flac"
    path.write_bytes(media["music.flac"].read_bytes())
    flac = FLAC(path)
    flac["title"] = "Covered"
    pic = Picture()
    pic.type, pic.mime, pic.width, pic.height, pic.depth = 3, "image/jpeg", 640, 480, 24
    pic.data = jpeg_cover.read_bytes()
    flac.add_picture(pic)
    flac.save()
    return path


# -- pure parts --------------------------------------------------------------------------


def test_thumbnail_size_fits_300_keeps_aspect_and_never_enlarges():
    assert thumbnail_size(640, 480) == (300, 225)
    assert thumbnail_size(480, 640) == (225, 300)
    assert thumbnail_size(3000, 3000) == (300, 300)
    assert thumbnail_size(32, 32) == (32, 32)
    assert thumbnail_size(10_000, 1) == (300, 1)


def test_image_type_reads_the_signature_not_the_declared_type():
    assert image_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert image_type(b"\xff\xd8\xff\xe0....") == "image/jpeg"
    assert image_type(b"GIF89a....") is None
    assert image_type(b"") is None


def test_image_dimensions_from_an_ffmpeg_report():
    report = (
        "Input #0, png_pipe, from 'file:/x/cover.png':\n"
        "  Duration: N/A, bitrate: N/A\n"
        "  Stream #0:0: Video: png, rgb24(pc, gbr/unknown/unknown), 641x479 [SAR 1:1 DAR "
        "641:479], 25 fps, 25 tbr, 25 tbn\n"
    )
    assert image_dimensions(report) == (641, 479)
    assert image_dimensions("Input #0, wav, from 'x':\n  Stream #0:0: Audio: pcm_s16le\n") is None


# -- real ffmpeg runs --------------------------------------------------------------------


@pytest.mark.slow
def test_ingest_extracts_the_jpeg_cover_and_a_300px_thumbnail(
    jpeg_flac, jpeg_cover, store, settings, ffmpeg_exe, tmp_path
):
    result = ingest(jpeg_flac, "art-jpeg", store, settings=settings)
    art = result.manifest.art
    assert art is not None
    version = result.version
    assert art.original.key == f"tracks/art-jpeg/{version}/cover.jpg"
    assert art.thumbnail.key == f"tracks/art-jpeg/{version}/cover-300.jpg"
    # The original is the embedded picture, byte for byte.
    original = store.get_bytes(art.original.key)
    assert original == jpeg_cover.read_bytes()
    assert (art.original.bytes, art.original.sha256) == (len(original), sha256_file(jpeg_cover))
    assert (art.original.content_type, art.original.width, art.original.height) == (
        "image/jpeg",
        640,
        480,
    )
    thumb = store.get_bytes(art.thumbnail.key)
    assert image_type(thumb) == "image/jpeg" and len(thumb) == art.thumbnail.bytes
    assert decoded_size(ffmpeg_exe, thumb, tmp_path) == (300, 225)
    assert (art.thumbnail.width, art.thumbnail.height) == (300, 225)
    assert store.stat(art.original.key).content_type == "image/jpeg"
    assert store.stat(art.thumbnail.key).content_type == "image/jpeg"
    # Listed in the stored manifest, which reads back the same.
    stored = Manifest.from_json(store.get_bytes(manifest_key("art-jpeg", version)))
    assert stored.art == art
    assert verify_track(store, "art-jpeg", ffmpeg_exe, decode=False).ok


@pytest.mark.slow
def test_the_same_source_makes_byte_identical_art(jpeg_flac, settings, tmp_path):
    a = ingest(jpeg_flac, "same-art", LocalStore(tmp_path / "a"), settings=settings)
    b = ingest(jpeg_flac, "same-art", LocalStore(tmp_path / "b"), settings=settings)
    assert a.manifest.art == b.manifest.art
    assert (tmp_path / "a" / a.manifest.art.thumbnail.key).read_bytes() == (
        tmp_path / "b" / b.manifest.art.thumbnail.key
    ).read_bytes()


@pytest.mark.slow
def test_a_small_png_cover_stays_png_and_is_not_enlarged(
    media, store, settings, ffmpeg_exe, tmp_path
):
    result = ingest(media["tagged.flac"], "art-png", store, settings=settings)
    art = result.manifest.art
    assert art.original.key.endswith("/cover.png") and art.original.content_type == "image/png"
    assert store.get_bytes(art.original.key) == media["cover.png"].read_bytes()
    assert decoded_size(ffmpeg_exe, store.get_bytes(art.original.key), tmp_path) == (32, 32)
    assert decoded_size(ffmpeg_exe, store.get_bytes(art.thumbnail.key), tmp_path) == (32, 32)


@pytest.mark.slow
def test_no_cover_no_images_and_art_null(media, store, settings):
    result = ingest(media["music.flac"], "no-art", store, settings=settings)
    assert result.manifest.art is None
    names = {key.rpartition("/")[2] for key in store.list("tracks/no-art/")}
    assert names == {"96.ogg", "160.ogg", "320.ogg", "manifest.json", "latest.json"}
    doc = json.loads(store.get_bytes(manifest_key("no-art", result.version)))
    assert doc["art"] is None


@pytest.mark.slow
def test_an_undecodable_cover_is_left_out_with_a_warning(ffmpeg_exe, tmp_path):
    warnings: list[str] = []
    broken = Cover(b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image/jpeg")
    version = "0123456789abcdef"
    assert extract_cover_art(ffmpeg_exe, broken, "t", version, tmp_path, warnings) is None
    assert warnings and "cover" in warnings[0]
    gif = Cover(b"GIF89a" + b"\x00" * 50, "image/gif")
    assert extract_cover_art(ffmpeg_exe, gif, "t", version, tmp_path, warnings) is None
    assert "neither JPEG nor PNG" in warnings[-1]


@pytest.mark.slow
def test_a_cover_claiming_a_huge_canvas_is_refused_before_decoding(ffmpeg_exe, tmp_path):
    big = tmp_path / "big.png"
    canvas = f"color=c=red:s={MAX_SIDE_PX + 1}x2"
    _ffmpeg(ffmpeg_exe, "-f", "lavfi", "-i", canvas, "-frames:v", "1", str(big))
    warnings: list[str] = []
    cover = Cover(big.read_bytes(), "image/png")
    assert extract_cover_art(ffmpeg_exe, cover, "t", "0123456789abcdef", tmp_path, warnings) is None
    assert "exceeds" in warnings[0]


@pytest.mark.slow
def test_verify_reports_missing_and_altered_art(jpeg_flac, store, settings, ffmpeg_exe):
    result = ingest(jpeg_flac, "art-verify", store, settings=settings)
    art = result.manifest.art
    store.put_bytes(art.thumbnail.key, b"not the thumbnail", "image/jpeg")
    store.delete(art.original.key)
    report = verify_track(store, "art-verify", ffmpeg_exe, decode=False)
    assert not report.ok
    assert any(p.startswith("cover.jpg: missing") for p in report.problems)
    assert any(p.startswith("cover-300.jpg:") for p in report.problems)


# -- the manifest ------------------------------------------------------------------------


def _manifest_doc(art) -> dict:
    version = "0123456789abcdef"
    return {
        "schema": 1,
        "track_id": "m1",
        "version": version,
        "created_at": "2026-01-01T00:00:00Z",
        "source": {"sha256": "0" * 64, "bytes": 1},
        "renditions": [
            {
                "bitrate_kbps": 96,
                "key": f"tracks/m1/{version}/96.ogg",
                "bytes": 1,
                "sha256": "0" * 64,
            }
        ],
        "encoder": {"profile": "p"},
        **({"art": art} if art is not ... else {}),
    }


def _image(name: str, ctype: str = "image/jpeg") -> dict:
    return {
        "key": f"tracks/m1/0123456789abcdef/{name}",
        "bytes": 10,
        "sha256": "1" * 64,
        "content_type": ctype,
        "width": 300,
        "height": 300,
    }


def test_manifest_art_round_trips_and_old_manifests_have_none():
    art = {"original": _image("cover.png", "image/png"), "thumbnail": _image("cover-300.jpg")}
    manifest = Manifest.from_json(json.dumps(_manifest_doc(art)))
    assert manifest.art.original.content_type == "image/png"
    assert Manifest.from_json(manifest.to_json()) == manifest
    old = Manifest.from_json(json.dumps(_manifest_doc(...)))
    assert old.art is None


@pytest.mark.parametrize(
    "art",
    [
        # a key of another version
        {
            "original": {**_image("cover.jpg"), "key": "tracks/m1/ffffffffffffffff/cover.jpg"},
            "thumbnail": _image("cover-300.jpg"),
        },
        # the original's name disagrees with its type
        {"original": _image("cover.png"), "thumbnail": _image("cover-300.jpg")},
        # a PNG thumbnail
        {"original": _image("cover.jpg"), "thumbnail": _image("cover-300.jpg", "image/png")},
        # not an image type at all
        {"original": _image("cover.jpg", "text/html"), "thumbnail": _image("cover-300.jpg")},
        # a path outside the layout
        {"original": {**_image("cover.jpg"), "key": "../cover.jpg"}, "thumbnail": _image("x")},
    ],
)
def test_manifest_art_keys_are_checked_in_full(art):
    with pytest.raises(ManifestError):
        Manifest.from_json(json.dumps(_manifest_doc(art)))
