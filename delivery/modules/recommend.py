"""Recommendations: the offline build (``delivery recommend build``) and its readers.

The build reads play counts per (user, track) from ``plays`` (aggregated by the
database, streamed), computes the similar tracks of every track and every user's
"for you" list (:mod:`delivery.modules.recommend_math`), and stores them as a new
*build*: rows of ``track_neighbours`` and ``user_recommendations`` keyed by a fresh
``build_id``, written in batches of :data:`WRITE_BATCH` rows. One statement then
marks the build complete; readers always use the newest complete build, so a
request sees the previous set or the new one, never a mix, and the service keeps
serving (and recording plays) while a build runs. Rows of older builds are deleted
afterwards. Running it again is harmless (a schedule may run it as often as wanted):
a build that fails or is killed leaves a ``running``/``failed`` row that readers
ignore and the next complete build cleans up.

Before the first build, "for you" falls back to the most played tracks the user does
not already play often (``source: "popular"``), and a radio holds the seed alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from delivery.db import Database
from delivery.errors import NotFound
from delivery.modules import recommend_math as rm
from delivery.modules.ids import check_track_id, now_ms
from delivery.settings import DeliverySettings

WRITE_BATCH = 5000
READ_PROGRESS_EVERY = 100_000
TRACK_COLS = (
    "t.version, t.title, t.artist, t.album, t.artist_id, t.album_id, t.year, t.duration_ms, t.plays"
)
_CURRENT = (
    "(SELECT MAX(build_id) FROM recommend_builds WHERE status = 'complete')"  # newest complete
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildReport:
    build_id: int
    plays: int
    pairs: int
    users: int
    tracks: int
    neighbour_rows: int
    recommendation_rows: int
    compute_s: float
    total_s: float

    def summary(self) -> str:
        return (
            f"build {self.build_id}: {self.plays} plays ({self.pairs} user-track pairs), "
            f"{self.users} users, {self.tracks} tracks -> {self.neighbour_rows} neighbours, "
            f"{self.recommendation_rows} recommendations in {self.total_s:.1f} s "
            f"(compute {self.compute_s:.1f} s)"
        )


class RecommendService:
    def __init__(self, db: Database, settings: DeliverySettings) -> None:
        self.db = db
        self.settings = settings

    # -- the build ------------------------------------------------------------------------

    def read_interactions(self, progress: Progress | None = None) -> tuple[rm.Interactions, int]:
        """Play counts per (user, track), streamed from the database; and the play total."""
        builder = rm.InteractionsBuilder()
        plays = 0
        with self.db.transaction(write=False) as tx:
            for row in tx.iterate(
                "SELECT user_id, track_id, COUNT(*) AS n FROM plays GROUP BY user_id, track_id"
            ):
                n = int(row["n"])
                builder.add(row["user_id"], row["track_id"], n)
                plays += n
                if progress is not None and len(builder) % READ_PROGRESS_EVERY == 0:
                    progress(f"read {len(builder)} user-track pairs ({plays} plays)")
        return builder.build(), plays

    def build(
        self,
        *,
        neighbours: int | None = None,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> BuildReport:
        say = progress or (lambda _line: None)
        k = neighbours or self.settings.recommend_neighbours
        n = size or self.settings.recommend_size
        started = time.perf_counter()
        with self.db.transaction() as tx:
            row = tx.fetchone(
                "INSERT INTO recommend_builds (status, started_at) VALUES ('running', :t) "
                "RETURNING build_id",
                {"t": now_ms()},
            )
        build_id = int(row["build_id"])
        try:
            say(f"build {build_id}: reading plays")
            data, plays = self.read_interactions(say)
            say(
                f"read {plays} plays: {data.matrix.nnz} user-track pairs, "
                f"{len(data.users)} users, {len(data.items)} tracks"
            )
            t0 = time.perf_counter()
            nb = rm.item_neighbours(
                data.matrix,
                k=k,
                alpha=self.settings.recommend_popularity_alpha,
                shrink=self.settings.recommend_shrink,
                progress=_every_tenth(say, "similar tracks"),
            )
            fy = rm.for_you(
                data.matrix,
                nb,
                n=n,
                exclude_min_plays=self.settings.recommend_exclude_min_plays,
                progress=_every_tenth(say, "for you"),
            )
            compute_s = time.perf_counter() - t0
            say(f"computed in {compute_s:.1f} s; writing")
            nb_rows = self._write(
                build_id, "track_neighbours", "track_id", "neighbour_id", nb, data.items,
                data.items, say,
            )  # fmt: skip
            fy_rows = self._write(
                build_id, "user_recommendations", "user_id", "track_id", fy, data.users,
                data.items, say,
            )  # fmt: skip
            total_s = time.perf_counter() - started
            with self.db.transaction() as tx:
                tx.execute(
                    "UPDATE recommend_builds SET status = 'complete', finished_at = :t, "
                    "plays = :p, users = :u, tracks = :n, seconds = :s WHERE build_id = :b",
                    {
                        "t": now_ms(),
                        "p": plays,
                        "u": len(data.users),
                        "n": len(data.items),
                        "s": total_s,
                        "b": build_id,
                    },
                )
        except BaseException:
            self._discard(build_id, "failed")
            raise
        self._drop_older_than(build_id)
        return BuildReport(
            build_id=build_id,
            plays=plays,
            pairs=int(data.matrix.nnz),
            users=len(data.users),
            tracks=len(data.items),
            neighbour_rows=nb_rows,
            recommendation_rows=fy_rows,
            compute_s=compute_s,
            total_s=time.perf_counter() - started,
        )

    def _write(
        self,
        build_id: int,
        table: str,
        key_col: str,
        value_col: str,
        m,
        keys: list[str],
        values: list[str],
        say: Progress,
    ) -> int:
        rows, cols, scores, ranks = rm.ranked(m)
        total = len(rows)
        sql = (
            f"INSERT INTO {table} (build_id, {key_col}, rank, {value_col}, score) "
            "VALUES (:b, :k, :r, :v, :s)"
        )
        report = _every_tenth(say, f"{table}: rows written")
        for start in range(0, total, WRITE_BATCH):
            stop = min(total, start + WRITE_BATCH)
            batch = [
                {"b": build_id, "k": keys[r], "r": rank, "v": values[c], "s": s}
                for r, c, s, rank in zip(
                    rows[start:stop].tolist(),
                    cols[start:stop].tolist(),
                    scores[start:stop].tolist(),
                    ranks[start:stop].tolist(),
                    strict=True,
                )
            ]
            with self.db.transaction() as tx:
                tx.executemany(sql, batch)
            report(stop, total)
        return total

    def _discard(self, build_id: int, status: str) -> None:
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "UPDATE recommend_builds SET status = :s WHERE build_id = :b",
                    {"s": status, "b": build_id},
                )
                for table in ("track_neighbours", "user_recommendations"):
                    tx.execute(f"DELETE FROM {table} WHERE build_id = :b", {"b": build_id})
        except Exception:  # the original error matters more; the next build cleans up
            pass

    def _drop_older_than(self, build_id: int) -> None:
        with self.db.transaction() as tx:
            for table in ("track_neighbours", "user_recommendations", "recommend_builds"):
                tx.execute(f"DELETE FROM {table} WHERE build_id < :b", {"b": build_id})

    # -- readers --------------------------------------------------------------------------

    def current_build(self) -> dict[str, Any] | None:
        with self.db.transaction(write=False) as tx:
            return tx.fetchone(f"SELECT * FROM recommend_builds WHERE build_id = {_CURRENT}")

    def for_you(
        self, user_id: str, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int, str]:
        """One page of the user's list: (rows, total, source: "personal" | "popular")."""
        with self.db.transaction(write=False) as tx:
            # One statement: on PostgreSQL each statement has its own snapshot, and a build
            # completing in between must not split the page from its total.
            rows = tx.fetchall(
                f"SELECT r.track_id, r.score, COUNT(*) OVER () AS total, {TRACK_COLS} "
                "FROM user_recommendations r LEFT JOIN tracks t ON t.track_id = r.track_id "
                f"WHERE r.build_id = {_CURRENT} AND r.user_id = :u "
                "ORDER BY r.rank LIMIT :n OFFSET :o",
                {"u": user_id, "n": limit, "o": offset},
            )
            if rows:
                return rows, int(rows[0]["total"]), "personal"
            if offset > 0:
                total = tx.fetchone(
                    "SELECT COUNT(*) AS n FROM user_recommendations "
                    f"WHERE build_id = {_CURRENT} AND user_id = :u",
                    {"u": user_id},
                )["n"]
                if total:
                    return [], int(total), "personal"
            # No list for this user (new, or no build yet): the chart minus what they know.
            popular = tx.fetchall(
                f"SELECT t.track_id, {TRACK_COLS} FROM tracks t WHERE t.plays > 0 "
                "AND t.track_id NOT IN (SELECT track_id FROM plays WHERE user_id = :u "
                "GROUP BY track_id HAVING COUNT(*) >= :m) "
                "ORDER BY t.plays DESC, t.track_id LIMIT :n",
                {
                    "u": user_id,
                    "m": self.settings.recommend_exclude_min_plays,
                    "n": self.settings.recommend_size,
                },
            )
        return popular[offset : offset + limit], len(popular), "popular"

    def radio(self, track_id: str, *, limit: int) -> tuple[list[dict[str, Any]], str]:
        """The seed, then its similar tracks (``limit`` in all); 404 for an unknown seed.

        Source: ``"similar"``, or ``"none"`` when no build knows the seed (a radio of one).
        """
        check_track_id(track_id)
        with self.db.transaction(write=False) as tx:
            seed = tx.fetchone(
                f"SELECT t.track_id, {TRACK_COLS} FROM tracks t WHERE t.track_id = :t",
                {"t": track_id},
            )
            if seed is None:
                raise NotFound(f"track {track_id!r} not found", code="track_not_found")
            rows = tx.fetchall(
                f"SELECT r.neighbour_id AS track_id, r.score, {TRACK_COLS} "
                "FROM track_neighbours r LEFT JOIN tracks t ON t.track_id = r.neighbour_id "
                f"WHERE r.build_id = {_CURRENT} AND r.track_id = :t "
                "ORDER BY r.rank LIMIT :n",
                {"t": track_id, "n": limit - 1},
            )
        return [seed, *rows], "similar" if rows else "none"


def _every_tenth(say: Progress, what: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` printing at each further tenth."""
    last = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            say(f"{what}: {done}/{total}")

    return report
