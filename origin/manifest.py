"""The manifest (``manifest.json``, schema 1) and ``latest.json`` (docs/architecture.md).

Readers ignore unknown fields and fill defaults for missing optional ones, so
a newer writer never breaks an older reader. Writers use :meth:`Manifest.to_json`.

Every part reads them from a store through :func:`read_latest` and
:func:`read_manifest` (the current version is ``latest.json``, then the manifest
of the version it names: ``named_by_latest=True``; callers cache or compare
between the two reads), which map what can go wrong one way, on origin's error
tree:

* missing: :class:`~origin.errors.TrackNotFound` (no ``latest.json``) or
  :class:`~origin.errors.VersionNotFound` (no ``manifest.json``);
* unparsable, invalid, or naming what is not there (a manifest under another
  track's key, a ``latest.json`` pointing at a version without a manifest):
  :class:`~origin.errors.ManifestError`;
* the store down: :class:`~origin.errors.StoreUnavailable` (any other
  :class:`~origin.errors.StoreError` passes through as it is).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from origin.errors import ManifestError, ObjectNotFound, TrackNotFound, VersionNotFound
from origin.keys import (
    ART_CONTENT_TYPES,
    BITRATES,
    THUMBNAIL_NAME,
    art_key,
    cover_key,
    latest_key,
    manifest_key,
    rendition_key,
    validate_track_id,
    validate_version,
)
from origin.store import ObjectStore

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SourceInfo(_Model):
    sha256: str
    bytes: int
    container: str | None = None
    codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float = 0.0
    bitrate_kbps: float | None = None
    lossless: bool = False


class Loudness(_Model):
    integrated_lufs: float | None = None
    true_peak_dbtp: float | None = None
    lra: float | None = None
    track_gain_db: float | None = None


class Rendition(_Model):
    bitrate_kbps: int
    key: str
    bytes: int
    sha256: str
    duration_s: float = 0.0
    avg_bitrate_kbps: float = 0.0
    sample_rate: int = 44100
    channels: int = 2
    content_type: str = "audio/ogg"

    @field_validator("bitrate_kbps")
    @classmethod
    def _known_bitrate(cls, v: int) -> int:
        if v not in BITRATES:
            raise ValueError(f"bitrate_kbps must be one of {BITRATES}")
        return v


class ArtImage(_Model):
    """One image of a version's cover art (``encoder.cover_art``)."""

    key: str
    bytes: int
    sha256: str
    content_type: str
    width: int
    height: int

    @field_validator("content_type")
    @classmethod
    def _image_type(cls, v: str) -> str:
        if v not in set(ART_CONTENT_TYPES.values()):
            raise ValueError("content_type must be image/jpeg or image/png")
        return v


class Art(_Model):
    """Cover art: the picture as embedded in the source and a ~300 px JPEG thumbnail.

    Absent (``null``) when the source carries none: there are no placeholder images.
    """

    original: ArtImage
    thumbnail: ArtImage

    def images(self) -> tuple[ArtImage, ArtImage]:
        return (self.original, self.thumbnail)


class EncoderInfo(_Model):
    profile: str
    ffmpeg: str = ""


class Manifest(_Model):
    schema_: int = Field(SCHEMA_VERSION, alias="schema")
    track_id: str
    version: str
    created_at: str
    source: SourceInfo
    tags: dict[str, str] = Field(default_factory=dict)
    loudness: Loudness = Field(default_factory=Loudness)
    renditions: list[Rendition]
    encoder: EncoderInfo
    art: Art | None = None  # added later: older manifests (and readers) have no art

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @field_validator("track_id")
    @classmethod
    def _track_id(cls, v: str) -> str:
        return validate_track_id(v)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return validate_version(v)

    @property
    def key(self) -> str:
        return manifest_key(self.track_id, self.version)

    @property
    def duration_s(self) -> float:
        durations = [r.duration_s for r in self.renditions if r.duration_s]
        return max(durations) if durations else self.source.duration_s

    @property
    def bitrates(self) -> list[int]:
        return sorted(r.bitrate_kbps for r in self.renditions)

    def rendition(self, bitrate_kbps: int) -> Rendition | None:
        for r in self.renditions:
            if r.bitrate_kbps == bitrate_kbps:
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        try:
            manifest = cls.model_validate_json(data)
        except ValidationError as exc:
            raise ManifestError(f"invalid manifest: {_first_error(exc)}") from None
        if manifest.schema_ != SCHEMA_VERSION:
            raise ManifestError(f"unsupported manifest schema {manifest.schema_}")
        for r in manifest.renditions:
            expected = rendition_key(manifest.track_id, manifest.version, r.bitrate_kbps)
            if r.key != expected:
                raise ManifestError(f"rendition key {r.key!r} does not match {expected!r}")
        if manifest.art is not None:
            _check_art_keys(manifest.track_id, manifest.version, manifest.art)
        return manifest


def _check_art_keys(track_id: str, version: str, art: Art) -> None:
    """Art keys name this version's own files, each with its format's content type."""
    expected = {
        "original": cover_key(track_id, version, art.original.content_type),
        "thumbnail": art_key(track_id, version, THUMBNAIL_NAME),
    }
    for role, image in (("original", art.original), ("thumbnail", art.thumbnail)):
        if image.key != expected[role]:
            raise ManifestError(f"art {role} key {image.key!r} does not match {expected[role]!r}")
    if art.thumbnail.content_type != ART_CONTENT_TYPES[THUMBNAIL_NAME]:
        raise ManifestError("the art thumbnail must be image/jpeg")


class Latest(_Model):
    version: str
    published_at: str

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return validate_version(v)

    @staticmethod
    def key_for(track_id: str) -> str:
        return latest_key(track_id)

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json")).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str) -> Latest:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ManifestError(f"invalid latest.json: {_first_error(exc)}") from None

    @classmethod
    def now(cls, version: str) -> Latest:
        return cls(version=version, published_at=utc_now())


def read_latest(store: ObjectStore, track_id: str) -> Latest:
    """The track's ``latest.json``; raises as the module docstring says."""
    key = latest_key(track_id)
    try:
        data = store.get_bytes(key)
    except ObjectNotFound:
        raise TrackNotFound(f"track {track_id!r} has no latest.json ({key} is missing)") from None
    try:
        return Latest.from_json(data)
    except ManifestError as exc:
        raise ManifestError(f"{key}: {exc}") from None


def read_manifest(
    store: ObjectStore, track_id: str, version: str, *, named_by_latest: bool = False
) -> Manifest:
    """The manifest of ``version``; raises as the module docstring says.

    ``named_by_latest``: ``latest.json`` names this version, so a missing manifest
    is damage (:class:`ManifestError`) rather than absence.
    """
    key = manifest_key(track_id, version)
    try:
        data = store.get_bytes(key)
    except ObjectNotFound:
        if named_by_latest:
            raise ManifestError(
                f"track {track_id!r}: latest.json names version {version!r} "
                f"but its manifest is missing ({key})"
            ) from None
        raise VersionNotFound(
            f"track {track_id!r} has no version {version!r} ({key} is missing)"
        ) from None
    try:
        manifest = Manifest.from_json(data)
    except ManifestError as exc:
        raise ManifestError(f"{key}: {exc}") from None
    if manifest.track_id != track_id or manifest.version != version:
        raise ManifestError(
            f"{key} names another track ({manifest.track_id!r} version {manifest.version!r})"
        )
    return manifest


def utc_now() -> str:
    """RFC 3339 UTC timestamp with second precision, e.g. ``2026-11-27T22:33:00Z``."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))
