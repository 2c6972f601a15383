"""LocalStore: the object store on a local directory (``file://`` URLs).

Atomicity comes from the filesystem: each write goes to a hidden temporary
file in the object's own directory, is fsynced, then renamed over the key
(``os.replace`` is atomic on POSIX within one filesystem), and the directory
is fsynced so the rename survives a crash. A reader that opened the old file
keeps reading the old inode; a reader that opens after the rename sees the
new one whole. Temporary names never parse as keys, so ``list`` never shows
them.

The sha256 and content type are kept in extended attributes where the
filesystem supports them; elsewhere ETags fall back to size + mtime.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from origin.errors import InvalidKey, ObjectNotFound, StoreConfigError, StoreUnavailable
from origin.keys import ROOT, content_type_for, validate_key, validate_prefix
from origin.store import CHUNK_SIZE, ChunkedReader, ObjectInfo, resolve_range

_XATTR_SHA = "user.audiocdn.sha256"
_XATTR_TYPE = "user.audiocdn.content_type"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _get_xattr(path: Path | int, name: str) -> str | None:
    try:
        return os.getxattr(path, name).decode()
    except (OSError, AttributeError):
        return None


def _set_xattr(path: Path | int, name: str, value: str) -> None:
    # Best effort: tmpfs without user xattrs, or non-Linux systems, simply lose the hint.
    with contextlib.suppress(OSError, AttributeError):
        os.setxattr(path, name, value.encode())


class LocalFileReader(ChunkedReader):
    """A ranged read over an already-open file descriptor."""

    def __iter__(self) -> Iterator[bytes]:
        remaining = self.end - self.start + 1
        if remaining <= 0:
            return
        self._source.seek(self.start)
        while remaining > 0:
            chunk = self._source.read(min(self._chunk_size, remaining))
            if not chunk:
                raise StoreUnavailable(f"{self.info.key!r} shrank while being read")
            remaining -= len(chunk)
            yield chunk


class LocalStore:
    """Objects as files under ``root``; key ``tracks/a/b`` is ``root/tracks/a/b``."""

    def __init__(self, root: str | Path, *, create: bool = True, chunk_size: int = CHUNK_SIZE):
        self.root = Path(root).resolve()
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise StoreConfigError(f"local store directory {str(self.root)!r} does not exist")
        self.url = self.root.as_uri()
        self._chunk_size = chunk_size

    @classmethod
    def from_url(cls, url: str) -> LocalStore:
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise StoreConfigError(f"not a file:// URL: {url!r}")
        # file:///abs/path is absolute; file://./data/origin is relative to the working directory.
        netloc = unquote(parts.netloc)
        path = unquote(parts.path)
        if netloc in ("", "localhost"):
            root = path
        elif netloc.startswith("."):
            root = netloc + path
        else:
            raise StoreConfigError(
                f"file store URL {url!r} names a host; use file:///abs/path or file://./relative"
            )
        if not root:
            raise StoreConfigError(f"file store URL {url!r} has no path")
        return cls(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root / key
        # validate_key already excludes '..' and absolute keys; this second, explicit
        # check keeps the guarantee even if the key grammar is ever loosened.
        if os.path.commonpath([path, self.root]) != str(self.root):
            raise InvalidKey(f"key {key!r} escapes the store root")
        return path

    def _info(self, key: str, path: Path, st: os.stat_result, fd: int | None = None) -> ObjectInfo:
        target = fd if fd is not None else path
        sha = _get_xattr(target, _XATTR_SHA)
        ctype = _get_xattr(target, _XATTR_TYPE) or content_type_for(key)
        etag = f'"{sha[:32]}"' if sha else f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=etag,
            content_type=ctype,
            modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
            sha256=sha,
        )

    # -- writes ----------------------------------------------------------------

    def _write_atomically(self, key: str, content_type: str | None, write) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        digest = hashlib.sha256()
        try:
            with open(tmp, "xb") as fh:
                write(fh, digest)
                fh.flush()
                os.fsync(fh.fileno())
            _set_xattr(tmp, _XATTR_SHA, digest.hexdigest())
            _set_xattr(tmp, _XATTR_TYPE, content_type or content_type_for(key))
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return self._info(key, path, path.stat())

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        def write(fh, digest):
            digest.update(data)
            fh.write(data)

        return self._write_atomically(key, content_type, write)

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> ObjectInfo:
        validate_key(key)
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no such file to upload: {str(source)!r}")

        def write(fh, digest):
            with open(source, "rb") as src:
                for chunk in iter(lambda: src.read(1024 * 1024), b""):
                    digest.update(chunk)
                    fh.write(chunk)

        return self._write_atomically(key, content_type, write)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # -- reads -----------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"No such key: {key!r}") from None
        except NotADirectoryError:
            raise ObjectNotFound(f"No such key: {key!r}") from None
        if not path.is_file():
            raise ObjectNotFound(f"No such key: {key!r}")
        return self._info(key, path, st)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"No such key: {key!r}") from None

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> LocalFileReader:
        path = self._path(key)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - the reader owns and closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"No such key: {key!r}") from None
        try:
            # Stat the open descriptor, not the path: a concurrent replace must not
            # pair the old inode's bytes with the new inode's size.
            st = os.fstat(fh.fileno())
            info = self._info(key, path, st, fd=fh.fileno())
            first, last = resolve_range(st.st_size, start, end)
        except BaseException:
            fh.close()
            raise
        return LocalFileReader(fh, info, first, last, self._chunk_size)

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        base = self.root / ROOT
        if not base.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = f"{rel_dir}/{name}"
                if not key.startswith(prefix):
                    continue
                try:
                    validate_key(key)
                except InvalidKey:
                    continue  # temporaries and stray files are not objects
                keys.append(key)
        keys.sort()
        return keys

    def check(self) -> None:
        """Raise unless the root directory is there and readable (readiness probes)."""
        if not self.root.is_dir() or not os.access(self.root, os.R_OK | os.X_OK):
            raise StoreUnavailable(f"local store directory {str(self.root)!r} is not readable")
