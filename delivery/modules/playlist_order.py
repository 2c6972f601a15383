"""Where items go: position -> key, new keys for a gap, renumbering.

Order is a fractional key per item (:mod:`delivery.modules.fractional`), the
clustering column of the ``playlist_items`` partition. Finding the keys at a
*position* starts from the nearest fence of :mod:`delivery.modules.positions`
(kept per process, per playlist, for one snapshot at a time), so that read
does not grow with the playlist either. If repeated inserts at one spot make a
key longer than :data:`MAX_KEY_LENGTH`, that one write renumbers the whole
playlist with short keys — rare by construction (dozens of inserts at the exact
same place), and it keeps keys small enough for any index.

Every method runs inside the caller's write (or read) transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache

from delivery.db import Transaction
from delivery.modules.fractional import keys_between, spread_keys
from delivery.modules.playlist_access import Header
from delivery.modules.positions import MIN_ITEMS, Fences

MAX_KEY_LENGTH = 64


class ItemOrder:
    def __init__(self, cache_size: int) -> None:
        # Fences per playlist (see delivery.modules.positions); tiny, bounded like the cache.
        self._fence_cache: LRUCache[str, Fences] = LRUCache(maxsize=max(64, cache_size))
        self._fence_lock = threading.Lock()

    def cached_fences(self, playlist_id: str) -> Fences | None:
        with self._fence_lock:
            return self._fence_cache.get(playlist_id)

    def fences(self, tx: Transaction, h: Header, *, build: bool) -> Fences | None:
        """This process's fences for the header's snapshot (built if missing and ``build``).

        Build only before the transaction changes anything: they describe ``h``'s snapshot.
        """
        if h["item_count"] < MIN_ITEMS:
            return None
        with self._fence_lock:
            fences = self._fence_cache.get(h["playlist_id"])
        if (
            fences is not None
            and fences.snapshot_id == h["snapshot_id"]
            and fences.count == h["item_count"]
        ):
            return fences
        if not build:
            return None
        keys = [
            r["pos"]
            for r in tx.iterate(
                "SELECT pos FROM playlist_items WHERE playlist_id = :p ORDER BY pos",
                {"p": h["playlist_id"]},
            )
        ]
        fences = Fences.build(h["snapshot_id"], keys)
        with self._fence_lock:
            self._fence_cache[h["playlist_id"]] = fences
        return fences

    def advance(
        self,
        playlist_id: str,
        old_snapshot: str,
        new_snapshot: str,
        added: Sequence[str] = (),
        removed: Sequence[str] = (),
        *,
        renumbered: bool = False,
    ) -> None:
        """After a commit: carry the fences over to the new snapshot, or drop them."""
        with self._fence_lock:
            fences = self._fence_cache.get(playlist_id)
            if fences is None:
                return
            moved = None
            if not renumbered and fences.snapshot_id == old_snapshot:
                moved = fences.after(new_snapshot, added, removed)
            if moved is None:
                self._fence_cache.pop(playlist_id, None)
            else:
                self._fence_cache[playlist_id] = moved

    @staticmethod
    def rows_at(
        tx: Transaction,
        playlist_id: str,
        offset: int,
        count: int,
        fences: Fences | None = None,
        cols: str = "pos",
    ) -> list[dict[str, Any]]:
        """Rows ``offset .. offset+count-1`` in order; from the nearest fence when we have one."""
        params: dict[str, Any] = {"p": playlist_id, "n": count, "o": offset}
        after = ""
        if fences is not None:
            base, key = fences.anchor(offset)
            if key is not None:
                after = " AND pos >= :k"
                params.update(k=key, o=offset - base)
        return tx.fetchall(
            f"SELECT {cols} FROM playlist_items WHERE playlist_id = :p{after} "
            "ORDER BY pos LIMIT :n OFFSET :o",
            params,
        )

    def keys_at(
        self,
        tx: Transaction,
        playlist_id: str,
        offset: int,
        count: int,
        fences: Fences | None = None,
    ) -> list[str]:
        return [r["pos"] for r in self.rows_at(tx, playlist_id, offset, count, fences)]

    def neighbours(
        self,
        tx: Transaction,
        playlist_id: str,
        position: int,
        count: int,
        fences: Fences | None = None,
    ) -> tuple[str | None, str | None]:
        """The keys on either side of the gap before ``position`` (``count`` items)."""
        if count == 0:
            return None, None
        if position >= count:
            row = tx.fetchone(
                "SELECT pos FROM playlist_items WHERE playlist_id = :p ORDER BY pos DESC LIMIT 1",
                {"p": playlist_id},
            )
            return row["pos"], None
        if position == 0:
            return None, self.keys_at(tx, playlist_id, 0, 1)[0]
        a, b = self.keys_at(tx, playlist_id, position - 1, 2, fences)
        return a, b

    def respace(self, tx: Transaction, playlist_id: str) -> None:
        """Renumber every item with short keys (rare; see the module docstring)."""
        rows = tx.fetchall(
            "SELECT pos, track_id, added_by, added_at FROM playlist_items "
            "WHERE playlist_id = :p ORDER BY pos",
            {"p": playlist_id},
        )
        tx.execute("DELETE FROM playlist_items WHERE playlist_id = :p", {"p": playlist_id})
        for row, key in zip(rows, spread_keys(len(rows)), strict=True):
            row["pos"] = key
            row["p"] = playlist_id
        tx.executemany(
            "INSERT INTO playlist_items (playlist_id, pos, track_id, added_by, added_at) "
            "VALUES (:p, :pos, :track_id, :added_by, :added_at)",
            rows,
        )

    def new_keys(
        self,
        tx: Transaction,
        playlist_id: str,
        position: int,
        count: int,
        n: int,
        fences: Fences | None,
    ) -> tuple[list[str], bool]:
        """``n`` keys for the gap before ``position``; True when the playlist was renumbered."""
        a, b = self.neighbours(tx, playlist_id, position, count, fences)
        keys = keys_between(a, b, n)
        if max(len(k) for k in keys) <= MAX_KEY_LENGTH:
            return keys, False
        self.respace(tx, playlist_id)  # the fences' keys are gone: walk without them
        a, b = self.neighbours(tx, playlist_id, position, count)
        return keys_between(a, b, n), True
