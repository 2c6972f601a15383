"""Cover art at ingest: the source's picture as an object of its own, plus a thumbnail.

The picture is the one :mod:`encoder.probe` read from the source (mutagen returns the
embedded bytes exactly, whatever the tag system: FLAC picture blocks, ID3 ``APIC``, MP4
``covr``, Vorbis ``METADATA_BLOCK_PICTURE``), the same one the renditions carry. It is
kept as it was embedded, JPEG or PNG (``cover.jpg`` / ``cover.png``), and ffmpeg, which
must decode it (a picture it cannot read is left out with a warning, never published),
makes a JPEG thumbnail fitting 300x300 (``cover-300.jpg``; never enlarged). Both are
byte-identical for identical input with the same ffmpeg build: the original is copied,
the thumbnail is encoded with ffmpeg's ``bitexact`` flags and no metadata.

No picture, no objects: there are no placeholders in the store, and the manifest's
``art`` is ``null``. Bounds: the picture's bytes (``ENCODER_MAX_COVER_BYTES``, checked
by the pipeline) and its dimensions (:data:`MAX_SIDE_PX`, read from the header before
anything decodes it, so a small file cannot claim a gigapixel canvas).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from encoder.errors import TranscodeError
from encoder.tagging import Cover
from encoder.transcode import ffmpeg_input
from origin.keys import ART_CONTENT_TYPES, THUMBNAIL_NAME, cover_key, thumbnail_key
from origin.manifest import Art, ArtImage
from origin.store import sha256_file

THUMBNAIL_PX = 300
MAX_SIDE_PX = 10_000
JPEG_QUALITY = 3  # ffmpeg's mjpeg -q:v scale, 2 (best) to 31
FFMPEG_TIMEOUT_S = 60.0

_DIMENSIONS_RE = re.compile(r"^\s+Stream #0:0\S*: Video: .*?, (\d{1,6})x(\d{1,6})\b", re.M)


@dataclass(frozen=True)
class CoverArt:
    """The manifest's ``art`` and the files (object key -> path) to publish under it."""

    art: Art
    files: dict[str, Path]


def image_type(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` from the bytes' signature (the declared MIME type
    of a tag is often wrong), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def image_dimensions(ffmpeg_report: str) -> tuple[int, int] | None:
    """``(width, height)`` of the first stream in ``ffmpeg -i``'s report on an image."""
    m = _DIMENSIONS_RE.search(ffmpeg_report)
    return (int(m[1]), int(m[2])) if m else None


def thumbnail_size(width: int, height: int, box: int = THUMBNAIL_PX) -> tuple[int, int]:
    """The size that fits ``box`` x ``box`` keeping the aspect ratio, never enlarged."""
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _ffmpeg(ffmpeg: str, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", *args],
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise TranscodeError(f"cannot run ffmpeg {ffmpeg!r}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise TranscodeError(f"ffmpeg took over {FFMPEG_TIMEOUT_S:.0f}s on the cover") from exc


def _image(key: str, path: Path, content_type: str, size: tuple[int, int]) -> ArtImage:
    return ArtImage(
        key=key,
        bytes=path.stat().st_size,
        sha256=sha256_file(path),
        content_type=content_type,
        width=size[0],
        height=size[1],
    )


def extract_cover_art(
    ffmpeg: str,
    cover: Cover | None,
    track_id: str,
    version: str,
    workdir: Path,
    warnings: list[str],
) -> CoverArt | None:
    """The version's cover art from ``cover`` (None: no art), written under ``workdir``.

    A picture that is not JPEG or PNG, that ffmpeg cannot decode or that is larger than
    :data:`MAX_SIDE_PX` is left out with a line in ``warnings``: the track still publishes.
    """
    if cover is None:
        return None
    content_type = image_type(cover.data)
    if content_type is None:
        warnings.append("cover art is neither JPEG nor PNG; no cover image published")
        return None
    original_key = cover_key(track_id, version, content_type)
    original = workdir / original_key.rpartition("/")[2]
    original.write_bytes(cover.data)
    report = _ffmpeg(ffmpeg, ["-i", ffmpeg_input(original)]).stderr.decode("utf-8", "replace")
    size = image_dimensions(report)
    if size is None or min(size) < 1:
        warnings.append("ffmpeg cannot read the cover art; no cover image published")
        return None
    if max(size) > MAX_SIDE_PX:
        warnings.append(
            f"cover art of {size[0]}x{size[1]} px exceeds {MAX_SIDE_PX} px a side; "
            "no cover image published"
        )
        return None
    thumb_size = thumbnail_size(*size)
    thumbnail = workdir / THUMBNAIL_NAME
    done = _ffmpeg(
        ffmpeg,
        ["-v", "error", "-y", "-i", ffmpeg_input(original)]
        + ["-vf", f"scale={thumb_size[0]}:{thumb_size[1]}:flags=lanczos,setsar=1,format=yuvj420p"]
        + ["-frames:v", "1", "-c:v", "mjpeg", "-q:v", str(JPEG_QUALITY)]
        # bitexact and no metadata: the same picture always makes the same bytes
        + ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]
        + ["-f", "image2", str(thumbnail)],
    )
    if done.returncode != 0 or not thumbnail.is_file() or thumbnail.stat().st_size == 0:
        problem = done.stderr.decode("utf-8", "replace").strip().splitlines()
        warnings.append(
            "ffmpeg cannot decode the cover art"
            + (f" ({problem[-1][:200]})" if problem else "")
            + "; no cover image published"
        )
        return None
    art = Art(
        original=_image(original_key, original, content_type, size),
        thumbnail=_image(
            thumbnail_key(track_id, version),
            thumbnail,
            ART_CONTENT_TYPES[THUMBNAIL_NAME],
            thumb_size,
        ),
    )
    return CoverArt(art, {original_key: original, art.thumbnail.key: thumbnail})
