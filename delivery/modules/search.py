"""Search over tracks, artists, albums and public playlists, the same on either backend.

A query (:mod:`delivery.modules.search_query`) is a conjunction of terms, each a set of
alternatives, all made by the normalisation the index uses
(:mod:`delivery.modules.search_text`, :mod:`delivery.modules.search_index`). The service:

1. **adds typo corrections** to every word of 4+ letters, and to a 3-letter word the
   index does not know (``DELIVERY_SEARCH_FUZZY``),
   whether or not the word itself is indexed, so an obscure exact match never hides the
   famous name one typo away: the vocabulary (``search_grams``: deletion variants and
   consonant skeletons, :func:`delivery.modules.search_text.query_grams`) gives
   candidates in one indexed lookup per word, an edit distance keeps those within 1 edit
   (words of 4-5 letters) or 2 (longer) and at least ``DELIVERY_SEARCH_FUZZY_THRESHOLD``
   similar (``1 - edits / length``); the 4 closest (then the most common) join the term,
   each with a penalty growing with its edits
   (:func:`delivery.modules.search_text.typo_cost`). A word indexed in ``COMMON_WORD``
   rows or more is taken as meant (``love`` is no typo of ``live``);
2. **finds** the matching rows with the index: FTS5 ``MATCH`` on SQLite, ``tsvector @@
   tsquery`` (GIN) on PostgreSQL;
3. **ranks** them with one formula, computed in SQL on both backends from the rows'
   token and key columns, so both order alike::

       score = (coverage + bonus) * (1 + a * min(1, ln(1 + plays) / ln(1 + 10**6)))

   * ``coverage`` (0-1): each term's best field weight (title 1.0, artist 0.7, album 0.5;
     a typo or prefix alternative counts ``1 - its cost`` of that), averaged;
   * ``bonus``: the whole query equal to a field's key (title +2.0, artist +0.6, album
     +0.4) or beginning it (+1.2, +0.3, +0.2), or equal to artist and title keys together
     (+1.8: ``radiohead creep``), scaled down for typo-corrected keys;
   * popularity (a track's plays, an artist's or album's summed plays, a playlist's
     followers) is a bounded boost, at most ``1 + a`` (``DELIVERY_SEARCH_POPULARITY_WEIGHT``,
     default 0.2), reached at a million plays (1,000 plays: half of it; the ``pop``
     columns of migration 9 hold the ``min(...)``), so with ``a`` below 0.3 text comes
     first: exact title (3.0) > title prefix (2.2) > exact artist-only (1.3) > title
     contains (1.0) whatever the plays. Popularity orders what the text cannot tell
     apart, and the raw play count breaks the ties left.

   Every match is scored (in one statement, the row's few columns and a handful of
   string tests each), except when a term is common: from ``BOUNDED_FROM`` matches, the
   first pages are ranked from a bounded set of candidates read in an order that bounds
   their scores (:meth:`SearchService._bounded`), and answered only when those provably
   hold the page that ranking every match would give (``docs/search.md``).

Playlists enter the index through the ``playlist.changed`` event
(:meth:`SearchService.on_playlist_changed`): public ones are indexed, private
ones removed.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from delivery.db import Database, Transaction
from delivery.db.base import in_list
from delivery.events import Event
from delivery.modules.search_index import add_vocab, playlist_columns
from delivery.modules.search_query import (
    Alt,
    Field,
    SearchQuery,
    Target,
    applicable,
    fts5_any,
    fts5_match,
    tsquery,
    tsquery_any,
)
from delivery.modules.search_text import (
    edit_distance,
    fuzzy_eligible,
    max_edits,
    query_grams,
    typo_cost,
)
from delivery.settings import DeliverySettings
from origin.keys import is_track_id

TYPES = ("track", "artist", "album", "playlist")

MAX_CORRECTIONS = 4  # typo alternatives added to one term
FUZZY_CANDIDATES = 100  # vocabulary words checked by edit distance, per term
COMMON_WORD = 1000  # rows indexed with a word that make it too common to be a typo
# Bounded ranking (SearchService._bounded): from BOUNDED_FROM matches, a page of at most
# BOUNDED_MAX_NEED rows (offset + limit) is ranked from candidates: the rows whose key
# begins with the query when at most BOUNDED_PREFIX_ROWS do, else the most popular rows
# whose key equals it (BOUNDED_KEY_ROWS per page row, and one more); for a one-word query
# the rows holding the word itself in the best field, when at most BOUNDED_STRONG_ROWS do
# (and the word is written in at most BOUNDED_STRONG_COMMON rows); then, if those prove
# nothing, a walk down the most popular matches: BOUNDED_WALK_ROWS per page row (at least
# BOUNDED_WALK), then four times more (BOUNDED_ATTEMPTS walks in all), each only when it
# reads at most 1 / BOUNDED_WALK_SHARE of the number of matches.
BOUNDED_FROM = 1000
BOUNDED_MAX_NEED = 50
BOUNDED_KEY_ROWS = 2
BOUNDED_PREFIX_ROWS = 1000
BOUNDED_STRONG_ROWS = 100
BOUNDED_STRONG_COMMON = 2000
BOUNDED_WALK = 50
BOUNDED_WALK_ROWS = 10
BOUNDED_ATTEMPTS = 2
BOUNDED_WALK_SHARE = 1
# Plays (followers) at which the boost reaches its maximum; migration 9's ``pop`` columns
# hold ln(1 + POPULARITY_FULL) as a constant.
POPULARITY_FULL = 1_000_000


@dataclass(frozen=True)
class _Table:
    target: Target
    table: str  # the table holding the text (its alias: "x")
    cols: str
    plays: str
    order_id: str
    pop: str = "x.pop"  # min(1, ln(1 + plays) / ln(1 + POPULARITY_FULL)), kept by the database
    join: str = ""
    year: str | None = None
    where: str = ""
    # Key columns indexed with plays (migration 12): the exact-key candidates of bounded
    # ranking; empty: no bounded ranking (it needs an index on plays too).
    tier_keys: frozenset[str] = frozenset()


_TRACK_COLS = (
    "x.track_id, x.version, x.title, x.artist, x.album, x.artist_id, x.album_id, x.year, "
    "x.duration_ms"
)
_PLAYLIST_COLS = (
    "p.playlist_id, p.owner_id, p.name, p.description, p.public, p.collaborative, "
    "p.snapshot_id, p.version, p.item_count, p.follower_count, p.created_at, p.updated_at"
)

_TITLE = {"weight": "A", "score": 1.0, "exact": 2.0, "prefix": 1.2}
_ARTIST = {"score": 0.7, "exact": 0.6, "prefix": 0.3}
_COMBOS = (("k_artist", "k_title"), ("k_title", "k_artist"))

TABLES: dict[str, _Table] = {
    "track": _Table(
        Target(
            {
                "track": Field("t_title", key="k_title", **_TITLE),
                "artist": Field("t_artist", "B", key="k_artist", **_ARTIST),
                "album": Field("t_album", "C", 0.5, "k_album", 0.4, 0.2),
                "genre": Field("t_genre", "D", 0.3, free=False, mark="~"),
            },
            True,
            frozenset({"track", "artist", "album", "genre"}),
            (("k_artist", "k_title"), ("k_title", "k_artist")),
            1.8,
        ),
        table="tracks",
        cols=_TRACK_COLS,
        plays="x.plays",
        order_id="x.track_id",
        year="x.year",
        tier_keys=frozenset({"k_title"}),
    ),
    "artist": _Table(
        Target({"artist": Field("t_name", key="k_name", **_TITLE)}, False, frozenset({"artist"})),
        table="artists",
        cols="x.artist_id, x.name, x.track_count",
        plays="x.plays",
        order_id="x.artist_id",
        tier_keys=frozenset({"k_name"}),
    ),
    "album": _Table(
        Target(
            {
                "album": Field("t_title", key="k_title", **_TITLE),
                "artist": Field("t_artist", "B", key="k_artist", **_ARTIST),
            },
            True,
            frozenset({"album", "artist"}),
            _COMBOS,
            1.8,
        ),
        table="albums",
        cols="x.album_id, x.title, x.artist, x.artist_id, x.year, x.track_count",
        plays="x.plays",
        order_id="x.album_id",
        year="x.year",
        tier_keys=frozenset({"k_title"}),
    ),
    "playlist": _Table(
        Target(
            {
                "name": Field("t_name", key="k_name", **_TITLE),
                "description": Field("t_description", "B", 0.5),
            },
            False,
        ),
        table="playlist_search",
        cols=_PLAYLIST_COLS,
        plays="p.follower_count",
        pop="",  # computed from the follower count
        join="JOIN playlists p ON p.playlist_id = x.playlist_id",
        order_id="x.playlist_id",
        where=" AND p.public",
    ),
}


class SearchService:
    def __init__(self, db: Database, settings: DeliverySettings) -> None:
        self.db = db
        self.settings = settings
        self.bounded_from = BOUNDED_FROM
        self.bounded_max_need = BOUNDED_MAX_NEED
        self.bounded_walk = BOUNDED_WALK
        self.bounded_walk_rows = BOUNDED_WALK_ROWS
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
        self,
        query: SearchQuery,
        kind: str,
        *,
        limit: int,
        offset: int,
        expanded: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of ``kind`` results, best first, and the total number of matches.
        ``expanded``: ``query`` already went through :meth:`expand` (several kinds, one
        vocabulary lookup)."""
        spec = TABLES[kind]
        if not applicable(query, spec.target):
            return [], 0
        with self.db.transaction(write=False) as tx:
            if not expanded:
                query = self._expand(tx, query)
            return self._search(tx, query, spec, limit, offset)

    def track_by_id(self, text: str) -> dict[str, Any] | None:
        """The track whose id is exactly ``text`` (ids are what ``make run``, the encoder
        and share links print, so people paste them into the search box), or None."""
        text = text.strip()
        if not is_track_id(text):
            return None
        with self.db.transaction(write=False) as tx:
            return tx.fetchone(
                f"SELECT {_TRACK_COLS} FROM tracks x WHERE x.track_id = :id", {"id": text}
            )

    # -- typo tolerance ---------------------------------------------------------------

    def expand(self, query: SearchQuery) -> SearchQuery:
        """``query`` with typo corrections added to its terms (and to its keys)."""
        if not self.settings.search_fuzzy or not any(t.fuzzy for t in query.terms):
            return query
        with self.db.transaction(write=False) as tx:
            return self._expand(tx, query)

    def _expand(self, tx: Transaction, query: SearchQuery) -> SearchQuery:
        if not self.settings.search_fuzzy or not any(t.fuzzy for t in query.terms):
            return query
        terms = list(query.terms)
        keys = list(query.keys)
        free = [i for i, t in enumerate(terms) if t.field is None]
        corrections = self._corrections(tx, [(t.fuzzy, t.typing) for t in terms if t.fuzzy])
        for i, term in enumerate(terms):
            found = corrections.get(term.fuzzy)
            if not found:
                continue
            terms[i] = dataclasses.replace(
                term, alts=tuple(sorted((*term.alts, *found), key=lambda a: a.cost))
            )
            if i in free and query.keys:  # the whole query with this word corrected
                for alt in found[:2]:
                    pieces = [alt.tokens[0] if j == i else terms[j].key for j in free]
                    keys.append(("".join(pieces), 1.0 - alt.cost))
        return dataclasses.replace(query, terms=tuple(terms), keys=tuple(dict.fromkeys(keys)))

    def _corrections(self, tx: Transaction, words: list[tuple[str, bool]]) -> dict[str, list[Alt]]:
        """For each word, the indexed words within the edits it tolerates, as alternatives
        with their typo cost, closest (then most common) first. One statement for all the
        words: each word's vocabulary row and its candidates. A word indexed in
        ``COMMON_WORD`` rows or more gets none: that common, it is what the user meant,
        and its neighbours would only flood the results (``love`` is no typo of ``live``)."""
        typing = {w for w, t in words if t}
        words = [w for w in dict.fromkeys(w for w, _ in words) if max_edits(w, known=False)]
        if not words:
            return {}
        parts, params = [], {}
        for n, word in enumerate(words):
            limit = max_edits(word, known=False)
            placeholders, grams = in_list(sorted(query_grams(word, limit)), f"g{n}_")
            params.update(grams)
            params[f"w{n}"] = word
            params[f"lo{n}"], params[f"hi{n}"] = len(word) - limit, len(word) + limit
            row = f"SELECT CAST(:w{n} AS TEXT) AS word, v.term, v.n_rows FROM search_vocab v"
            parts.append(f"{row} WHERE v.term = :w{n}")  # how common the word itself is
            if not max_edits(word) and word in typing:  # a short word being typed: a prefix?
                params[f"w{n}max"] = word + "\U0010ffff"
                parts.append(
                    f"SELECT * FROM ({row} WHERE v.term > :w{n} AND v.term < :w{n}max LIMIT 1) p{n}"
                )
            parts.append(
                f"{row} WHERE v.term IN (SELECT g.term FROM search_grams g "
                f"WHERE g.gram IN ({placeholders}) AND g.term <> :w{n} "
                f"AND g.len BETWEEN :lo{n} AND :hi{n} LIMIT {FUZZY_CANDIDATES})"
            )
        candidates: dict[str, list[tuple[str, int]]] = {w: [] for w in words}
        for row in tx.fetchall(" UNION ALL ".join(parts), params):
            candidates[row["word"]].append((row["term"], row["n_rows"]))
        threshold = self.settings.search_fuzzy_threshold
        out: dict[str, list[Alt]] = {}
        for word, rows in candidates.items():
            own = [n for term, n in rows if term == word]
            if own and own[0] >= COMMON_WORD:
                continue
            # A short word is corrected only when unknown: neither indexed nor, while it
            # is typed, the beginning of an indexed word ("vec" of "vector").
            begun = word in typing and any(t.startswith(word) for t, _ in rows)
            limit = max_edits(word, known=bool(own) or begun)
            if not limit:
                continue
            found = []
            for term, n in rows:
                edits = edit_distance(word, term, limit)
                if 0 < edits <= limit and 1 - edits / max(len(word), len(term)) >= threshold:
                    found.append((typo_cost(edits, len(word)), -n, term))
            found.sort()
            out[word] = [Alt((term,), False, cost) for cost, _, term in found[:MAX_CORRECTIONS]]
        return out

    # -- finding and ranking ----------------------------------------------------------

    def _search(
        self, tx: Transaction, query: SearchQuery, spec: _Table, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        where = spec.where
        if query.year is not None and spec.year:
            where += f" AND {spec.year} BETWEEN :y0 AND :y1"
            params["y0"], params["y1"] = query.year
        sql = _Sql(self.db.dialect, params)
        boost = sql.boost(spec, self.settings.search_popularity_weight)
        if not query.has_text:  # "*" or year: only: everything, by popularity
            source = f"{spec.table} x {spec.join} WHERE 1 = 1 {where}"
            return self._page(
                tx, spec, source, boost, params, f"SELECT COUNT(*) AS n FROM {source}"
            )
        score = f"({sql.text_score(query, spec.target)}) * {boost}"
        count = None
        if self.db.dialect == "sqlite":
            fts = f"{spec.table}_fts"
            params["m"] = fts5_match(query, spec.target)
            source = (
                f"{fts} JOIN {spec.table} x ON x.rid = {fts}.rowid {spec.join} "
                f"WHERE {fts} MATCH :m {where}"
            )
            if not where:  # nothing but the text: count without the join
                count = f"SELECT COUNT(*) AS n FROM {fts} WHERE {fts} MATCH :m"
        else:
            params["m"] = tsquery(query, spec.target)
            source = f"{spec.table} x {spec.join} WHERE x.search @@ CAST(:m AS tsquery) {where}"
        # SQLite counts a filtered query (year:) with the page, in one pass: bounded
        # ranking, which needs the count first, would join every match twice.
        bounded = self.db.dialect == "postgresql" or not where
        if bounded and spec.tier_keys and offset + limit <= self.bounded_max_need:
            # Counted first: the count decides how to rank (and is the answer's total).
            count = count or f"SELECT COUNT(*) AS n FROM {source}"
            total, rows = self._bounded_page(tx, query, spec, sql, score, where, count)
            if rows is not None:
                return rows, total
            return self._page(tx, spec, source, score, params, total=total)
        return self._page(tx, spec, source, score, params, count)

    def _page(
        self,
        tx: Transaction,
        spec: _Table,
        source: str,
        score: str,
        params: dict[str, Any],
        count: str | None = None,
        total: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Every match scored: one page of them, and their number (``total`` when known)."""
        if self.db.dialect == "postgresql":
            return self._page_postgres(tx, spec, source, score, params, total)
        counted = total is None and count is None  # no FTS-only count: join once, not twice
        rows = tx.fetchall(
            f"SELECT {spec.cols}, {spec.plays} AS plays, {score} AS score"
            f"{', COUNT(*) OVER () AS total' if counted else ''} FROM {source} "
            f"ORDER BY score DESC, {spec.plays} DESC, {spec.order_id} "
            "LIMIT :limit OFFSET :offset",
            params,
        )
        if counted and rows:
            total = rows[0]["total"]
            for row in rows:
                del row["total"]
        if total is not None:
            return rows, total
        if params["offset"] == 0 and len(rows) < params["limit"]:
            return rows, len(rows)  # the whole result is on this page
        # A separate COUNT beats a window aggregate here: it never computes a rank, and
        # FTS5 counts its matches without reading a row.
        return rows, tx.fetchone(count or f"SELECT COUNT(*) AS n FROM {source}", params)["n"]

    @staticmethod
    def _page_postgres(
        tx: Transaction,
        spec: _Table,
        source: str,
        score: str,
        params: dict[str, Any],
        total: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One pass over the matches: each scored once into a narrow materialised set
        (id, plays, score), which gives the page (its rows read again by key) and the
        count; a separate COUNT would visit every matching heap page a second time."""
        counted = "0" if total is not None else "(SELECT COUNT(*) FROM m)"
        rows = tx.fetchall(
            f"WITH m AS MATERIALIZED (SELECT {spec.order_id} AS id, {spec.plays} AS p, "
            f"{score} AS score FROM {source}), "
            "top AS (SELECT * FROM m ORDER BY score DESC, p DESC, id "
            "LIMIT :limit OFFSET :offset) "
            f"SELECT {spec.cols}, top.p AS plays, top.score, {counted} AS total "
            f"FROM top JOIN {spec.table} x ON {spec.order_id} = top.id {spec.join} "
            "ORDER BY top.score DESC, top.p DESC, top.id",
            params,
        )
        counted_total = rows[0]["total"] if rows else 0
        for row in rows:
            del row["total"]
        if total is not None:
            return rows, total
        if rows:
            return rows, counted_total
        if params["offset"] == 0:
            return rows, 0
        return rows, tx.fetchone(f"SELECT COUNT(*) AS n FROM {source}", params)["n"]

    def _bounded_page(
        self,
        tx: Transaction,
        query: SearchQuery,
        spec: _Table,
        sql: _Sql,
        score: str,
        where: str,
        count: str,
    ) -> tuple[int, list[dict[str, Any]] | None]:
        """The number of matches (``count``: SQL giving it as ``n``), and the page from
        bounded candidates (:meth:`_bounded`) when there are enough matches for it to
        pay, trying the cheapest proof first: the rows holding (or beginning with) the
        query's keys alone, then a walk down the most popular matches, then one four
        times longer; a walk only while it reads far fewer rows than ranking every match
        would. A page of None: rank every match."""
        params = sql.params
        need = params["offset"] + params["limit"]
        bounds = _text_bounds(query, spec.target, spec.tier_keys)
        # One statement: the count, how many rows begin with each key and hold it (as
        # far as useful), and SQLite's table size (its walk reads the plays index).
        counts, keys = [f"({count}) AS n"], dict(params)
        for i, (column, k, _) in enumerate(bounds.tiers):
            keys.update({f"k{i}": k, f"h{i}": k + "\U0010ffff"})
            begins = _key_range(self.db.dialect, column, f":k{i}", f":h{i}")
            equals = _key_equals(self.db.dialect, column, f":k{i}")
            counts.append(
                f"(SELECT COUNT(*) FROM (SELECT 1 FROM {spec.table} x WHERE {begins} "
                f"LIMIT {BOUNDED_PREFIX_ROWS + 1}) r) AS b{i}, "
                f"(SELECT COUNT(*) FROM (SELECT 1 FROM {spec.table} x WHERE {equals} "
                f"LIMIT {need}) r) AS e{i}"
            )
        # The one-word branch tests each row holding the word in any field: not when
        # the word is that common (the vocabulary counts the rows written with it).
        words = sorted({t for _, a in bounds.strong for t in a.tokens if fuzzy_eligible(t)})
        if words:
            placeholders, word_params = in_list(words, "w")
            keys.update(word_params)
            counts.append(
                f"(SELECT MAX(v.n_rows) FROM search_vocab v WHERE v.term IN ({placeholders})) "
                "AS common"
            )
        sqlite = self.db.dialect == "sqlite"
        if sqlite:
            counts.append(f"(SELECT max(x.rid) FROM {spec.table} x) AS size")
        else:  # the planner's estimate
            counts.append(
                f"(SELECT CAST(reltuples AS BIGINT) FROM pg_class "
                f"WHERE oid = CAST('{spec.table}' AS regclass)) AS size"
            )
        found = tx.fetchone(f"SELECT {', '.join(counts)}", keys)
        total = found["n"]
        if total < self.bounded_from:
            return total, None
        if words and (found["common"] or 0) > BOUNDED_STRONG_COMMON:
            bounds = dataclasses.replace(bounds, strong=[])
        walks = []
        prefixed = frozenset(
            (column, k)
            for i, (column, k, _) in enumerate(bounds.tiers)
            if found[f"b{i}"] <= BOUNDED_PREFIX_ROWS
        )
        if prefixed or sum(found[f"e{i}"] for i in range(len(bounds.tiers))) >= need:
            walks.append(0)  # those rows may fill the page: try them alone
        if prefixed:  # every row beginning with the key is a candidate
            strong = bounds.strong
            bounds = _text_bounds(query, spec.target, spec.tier_keys, prefixed)
            bounds = dataclasses.replace(bounds, strong=strong)
        # A walk reads about walk * rows / total rows to find ``walk`` matches (SQLite's
        # reads the plays index whatever the rows match, PostgreSQL's tests each row).
        rows = max(found["size"] or 0, total)
        walk = max(self.bounded_walk, self.bounded_walk_rows * need)
        for _ in range(BOUNDED_ATTEMPTS):
            if total >= BOUNDED_WALK_SHARE * walk * rows / max(total, 1):
                walks.append(walk)
            walk *= 4
        if walks and not sqlite:
            # Every branch reads a bounded set through an index; the planner's estimate
            # of how many rows a common term matches can make it scan the whole table
            # instead, to stop at a LIMIT it then never reaches.
            tx.execute("SET LOCAL enable_seqscan = off")
        try:
            for walk in walks:
                page, hopeless = self._bounded(
                    tx, spec, sql, score, where, total, walk, bounds, prefixed, rows
                )
                if page is not None or hopeless:
                    return total, page
            return total, None
        finally:
            if walks and not sqlite:
                tx.execute("SET LOCAL enable_seqscan TO DEFAULT")

    def _bounded(
        self,
        tx: Transaction,
        spec: _Table,
        sql: _Sql,
        score: str,
        where: str,
        total: int,
        walk: int,
        bounds: _Bounds,
        prefixed: frozenset[tuple[str, str]],
        table_rows: int,
    ) -> tuple[list[dict[str, Any]] | None, bool]:
        """The page ranked from a bounded set of candidates, or None when that set cannot
        prove it holds the page (then every match is ranked); and whether no longer walk
        could (the candidates' last score is within what unread rows outside the walk
        may have).

        A row's score is at most ``(the most text evidence it can have) * (1 + a * pop)``
        and ``pop`` grows with plays, so candidates are read from indexes (migration 12)
        in *branches*: for each query key whose exact match outranks any other evidence,
        every row whose key begins with it (``prefixed``: few enough, ``lo``) or else the
        most popular rows whose key equals it (``love``); for a one-word query, the rows
        holding the alternative worth the most coverage in its field (a title with the
        word itself rather than a longer one it begins), if few; and a *walk* down the
        most popular matches (none: ``walk`` 0). A row no branch read is in a key branch
        that stopped at its limit (so no more popular than that branch's last row), or
        in none: its text evidence is at most ``_Bounds.other`` (``other_weak`` when
        every row of the one-word branch was read) and it is no more popular than where
        the walk stopped. The candidates, scored with the very expression of the full
        ranking, hold the page when its last row scores above every such bound; when it
        does not (ties, a walk too short) the caller ranks every match, so the answer is
        always the full ranking's.

        PostgreSQL's walk reads matches only (the GIN test on each row the plays index
        hands over), its other branches test each row they read, and every row is
        scored as read. SQLite's branches read the indexes alone: the walk takes every
        row more popular than the one ``walk * rows / total`` down the plays index
        (about ``walk`` matches at the query's share of the table); then one pass over
        FTS5's matches keeps the candidates among them (never the other way round: FTS5
        evaluates a prefix query afresh for every lookup of a row), and only those rows
        are read and scored."""
        params = sql.params
        need = params["offset"] + params["limit"]
        weight = self.settings.search_popularity_weight
        sqlite = self.db.dialect == "sqlite"
        fts = f"{spec.table}_fts"
        key = "x.rid" if sqlite else spec.order_id  # how a candidate is read again
        match = f"(x.search @@ CAST(:m AS tsquery){where})"  # PostgreSQL: the row matches

        def branch(tag: int, cond: str, limit: int, *, ordered: bool, checked: bool) -> str:
            """SQL: the branch's first ``limit`` rows where ``cond`` (the most popular first
            when ``ordered``), with its tag and its row count and lowest plays; on
            PostgreSQL each row's score too, and whether it matches (``checked``: ``cond``
            tells already)."""
            order = f" ORDER BY {spec.plays} DESC" if ordered else ""
            if sqlite:
                rows = f"SELECT x.rid AS k, {spec.plays} AS p FROM {spec.table} x WHERE {cond}"
                return (
                    f"SELECT {tag} AS tag, b.k, COUNT(*) OVER () AS n, MIN(b.p) OVER () AS low "
                    f"FROM ({rows}{order} LIMIT {limit}) b"
                )
            if checked:
                cond, ok = f"{cond} AND {match}", "TRUE"
            else:  # tested on each row read (through the GIN index it would be tested
                ok = match  # against every match of a common term)
            rows = (
                f"SELECT {spec.order_id} AS k, {spec.plays} AS p, {score} AS s, {ok} AS ok "
                f"FROM {spec.table} x WHERE {cond}"
            )
            return (
                f"SELECT {tag} AS tag, b.k, COUNT(*) OVER () AS n, MIN(b.p) OVER () AS low, "
                f"b.p, b.s, b.ok FROM ({rows}{order} LIMIT {limit}) b"
            )

        # (tag, SQL, its row limit, the most text evidence a row it did not read can
        # have; None: it must read every row)
        per_key = BOUNDED_KEY_ROWS * need + 1
        branches: list[tuple[int, str, int, float | None]] = []
        for tag, (column, k, text) in enumerate(bounds.tiers):
            if (column, k) in prefixed:  # every row beginning with the key
                high = sql.param(k + "\U0010ffff")
                begins = _key_range(self.db.dialect, column, sql.param(k), high)
                limit = BOUNDED_PREFIX_ROWS + 1
                cond = branch(tag, begins, limit, ordered=False, checked=False)
                branches.append((tag, cond, limit, None))
            else:  # the most popular rows holding the key
                equals = _key_equals(self.db.dialect, column, sql.param(k))
                if not sqlite:  # a filter (year:) tested on the rows the index hands over
                    equals += where
                cond = branch(tag, equals, per_key, ordered=True, checked=False)
                branches.append((tag, cond, per_key, text))
        strong = len(branches) if bounds.strong else -1  # the one-word branch's tag
        if bounds.strong:  # one of the query's alternatives: its rows match the query
            if sqlite:
                params["strong"] = fts5_any(bounds.strong)
                cond = (
                    f"SELECT {strong} AS tag, s.k, COUNT(*) OVER () AS n, 0 AS low FROM "
                    f"(SELECT rowid AS k FROM {fts} WHERE {fts} MATCH :strong "
                    f"LIMIT {BOUNDED_STRONG_ROWS}) s"
                )
            else:
                params["strong"] = tsquery_any(bounds.strong)
                cond = branch(
                    strong,
                    f"x.search @@ CAST(:strong AS tsquery){where}",
                    BOUNDED_STRONG_ROWS,
                    ordered=False,
                    checked=False,
                )
            branches.append((strong, cond, BOUNDED_STRONG_ROWS, 0.0))
        stats: dict[int, tuple[int, Any]] = {}
        walked = -1  # the walk's tag
        if walk and not sqlite:
            walked = len(branches)
            cond = branch(walked, "1 = 1", walk, ordered=True, checked=True)
            branches.append((walked, cond, walk, 0.0))
        elif walk:  # every row more popular than the one walk * rows / total down
            skip = math.ceil(walk * table_rows / max(total, 1))
            cut = tx.fetchone(
                f"SELECT {spec.plays} AS p FROM {spec.table} x "
                f"ORDER BY {spec.plays} DESC LIMIT 1 OFFSET {skip}"
            )
            above = "" if cut is None else f" WHERE {spec.plays} > {int(cut['p'])}"
            walked = len(branches)
            cond = f"SELECT {walked} AS tag, x.rid AS k, 0 AS n, 0 AS low FROM {spec.table} x"
            branches.append((walked, cond + above, 1, 0.0))
            stats[walked] = (0, None) if cut is None else (1, cut["p"])  # read all, or not
        first = (
            "SELECT * FROM (SELECT CAST(NULL AS INTEGER) AS tag, CAST(NULL AS BIGINT) AS n, "
            "CAST(NULL AS BIGINT) AS low, "
        )
        if sqlite:
            # One pass over FTS5's matches keeps the candidates among them (never the other
            # way round: FTS5 evaluates a prefix query afresh for every row it is asked
            # about); only those rows are read and scored.
            hits = (
                f"SELECT rowid AS k FROM {fts} WHERE {fts} MATCH :m AND +rowid IN (SELECT k FROM c)"
            )
            ranked = (
                f"{first}hit.k, {spec.plays} AS plays, {score} AS score, {spec.order_id} AS id "
                f"FROM hit JOIN {spec.table} x ON x.rid = hit.k {spec.join} WHERE 1 = 1 {where}"
            )
            counted = walked if walked >= 0 else len(branches)  # the walk's count is known
            ctes = f", hit AS MATERIALIZED ({hits})"
        else:  # scored as read
            ranked = f"{first}c.k, c.p AS plays, c.s AS score, c.k AS id FROM c WHERE c.ok"
            counted = len(branches)
            ctes = ""
        rows = tx.fetchall(  # the first ``need`` candidates ranked, then each branch's count
            f"WITH c AS MATERIALIZED ({' UNION ALL '.join(b[1] for b in branches)}){ctes} "
            f"{ranked} GROUP BY 4, 5, 6, 7 ORDER BY score DESC, plays DESC, id LIMIT {need}) p "
            "UNION ALL SELECT c.tag, CAST(MAX(c.n) AS BIGINT), CAST(MIN(c.low) AS BIGINT), "
            f"NULL, NULL, NULL, NULL FROM c WHERE c.tag < {counted} GROUP BY c.tag "
            "ORDER BY 6 DESC NULLS LAST, 5 DESC, 7",
            params,
        )
        page: list[dict[str, Any]] = []
        for row in rows:
            if row["k"] is None:
                stats.setdefault(row["tag"], (row["n"], row["low"]))
            else:
                page.append(row)
        # Text evidence of a row in no key branch: less when every row holding the
        # one-word query's best alternative was read.
        other = bounds.other
        if strong >= 0 and stats.get(strong, (0, None))[0] < BOUNDED_STRONG_ROWS:
            other = bounds.other_weak
        # The most an unread row can score: no walk, any popularity; a walk, where it
        # stopped; and ``floor``, what no walk can lower (ranking every match is then
        # the only way: no longer walk is tried).
        bound = other * (1 + weight) if walked < 0 else -math.inf
        floor = other
        for tag, _, limit, text_max in branches:
            n, low = stats.get(tag, (0, None))  # no row: the branch has none
            if tag == strong or n < limit:
                continue  # the branch read all its rows: every one is a candidate
            if text_max is None:
                return None, True  # more rows begin with the key than a moment ago
            value = (other if tag == walked else text_max) * (1 + weight * _pop(low))
            bound = max(bound, value)
            if tag != walked:
                floor = max(floor, value)
        if len(page) < need:
            if bound != -math.inf:
                return None, False
        elif bound != -math.inf and page[need - 1]["score"] <= bound + 1e-9 * abs(bound):
            return None, page[need - 1]["score"] <= floor + 1e-9 * abs(floor)
        page = page[params["offset"] : need]
        if not page:
            return [], False
        ids, id_params = in_list([r["k"] for r in page], "id")
        full = {
            r["k"]: r
            for r in tx.fetchall(
                f"SELECT {key} AS k, {spec.cols} FROM {spec.table} x {spec.join} "
                f"WHERE {key} IN ({ids})",
                id_params,
            )
        }
        out = []
        for r in page:
            row = full[r["k"]]
            del row["k"]
            out.append({**row, "plays": r["plays"], "score": r["score"]})
        return out, False

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
            cols = playlist_columns(row["name"], row["description"])
            tx.execute(
                "INSERT INTO playlist_search (playlist_id, name, description, t_name, "
                "t_description, k_name) VALUES (:p, :n, :d, :t_name, :t_description, :k_name) "
                "ON CONFLICT (playlist_id) DO UPDATE SET name = excluded.name, "
                "description = excluded.description, t_name = excluded.t_name, "
                "t_description = excluded.t_description, k_name = excluded.k_name",
                {"p": playlist_id, "n": row["name"], "d": row["description"], **cols},
            )
            add_vocab(tx, self.db.dialect, [cols["t_name"], cols["t_description"]])

    def on_playlist_changed(self, event: Event) -> None:
        """``playlist.changed`` handler (idempotent: reads the playlist's current state)."""
        if event.payload.get("change") in ("items", "followers"):
            return  # ranking reads follower counts live; only names and visibility matter
        self.reindex_playlist(str(event.payload["playlist_id"]))


def _key_equals(dialect: str, column: str, value: str) -> str:
    """SQL: key ``column`` of row ``x`` equals ``value`` (an expression), by its index."""
    if dialect == "sqlite":
        return f"x.{column} = {value}"
    return f'x.{column} COLLATE "C" = {value}'  # migration 12 indexes keys byte-wise


def _key_range(dialect: str, column: str, low: str, high: str) -> str:
    """SQL: key ``column`` of row ``x`` is in [low, high), byte-wise, by its index."""
    if dialect == "sqlite":
        return f"x.{column} >= {low} AND x.{column} < {high}"
    return f'x.{column} COLLATE "C" >= {low} AND x.{column} COLLATE "C" < {high}'


def _pop(plays: int) -> float:
    """A row's ``pop`` (migration 9's generated column) from its play count."""
    return min(1.0, math.log(1.0 + max(plays, 0)) / math.log1p(POPULARITY_FULL))


@dataclass(frozen=True)
class _Bounds:
    """What :meth:`_Sql.text_score` can give a row, for bounded ranking."""

    # (key column, key, the most a row holding that key there can have): the exact key
    # matches worth more than any other evidence but another such match
    tiers: list[tuple[str, str, float]]
    other: float  # the most a row can have that no key branch holds
    # A query of one word: the (field, alternative) pairs worth the most coverage, and
    # what ``other`` becomes for a row matching none of them (a typed "lo" scores a title
    # holding the word "lo" above one beginning "love").
    strong: list[tuple[Field, Alt]]
    other_weak: float


def _text_bounds(
    query: SearchQuery,
    target: Target,
    indexed: frozenset[str],
    prefixed: frozenset[tuple[str, str]] = frozenset(),
) -> _Bounds:
    """The bounds of :class:`_Bounds` for a query on ``target``, whose ``indexed`` key
    columns can be read by key; ``prefixed``: (key column, key) pairs whose every row
    beginning with the key is read (so a row no branch holds does not begin with it)."""
    coverage = max(f.score for f in target.fields.values())  # an average of field weights
    filters = sum(
        target.fields[name].exact
        for name, key in query.field_keys
        if name in target.fields and target.fields[name].key and key
    )
    keys = [(k, w) for k, w in query.keys if k] if query.free else []
    key_fields = [f for f in target.free_fields if f.key]
    # Bonus of a row no branch holds: a key it begins (or equals, unless that is read).
    other = max(
        (f.prefix * w for f in key_fields for k, w in keys if (f.key, k) not in prefixed),
        default=0.0,
    )
    if len(query.free) > 1 and target.combos and keys:
        other = max(other, target.combo_bonus * max(w for _, w in keys))
    exact = {
        (f.key, k): f.exact * w
        for f in key_fields
        for k, w in reversed(keys)  # a key listed twice: its first (highest) weight
        if (f.key in indexed and f.exact * w > other) or (f.key, k) in prefixed
    }
    for f in key_fields:  # exact matches no branch reads count as any other evidence
        for k, w in keys:
            if (f.key, k) not in exact:
                other = max(other, f.exact * w)
    # A row holding a key in a column holds no other key there: its bonus is that key's,
    # another column's, or any other evidence.
    tiers = [
        (
            column,
            k,
            coverage
            + max([other, bonus, *(v for (c, _), v in exact.items() if c != column)])
            + filters,
        )
        for (column, k), bonus in exact.items()
    ]
    strong: list[tuple[Field, Alt]] = []
    weak = coverage
    if len(query.terms) == 1 and query.terms[0].field is None and not query.whole:
        # Coverage is the value of the best (field, alternative) pair the row matches.
        pairs = [
            (f.score * (1 - a.cost), f, a) for f in target.free_fields for a in query.terms[0].alts
        ]
        top = max(v for v, _, _ in pairs)
        strong = [(f, a) for v, f, a in pairs if v == top]
        weak = max((v for v, _, _ in pairs if v < top), default=0.0)
    return _Bounds(tiers, coverage + other + filters, strong, weak + other + filters)


class _Sql:
    """The ranking expression in one dialect; strings it compares travel as parameters."""

    def __init__(self, dialect: str, params: dict[str, Any]) -> None:
        self.sqlite = dialect == "sqlite"
        self.params = params
        self._names: dict[str, str] = {}

    def param(self, value: str) -> str:
        name = self._names.get(value)
        if name is None:
            name = self._names[value] = f"s{len(self._names)}"
            self.params[name] = value
        return ":" + name

    def num(self, value: float) -> str:
        text = f"{value:.4f}"
        return text if self.sqlite else f"CAST({text} AS DOUBLE PRECISION)"

    def greatest(self, exprs: list[str]) -> str:
        exprs = list(dict.fromkeys(exprs))
        if len(exprs) == 1:
            return exprs[0]
        return ("max(" if self.sqlite else "GREATEST(") + ", ".join(exprs) + ")"

    def contains(self, column: str, needle: str) -> str:
        fn = "instr" if self.sqlite else "strpos"
        return f"{fn}(x.{column}, {self.param(needle)}) > 0"

    def starts(self, column: str, prefix: str) -> str:
        if self.sqlite:  # a range, not substr(): nothing to allocate per row
            upper = self.param(prefix + "\U0010ffff")
            return f"(x.{column} >= {self.param(prefix)} AND x.{column} < {upper})"
        return f"starts_with(x.{column}, {self.param(prefix)})"

    def begins(self, text: str, prefix: str) -> str:
        """SQL: ``text`` (an expression) begins with the non-empty ``prefix`` (one too)."""
        if self.sqlite:
            return f"({prefix} <> '' AND instr({text}, {prefix}) = 1)"
        return f"({prefix} <> '' AND starts_with({text}, {prefix}))"

    def _key_value(self, f: Field, keys: list[tuple[str, float]]) -> str:
        """A field's key bonus: exact, else prefix, for the best key that applies (one
        range test per key for a row that matches none)."""
        whens = " ".join(
            f"WHEN {self.starts(f.key, k)} THEN CASE WHEN x.{f.key} = {self.param(k)} "
            f"THEN {self.num(f.exact * w)} ELSE {self.num(f.prefix * w)} END"
            for k, w in keys
        )
        return f"CASE {whens} ELSE 0 END"

    def boost(self, spec: _Table, weight: float) -> str:
        pop = spec.pop
        if not pop:
            cast = "REAL" if self.sqlite else "DOUBLE PRECISION"
            share = (
                f"ln(CAST(1 + {spec.plays} AS {cast})) / {self.num(math.log1p(POPULARITY_FULL))}"
            )
            pop = f"{'min' if self.sqlite else 'LEAST'}({share}, {self.num(1.0)})"
        return f"(1 + {self.num(weight)} * {pop})"

    @staticmethod
    def _needle(alt: Alt) -> str:
        return " " + " ".join(alt.tokens) + ("" if alt.prefix else " ")

    def _case(self, checks: list[tuple[float, str]]) -> str:
        """The value of the first condition that holds, checked best first (so a row stops
        at its best match), else 0."""
        checks = sorted(checks, key=lambda c: -c[0])
        whens = " ".join(f"WHEN {cond} THEN {self.num(value)}" for value, cond in checks)
        return f"CASE {whens} ELSE 0 END" if checks else "0"

    def text_score(self, query: SearchQuery, target: Target) -> str:
        """``coverage + bonus`` (see the module docstring) for one row ``x``."""
        free_fields = target.free_fields
        covers = []
        for term in query.terms:
            fields = free_fields if term.field is None else [target.fields[term.field]]
            covers.append(
                self._case(
                    [
                        (f.score * (1 - alt.cost), self.contains(f.column, self._needle(alt)))
                        for f in fields
                        for alt in term.alts
                    ]
                )
            )
        coverage = f"({' + '.join(covers)})"
        if len(covers) > 1:
            coverage = f"({coverage} / {self.num(len(covers))})"
        if query.whole and query.free:
            needle = " " + query.whole + ("" if query.prefix else " ")
            whole = self._case([(f.score, self.contains(f.column, needle)) for f in free_fields])
            coverage = self.greatest([coverage, whole])
        parts = [coverage]
        keys = sorted(((k, w) for k, w in query.keys if k), key=lambda kw: -kw[1])
        if query.free and keys:
            values = [self._key_value(f, keys) for f in free_fields if f.key]
            if len(query.free) > 1:  # "radiohead creep": artist key + title key
                for first, second in target.combos:
                    checks = [
                        (
                            target.combo_bonus * w,
                            f"{self.begins(self.param(k), 'x.' + first)} "
                            f"AND x.{first} || x.{second} = {self.param(k)}",
                        )
                        for k, w in keys
                    ]
                    values.append(self._case(checks))
            parts.append(self.greatest(values))
        for name, key in query.field_keys:
            f = target.fields.get(name)
            if f is not None and f.key and key:
                parts.append(self._key_value(f, [(key, 1.0)]))
        return " + ".join(parts)


def with_id_match(
    rows: list[dict[str, Any]], total: int, hit: dict[str, Any] | None, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A first page of track results with the track named by its id first (once): the
    surest evidence there is. ``total`` counts it when the text search did not find it."""
    if hit is None:
        return rows, total
    others = [r for r in rows if r["track_id"] != hit["track_id"]]
    return [hit, *others][:limit], total + (len(others) == len(rows))
