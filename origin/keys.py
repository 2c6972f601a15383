"""Object key layout shared by every store (docs/architecture.md, "Object keys").

::

    tracks/{track_id}/{version}/{bitrate}.ogg
    tracks/{track_id}/{version}/cover.jpg | cover.png    the cover art as embedded (optional)
    tracks/{track_id}/{version}/cover-300.jpg           its thumbnail (with the cover)
    tracks/{track_id}/{version}/manifest.json
    tracks/{track_id}/latest.json

Validation here is also the path-traversal guard: a key that parses against
this layout cannot contain ``..``, an absolute path, a backslash, NUL or any
control character, because every segment is matched against a strict pattern.
Every backend and the origin server call :func:`validate_key` before any I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from origin.errors import InvalidKey

TRACK_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
VERSION_PATTERN = r"[0-9a-f]{16}"
BITRATES: tuple[int, ...] = (96, 160, 320)
ROOT = "tracks"
# Cover art (encoder.cover_art): the original keeps its format, the thumbnail is a JPEG.
ART_CONTENT_TYPES: dict[str, str] = {
    "cover.jpg": "image/jpeg",
    "cover.png": "image/png",
    "cover-300.jpg": "image/jpeg",
}
THUMBNAIL_NAME = "cover-300.jpg"

# Matched with fullmatch only: "$" would also accept a trailing newline.
_TRACK_ID_RE = re.compile(TRACK_ID_PATTERN)
_VERSION_RE = re.compile(VERSION_PATTERN)
_KEY_RE = re.compile(
    rf"{ROOT}/(?P<track_id>{TRACK_ID_PATTERN})/"
    rf"(?:(?P<latest>latest\.json)"
    rf"|(?P<version>{VERSION_PATTERN})/(?:(?P<manifest>manifest\.json)|(?P<bitrate>[0-9]{{2,3}})\.ogg"
    rf"|(?P<art>cover\.jpg|cover\.png|cover-300\.jpg)))"
)
_PREFIX_RE = re.compile(
    rf"(?:{ROOT}/(?:(?P<track_id>{TRACK_ID_PATTERN})/(?:(?P<version>{VERSION_PATTERN})/)?)?)?"
)

KeyKind = Literal["rendition", "manifest", "latest", "art"]


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """A parsed, valid object key."""

    kind: KeyKind
    track_id: str
    version: str | None = None
    bitrate: int | None = None
    art: str | None = None  # the file name of an art key (a key of ART_CONTENT_TYPES)

    def __str__(self) -> str:
        if self.kind == "latest":
            return latest_key(self.track_id)
        if self.kind == "manifest":
            return manifest_key(self.track_id, self.version or "")
        if self.kind == "art":
            return art_key(self.track_id, self.version or "", self.art or "")
        return rendition_key(self.track_id, self.version or "", self.bitrate or 0)


def _describe(value: str) -> str:
    # repr() escapes control characters, so an error message never carries raw NULs or newlines.
    return repr(value[:200])


def is_track_id(value: str) -> bool:
    """Whether ``value`` is a well-formed track id (the whole of it)."""
    return isinstance(value, str) and _TRACK_ID_RE.fullmatch(value) is not None


def validate_track_id(track_id: str) -> str:
    if not is_track_id(track_id):
        raise InvalidKey(
            f"invalid track id {_describe(str(track_id))}: use 1-64 characters "
            "A-Z a-z 0-9 _ -, starting with a letter or digit"
        )
    return track_id


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise InvalidKey(
            f"invalid version {_describe(str(version))}: expected 16 lowercase hex characters"
        )
    return version


def validate_bitrate(bitrate: int) -> int:
    if bitrate not in BITRATES:
        raise InvalidKey(f"invalid bitrate {bitrate!r}: expected one of {BITRATES}")
    return bitrate


def rendition_key(track_id: str, version: str, bitrate: int) -> str:
    validate_track_id(track_id)
    validate_version(version)
    validate_bitrate(bitrate)
    return f"{ROOT}/{track_id}/{version}/{bitrate}.ogg"


def manifest_key(track_id: str, version: str) -> str:
    validate_track_id(track_id)
    validate_version(version)
    return f"{ROOT}/{track_id}/{version}/manifest.json"


def art_key(track_id: str, version: str, name: str) -> str:
    """``tracks/{id}/{version}/{name}``, ``name`` one of :data:`ART_CONTENT_TYPES`."""
    validate_track_id(track_id)
    validate_version(version)
    if name not in ART_CONTENT_TYPES:
        raise InvalidKey(
            f"invalid art name {_describe(str(name))}: expected one of "
            f"{', '.join(ART_CONTENT_TYPES)}"
        )
    return f"{ROOT}/{track_id}/{version}/{name}"


def cover_key(track_id: str, version: str, content_type: str) -> str:
    """The key of the original cover art: ``cover.jpg`` or ``cover.png`` by its format."""
    names = {ctype: name for name, ctype in ART_CONTENT_TYPES.items() if name != THUMBNAIL_NAME}
    if content_type not in names:
        raise InvalidKey(f"cover art must be image/jpeg or image/png, not {content_type!r}")
    return art_key(track_id, version, names[content_type])


def thumbnail_key(track_id: str, version: str) -> str:
    return art_key(track_id, version, THUMBNAIL_NAME)


def latest_key(track_id: str) -> str:
    validate_track_id(track_id)
    return f"{ROOT}/{track_id}/latest.json"


def version_prefix(track_id: str, version: str) -> str:
    validate_track_id(track_id)
    validate_version(version)
    return f"{ROOT}/{track_id}/{version}/"


def track_prefix(track_id: str) -> str:
    validate_track_id(track_id)
    return f"{ROOT}/{track_id}/"


def parse_key(key: str) -> ObjectKey:
    """Parse ``key`` against the layout; raise :class:`InvalidKey` for anything else."""
    if not isinstance(key, str):
        raise InvalidKey(f"object key must be a string, not {type(key).__name__}")
    m = _KEY_RE.fullmatch(key)
    if m is None:
        raise InvalidKey(
            f"invalid object key {_describe(key)}: expected tracks/<track_id>/<version>/"
            "<bitrate>.ogg, tracks/<track_id>/<version>/manifest.json, "
            "tracks/<track_id>/<version>/cover.jpg|cover.png|cover-300.jpg or "
            "tracks/<track_id>/latest.json"
        )
    track_id = m["track_id"]
    if m["latest"]:
        return ObjectKey("latest", track_id)
    version = m["version"]
    if m["manifest"]:
        return ObjectKey("manifest", track_id, version)
    if m["art"]:
        return ObjectKey("art", track_id, version, art=m["art"])
    bitrate = int(m["bitrate"])
    if bitrate not in BITRATES:
        raise InvalidKey(f"invalid object key {_describe(key)}: bitrate must be one of {BITRATES}")
    return ObjectKey("rendition", track_id, version, bitrate)


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a valid object key, else raise :class:`InvalidKey`."""
    parse_key(key)
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a listable prefix of the layout.

    Valid prefixes are ``""``, ``"tracks/"``, ``"tracks/{id}/"`` and
    ``"tracks/{id}/{version}/"`` — whole segments only, so a listing never
    matches a neighbour whose id merely starts with the same letters.
    """
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise InvalidKey(
            f"invalid prefix {_describe(str(prefix))}: expected '', 'tracks/', "
            "'tracks/<track_id>/' or 'tracks/<track_id>/<version>/'"
        )
    return prefix


def content_type_for(key: str) -> str:
    """The Content-Type an object under ``key`` is served with (one pure function for the
    stores, the origin and the edge: the key alone decides it)."""
    name = key.rpartition("/")[2]
    if name in ART_CONTENT_TYPES:
        return ART_CONTENT_TYPES[name]
    if key.endswith(".ogg"):
        return "audio/ogg"
    if key.endswith(".json"):
        return "application/json"
    return "application/octet-stream"
