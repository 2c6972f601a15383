"""The object-store port: what every backend promises.

Backends live beside this module (``local.py``, ``s3.py``, ``gcs.py``);
:func:`open_store` picks one from a URL::

    file:///abs/path                                  LocalStore
    s3://bucket/prefix?endpoint_url=http://..&region=..  S3Store (any S3-compatible endpoint)
    gs://bucket/prefix                                GCSStore (STORAGE_EMULATOR_HOST honoured)

Contract (checked by ONE suite, ``tests/origin/test_store_contract.py``, over
every backend against a real server or emulator):

* Every key is validated with :func:`origin.keys.validate_key` *before* any I/O;
  a bad key raises :class:`~origin.errors.InvalidKey` and touches nothing.
* Writes are atomic: a concurrent reader sees the previous object, or the whole
  new one, never a prefix of it.
* A missing object raises :class:`~origin.errors.ObjectNotFound`; a backend that
  cannot be reached raises :class:`~origin.errors.StoreUnavailable`. No SDK
  exception escapes a backend.
* Reads stream in bounded chunks, so a large object never sits in memory whole
  unless the caller asks for :meth:`ObjectStore.get_bytes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from origin.errors import RangeNotSatisfiable, StoreConfigError

CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one object.

    ``etag`` is a quoted HTTP entity tag, ready for an ``ETag`` header.
    ``sha256`` is the hex digest of the content when the backend recorded it at
    write time (all three backends do for objects written through this port).
    """

    key: str
    size: int
    etag: str
    content_type: str
    modified: datetime
    sha256: str | None = None


@runtime_checkable
class ObjectReader(Protocol):
    """An open, ranged read of one object; iterate it for chunks, then close it."""

    info: ObjectInfo
    start: int
    end: int  # inclusive; start - 1 for an empty read

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ObjectReader: ...

    def __exit__(self, *exc: object) -> None: ...


class ChunkedReader:
    """The bookkeeping every backend's reader shares; subclasses implement ``__iter__``.

    ``source`` is whatever the backend streams from (a file, an HTTP body) or
    None for an empty read; closing it is the one thing every reader must do.
    """

    def __init__(self, source, info: ObjectInfo, start: int, end: int, chunk_size: int) -> None:
        self._source = source
        self.info = info
        self.start = start
        self.end = end
        self._chunk_size = chunk_size

    def close(self) -> None:
        if self._source is not None:
            self._source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class ObjectStore(Protocol):
    """A flat key -> bytes store holding the layout of :mod:`origin.keys`."""

    url: str

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> ObjectInfo:
        """Upload the file at ``path`` atomically under ``key``."""

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Store ``data`` atomically under ``key``."""

    def get_bytes(self, key: str) -> bytes:
        """The whole object, in memory. For manifests and other small objects."""

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> ObjectReader:
        """Open a streaming read of bytes ``start..end`` (inclusive; ``None`` = to the end).

        Raises :class:`ObjectNotFound` at once (not on first iteration) and
        :class:`RangeNotSatisfiable` when ``start`` is at or past the end of a
        non-empty object. ``end`` past the end is clamped.
        """

    def stat(self, key: str) -> ObjectInfo:
        """Metadata without the content."""

    def exists(self, key: str) -> bool:
        """True when an object is stored under ``key``."""

    def list(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (see :func:`origin.keys.validate_prefix`), sorted."""

    def delete(self, key: str) -> None:
        """Remove the object. Deleting a missing key is not an error."""


@runtime_checkable
class Presigner(Protocol):
    """A store that can hand out URLs a client uses directly, without credentials.

    ``S3Store`` (SigV4) and ``GCSStore`` (V4 signing) implement it, e.g. for
    delivery's "direct from the bucket" URLs. ``LocalStore`` does not.
    """

    def presigned_url(self, key: str, expires_s: int, method: str = "GET") -> str:
        """A URL allowing ``method`` (GET, HEAD or PUT) on ``key`` for ``expires_s`` seconds."""


def content_etag(sha256: str | None, native: str) -> str:
    """A strong ETag derived from the content's sha256 when known, else the backend's own.

    S3Store and GCSStore use it and LocalStore computes the same form, so the
    same bytes carry the same ETag in every store (replicas and caches agree)
    and the validator never depends on how the object was uploaded (S3
    multipart ETags, GCS generations, mtimes).
    """
    if sha256:
        return f'"{sha256[:32]}"'
    native = native.strip()
    if native.startswith('"') or native.startswith("W/"):
        return native
    return f'"{native}"'


def normalize_store_prefix(prefix: str) -> str:
    """A bucket prefix from a store URL: ``"/a/b/"`` -> ``"a/b"``; refuses aliasing segments."""
    cleaned = prefix.strip("/")
    if not cleaned:
        return ""
    for segment in cleaned.split("/"):
        if segment in ("", ".", "..") or any(ord(c) < 0x20 or c in "\\\x7f" for c in segment):
            raise StoreConfigError(f"invalid store prefix {prefix!r}")
    return cleaned


def resolve_range(size: int, start: int, end: int | None) -> tuple[int, int]:
    """Clamp a requested inclusive range to an object of ``size`` bytes."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range {start}-{end}")
    if size == 0 and start == 0:
        return 0, -1
    if start >= size:
        raise RangeNotSatisfiable(f"range starts at {start}, object has {size} bytes", size)
    last = size - 1 if end is None else min(end, size - 1)
    return start, last


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def open_store(url: str) -> ObjectStore:
    """Build the backend for ``url``; raise :class:`StoreConfigError` when it cannot work."""
    # Imported lazily so a process that only reads local files never imports boto3 or google.
    scheme = store_scheme(url)
    if scheme == "file":
        from origin.local import LocalStore

        return LocalStore.from_url(url)
    if scheme == "s3":
        from origin.s3 import S3Store

        return S3Store.from_url(url)
    if scheme in ("gs", "gcs"):
        from origin.gcs import GCSStore

        return GCSStore.from_url(url)
    raise StoreConfigError(
        f"unsupported store URL {url!r}: use file:///abs/path, s3://bucket/prefix or gs://bucket/prefix"
    )
