"""Who may see and change a playlist, and the write transaction every change runs in.

Public playlists are readable by everyone; private ones by their owner and
collaborators only (404 to anyone else, so their existence does not leak). The
owner edits; collaborators edit when the playlist is collaborative; anyone else
who can see the playlist gets 403. Details and collaborators: the owner only.

Every write runs in :meth:`PlaylistAccess.writing`: it locks the header row
first (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already
serialises writers), so concurrent editors of one playlist queue instead of
inventing the same key, and checks an optional ``snapshot_id`` precondition (a
stale one is a 409). :meth:`PlaylistAccess.bump` then draws the new
``snapshot_id`` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from delivery.db import Database, Transaction
from delivery.errors import BadRequest, Conflict, Forbidden, NotFound
from delivery.events import PLAYLIST_CHANGED, EventBus
from delivery.modules.ids import check_playlist_id, new_snapshot_id, now_ms

HEADER_COLS = (
    "playlist_id, owner_id, name, description, public, collaborative, snapshot_id, version, "
    "item_count, follower_count, created_at, updated_at"
)

Header = dict[str, Any]


def not_found(playlist_id: str) -> NotFound:
    return NotFound(f"playlist {playlist_id!r} not found", code="playlist_not_found")


def bad(message: str, code: str = "bad_request") -> BadRequest:
    return BadRequest(message, code=code)


class PlaylistAccess:
    def __init__(self, db: Database, events: EventBus) -> None:
        self.db = db
        self.events = events
        self._pg = db.dialect == "postgresql"

    def get(self, playlist_id: str, user_id: str) -> Header:
        """The header of a playlist the user may see (404 otherwise)."""
        check_playlist_id(playlist_id)
        with self.db.transaction(write=False) as tx:
            return self.readable(tx, self.header(tx, playlist_id), user_id, playlist_id)

    @staticmethod
    def header(tx: Transaction, playlist_id: str, *, lock: bool = False) -> Header | None:
        suffix = " FOR UPDATE" if lock else ""
        return tx.fetchone(
            f"SELECT {HEADER_COLS} FROM playlists WHERE playlist_id = :p{suffix}",
            {"p": playlist_id},
        )

    @staticmethod
    def is_collaborator(tx: Transaction, playlist_id: str, user_id: str) -> bool:
        return (
            tx.fetchone(
                "SELECT 1 AS x FROM playlist_collaborators WHERE playlist_id = :p AND user_id = :u",
                {"p": playlist_id, "u": user_id},
            )
            is not None
        )

    def readable(
        self, tx: Transaction, h: Header | None, user_id: str, playlist_id: str | None = None
    ) -> Header:
        """``h`` if the user may see it; else the very 404 an unknown id gets (no leak)."""
        if h is not None:
            if h["public"] or h["owner_id"] == user_id:
                return h
            if self.is_collaborator(tx, h["playlist_id"], user_id):
                return h
        if playlist_id is None and h is not None:
            playlist_id = h["playlist_id"]
        if playlist_id is None:
            raise NotFound("playlist not found", code="playlist_not_found")
        raise not_found(playlist_id)

    def check_editor(self, tx: Transaction, h: Header, user_id: str) -> None:
        if h["owner_id"] == user_id:
            return
        if h["collaborative"] and self.is_collaborator(tx, h["playlist_id"], user_id):
            return
        raise Forbidden(
            "only the owner and collaborators of a collaborative playlist may change it",
            code="not_playlist_editor",
        )

    @contextmanager
    def writing(
        self,
        playlist_id: str,
        user_id: str,
        *,
        snapshot_id: str | None = None,
        owner_only: bool = False,
    ) -> Iterator[tuple[Transaction, Header]]:
        check_playlist_id(playlist_id)
        with self.db.transaction() as tx:
            h = self.readable(tx, self.header(tx, playlist_id, lock=self._pg), user_id, playlist_id)
            if owner_only:
                if h["owner_id"] != user_id:
                    raise Forbidden("only the owner may do this", code="not_playlist_owner")
            else:
                self.check_editor(tx, h, user_id)
            if snapshot_id is not None and snapshot_id != h["snapshot_id"]:
                raise Conflict(
                    f"snapshot_id {snapshot_id[:40]!r} is not the playlist's current one; "
                    "reload it and retry",
                    code="snapshot_conflict",
                )
            yield tx, h

    def bump(self, tx: Transaction, h: Header, delta_items: int = 0, **details: Any) -> str:
        version = h["version"] + 1
        snapshot = new_snapshot_id(version)
        sets = ", ".join(f"{k} = :{k}" for k in details)
        tx.execute(
            "UPDATE playlists SET snapshot_id = :s, version = :v, "
            "item_count = item_count + :d, updated_at = :now"
            + (f", {sets}" if sets else "")
            + " WHERE playlist_id = :p",
            {
                "s": snapshot,
                "v": version,
                "d": delta_items,
                "now": now_ms(),
                "p": h["playlist_id"],
                **details,
            },
        )
        return snapshot

    def changed(self, playlist_id: str, snapshot_id: str, change: str, *, tx: Transaction) -> None:
        """Announce a change IN its transaction (the event commits with it, or not at all)."""
        self.events.publish(
            PLAYLIST_CHANGED,
            {"playlist_id": playlist_id, "snapshot_id": snapshot_id, "change": change},
            tx=tx,
        )
