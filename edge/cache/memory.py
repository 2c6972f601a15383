"""The memory tier: whole objects as ``bytes``, least recently used evicted first, bounded by bytes.

Per worker process. Objects are immutable, so an entry is never updated, only
inserted and evicted. Each entry carries its pre-built response headers so a
hit allocates almost nothing: the body is a ``memoryview`` slice of the cached
``bytes`` (no copy), the headers are a list built once.
"""

from __future__ import annotations

from collections import OrderedDict

from edge.cache.entry import ObjectMeta
from edge.http import base_headers


class CachedObject:
    """One object held in memory with what a hit needs ready-made."""

    __slots__ = ("meta", "data", "view", "headers", "length_header", "last_touch")

    def __init__(self, meta: ObjectMeta, data: bytes) -> None:
        if len(data) != meta.size:
            raise ValueError(f"{meta.key!r}: {len(data)} bytes but metadata says {meta.size}")
        self.meta = meta
        self.data = data
        self.view = memoryview(data)
        self.headers = base_headers(meta)
        self.length_header = b"%d" % meta.size
        # When this process last refreshed the disk entry's mtime (the shared LRU clock).
        self.last_touch = 0.0


class MemoryCache:
    """LRU of :class:`CachedObject` bounded by the sum of object sizes."""

    def __init__(self, max_bytes: int, max_object_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_object_bytes = min(max_object_bytes, max_bytes)
        self._entries: OrderedDict[str, CachedObject] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def admits(self, size: int) -> bool:
        return 0 <= size <= self.max_object_bytes

    def get(self, key: str) -> CachedObject | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, entry: CachedObject) -> bool:
        """Insert ``entry`` (evicting the least recently used); False if it is too large."""
        size = entry.meta.size
        if not self.admits(size):
            return False
        key = entry.meta.key
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.meta.size
        while self._entries and self.bytes + size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.meta.size
            self.evictions += 1
        self._entries[key] = entry
        self.bytes += size
        return True

    def keys(self) -> list[str]:
        return list(self._entries)
