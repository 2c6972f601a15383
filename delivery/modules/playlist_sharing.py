"""Playlists shared between users: libraries, followers and collaborators.

A user's library (``user_playlists``, partitioned by user) holds the playlists
they own, follow or collaborate on. Following a playlist also counts in its
``follower_count`` (ranking in search); collaborators are managed by the owner
and may edit the playlist while it is collaborative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from delivery.db import contains_flags
from delivery.modules.ids import check_playlist_id, check_user_id, now_ms
from delivery.modules.playlist_access import (
    HEADER_COLS,
    Header,
    PlaylistAccess,
    bad,
)


class PlaylistSharing:
    def __init__(self, access: PlaylistAccess) -> None:
        self.access = access
        self.db = access.db
        self._pg = self.db.dialect == "postgresql"

    def library(self, user_id: str, *, offset: int, limit: int) -> tuple[list[Header], int]:
        """Playlists the user owns, follows or collaborates on, most recently added first."""
        visible = (
            "FROM user_playlists u JOIN playlists p ON p.playlist_id = u.playlist_id "
            "LEFT JOIN playlist_collaborators c ON c.playlist_id = p.playlist_id "
            "AND c.user_id = :u WHERE u.user_id = :u "
            "AND (p.public OR p.owner_id = :u OR c.user_id IS NOT NULL)"
        )
        return self._library_page(visible, user_id, offset, limit)

    def user_playlists(
        self, owner_id: str, viewer_id: str, *, offset: int, limit: int
    ) -> tuple[list[Header], int]:
        """Another user's library as the viewer may see it (public ones, unless it is theirs)."""
        check_user_id(owner_id)
        if owner_id == viewer_id:
            return self.library(viewer_id, offset=offset, limit=limit)
        visible = (
            "FROM user_playlists u JOIN playlists p ON p.playlist_id = u.playlist_id "
            "WHERE u.user_id = :u AND p.public"
        )
        return self._library_page(visible, owner_id, offset, limit)

    def _library_page(
        self, visible: str, user_id: str, offset: int, limit: int
    ) -> tuple[list[Header], int]:
        """One page of a library, newest addition first, and its total.

        ``visible`` is the ``FROM ... WHERE`` clause deciding which of ``:u``'s
        playlists the viewer may see; the page and the count share it so they
        can never disagree.
        """
        params = {"u": user_id, "n": limit, "o": offset}
        cols = ", ".join(f"p.{c.strip()}" for c in HEADER_COLS.split(","))
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(
                f"SELECT {cols} {visible} ORDER BY u.added_at DESC, u.playlist_id DESC "
                "LIMIT :n OFFSET :o",
                params,
            )
            total = tx.fetchone(f"SELECT COUNT(*) AS n {visible}", params)["n"]
        return rows, total

    def follow(self, playlist_id: str, user_id: str) -> None:
        check_playlist_id(playlist_id)
        now = now_ms()
        with self.db.transaction() as tx:
            h = self.access.readable(
                tx, self.access.header(tx, playlist_id, lock=self._pg), user_id, playlist_id
            )
            added = tx.execute(
                "INSERT INTO playlist_followers (playlist_id, user_id, followed_at) "
                "VALUES (:p, :u, :t) ON CONFLICT (playlist_id, user_id) DO NOTHING",
                {"p": playlist_id, "u": user_id, "t": now},
            )
            if added:
                tx.execute(
                    "UPDATE playlists SET follower_count = follower_count + 1 "
                    "WHERE playlist_id = :p",
                    {"p": playlist_id},
                )
            tx.execute(
                "INSERT INTO user_playlists (user_id, playlist_id, added_at) VALUES (:u, :p, :t) "
                "ON CONFLICT (user_id, playlist_id) DO NOTHING",
                {"u": user_id, "p": playlist_id, "t": now},
            )
            if added:
                self.access.changed(playlist_id, h["snapshot_id"], "followers", tx=tx)

    def unfollow(self, playlist_id: str, user_id: str) -> None:
        """Leave the playlist (the owner too: it leaves their library, like Spotify).

        A private playlist the caller cannot see answers 404, exactly like an unknown
        id, unless they follow it (it went private after they followed: they may leave).
        """
        check_playlist_id(playlist_id)
        with self.db.transaction() as tx:
            h = self.access.header(tx, playlist_id, lock=self._pg)
            removed = h is not None and tx.execute(
                "DELETE FROM playlist_followers WHERE playlist_id = :p AND user_id = :u",
                {"p": playlist_id, "u": user_id},
            )
            if not removed:
                # 404 for an unknown id and for one the caller may not see, alike.
                h = self.access.readable(tx, h, user_id, playlist_id)
            if removed:
                tx.execute(
                    "UPDATE playlists SET follower_count = follower_count - 1 "
                    "WHERE playlist_id = :p",
                    {"p": playlist_id},
                )
            tx.execute(
                "DELETE FROM user_playlists WHERE user_id = :u AND playlist_id = :p",
                {"u": user_id, "p": playlist_id},
            )
            if removed:
                self.access.changed(playlist_id, h["snapshot_id"], "followers", tx=tx)

    def followers_contain(
        self, playlist_id: str, viewer_id: str, user_ids: Sequence[str]
    ) -> list[bool]:
        self.access.get(playlist_id, viewer_id)
        with self.db.transaction(write=False) as tx:
            return contains_flags(
                tx,
                "SELECT user_id FROM playlist_followers WHERE playlist_id = :p "
                "AND user_id IN ({ids})",
                user_ids,
                {"p": playlist_id},
            )

    def collaborators(self, playlist_id: str, viewer_id: str) -> list[dict[str, Any]]:
        self.access.get(playlist_id, viewer_id)
        with self.db.transaction(write=False) as tx:
            return tx.fetchall(
                "SELECT user_id, added_at FROM playlist_collaborators WHERE playlist_id = :p "
                "ORDER BY user_id",
                {"p": playlist_id},
            )

    def add_collaborators(self, playlist_id: str, owner_id: str, user_ids: Sequence[str]) -> None:
        now = now_ms()
        with self.access.writing(playlist_id, owner_id, owner_only=True) as (tx, _h):
            for user in user_ids:
                if user == owner_id:
                    raise bad("the owner is not a collaborator of their own playlist")
                tx.execute(
                    "INSERT INTO playlist_collaborators (playlist_id, user_id, added_at) "
                    "VALUES (:p, :u, :t) ON CONFLICT (playlist_id, user_id) DO NOTHING",
                    {"p": playlist_id, "u": user, "t": now},
                )
                # A collaborator finds the playlist in their library.
                tx.execute(
                    "INSERT INTO user_playlists (user_id, playlist_id, added_at) "
                    "VALUES (:u, :p, :t) ON CONFLICT (user_id, playlist_id) DO NOTHING",
                    {"u": user, "p": playlist_id, "t": now},
                )

    def remove_collaborators(
        self, playlist_id: str, owner_id: str, user_ids: Sequence[str]
    ) -> None:
        with self.access.writing(playlist_id, owner_id, owner_only=True) as (tx, _h):
            for user in user_ids:
                tx.execute(
                    "DELETE FROM playlist_collaborators WHERE playlist_id = :p AND user_id = :u",
                    {"p": playlist_id, "u": user},
                )
                followed = tx.fetchone(
                    "SELECT 1 AS x FROM playlist_followers WHERE playlist_id = :p AND user_id = :u",
                    {"p": playlist_id, "u": user},
                )
                if followed is None:
                    tx.execute(
                        "DELETE FROM user_playlists WHERE user_id = :u AND playlist_id = :p",
                        {"u": user, "p": playlist_id},
                    )
