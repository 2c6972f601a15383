"""Follows between users, follow suggestions and "friends who listened".

Each follow is written twice in one transaction — into my ``user_following``
partition and into their ``user_followers`` partition — so both lists are one
partition read, as they would be in a wide-column store. Lists page by cursor:
the cursor is the last user id of the page (Spotify's ``after``), which is the
partition's clustering order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from delivery.db import Database, contains_flags
from delivery.errors import BadRequest
from delivery.modules.bounds import epoch_ms_in_range
from delivery.modules.ids import check_track_id, check_user_id, now_ms
from delivery.modules.paging import decode_cursor, encode_cursor
from delivery.settings import DeliverySettings

MAX_IDS = 50


class SocialService:
    def __init__(self, db: Database, settings: DeliverySettings) -> None:
        self.db = db
        self.settings = settings

    def _ids(self, me: str, ids: Sequence[str]) -> list[str]:
        for user_id in ids:
            check_user_id(user_id)
            if user_id == me:
                raise BadRequest("you cannot follow yourself", code="self_follow")
        return list(ids)

    def follow(self, me: str, ids: Sequence[str]) -> None:
        ids = self._ids(me, ids)
        now = now_ms()
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO user_following (user_id, followee_id, followed_at) "
                "VALUES (:me, :u, :t) ON CONFLICT (user_id, followee_id) DO NOTHING",
                [{"me": me, "u": u, "t": now} for u in ids],
            )
            tx.executemany(
                "INSERT INTO user_followers (user_id, follower_id, followed_at) "
                "VALUES (:u, :me, :t) ON CONFLICT (user_id, follower_id) DO NOTHING",
                [{"me": me, "u": u, "t": now} for u in ids],
            )

    def unfollow(self, me: str, ids: Sequence[str]) -> None:
        for user_id in ids:
            check_user_id(user_id)
        with self.db.transaction() as tx:
            tx.executemany(
                "DELETE FROM user_following WHERE user_id = :me AND followee_id = :u",
                [{"me": me, "u": u} for u in ids],
            )
            tx.executemany(
                "DELETE FROM user_followers WHERE user_id = :u AND follower_id = :me",
                [{"me": me, "u": u} for u in ids],
            )

    def contains(self, me: str, ids: Sequence[str]) -> list[bool]:
        with self.db.transaction(write=False) as tx:
            return contains_flags(
                tx,
                "SELECT followee_id FROM user_following WHERE user_id = :me "
                "AND followee_id IN ({ids})",
                ids,
                {"me": me},
            )

    def _list(
        self, table: str, other: str, user_id: str, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None, int]:
        check_user_id(user_id)
        params = {"u": user_id, "after": after or "", "n": limit + 1}
        with self.db.transaction(write=False) as tx:
            rows = tx.fetchall(
                f"SELECT {other} AS user_id, followed_at FROM {table} "
                f"WHERE user_id = :u AND {other} > :after ORDER BY {other} LIMIT :n",
                params,
            )
            total = tx.fetchone(f"SELECT COUNT(*) AS n FROM {table} WHERE user_id = :u", params)[
                "n"
            ]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1]["user_id"] if more else None), total

    def following(self, user_id: str, *, after: str | None, limit: int):
        """(rows, next cursor or None, total) of whom ``user_id`` follows."""
        return self._list("user_following", "followee_id", user_id, after, limit)

    def followers(self, user_id: str, *, after: str | None, limit: int):
        return self._list("user_followers", "follower_id", user_id, after, limit)

    def suggestions(self, me: str, *, limit: int) -> list[dict[str, Any]]:
        """People my follows follow and I do not, ranked by how many of my follows do.

        Only the ``DELIVERY_FOLLOW_SUGGESTIONS_SCAN`` most recent of my follows are
        considered, so the cost is bounded however many people I follow.
        """
        with self.db.transaction(write=False) as tx:
            return tx.fetchall(
                "SELECT f2.followee_id AS user_id, COUNT(*) AS mutual_count "
                "FROM (SELECT followee_id FROM user_following WHERE user_id = :me "
                "      ORDER BY followed_at DESC LIMIT :scan) f1 "
                "JOIN user_following f2 ON f2.user_id = f1.followee_id "
                "WHERE f2.followee_id <> :me AND NOT EXISTS ("
                "  SELECT 1 FROM user_following x "
                "  WHERE x.user_id = :me AND x.followee_id = f2.followee_id) "
                "GROUP BY f2.followee_id ORDER BY mutual_count DESC, user_id LIMIT :n",
                {"me": me, "scan": self.settings.follow_suggestions_scan, "n": limit},
            )

    def friends_listened(
        self, me: str, track_id: str, *, limit: int, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None, int]:
        """People I follow who played the track, most recent first; cursor = last of a page.

        The join is driven from my follow partition, one primary-key probe into the
        track's listener partition per person I follow: its cost is bounded by how
        many people I follow, never by how many people played a hit. (SQLite's
        ``CROSS JOIN`` and PostgreSQL's ``LATERAL`` pin that order; a planner would
        otherwise scan the listeners of a popular track.)
        """
        check_track_id(track_id)
        cursor_at: tuple[int, str] | None = None
        if before:
            at, user = decode_cursor(before, 2)
            try:
                cursor_at = (int(at), user)
            except ValueError:
                raise BadRequest("invalid cursor", code="invalid_cursor") from None
            if not epoch_ms_in_range(cursor_at[0]):  # nor past what the database can bind
                raise BadRequest("invalid cursor", code="invalid_cursor")
        if self.db.dialect == "postgresql":
            matches = (
                "SELECT l.user_id, l.last_played_at, l.play_count, COUNT(*) OVER () AS total "
                "FROM user_following f CROSS JOIN LATERAL (SELECT user_id, last_played_at, "
                "play_count FROM track_listeners WHERE track_id = :t "
                "AND user_id = f.followee_id) l WHERE f.user_id = :me"
            )
        else:
            matches = (
                "SELECT l.user_id, l.last_played_at, l.play_count, COUNT(*) OVER () AS total "
                "FROM user_following f CROSS JOIN track_listeners l WHERE f.user_id = :me "
                "AND l.track_id = :t AND l.user_id = f.followee_id"
            )
        params: dict[str, Any] = {"me": me, "t": track_id, "n": limit + 1}
        page_filter = ""
        if cursor_at is not None:
            params["bt"], params["bu"] = cursor_at
            page_filter = " WHERE last_played_at < :bt OR (last_played_at = :bt AND user_id > :bu)"
        with self.db.transaction(write=False) as tx:
            # The total is counted over every match, before the cursor and the limit.
            rows = tx.fetchall(
                f"SELECT * FROM ({matches}) m{page_filter} "
                "ORDER BY last_played_at DESC, user_id LIMIT :n",
                params,
            )
            if rows:
                total = rows[0]["total"]
            else:
                total = tx.fetchone(f"SELECT COUNT(*) AS n FROM ({matches}) m", params)["n"]
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = encode_cursor(rows[-1]["last_played_at"], rows[-1]["user_id"]) if more else None
        return rows, cursor, total
