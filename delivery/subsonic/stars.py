"""Stars: a user's favourite songs, albums and artists (``star``, ``unstar``, ``getStarred2``).

One partition per user in the ``stars`` table (migration 13), keyed by kind and id.
Starring is idempotent (a second star keeps the first time), unstarring something never
starred is not an error, as in the reference server. Only items in the catalogue can be
starred, so the table cannot fill with made-up ids; a user holds at most
:data:`MAX_STARS`.
"""

from __future__ import annotations

from collections.abc import Sequence

from delivery.db import Database, in_list
from delivery.modules.ids import iso_ms, now_ms

KINDS = ("song", "album", "artist")
MAX_STARS = 10_000
_TABLE = {"song": ("tracks", "track_id"), "album": ("albums", "album_id"),
          "artist": ("artists", "artist_id")}  # fmt: skip


class TooManyStars(ValueError):
    pass


class UnknownItem(LookupError):
    def __init__(self, kind: str, item_id: str) -> None:
        super().__init__(f"{kind} {item_id[:64]!r}")
        self.kind = kind


class Stars:
    def __init__(self, db: Database) -> None:
        self.db = db

    def star(self, user_id: str, items: dict[str, Sequence[str]]) -> None:
        """Star every item of ``items`` (kind -> ids), all or none: an id the catalogue
        does not hold raises :class:`UnknownItem` and nothing is written."""
        now = now_ms()
        with self.db.transaction() as tx:
            for kind, ids in items.items():
                if not ids:
                    continue
                table, column = _TABLE[kind]
                placeholders, params = in_list(sorted(set(ids)))
                known = {
                    r["id"]
                    for r in tx.fetchall(
                        f"SELECT {column} AS id FROM {table} WHERE {column} IN ({placeholders})",
                        params,
                    )
                }
                for item_id in ids:
                    if item_id not in known:
                        raise UnknownItem(kind, item_id)  # rolls the transaction back
                tx.executemany(
                    "INSERT INTO stars (user_id, kind, item_id, starred_at) "
                    "VALUES (:u, :k, :i, :t) ON CONFLICT (user_id, kind, item_id) DO NOTHING",
                    [{"u": user_id, "k": kind, "i": i, "t": now} for i in sorted(known)],
                )
            held = tx.fetchone("SELECT COUNT(*) AS n FROM stars WHERE user_id = :u", {"u": user_id})
            if held["n"] > MAX_STARS:
                raise TooManyStars(f"at most {MAX_STARS} stars per user")

    def unstar(self, user_id: str, items: dict[str, Sequence[str]]) -> None:
        with self.db.transaction() as tx:
            for kind, ids in items.items():
                if not ids:
                    continue
                placeholders, params = in_list(sorted(set(ids)))
                tx.execute(
                    "DELETE FROM stars WHERE user_id = :u AND kind = :k "
                    f"AND item_id IN ({placeholders})",
                    {"u": user_id, "k": kind, **params},
                )

    def starred(self, user_id: str) -> dict[str, dict[str, str]]:
        """kind -> {item id: starred time (ISO 8601)}, oldest star first."""
        out: dict[str, dict[str, str]] = {k: {} for k in KINDS}
        with self.db.transaction(write=False) as tx:
            for row in tx.iterate(
                "SELECT kind, item_id, starred_at FROM stars WHERE user_id = :u "
                "ORDER BY starred_at, kind, item_id LIMIT :n",
                {"u": user_id, "n": MAX_STARS},
            ):
                if row["kind"] in out:
                    out[row["kind"]][row["item_id"]] = iso_ms(row["starred_at"])
        return out
