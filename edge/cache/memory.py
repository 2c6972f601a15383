"""The memory tier: whole objects as ``bytes``, least recently used evicted first, bounded by bytes.

Per worker process. Objects are immutable, so an entry is never updated, only
inserted and evicted. Each entry carries its pre-built response headers and
:class:`common.http_plan.Representation` (which remembers the plans of recent
ranges) so a hit allocates almost nothing: the body is a ``memoryview`` slice of
the cached ``bytes`` (no copy), the headers are tuples built once.
"""

from __future__ import annotations

from cachetools import LRUCache

from common.http_plan import Plan
from edge.cache.entry import ObjectMeta
from edge.http import base_headers, header_lines, representation

HEADS_MAX = 64  # serialised heads remembered per object (as many as its plans)


class CachedObject:
    """One object held in memory with what a hit needs ready-made."""

    __slots__ = ("meta", "data", "view", "headers", "rep", "last_touch", "_heads")

    def __init__(self, meta: ObjectMeta, data: bytes) -> None:
        if len(data) != meta.size:
            raise ValueError(f"{meta.key!r}: {len(data)} bytes but metadata says {meta.size}")
        self.meta = meta
        self.data = data
        self.view = memoryview(data)
        self.headers = base_headers(meta)
        self.rep = representation(meta)  # validators and the plans of recent ranges
        # When this process last refreshed the disk entry's mtime (the shared LRU clock).
        self.last_touch = 0.0
        # id(plan) -> (plan, header bytes): the plan is kept so a reused id cannot match.
        self._heads: dict[int, tuple[Plan, bytes | None]] = {}

    def head_lines(self, plan: Plan) -> bytes | None:
        """This object's headers and ``plan``'s as bytes for the socket (see
        :mod:`edge.server`), built once per plan the representation hands out; None when
        one of them could not be sent (the ASGI path then answers as uvicorn does)."""
        got = self._heads.get(id(plan))
        if got is not None and got[0] is plan:
            return got[1]
        try:
            lines: bytes | None = header_lines((*self.headers, *plan.headers))
        except ValueError:
            lines = None
        if len(self._heads) >= HEADS_MAX:
            self._heads.clear()
        self._heads[id(plan)] = (plan, lines)
        return lines


class MemoryCache(LRUCache):
    """LRU of :class:`CachedObject` by key, bounded by the sum of object sizes."""

    def __init__(self, max_bytes: int, max_object_bytes: int) -> None:
        super().__init__(max_bytes, getsizeof=_object_size)
        self.max_bytes = max_bytes
        self.max_object_bytes = min(max_object_bytes, max_bytes)
        self.evictions = 0

    @property
    def bytes(self) -> int:
        return self.currsize

    def admits(self, size: int) -> bool:
        return 0 <= size <= self.max_object_bytes

    def popitem(self):
        """Evict the least recently used object (called by the cache when it needs room)."""
        item = super().popitem()
        self.evictions += 1
        return item

    def put(self, entry: CachedObject) -> bool:
        """Insert ``entry`` (evicting the least recently used); False if it is too large."""
        if not self.admits(entry.meta.size):
            return False
        self[entry.meta.key] = entry
        return True


def _object_size(entry: CachedObject) -> int:
    return entry.meta.size
