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
   string tests each): ranking costs grow with the number of matches, not the catalogue.

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
    fts5_match,
    tsquery,
)
from delivery.modules.search_text import edit_distance, max_edits, query_grams, typo_cost
from delivery.settings import DeliverySettings

TYPES = ("track", "artist", "album", "playlist")

MAX_CORRECTIONS = 4  # typo alternatives added to one term
FUZZY_CANDIDATES = 100  # vocabulary words checked by edit distance, per term
COMMON_WORD = 1000  # rows indexed with a word that make it too common to be a typo
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
    ),
    "artist": _Table(
        Target({"artist": Field("t_name", key="k_name", **_TITLE)}, False, frozenset({"artist"})),
        table="artists",
        cols="x.artist_id, x.name, x.track_count",
        plays="x.plays",
        order_id="x.artist_id",
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
            return self._page(tx, spec, source, boost, params)
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
        return self._page(tx, spec, source, score, params, count)

    def _page(
        self,
        tx: Transaction,
        spec: _Table,
        source: str,
        score: str,
        params: dict[str, Any],
        count: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        if self.db.dialect == "postgresql":
            return self._page_postgres(tx, spec, source, score, params)
        rows = tx.fetchall(
            f"SELECT {spec.cols}, {spec.plays} AS plays, {score} AS score FROM {source} "
            f"ORDER BY score DESC, {spec.plays} DESC, {spec.order_id} "
            "LIMIT :limit OFFSET :offset",
            params,
        )
        if params["offset"] == 0 and len(rows) < params["limit"]:
            return rows, len(rows)  # the whole result is on this page
        # A separate COUNT beats a window aggregate here: it never computes a rank, and
        # FTS5 counts its matches without reading a row.
        return rows, tx.fetchone(count or f"SELECT COUNT(*) AS n FROM {source}", params)["n"]

    @staticmethod
    def _page_postgres(
        tx: Transaction, spec: _Table, source: str, score: str, params: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], int]:
        """One pass over the matches: each scored once into a narrow materialised set
        (id, plays, score), which gives the page (its rows read again by key) and the
        count; a separate COUNT would visit every matching heap page a second time."""
        rows = tx.fetchall(
            f"WITH m AS MATERIALIZED (SELECT {spec.order_id} AS id, {spec.plays} AS p, "
            f"{score} AS score FROM {source}), "
            "top AS (SELECT * FROM m ORDER BY score DESC, p DESC, id "
            "LIMIT :limit OFFSET :offset) "
            f"SELECT {spec.cols}, top.p AS plays, top.score, "
            "(SELECT COUNT(*) FROM m) AS total "
            f"FROM top JOIN {spec.table} x ON {spec.order_id} = top.id {spec.join} "
            "ORDER BY top.score DESC, top.p DESC, top.id",
            params,
        )
        if rows:
            total = rows[0]["total"]
            for row in rows:
                del row["total"]
            return rows, total
        if params["offset"] == 0:
            return rows, 0
        return rows, tx.fetchone(f"SELECT COUNT(*) AS n FROM {source}", params)["n"]

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
