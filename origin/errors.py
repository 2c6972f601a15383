"""The origin package's error tree.

Every object-store backend translates its SDK's exceptions into these at its
own edge, so callers (encoder, edge, delivery) never see botocore or google
exceptions::

    StoreError
    ├── InvalidKey          a key or prefix outside the documented layout (also ValueError)
    ├── ObjectNotFound      no object under that key (also FileNotFoundError)
    │   ├── TrackNotFound   a track without ``latest.json``: never published
    │   └── VersionNotFound a version without ``manifest.json``: never completed
    ├── ManifestError       a manifest or latest.json that cannot be parsed or breaks the schema
    ├── RangeNotSatisfiable a read (``open_range``) that starts past the end of the object
    │                       (a Range *header* is resolved by ``common.http_plan.parse_range``)
    ├── StoreUnavailable    the backend could not be reached or answered with a server error
    └── StoreConfigError    a store URL or setting that cannot work (raised at start-up)
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by the origin package."""


class InvalidKey(StoreError, ValueError):
    """A key, prefix, track id or version that is not part of the documented layout."""


class ObjectNotFound(StoreError, FileNotFoundError):
    """No object exists under the key."""


class TrackNotFound(ObjectNotFound):
    """The track has no ``latest.json``: it was never published (origin.manifest's readers)."""


class VersionNotFound(ObjectNotFound):
    """The version has no ``manifest.json``: it was never completed (origin.manifest's readers)."""


class ManifestError(StoreError):
    """A manifest or latest.json that cannot be parsed, breaks the schema, or names
    something that is not there (a manifest under another track's key, a latest.json
    pointing at a version without a manifest)."""


class RangeNotSatisfiable(StoreError):
    """A requested byte range starts at or beyond the end of the object."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class StoreUnavailable(StoreError):
    """The backend could not be reached, timed out, or failed on its side."""


class StoreConfigError(StoreError):
    """The store URL or its options cannot work; raised at start-up, loudly."""
