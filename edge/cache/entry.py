"""What the edge knows about one cached object, and the on-disk entry format.

A disk entry is ONE file: a fixed 4096-byte header (magic line + JSON metadata,
padded with spaces) followed by the object's bytes. One file means one atomic
rename publishes metadata and content together, and the page-aligned data
offset keeps ``pread`` cheap. The same format is used for a fill in progress
(``parts/<name>.part``), so other worker processes can read the header and
tail the growing body (see :mod:`edge.fill`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

HEADER_SIZE = 4096
MAGIC = b"AUDIOCDN-EDGE-ENTRY/1\n"


class EntryFormatError(ValueError):
    """A file in the cache directory that is not a valid entry."""


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """Metadata of one immutable object, as stated by the upstream."""

    key: str
    size: int
    etag: str
    content_type: str
    sha256: str | None = None
    last_modified: str | None = None  # an HTTP date, passed through verbatim


def entry_name(key: str) -> str:
    """The file name of ``key``'s entry: a hash, so names never depend on key syntax."""
    return hashlib.sha256(key.encode()).hexdigest()


def encode_header(meta: ObjectMeta) -> bytes:
    body = json.dumps(asdict(meta), separators=(",", ":"), sort_keys=True).encode()
    header = MAGIC + body + b"\n"
    if len(header) > HEADER_SIZE:
        raise EntryFormatError(f"metadata of {meta.key!r} does not fit the entry header")
    return header.ljust(HEADER_SIZE, b" ")


def decode_header(raw: bytes) -> ObjectMeta:
    if len(raw) < HEADER_SIZE or not raw.startswith(MAGIC):
        raise EntryFormatError("not an edge cache entry")
    try:
        data = json.loads(raw[len(MAGIC) : HEADER_SIZE])
        meta = ObjectMeta(
            key=str(data["key"]),
            size=int(data["size"]),
            etag=str(data["etag"]),
            content_type=str(data["content_type"]),
            sha256=data.get("sha256"),
            last_modified=data.get("last_modified"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EntryFormatError(f"unreadable entry header: {exc}") from None
    if meta.size < 0:
        raise EntryFormatError("negative size in entry header")
    return meta


def read_header(fd: int) -> ObjectMeta:
    return decode_header(os.pread(fd, HEADER_SIZE, 0))
