"""Position -> key without walking the whole playlist: a sparse index of fence keys.

SQL finds "the item at position 5,000" with ``ORDER BY pos OFFSET 5000``, a walk
of 5,000 index entries: cheap, but it grows with the playlist, and add/move at
a position must do it. :class:`Fences` keeps every :data:`STRIDE`-th key of one
playlist *at one snapshot*; a lookup starts at the nearest fence
(``pos >= fence_key ... OFFSET position - fence_position``), so it walks at most
a few hundred entries whatever the length.

A fence's position is the number of keys below it, so a write that added keys
``A`` and removed keys ``R`` moves each surviving fence by
``|{a in A: a < fence}| - |{r in R: r < fence}|`` — computed from the keys the
write touched, never by reading the playlist again (:meth:`Fences.after`).
Fences that drift too far apart, a fence key that was removed, or a snapshot
we did not write ourselves (another worker) just mean "build again": one
ordered scan of the playlist's keys, the cost of a single long OFFSET walk.

Pure data and functions; :class:`delivery.modules.playlists.PlaylistService`
owns the per-process cache and only advances fences after its transaction
committed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

STRIDE = 128
MAX_GAP = 4 * STRIDE  # a longer walk than this means: rebuild
MIN_ITEMS = 2 * STRIDE  # below this, OFFSET is already a short walk


@dataclass(frozen=True, slots=True)
class Fences:
    snapshot_id: str
    count: int
    positions: tuple[int, ...]
    keys: tuple[str, ...]

    @classmethod
    def build(cls, snapshot_id: str, ordered_keys: Sequence[str]) -> Fences:
        positions = tuple(range(0, len(ordered_keys), STRIDE))
        return cls(
            snapshot_id, len(ordered_keys), positions, tuple(ordered_keys[p] for p in positions)
        )

    def anchor(self, position: int) -> tuple[int, str | None]:
        """The last fence at or before ``position``: (its position, its key); (0, None) if none."""
        i = bisect_right(self.positions, position) - 1
        if i < 0:
            return 0, None
        return self.positions[i], self.keys[i]

    def after(
        self, snapshot_id: str, added: Sequence[str], removed: Sequence[str]
    ) -> Fences | None:
        """The fences of the snapshot a write produced, or None when they should be rebuilt."""
        added_sorted = sorted(added)
        removed_sorted = sorted(removed)
        gone = set(removed)
        positions: list[int] = []
        keys: list[str] = []
        for position, key in zip(self.positions, self.keys, strict=True):
            if key in gone:
                continue
            shift = bisect_left(added_sorted, key) - bisect_left(removed_sorted, key)
            positions.append(position + shift)
            keys.append(key)
        count = self.count + len(added) - len(removed)
        edges = [0, *positions, count]
        if max(b - a for a, b in zip(edges, edges[1:], strict=False)) > MAX_GAP:
            return None
        return Fences(snapshot_id, count, tuple(positions), tuple(keys))
