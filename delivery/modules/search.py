"""Search over tracks, artists, albums and public playlists, on either backend.

Ranking on both: ``relevance * (1 + a * ln(1 + plays))`` (``a`` =
``DELIVERY_SEARCH_POPULARITY_WEIGHT``), where ``plays`` is a track's play count,
an artist's or album's summed play count, or a playlist's follower count.

* SQLite: FTS5 tables (``unicode61 remove_diacritics 2``, prefix indexes 2-4)
  with ``bm25`` column weights title 10 > artist 4 > album 2.
* PostgreSQL: weighted ``tsvector`` (A title, B artist, C album) in GIN, ranked
  by ``ts_rank`` with weights {D 0.1, C 0.2, B 0.4, A 1.0}; accents folded by
  ``unaccent``. When the words match nothing, each word is replaced by the
  indexed words most similar to it (``pg_trgm`` on the ``search_terms``
  vocabulary, GIN-indexed) and the query runs again: typo tolerance
  ("beyonse" finds "Beyoncé") at the cost of a small lookup, not a scan.

Playlists enter the index through the ``playlist.changed`` event
(:meth:`SearchService.on_playlist_changed`): public ones are indexed, private
ones removed.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from delivery.db import Database, Transaction
from delivery.events import Event
from delivery.modules.search_query import (
    SearchQuery,
    Target,
    applicable,
    free_words,
    fts5_match,
    tsquery,
)
from delivery.modules.settings import ModulesSettings
from delivery.modules.track_index import ADD_TERMS

TYPES = ("track", "artist", "album", "playlist")


@dataclass(frozen=True)
class _Table:
    target: Target
    table: str  # the table holding the text (its alias: "x")
    cols: str
    plays: str
    order_id: str
    join: str = ""
    year: str | None = None
    where: str = ""
    bm25_weights: str = "1.0"


_TRACK_COLS = (
    "x.track_id, x.version, x.title, x.artist, x.album, x.artist_id, x.album_id, x.year, "
    "x.duration_ms"
)
_PLAYLIST_COLS = (
    "p.playlist_id, p.owner_id, p.name, p.description, p.public, p.collaborative, "
    "p.snapshot_id, p.version, p.item_count, p.follower_count, p.created_at, p.updated_at"
)

TABLES: dict[str, _Table] = {
    "track": _Table(
        Target({"track": ("title", "A"), "artist": ("artist", "B"), "album": ("album", "C")}, True),
        table="tracks",
        cols=_TRACK_COLS,
        plays="x.plays",
        order_id="x.track_id",
        year="x.year",
        bm25_weights="10.0, 4.0, 2.0",
    ),
    "artist": _Table(
        Target({"artist": ("name", "A")}, False),
        table="artists",
        cols="x.artist_id, x.name, x.track_count",
        plays="x.plays",
        order_id="x.artist_id",
    ),
    "album": _Table(
        Target({"album": ("title", "A"), "artist": ("artist", "B")}, True),
        table="albums",
        cols="x.album_id, x.title, x.artist, x.artist_id, x.year, x.track_count",
        plays="x.plays",
        order_id="x.album_id",
        year="x.year",
        bm25_weights="4.0, 1.0",
    ),
    "playlist": _Table(
        Target({}, False),
        table="playlist_search",
        cols=_PLAYLIST_COLS,
        plays="p.follower_count",
        join="JOIN playlists p ON p.playlist_id = x.playlist_id",
        order_id="x.playlist_id",
        where=" AND p.public",
        bm25_weights="4.0, 1.0",
    ),
}

_PG_RANK_WEIGHTS = "'{0.1, 0.2, 0.4, 1.0}'"
FUZZY_CANDIDATES = 3  # indexed words tried in place of one unmatched word


class SearchService:
    def __init__(self, db: Database, settings: ModulesSettings) -> None:
        self.db = db
        self.settings = settings
        if db.dialect == "sqlite":
            # RETURNING (playlists) and ln() (ranking) need SQLite 3.35+ with math functions.
            if sqlite3.sqlite_version_info < (3, 35):
                raise RuntimeError(
                    f"SQLite {sqlite3.sqlite_version} is too old for the delivery modules: "
                    "3.35 or newer is needed"
                )
            with db.transaction(write=False) as tx:
                try:
                    tx.fetchone("SELECT ln(2.0) AS v")
                except sqlite3.Error as exc:  # no such function: ln
                    raise RuntimeError(
                        "this SQLite build lacks math functions (ln); "
                        "use a build with SQLITE_ENABLE_MATH_FUNCTIONS"
                    ) from exc

    def search(
        self, query: SearchQuery, kind: str, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of ``kind`` results, best first, and the total number of matches."""
        spec = TABLES[kind]
        if not applicable(query, spec.target):
            return [], 0
        with self.db.transaction(write=False) as tx:
            if self.db.dialect == "sqlite":
                return self._sqlite(tx, query, spec, limit, offset)
            return self._postgres(tx, query, spec, limit, offset)

    def _filters(
        self, query: SearchQuery, spec: _Table, limit: int, offset: int
    ) -> tuple[dict[str, Any], str]:
        """Parameters and extra WHERE terms both dialects share (paging, popularity, year)."""
        params: dict[str, Any] = {
            "a": self.settings.search_popularity_weight,
            "limit": limit,
            "offset": offset,
        }
        where = spec.where
        if query.year is not None and spec.year:
            where += f" AND {spec.year} BETWEEN :y0 AND :y1"
            params["y0"], params["y1"] = query.year
        return params, where

    # -- SQLite ---------------------------------------------------------------------

    def _sqlite(
        self, tx: Transaction, query: SearchQuery, spec: _Table, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        params, where = self._filters(query, spec, limit, offset)
        match = fts5_match(query, spec.target)
        boost = f"(1.0 + :a * ln(1.0 + {spec.plays}))"
        if match is None:
            source = f"{spec.table} x {spec.join} WHERE 1 = 1 {where}"
            score = boost
        else:
            fts = f"{spec.table}_fts"
            source = (
                f"{fts} JOIN {spec.table} x ON x.rid = {fts}.rowid {spec.join} "
                f"WHERE {fts} MATCH :m {where}"
            )
            score = f"-bm25({fts}, {spec.bm25_weights}) * {boost}"
            params["m"] = match
            if not where:  # nothing but the text filters: count without the join
                count = f"SELECT COUNT(*) AS n FROM {fts} WHERE {fts} MATCH :m"
                return self._page(tx, spec, source, score, params, count)
        return self._page(tx, spec, source, score, params)

    # -- PostgreSQL -----------------------------------------------------------------

    def _postgres(
        self, tx: Transaction, query: SearchQuery, spec: _Table, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        params, where = self._filters(query, spec, limit, offset)
        boost = f"(1 + :a * ln(1 + {spec.plays}))"
        text = tsquery(query, spec.target)
        if text is None:
            source = f"{spec.table} x {spec.join} WHERE TRUE {where}"
            return self._page(tx, spec, source, boost, params)
        source = (
            f"to_tsquery('delivery_search', CAST(:q AS TEXT)) q, {spec.table} x {spec.join} "
            f"WHERE x.search @@ q {where}"
        )
        score = f"ts_rank({_PG_RANK_WEIGHTS}, x.search, q) * {boost}"
        rows, total = self._page(tx, spec, source, score, {**params, "q": text})
        if total or not self.settings.search_fuzzy or not (query.words or query.phrases):
            return rows, total
        # Nothing matched word for word. Words the index does not know (typos) are replaced
        # by the indexed words most like them (pg_trgm on the search_terms vocabulary, a
        # small GIN-indexed table) and the query runs again: "beyonse" becomes
        # ('beyonce' | ...). Known words are left alone, so two real words that simply never
        # meet cost two key lookups, not a retry.
        alternatives = self._corrections(tx, query)
        if not alternatives:
            return rows, total
        corrected = tsquery(query, spec.target, alternatives=alternatives)
        if corrected is None:
            return rows, total
        return self._page(tx, spec, source, score, {**params, "q": corrected})

    def _corrections(self, tx: Transaction, query: SearchQuery) -> dict[str, list[str]]:
        """Unknown word -> the indexed words to try instead (empty: every word is known)."""
        typing = query.words[-1] if query.prefix and query.words else None
        out: dict[str, list[str]] = {}
        for word in free_words(query):
            norm = tx.fetchone("SELECT lower(unaccent(CAST(:w AS TEXT))) AS n", {"w": word})["n"]
            if word == typing:  # a prefix being typed: known if some indexed word starts so
                known = tx.fetchone(
                    "SELECT 1 AS x FROM search_terms WHERE term LIKE :p LIMIT 1",
                    {"p": norm + "%"},
                )
            else:
                known = tx.fetchone("SELECT 1 AS x FROM search_terms WHERE term = :n", {"n": norm})
            if known is not None:
                continue
            if not out:
                tx.execute(
                    "SELECT set_config('pg_trgm.similarity_threshold', :th, true)",
                    {"th": str(self.settings.search_fuzzy_threshold)},
                )
            # The planner underrates the trigram index for '%' and would scan the whole
            # vocabulary (tens of ms); for this one statement, it may not.
            tx.execute("SELECT set_config('enable_seqscan', 'off', true)")
            rows = tx.fetchall(
                "SELECT term FROM search_terms WHERE term % :n "
                "ORDER BY similarity(term, :n) DESC, term LIMIT :k",
                {"n": norm, "k": FUZZY_CANDIDATES},
            )
            tx.execute("SELECT set_config('enable_seqscan', 'on', true)")
            out[word] = [r["term"] for r in rows]
        return out

    # -- both -----------------------------------------------------------------------

    @staticmethod
    def _page(
        tx: Transaction,
        spec: _Table,
        source: str,
        score: str,
        params: dict[str, Any],
        count: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        rows = tx.fetchall(
            f"SELECT {spec.cols}, {spec.plays} AS plays, {score} AS score FROM {source} "
            f"ORDER BY score DESC, {spec.order_id} LIMIT :limit OFFSET :offset",
            params,
        )
        if params["offset"] == 0 and len(rows) < params["limit"]:
            return rows, len(rows)  # the whole result is on this page
        # A separate COUNT beats a window aggregate here: it never computes a rank.
        return rows, tx.fetchone(count or f"SELECT COUNT(*) AS n FROM {source}", params)["n"]

    # -- the playlist index ---------------------------------------------------------

    def reindex_playlist(self, playlist_id: str) -> None:
        with self.db.transaction() as tx:
            row = tx.fetchone(
                "SELECT name, description, public FROM playlists WHERE playlist_id = :p",
                {"p": playlist_id},
            )
            if row is None or not row["public"]:
                tx.execute("DELETE FROM playlist_search WHERE playlist_id = :p", {"p": playlist_id})
                return
            params = {"p": playlist_id, "n": row["name"], "d": row["description"]}
            if self.db.dialect == "sqlite":
                tx.execute(
                    "INSERT INTO playlist_search (playlist_id, name, description) "
                    "VALUES (:p, :n, :d) ON CONFLICT (playlist_id) DO UPDATE SET "
                    "name = excluded.name, description = excluded.description",
                    params,
                )
            else:
                tx.execute(
                    "INSERT INTO playlist_search (playlist_id, name, description, search) "
                    "VALUES (:p, :n, :d, "
                    "setweight(to_tsvector('delivery_search', CAST(:n AS TEXT)), 'A') || "
                    "setweight(to_tsvector('delivery_search', CAST(:d AS TEXT)), 'B')) "
                    "ON CONFLICT (playlist_id) DO UPDATE SET name = excluded.name, "
                    "description = excluded.description, search = excluded.search",
                    params,
                )
                tx.execute(ADD_TERMS, {"text": f"{row['name']} {row['description']}"})

    def on_playlist_changed(self, event: Event) -> None:
        """``playlist.changed`` handler (idempotent: reads the playlist's current state)."""
        if event.payload.get("change") in ("items", "followers"):
            return  # ranking reads follower counts live; only names and visibility matter
        self.reindex_playlist(str(event.payload["playlist_id"]))
