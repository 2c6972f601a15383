"""Tags and cover art: read them from any source mutagen knows, write them to Ogg Vorbis.

Reading normalises the four tag systems we meet (Vorbis comments in FLAC/Ogg,
ID3 in MP3/WAV/AIFF, MP4 atoms, and ffmpeg's view for everything else) to one
small vocabulary of lowercase Vorbis-comment names (:data:`TAG_NAMES`).

Writing happens after ffmpeg, with mutagen, because two things can only be
known or done then: the ReplayGain values come from the loudness measured in
the same pass, and ffmpeg's Ogg muxer refuses attached pictures, so cover art
goes in as a base64 ``METADATA_BLOCK_PICTURE`` comment (the Xiph convention).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from encoder.errors import VerificationError

# The tags carried from a source (or the CLI) into the renditions and the manifest.
TAG_NAMES: tuple[str, ...] = (
    "title",
    "artist",
    "album",
    "albumartist",
    "date",
    "genre",
    "tracknumber",
    "discnumber",
    "composer",
    "isrc",
    "copyright",
    "label",
)

_VORBIS_ALIASES = {
    "album artist": "albumartist",
    "album_artist": "albumartist",
    "year": "date",
    "organization": "label",
    "publisher": "label",
    "track": "tracknumber",
    "disc": "discnumber",
}
_ID3_FRAMES = {
    "TIT2": "title",
    "TPE1": "artist",
    "TALB": "album",
    "TPE2": "albumartist",
    "TDRC": "date",
    "TYER": "date",
    "TCON": "genre",
    "TRCK": "tracknumber",
    "TPOS": "discnumber",
    "TCOM": "composer",
    "TSRC": "isrc",
    "TCOP": "copyright",
    "TPUB": "label",
}
_MP4_ATOMS = {
    "\xa9nam": "title",
    "\xa9ART": "artist",
    "\xa9alb": "album",
    "aART": "albumartist",
    "\xa9day": "date",
    "\xa9gen": "genre",
    "\xa9wrt": "composer",
    "cprt": "copyright",
    "trkn": "tracknumber",
    "disk": "discnumber",
}
FRONT_COVER = 3
MAX_TAG_CHARS = 1000


@dataclass(frozen=True)
class Cover:
    """One picture, as the FLAC/Vorbis picture block describes it."""

    data: bytes
    mime: str
    type: int = FRONT_COVER
    description: str = ""
    width: int = 0
    height: int = 0
    depth: int = 0

    def to_vorbis_comment(self) -> str:
        from mutagen.flac import Picture

        pic = Picture()
        pic.type = self.type
        pic.mime = self.mime
        pic.desc = self.description
        pic.width, pic.height, pic.depth = self.width, self.height, self.depth
        pic.data = self.data
        return base64.b64encode(pic.write()).decode("ascii")


@dataclass(frozen=True)
class ReplayGain:
    """ReplayGain 2.0 track values (reference -18 LUFS)."""

    track_gain_db: float
    track_peak: float  # linear amplitude, 1.0 = full scale

    def comments(self) -> dict[str, str]:
        return {
            "REPLAYGAIN_TRACK_GAIN": f"{self.track_gain_db:+.2f} dB",
            "REPLAYGAIN_TRACK_PEAK": f"{self.track_peak:.6f}",
        }


def clean_tags(tags: Mapping[str, object]) -> dict[str, str]:
    """Known names only, values as trimmed single-line strings, empties dropped."""
    out: dict[str, str] = {}
    for name in TAG_NAMES:
        value = tags.get(name)
        if value is None:
            continue
        text = " ".join(str(value).split())[:MAX_TAG_CHARS]
        if text:
            out[name] = text
    return out


def _first_text(value: object) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, tuple):  # MP4 trkn/disk: (number, total)
        value = value[0]
    text = getattr(value, "text", None)  # ID3 frames
    if text is not None:
        return _first_text(text)
    return str(value)


def _number_pair(value: object) -> str | None:
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        number, total = (tuple(value[0]) + (0, 0))[:2]
        if not number:
            return None
        return f"{number}/{total}" if total else str(number)
    return _first_text(value)


def tags_from_mutagen(mfile: object) -> dict[str, str]:
    """Normalised tags of a file opened with ``mutagen.File`` (never the easy variant)."""
    raw = getattr(mfile, "tags", None)
    if raw is None:
        return {}
    found: dict[str, object] = {}
    kind = type(raw).__name__
    if hasattr(raw, "getall"):  # ID3, also inside WAV and AIFF
        for frame_id, name in _ID3_FRAMES.items():
            frames = raw.getall(frame_id)
            if frames and name not in found:
                found[name] = _first_text(frames[0])
    elif kind == "MP4Tags":
        for atom, name in _MP4_ATOMS.items():
            if atom in raw:
                found[name] = (
                    _number_pair(raw[atom]) if atom in ("trkn", "disk") else _first_text(raw[atom])
                )
    else:  # Vorbis comments and other key -> [values] mappings
        try:
            items = list(raw.items())
        except (AttributeError, TypeError):
            return {}
        for key, value in items:
            name = str(key).lower()
            name = _VORBIS_ALIASES.get(name, name)
            if name in TAG_NAMES and name not in found:
                found[name] = _first_text(value)
    return clean_tags(found)


def tags_from_ffmpeg(metadata: Mapping[str, str]) -> dict[str, str]:
    """Normalised tags from ffmpeg's input metadata (for containers mutagen cannot read)."""
    found: dict[str, object] = {}
    for key, value in metadata.items():
        name = key.lower()
        name = _VORBIS_ALIASES.get(name, name)
        if name in TAG_NAMES and name not in found:
            found[name] = value
    return clean_tags(found)


def _sniff_mime(data: bytes, declared: str | None) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if declared and "/" in declared:
        return declared
    return "image/jpeg" if (declared or "").lower() in ("jpg", "jpeg") else "image/png"


def _cover_from_picture(pic) -> Cover:
    """A FLAC picture block (native, or base64 inside Vorbis comments) as a Cover."""
    return Cover(
        pic.data, _sniff_mime(pic.data, pic.mime), pic.type, pic.desc, pic.width, pic.height,
        pic.depth,
    )  # fmt: skip


def cover_from_mutagen(mfile: object) -> Cover | None:
    """The front cover (else the first picture) embedded in a source, if any."""
    covers: list[Cover] = []
    for pic in getattr(mfile, "pictures", None) or []:  # FLAC picture blocks
        covers.append(_cover_from_picture(pic))
    raw = getattr(mfile, "tags", None)
    if raw is not None:
        if hasattr(raw, "getall"):  # ID3
            for apic in raw.getall("APIC"):
                covers.append(Cover(apic.data, _sniff_mime(apic.data, apic.mime), int(apic.type)))
        elif type(raw).__name__ == "MP4Tags":
            for art in raw.get("covr", []):
                covers.append(Cover(bytes(art), _sniff_mime(bytes(art), None)))
        else:
            covers.extend(_covers_from_vorbis(raw))
    if not covers:
        return None
    return next((c for c in covers if c.type == FRONT_COVER), covers[0])


def _covers_from_vorbis(raw: object) -> list[Cover]:
    from mutagen.flac import Picture

    covers = []
    try:
        blocks = raw.get("metadata_block_picture", [])  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        return []
    for block in blocks:
        try:
            pic = Picture(base64.b64decode(block))
        except Exception:  # noqa: BLE001 - a damaged picture is skipped, not fatal
            continue
        covers.append(_cover_from_picture(pic))
    return covers


def write_tags(
    path: str | Path,
    tags: Mapping[str, str],
    replaygain: ReplayGain | None,
    cover: Cover | None,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Replace the Vorbis comments of the Ogg Vorbis file at ``path``."""
    from mutagen import MutagenError
    from mutagen.oggvorbis import OggVorbis

    try:
        ogg = OggVorbis(path)
        if ogg.tags is None:
            ogg.add_tags()
        ogg.tags.clear()  # drop ffmpeg's own comments: ours are the whole set
        comments: dict[str, str | list[str]] = {k.upper(): v for k, v in clean_tags(tags).items()}
        if replaygain is not None:
            comments.update(replaygain.comments())
        if cover is not None:
            comments["METADATA_BLOCK_PICTURE"] = [cover.to_vorbis_comment()]
        comments.update(extra or {})
        for key, value in comments.items():
            ogg[key] = value if isinstance(value, list) else [value]
        ogg.save()
    except MutagenError as exc:
        raise VerificationError(f"cannot tag {Path(path).name}: {exc}") from exc
