"""The disk tier: one file per object under a directory, bounded in bytes, shared by workers.

Layout under ``root`` (one filesystem, so every rename is atomic)::

    objects/ab/<sha256(key)>   complete, verified entries (header + body, see entry.py)
    parts/<name>.part          a fill in progress, growing; other workers tail it
    tmp/<name>.<random>        a part being created (header written, not yet visible)
    locks/<name>.lock          flock()ed by the one process filling <name>
    evict.lock                 serialises eviction scans across processes

Why it is safe with several worker processes:

* An entry appears only by ``rename(parts/x.part, objects/..)`` after its size
  and sha256 were verified and the file was fsynced, so no reader ever opens a
  partial entry, and a crash leaves at most a stale part (removed at start).
* Eviction only ``unlink``\\ s; a reader that already opened the file keeps
  reading the same inode.
* Stale parts and temporaries are deleted only while holding the object's lock,
  so a live fill's files are never removed under it.

The directory is the index: a restart (or another worker) finds every entry by
name. :meth:`DiskCache.start` re-validates headers and enforces the bound; after
each new entry :meth:`DiskCache.enforce_bound` rescans under ``evict.lock`` and
deletes least-recently-used entries (file mtime, refreshed on hits at most once
a minute per process) until the total fits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from edge.cache.entry import HEADER_SIZE, EntryFormatError, ObjectMeta, entry_name, read_header

log = logging.getLogger("edge.cache.disk")

META_MEMO_MAX = 65536


@dataclass(slots=True)
class OpenEntry:
    """An open, complete entry. The caller owns ``fd`` and must close it."""

    fd: int
    meta: ObjectMeta


class DiskCache:
    """Entries as files under ``root``; LRU-evicted to stay within ``max_bytes``."""

    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        self.objects = self.root / "objects"
        self.parts = self.root / "parts"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"
        self._meta: LRUCache[str, ObjectMeta] = LRUCache(META_MEMO_MAX)  # headers read
        self.bytes = 0
        self.entries = 0
        self.evictions = 0

    # -- paths ---------------------------------------------------------------------

    def object_path(self, name: str) -> str:
        return f"{self.objects}/{name[:2]}/{name}"

    def part_path(self, name: str) -> str:
        return f"{self.parts}/{name}.part"

    def lock_path(self, name: str) -> str:
        return f"{self.locks}/{name}.lock"

    def tmp_path(self, name: str) -> str:
        return f"{self.tmp}/{name}.{os.getpid()}.{os.urandom(4).hex()}"

    def admits(self, size: int) -> bool:
        return HEADER_SIZE + size <= self.max_bytes

    # -- start-up ------------------------------------------------------------------

    def start(self) -> None:
        """Create the layout, drop invalid entries and stale fills, enforce the bound."""
        for d in (self.objects, self.parts, self.tmp, self.locks):
            d.mkdir(parents=True, exist_ok=True)
        for sub in self.objects.iterdir():
            for path in sub.iterdir() if sub.is_dir() else ():
                self._validate(path)
        for path in list(self.parts.iterdir()) + list(self.tmp.iterdir()):
            name = path.name.split(".", 1)[0]
            self._remove_if_unlocked(name, path)
        self.enforce_bound()

    def _validate(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            meta = read_header(fd)
            size = os.fstat(fd).st_size
            if entry_name(meta.key) != path.name or size != HEADER_SIZE + meta.size:
                raise EntryFormatError("name or size does not match the header")
        except (EntryFormatError, OSError) as exc:
            log.warning("removing invalid cache entry %s: %s", path, exc)
            with contextlib.suppress(OSError):
                path.unlink()
        finally:
            os.close(fd)

    def _remove_if_unlocked(self, name: str, path: Path) -> None:
        lock = self.try_lock(name)
        if lock is None:
            return  # a live fill owns it
        try:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                log.info("removed stale fill file %s", path)
        finally:
            self.unlock(lock)

    # -- locks ---------------------------------------------------------------------

    def try_lock(self, name: str) -> int | None:
        """Take ``name``'s fill lock without blocking; the fd to :meth:`unlock`, or None."""
        fd = os.open(self.lock_path(name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def unlock(fd: int) -> None:
        # Closing the descriptor releases the flock; the lock file itself stays (deleting
        # it would let two processes lock two different inodes of the same name).
        os.close(fd)

    # -- reads ---------------------------------------------------------------------

    def open(self, key: str) -> OpenEntry | None:
        """Open ``key``'s complete entry, or None when it is not cached."""
        name = entry_name(key)
        try:
            fd = os.open(self.object_path(name), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size - HEADER_SIZE
            meta = self._meta.get(name)
            if meta is None or meta.size != size:
                meta = read_header(fd)
                if meta.key != key or meta.size != size:
                    raise EntryFormatError(f"entry for {key!r} does not match its header")
                self._meta[name] = meta
        except (EntryFormatError, OSError) as exc:
            os.close(fd)
            log.warning("ignoring unreadable cache entry for %r: %s", key, exc)
            return None
        return OpenEntry(fd, meta)

    def touch(self, key: str) -> None:
        """Mark ``key`` recently used (the LRU clock shared by every worker is the mtime)."""
        with contextlib.suppress(OSError):
            os.utime(self.object_path(entry_name(key)))

    # -- writes --------------------------------------------------------------------

    def publish(self, name: str, part: str, size: int) -> bool:
        """Rename a verified, fsynced part into place (caller holds the lock). True if kept."""
        if not self.admits(size):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            return False
        target = self.object_path(name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(part, target)
        self.bytes += HEADER_SIZE + size
        self.entries += 1
        return True

    def enforce_bound(self) -> int:
        """Evict least-recently-used entries until the total fits; returns bytes freed.

        Blocking (directory scan and a cross-process lock): run it in a thread.
        """
        freed = 0
        fd = os.open(self.root / "evict.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            files: list[tuple[float, int, str]] = []
            total = 0
            with os.scandir(self.objects) as subs:
                for sub in subs:
                    if not sub.is_dir(follow_symlinks=False):
                        continue
                    with os.scandir(sub.path) as entries:
                        for e in entries:
                            try:
                                st = e.stat(follow_symlinks=False)
                            except FileNotFoundError:
                                continue
                            files.append((st.st_mtime, st.st_size, e.path))
                            total += st.st_size
            files.sort()
            count = len(files)
            for _mtime, size, path in files:
                if total <= self.max_bytes:
                    break
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    freed += size
                    self.evictions += 1
                total -= size
                count -= 1
            self.bytes, self.entries = total, count
        finally:
            os.close(fd)
        if freed:
            log.info("evicted %d bytes from the disk cache", freed)
        return freed
