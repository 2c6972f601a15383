"""Playlists: ordered lists of tracks whose writes cost O(items moved).

Adding ``n`` items writes ``n`` rows; moving ``k`` items rewrites ``k`` keys;
removing deletes the removed rows. No write shifts the rows after it, so the
cost does not depend on the playlist's length (how keys are placed:
:mod:`delivery.modules.playlist_order`; who may write, locking and snapshots:
:mod:`delivery.modules.playlist_access`; libraries, followers, collaborators:
:mod:`delivery.modules.playlist_sharing`).

Every write returns a new ``snapshot_id``; a request may send the one it saw,
and positions are then only applied to that snapshot (a stale one is a 409).
Reads of item pages go through the hot-playlist cache keyed by
``(playlist_id, snapshot_id, offset, limit)`` (:mod:`delivery.modules.cache`),
so a write never needs to invalidate anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from delivery.db import Database, Transaction, in_list
from delivery.events import EventBus
from delivery.modules.cache import SnapshotCache
from delivery.modules.fractional import spread_keys
from delivery.modules.ids import new_playlist_id, new_snapshot_id, now_ms
from delivery.modules.playlist_access import HEADER_COLS, Header, PlaylistAccess, bad
from delivery.modules.playlist_order import ItemOrder
from delivery.settings import DeliverySettings

MAX_ITEMS_PER_REQUEST = 100
MAX_NAME = 200
MAX_DESCRIPTION = 1000

_ITEM_COLS = (
    "i.pos, i.track_id, i.added_by, i.added_at, t.version, t.title, t.artist, t.album, "
    "t.artist_id, t.album_id, t.year, t.duration_ms"
)


@dataclass(frozen=True)
class ItemPage:
    header: Header
    items: list[dict[str, Any]]
    offset: int
    limit: int


@dataclass(frozen=True)
class RemoveSpec:
    track_id: str
    positions: tuple[int, ...] | None = None


def _delete_items(
    tx: Transaction, playlist_id: str, column: str, values: Sequence[str]
) -> list[str]:
    """Delete the playlist's items whose ``column`` (``track_id`` or ``pos``) is in ``values``.

    Returns the deleted positions, so the caller can renumber and report them.
    ``column`` is always one of our own names, never caller input.
    """
    placeholders, params = in_list(values)
    rows = tx.fetchall(
        f"DELETE FROM playlist_items WHERE playlist_id = :p AND {column} IN ({placeholders}) "
        "RETURNING pos",
        {"p": playlist_id, **params},
    )
    return [r["pos"] for r in rows]


class PlaylistService:
    def __init__(
        self,
        db: Database,
        settings: DeliverySettings,
        events: EventBus,
        cache: SnapshotCache | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.events = events
        self.cache = cache or SnapshotCache(
            settings.playlist_cache_entries,
            settings.playlist_cache_ttl_s,
            xfetch_beta=settings.playlist_cache_xfetch_beta,
        )
        self.access = PlaylistAccess(db, events)
        self.order = ItemOrder(settings.playlist_cache_entries)
        self._pg = db.dialect == "postgresql"

    def get(self, playlist_id: str, user_id: str) -> Header:
        return self.access.get(playlist_id, user_id)

    def page(self, playlist_id: str, user_id: str, *, offset: int, limit: int) -> ItemPage:
        """Items ``offset .. offset+limit-1`` with the header they belong to (one snapshot)."""
        h = self.get(playlist_id, user_id)
        if limit == 0 or offset >= h["item_count"]:
            return ItemPage(h, [], offset, limit)
        key = (playlist_id, h["snapshot_id"], offset, limit)

        def load() -> tuple[ItemPage, bool]:
            with self.db.transaction(write=False) as tx:
                if self._pg:
                    # Header and items must come from one snapshot, or we could cache new
                    # items under the old snapshot_id.
                    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                current = self.access.header(tx, playlist_id) or h
                params: dict[str, Any] = {"p": playlist_id, "n": limit, "o": offset}
                after = ""
                fences = self.order.fences(tx, current, build=False)
                if fences is not None:
                    base, fence_key = fences.anchor(offset)
                    if fence_key is not None:
                        after = " AND pos >= :k"
                        params.update(k=fence_key, o=offset - base)
                # OFFSET inside the subquery: skipped rows cost an index step, not a join.
                items = tx.fetchall(
                    f"SELECT {_ITEM_COLS} FROM (SELECT pos, track_id, added_by, added_at "
                    f"FROM playlist_items WHERE playlist_id = :p{after} ORDER BY pos "
                    "LIMIT :n OFFSET :o) i LEFT JOIN tracks t ON t.track_id = i.track_id "
                    "ORDER BY i.pos",
                    params,
                )
            page = ItemPage(current, items, offset, limit)
            return page, current["snapshot_id"] == h["snapshot_id"]

        page = self.cache.get_or_load(key, load)
        if page.header["snapshot_id"] != h["snapshot_id"]:
            # We waited on (or ran) a load that saw a newer snapshot: still one snapshot.
            return page
        return ItemPage(h, page.items, offset, limit)

    @staticmethod
    def _check_details(name: str | None, description: str | None) -> None:
        if name is not None and not (1 <= len(name.strip()) and len(name) <= MAX_NAME):
            raise bad(f"name must be 1-{MAX_NAME} characters", "invalid_name")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise bad(f"description must be at most {MAX_DESCRIPTION} characters")

    def create(
        self,
        owner_id: str,
        *,
        name: str,
        description: str = "",
        public: bool = True,
        collaborative: bool = False,
    ) -> Header:
        self._check_details(name, description)
        if collaborative and public:
            raise bad("a collaborative playlist cannot be public", "collaborative_public")
        playlist_id = new_playlist_id()
        now = now_ms()
        header = {
            "playlist_id": playlist_id,
            "owner_id": owner_id,
            "name": name,
            "description": description,
            "public": public,
            "collaborative": collaborative,
            "snapshot_id": new_snapshot_id(1),
            "version": 1,
            "item_count": 0,
            "follower_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO playlists ({HEADER_COLS}) VALUES ("
                + ", ".join(f":{c.strip()}" for c in HEADER_COLS.split(","))
                + ")",
                header,
            )
            tx.execute(
                "INSERT INTO user_playlists (user_id, playlist_id, added_at) VALUES (:u, :p, :t)",
                {"u": owner_id, "p": playlist_id, "t": now},
            )
            self.access.changed(playlist_id, header["snapshot_id"], "created", tx=tx)
        return header

    def change_details(
        self,
        playlist_id: str,
        user_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        public: bool | None = None,
        collaborative: bool | None = None,
    ) -> str:
        self._check_details(name, description)
        with self.access.writing(playlist_id, user_id, owner_only=True) as (tx, h):
            new_public = h["public"] if public is None else public
            new_collab = h["collaborative"] if collaborative is None else collaborative
            if new_collab and new_public:
                raise bad("a collaborative playlist cannot be public", "collaborative_public")
            details = {
                k: v
                for k, v in {
                    "name": name,
                    "description": description,
                    "public": public,
                    "collaborative": collaborative,
                }.items()
                if v is not None
            }
            snapshot = self.access.bump(tx, h, **details)
            self.access.changed(playlist_id, snapshot, "details", tx=tx)
        return snapshot

    def _check_tracks(self, tx: Transaction, track_ids: Sequence[str]) -> None:
        if len(track_ids) > MAX_ITEMS_PER_REQUEST:
            raise bad(
                f"at most {MAX_ITEMS_PER_REQUEST} items per request ({len(track_ids)} given)",
                "too_many_items",
            )
        wanted = sorted(set(track_ids))
        placeholders, params = in_list(wanted)
        found = {
            r["track_id"]
            for r in tx.fetchall(
                f"SELECT track_id FROM tracks WHERE track_id IN ({placeholders})", params
            )
        }
        missing = [t for t in wanted if t not in found]
        if missing:
            raise bad(
                f"unknown track(s): {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else ""),
                "unknown_track",
            )

    def _check_room(self, h: Header, adding: int, removing: int = 0) -> None:
        limit = self.settings.playlist_max_items
        if h["item_count"] - removing + adding > limit:
            raise bad(
                f"a playlist holds at most {limit} items "
                f"(it has {h['item_count']}, {adding} more requested)",
                "playlist_full",
            )

    def add(
        self,
        playlist_id: str,
        user_id: str,
        track_ids: Sequence[str],
        position: int | None = None,
    ) -> str:
        if not track_ids:
            raise bad("no items to add", "no_items")
        if len(track_ids) > MAX_ITEMS_PER_REQUEST:
            raise bad(
                f"at most {MAX_ITEMS_PER_REQUEST} items per request ({len(track_ids)} given)",
                "too_many_items",
            )
        with self.access.writing(playlist_id, user_id) as (tx, h):
            count = h["item_count"]
            if position is None:
                position = count
            if not 0 <= position <= count:
                raise bad(f"position must be between 0 and {count}", "invalid_position")
            self._check_room(h, len(track_ids))
            self._check_tracks(tx, track_ids)
            fences = self.order.fences(tx, h, build=True)
            keys, renumbered = self.order.new_keys(
                tx, playlist_id, position, count, len(track_ids), fences
            )
            now = now_ms()
            tx.executemany(
                "INSERT INTO playlist_items (playlist_id, pos, track_id, added_by, added_at) "
                "VALUES (:p, :k, :t, :u, :now)",
                [
                    {"p": playlist_id, "k": k, "t": t, "u": user_id, "now": now}
                    for k, t in zip(keys, track_ids, strict=True)
                ],
            )
            snapshot = self.access.bump(tx, h, len(track_ids))
            self.access.changed(playlist_id, snapshot, "items", tx=tx)
        self.order.advance(
            playlist_id, h["snapshot_id"], snapshot, added=keys, renumbered=renumbered
        )
        return snapshot

    def reorder(
        self,
        playlist_id: str,
        user_id: str,
        *,
        range_start: int,
        insert_before: int,
        range_length: int = 1,
        snapshot_id: str | None = None,
    ) -> str:
        """Move ``range_length`` items starting at ``range_start`` before ``insert_before``."""
        with self.access.writing(playlist_id, user_id, snapshot_id=snapshot_id) as (tx, h):
            count = h["item_count"]
            if range_length < 1:
                raise bad("range_length must be >= 1", "invalid_range")
            if not 0 <= range_start < count or range_start + range_length > count:
                raise bad(
                    f"range {range_start}..{range_start + range_length - 1} is outside the "
                    f"playlist (0..{count - 1})",
                    "invalid_range",
                )
            if not 0 <= insert_before <= count:
                raise bad(f"insert_before must be between 0 and {count}", "invalid_position")
            if range_start <= insert_before <= range_start + range_length:
                return h["snapshot_id"]  # the range already sits there: nothing changes
            fences = self.order.fences(tx, h, build=True)
            moved = self.order.keys_at(tx, playlist_id, range_start, range_length, fences)
            # The gap's neighbours are never moved items (the no-op case is excluded above),
            # and no key lies strictly between them, so the new keys collide with nothing.
            new, renumbered = self.order.new_keys(
                tx, playlist_id, insert_before, count, range_length, fences
            )
            if renumbered:
                moved = self.order.keys_at(tx, playlist_id, range_start, range_length)
            tx.executemany(
                "UPDATE playlist_items SET pos = :new WHERE playlist_id = :p AND pos = :old",
                [{"p": playlist_id, "old": o, "new": n} for o, n in zip(moved, new, strict=True)],
            )
            snapshot = self.access.bump(tx, h)
            self.access.changed(playlist_id, snapshot, "items", tx=tx)
        self.order.advance(
            playlist_id,
            h["snapshot_id"],
            snapshot,
            added=new,
            removed=moved,
            renumbered=renumbered,
        )
        return snapshot

    def replace(self, playlist_id: str, user_id: str, track_ids: Sequence[str]) -> str:
        if len(track_ids) > MAX_ITEMS_PER_REQUEST:
            raise bad(
                f"at most {MAX_ITEMS_PER_REQUEST} items per request ({len(track_ids)} given)",
                "too_many_items",
            )
        with self.access.writing(playlist_id, user_id) as (tx, h):
            self._check_room(h, len(track_ids), removing=h["item_count"])
            if track_ids:
                self._check_tracks(tx, track_ids)
            tx.execute("DELETE FROM playlist_items WHERE playlist_id = :p", {"p": playlist_id})
            now = now_ms()
            tx.executemany(
                "INSERT INTO playlist_items (playlist_id, pos, track_id, added_by, added_at) "
                "VALUES (:p, :k, :t, :u, :now)",
                [
                    {"p": playlist_id, "k": k, "t": t, "u": user_id, "now": now}
                    for k, t in zip(spread_keys(len(track_ids)), track_ids, strict=True)
                ],
            )
            snapshot = self.access.bump(tx, h, len(track_ids) - h["item_count"])
            self.access.changed(playlist_id, snapshot, "items", tx=tx)
        self.order.advance(playlist_id, h["snapshot_id"], snapshot, renumbered=True)
        return snapshot

    def remove(
        self,
        playlist_id: str,
        user_id: str,
        *,
        tracks: Sequence[RemoveSpec] = (),
        positions: Sequence[int] = (),
        snapshot_id: str | None = None,
    ) -> str:
        """Remove every occurrence of tracks, or the items at positions (of one snapshot)."""
        if not tracks and not positions:
            raise bad("nothing to remove: give tracks or positions", "no_items")
        n_positions = len(positions) + sum(len(t.positions or ()) for t in tracks)
        if len(tracks) > MAX_ITEMS_PER_REQUEST or n_positions > MAX_ITEMS_PER_REQUEST:
            raise bad(f"at most {MAX_ITEMS_PER_REQUEST} items per request", "too_many_items")
        with self.access.writing(playlist_id, user_id, snapshot_id=snapshot_id) as (tx, h):
            count = h["item_count"]
            wanted: dict[int, str | None] = {p: None for p in positions}
            for spec in tracks:
                for p in spec.positions or ():
                    wanted[p] = spec.track_id
            for p in wanted:
                if not 0 <= p < count:
                    raise bad(
                        f"position {p} is outside the playlist (0..{count - 1})", "invalid_position"
                    )
            keys: list[str] = []
            if wanted:
                lo, hi = min(wanted), max(wanted)
                fences = self.order.fences(tx, h, build=True)
                window = self.order.rows_at(
                    tx, playlist_id, lo, hi - lo + 1, fences, "pos, track_id"
                )
                for p, track_id in sorted(wanted.items()):
                    row = window[p - lo]
                    if track_id is not None and row["track_id"] != track_id:
                        raise bad(
                            f"position {p} holds {row['track_id']!r}, not {track_id!r}",
                            "position_mismatch",
                        )
                    keys.append(row["pos"])
            removed: list[str] = []
            everywhere = sorted({t.track_id for t in tracks if t.positions is None})
            if everywhere:
                removed += _delete_items(tx, playlist_id, "track_id", everywhere)
            if keys:
                removed += _delete_items(tx, playlist_id, "pos", keys)
            if not removed:
                return h["snapshot_id"]
            snapshot = self.access.bump(tx, h, -len(removed))
            self.access.changed(playlist_id, snapshot, "items", tx=tx)
        self.order.advance(playlist_id, h["snapshot_id"], snapshot, removed=removed)
        return snapshot
