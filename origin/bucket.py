"""What the two cloud-bucket backends (``S3Store``, ``GCSStore``) share.

Both keep objects in one bucket under an optional prefix and record the
content's sha256 in the object's user metadata at write time; only the SDK
calls differ, so the key mapping, the metadata format and the read-through
conveniences live here once and cannot drift between the two.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qs

from origin.errors import ObjectNotFound, StoreConfigError
from origin.keys import validate_key
from origin.store import ObjectReader, sha256_file

SHA256_META = "sha256"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def recorded_sha256(metadata: Mapping[str, str] | None) -> str | None:
    """The sha256 we wrote into an object's metadata, or None when absent or malformed.

    Objects uploaded by other tools may carry anything under that name; a value
    that is not a hex digest must not become an ETag or a checksum header.
    """
    value = (metadata or {}).get(SHA256_META, "").lower()
    return value if _SHA256_RE.fullmatch(value) else None


def url_options(url: str, query: str, known: set[str], backend: str) -> dict[str, str]:
    """A store URL's ``?name=value`` options (the last value of each); raises
    :class:`StoreConfigError` naming any option the ``backend`` does not know."""
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(options) - known
    if unknown:
        raise StoreConfigError(
            f"unknown {backend} store option(s) {sorted(unknown)} in {url!r}; "
            f"known: {sorted(known)}"
        )
    return options


def upload_source(path: str | Path) -> tuple[Path, str]:
    """The file to upload and its sha256; refuses a missing file before any request."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no such file to upload: {str(source)!r}")
    return source, sha256_file(source)


class PrefixedBucket:
    """Key mapping and read-through helpers for a store whose objects sit under ``prefix``.

    Subclasses set ``self.prefix`` (already normalized) and implement ``stat`` and
    ``open_range``; key ``tracks/a/b`` is then ``{prefix}/tracks/a/b`` in the bucket.
    """

    prefix: str

    def _name(self, key: str) -> str:
        validate_key(key)  # before any I/O, as the store contract promises
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_base(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _listed_keys(self, names: Iterable[str]) -> list[str]:
        """The sorted keys of the object ``names`` a listing under :meth:`_list_base`
        returned; objects outside the layout are not ours and are left out."""
        base = self._list_base()
        keys: list[str] = []
        for name in names:
            with contextlib.suppress(ValueError):
                keys.append(validate_key(name[len(base) :]))
        keys.sort()
        return keys

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)  # type: ignore[attr-defined]
        except ObjectNotFound:
            return False
        return True

    def get_bytes(self, key: str) -> bytes:
        reader: ObjectReader = self.open_range(key)  # type: ignore[attr-defined]
        with reader:
            return b"".join(reader)
