"""Versioned schema migrations, applied in order at start-up.

Append new migrations at the end; never edit one that has shipped. Each entry
holds the SQL for both dialects (often identical). Tables are keyed the way a
wide-column store would partition them (by user, by playlist), so the model
could move to Cassandra without reshaping queries.

Key shapes of the modules' tables (migrations 2-4). Each names its partition
key first and its clustering columns after; every request-path query reads ONE
partition (a playlist, a user, a track) in clustering order, or a handful of
partitions by key — search aside, which would move to a search engine:

=======================  ==========================  ==================================
table                    partition / clustering      what it answers
=======================  ==========================  ==================================
playlists                playlist_id                 the header: owner, flags,
                                                     snapshot_id, item_count (kept,
                                                     never COUNTed)
playlist_items           playlist_id / pos           items in order; ``pos`` is a
                                                     fractional key compared byte-wise
                                                     (``COLLATE "C"``), so a move
                                                     rewrites the moved rows only
playlist_collaborators   playlist_id / user_id       who may edit a collaborative list
playlist_followers       playlist_id / user_id       who follows a playlist
user_playlists           user_id / playlist_id       a user's library (owned, followed)
user_following           user_id / followee_id       whom I follow
user_followers           user_id / follower_id       who follows me — written with the
                                                     row above (denormalised, as a
                                                     wide-column store requires)
plays                    user_id / play_id           history; idempotency on the
                         (+ index user_id,           client's play id, recently-played
                         played_at)                  by time
track_listeners          track_id / user_id          last play per listener: friends-
                                                     listened joins my follow
                                                     partition with this one
track_stats              track_id                    the play counter (popularity; copied
                                                     to tracks.plays so ranking needs
                                                     no join)
track_neighbours         build_id, track_id / rank   similar tracks (radio), and
user_recommendations     build_id, user_id / rank    "for you", per recommendation build
                                                     (10; the current build is the newest
                                                     complete one in recommend_builds)
tracks, artists,         by id                       the search catalog (FTS5 tables on
albums, playlist_search                              SQLite; tsvector/GIN on PostgreSQL;
                                                     normalised t_*/k_* columns since 9)
                                                     and the library (album artists,
                                                     positions, genres, art, sort keys:
                                                     11)
search_vocab,            term / gram                 the typo vocabulary (9): indexed words,
search_grams                                         filed by deletion variant and skeleton
app_passwords            password_id (+ index        Subsonic app passwords (13): sealed,
                         user_id, created_at)        API keys as SHA-256
stars                    user_id / kind, item_id     Subsonic stars (13)
=======================  ==========================  ==================================

Times are integer milliseconds since the epoch in both dialects. Booleans are
BOOLEAN on PostgreSQL and 0/1 INTEGER on SQLite (Python bools bind to both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from delivery.db.base import Transaction


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: str
    postgresql: str
    # Python run after the SQL, in the same transaction, with the dialect's name (for data
    # the database cannot compute itself, e.g. search columns from the display text).
    then: Callable[[Transaction, str], None] | None = None


def _dialect(tx: Transaction) -> str:
    return "postgresql" if type(tx).__module__.endswith(".postgres") else "sqlite"


def apply_pending(tx: Transaction, run: Callable[[Migration], None]) -> int:
    """Run (via ``run``, the dialect's way of executing DDL) every migration not yet recorded.

    The bookkeeping in ``schema_migrations`` is the same for SQLite and PostgreSQL;
    only how a migration's script is executed differs. Returns the schema version.
    """
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {r["version"] for r in tx.fetchall("SELECT version FROM schema_migrations")}
    for m in MIGRATIONS:
        if m.version in done:
            continue
        run(m)
        if m.then is not None:
            m.then(tx, _dialect(tx))
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)",
            {"v": m.version, "n": m.name, "t": datetime.now(UTC).isoformat()},
        )
    return max((m.version for m in MIGRATIONS), default=0)


_USERS = """
CREATE TABLE IF NOT EXISTS users (
    user_id     TEXT PRIMARY KEY,
    tier        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
"""

MIGRATIONS: list[Migration] = [
    Migration(1, "users and tiers", _USERS, _USERS),
]


# --- Modules: playlists, catalog/search, social, plays (2-4; key shapes: see the docstring)

_PLAYLISTS_SQLITE = """
CREATE TABLE playlists (
    playlist_id    TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    public         INTEGER NOT NULL,
    collaborative  INTEGER NOT NULL,
    snapshot_id    TEXT NOT NULL,
    version        INTEGER NOT NULL,
    item_count     INTEGER NOT NULL DEFAULT 0,
    follower_count INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE TABLE playlist_items (
    playlist_id TEXT NOT NULL,
    pos         TEXT NOT NULL,
    track_id    TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, pos)
) WITHOUT ROWID;
CREATE INDEX playlist_items_by_track ON playlist_items (playlist_id, track_id);
CREATE TABLE playlist_collaborators (
    playlist_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, user_id)
) WITHOUT ROWID;
CREATE TABLE playlist_followers (
    playlist_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    followed_at INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, user_id)
) WITHOUT ROWID;
CREATE TABLE user_playlists (
    user_id     TEXT NOT NULL,
    playlist_id TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, playlist_id)
) WITHOUT ROWID;
CREATE INDEX user_playlists_recent ON user_playlists (user_id, added_at, playlist_id);
"""

_PLAYLISTS_POSTGRES = """
CREATE TABLE playlists (
    playlist_id    TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    public         BOOLEAN NOT NULL,
    collaborative  BOOLEAN NOT NULL,
    snapshot_id    TEXT NOT NULL,
    version        BIGINT NOT NULL,
    item_count     INTEGER NOT NULL DEFAULT 0,
    follower_count INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE TABLE playlist_items (
    playlist_id TEXT NOT NULL,
    pos         TEXT COLLATE "C" NOT NULL,
    track_id    TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (playlist_id, pos)
);
CREATE INDEX playlist_items_by_track ON playlist_items (playlist_id, track_id);
CREATE TABLE playlist_collaborators (
    playlist_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (playlist_id, user_id)
);
CREATE TABLE playlist_followers (
    playlist_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    followed_at BIGINT NOT NULL,
    PRIMARY KEY (playlist_id, user_id)
);
CREATE TABLE user_playlists (
    user_id     TEXT NOT NULL,
    playlist_id TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (user_id, playlist_id)
);
CREATE INDEX user_playlists_recent ON user_playlists (user_id, added_at, playlist_id);
"""

# SQLite: FTS5 tables with external content, kept in step by triggers. Every content table
# has an explicit INTEGER PRIMARY KEY, because VACUUM may renumber an implicit rowid and
# the FTS index refers to rows by rowid.
_FTS_OPTIONS = "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4'"


def _fts_sqlite(table: str, columns: list[str], options: str = _FTS_OPTIONS) -> str:
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    fts = f"{table}_fts"
    return f"""
CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content = '{table}', content_rowid = 'rid',
    {options});
CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN
    INSERT INTO {fts} (rowid, {cols}) VALUES (new.rid, {new});
END;
CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN
    INSERT INTO {fts} ({fts}, rowid, {cols}) VALUES ('delete', old.rid, {old});
END;
CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {cols} ON {table} BEGIN
    INSERT INTO {fts} ({fts}, rowid, {cols}) VALUES ('delete', old.rid, {old});
    INSERT INTO {fts} (rowid, {cols}) VALUES (new.rid, {new});
END;
"""


_CATALOG_SQLITE = (
    """
CREATE TABLE tracks (
    rid          INTEGER PRIMARY KEY,
    track_id     TEXT NOT NULL UNIQUE,
    version      TEXT NOT NULL,
    title        TEXT NOT NULL,
    artist       TEXT NOT NULL,
    album        TEXT NOT NULL,
    artist_id    TEXT NOT NULL,
    album_id     TEXT NOT NULL,
    year         INTEGER,
    duration_ms  INTEGER NOT NULL,
    published_at TEXT,
    indexed_at   INTEGER NOT NULL,
    plays        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tracks_year ON tracks (year);
CREATE INDEX tracks_artist ON tracks (artist_id);
CREATE INDEX tracks_album ON tracks (album_id);
CREATE TABLE track_stats (
    track_id TEXT PRIMARY KEY,
    plays    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE artists (
    rid         INTEGER PRIMARY KEY,
    artist_id   TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    track_count INTEGER NOT NULL,
    plays       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE albums (
    rid         INTEGER PRIMARY KEY,
    album_id    TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    artist      TEXT NOT NULL,
    artist_id   TEXT NOT NULL,
    year        INTEGER,
    track_count INTEGER NOT NULL,
    plays       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX albums_year ON albums (year);
CREATE TABLE playlist_search (
    rid         INTEGER PRIMARY KEY,
    playlist_id TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL
);
"""
    + _fts_sqlite("tracks", ["title", "artist", "album"])
    + _fts_sqlite("artists", ["name"])
    + _fts_sqlite("albums", ["title", "artist"])
    + _fts_sqlite("playlist_search", ["name", "description"])
)

# PostgreSQL: weighted tsvectors (A title/name, B artist, C album) in a GIN index, and the
# vocabulary (every distinct word indexed) in a pg_trgm GIN index: a misspelt word is
# corrected against that small table, never by trigram-scanning documents. The text search
# configuration folds accents (unaccent) like SQLite's remove_diacritics and does no
# stemming ('simple'), so both backends match the same words. Creating the extensions
# needs a role allowed to (the owner of the database on PostgreSQL >= 13 for these
# trusted ones); they are created in the schema first on the search_path when missing.
_CATALOG_POSTGRES = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION delivery_search (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION delivery_search
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, simple;
CREATE TABLE tracks (
    track_id     TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    title        TEXT NOT NULL,
    artist       TEXT NOT NULL,
    album        TEXT NOT NULL,
    artist_id    TEXT NOT NULL,
    album_id     TEXT NOT NULL,
    year         INTEGER,
    duration_ms  BIGINT NOT NULL,
    published_at TEXT,
    indexed_at   BIGINT NOT NULL,
    plays        BIGINT NOT NULL DEFAULT 0,
    search       tsvector NOT NULL
);
CREATE INDEX tracks_year ON tracks (year);
CREATE INDEX tracks_artist ON tracks (artist_id);
CREATE INDEX tracks_album ON tracks (album_id);
CREATE INDEX tracks_search ON tracks USING GIN (search);
CREATE TABLE track_stats (
    track_id TEXT PRIMARY KEY,
    plays    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE artists (
    artist_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    track_count INTEGER NOT NULL,
    plays       BIGINT NOT NULL DEFAULT 0,
    search      tsvector NOT NULL
);
CREATE INDEX artists_search ON artists USING GIN (search);
CREATE TABLE albums (
    album_id    TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    artist      TEXT NOT NULL,
    artist_id   TEXT NOT NULL,
    year        INTEGER,
    track_count INTEGER NOT NULL,
    plays       BIGINT NOT NULL DEFAULT 0,
    search      tsvector NOT NULL
);
CREATE INDEX albums_year ON albums (year);
CREATE INDEX albums_search ON albums USING GIN (search);
CREATE TABLE playlist_search (
    playlist_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    search      tsvector NOT NULL
);
CREATE INDEX playlist_search_search ON playlist_search USING GIN (search);
CREATE TABLE search_terms (
    term TEXT COLLATE "C" PRIMARY KEY
);
CREATE INDEX search_terms_trgm ON search_terms USING GIN (term gin_trgm_ops);
"""


def _social(ts: str, flag: str, false: str) -> str:
    return f"""
CREATE TABLE user_following (
    user_id     TEXT NOT NULL,
    followee_id TEXT NOT NULL,
    followed_at {ts} NOT NULL,
    PRIMARY KEY (user_id, followee_id)
);
CREATE TABLE user_followers (
    user_id     TEXT NOT NULL,
    follower_id TEXT NOT NULL,
    followed_at {ts} NOT NULL,
    PRIMARY KEY (user_id, follower_id)
);
CREATE TABLE plays (
    user_id      TEXT NOT NULL,
    play_id      TEXT NOT NULL,
    track_id     TEXT NOT NULL,
    version      TEXT,
    bitrate_kbps INTEGER,
    ms_played    INTEGER NOT NULL,
    context_type TEXT,
    context_uri  TEXT,
    played_at    {ts} NOT NULL,
    recorded_at  {ts} NOT NULL,
    counted      {flag} NOT NULL DEFAULT {false},
    PRIMARY KEY (user_id, play_id)
);
CREATE INDEX plays_recent ON plays (user_id, played_at);
CREATE TABLE track_listeners (
    track_id       TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    last_played_at {ts} NOT NULL,
    play_count     INTEGER NOT NULL,
    PRIMARY KEY (track_id, user_id)
);
"""


MIGRATIONS += [
    Migration(2, "playlists", _PLAYLISTS_SQLITE, _PLAYLISTS_POSTGRES),
    Migration(3, "catalog and search", _CATALOG_SQLITE, _CATALOG_POSTGRES),
    Migration(
        4,
        "social and plays",
        _social("INTEGER", "INTEGER", "0"),
        _social("BIGINT", "BOOLEAN", "FALSE"),
    ),
]


# --- 5: search indexes without a GIN pending list (PostgreSQL) -----------------------------
#
# Every search GIN index gets fastupdate off: the catalog is written rarely and read on
# every keystroke, and entries waiting in a GIN pending list are scanned linearly by every
# query until the next vacuum (measured: a typo lookup went from ~1 ms to ~30 ms after a
# bulk sync). gin_clean_pending_list flushes what a database migrated before this already
# holds. SQLite's FTS5 has no such list: nothing to do there.

_SEARCH_GIN_INDEXES = (
    "tracks_search",
    "artists_search",
    "albums_search",
    "playlist_search_search",
    "search_terms_trgm",
)
_GIN_FASTUPDATE_OFF = "".join(
    f"ALTER INDEX {name} SET (fastupdate = off);\n"
    f"SELECT gin_clean_pending_list('{name}'::regclass);\n"
    for name in _SEARCH_GIN_INDEXES
)

MIGRATIONS += [
    Migration(5, "search indexes: GIN fastupdate off", "", _GIN_FASTUPDATE_OFF),
]


# --- 6: rate limits shared by every worker and host (delivery.ratelimit) -------------------
#
# One row per user holding GCRA's theoretical arrival time (seconds since the epoch); a row
# whose time has passed means the same as no row, so the table is swept, never migrated.

_RATE_LIMITS = """
CREATE TABLE rate_limits (
    limit_key TEXT PRIMARY KEY,
    tat {real} NOT NULL
);
"""

MIGRATIONS += [
    Migration(
        6,
        "rate limits",
        _RATE_LIMITS.format(real="REAL"),
        _RATE_LIMITS.format(real="DOUBLE PRECISION"),
    ),
]


# --- 7: the event outbox (delivery.outbox) -------------------------------------------------
#
# ``events`` is the transactional outbox: a change and the event announcing it commit
# together. ``seq`` numbers rows in insertion order; on PostgreSQL ``txid`` (the writer's
# transaction id) lets readers stop at the oldest transaction still running, so an event
# committed after a later-numbered one is never skipped. ``event_consumers`` holds each
# durable consumer's position and its lease; ``event_failures`` the deliveries that failed
# (retrying, then dead).

_OUTBOX = """
CREATE TABLE events (
    seq {seq},
    txid {txid},
    id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    occurred_at BIGINT NOT NULL
);
{events_index}
CREATE INDEX events_occurred ON events (occurred_at);
CREATE TABLE event_consumers (
    name TEXT PRIMARY KEY,
    position_txid TEXT NOT NULL DEFAULT '0',
    position_seq BIGINT NOT NULL DEFAULT 0,
    leased_by TEXT,
    leased_until {real} NOT NULL DEFAULT 0
);
CREATE TABLE event_failures (
    consumer TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    next_attempt_at {real} NOT NULL,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, seq)
);
CREATE INDEX event_failures_due ON event_failures (status, next_attempt_at);
CREATE INDEX event_failures_event ON event_failures (event_id);
"""

MIGRATIONS += [
    Migration(
        7,
        "event outbox",
        _OUTBOX.format(
            seq="INTEGER PRIMARY KEY AUTOINCREMENT",
            txid="INTEGER NOT NULL DEFAULT 0",
            events_index="",
            real="REAL",
        ),
        _OUTBOX.format(
            seq="BIGSERIAL PRIMARY KEY",
            txid="xid8 NOT NULL DEFAULT pg_current_xact_id()",
            events_index="CREATE INDEX events_txid_seq ON events (txid, seq);",
            real="DOUBLE PRECISION",
        ),
    ),
]


# --- 8: edge health shared by every worker and host (delivery.edge_health) -----------------
#
# One row per edge: whichever worker first finds a row older than the probe interval claims
# it (checked_at, checked_by), probes the edge and writes ``up``; every worker reads them all.

_EDGE_HEALTH = """
CREATE TABLE edge_health (
    edge_url TEXT PRIMARY KEY,
    up {boolean} NOT NULL,
    checked_at {real} NOT NULL,
    checked_by TEXT NOT NULL
);
"""

MIGRATIONS += [
    Migration(
        8,
        "edge health",
        _EDGE_HEALTH.format(boolean="INTEGER", real="REAL"),
        _EDGE_HEALTH.format(boolean="BOOLEAN", real="DOUBLE PRECISION"),
    ),
]


# --- 9: search over normalised text, typo vocabulary on both backends ----------------------
#
# Every searchable row gets ``t_<field>`` (its tokens) and ``k_<field>`` (its key) columns,
# made by delivery.modules.search_text (one normalisation for indexing and querying; see
# delivery.modules.search_index), and tracks get their ``genre``. SQLite's FTS5 tables are
# rebuilt over the token columns (every letter, digit and mark a token character: the text
# is already folded); PostgreSQL builds the weighted ``search`` tsvector from them in a
# trigger (``delivery_tsv``: token by token, no parser, so ``Mr.Children`` is never a
# ``host`` token), replacing the unaccent configuration. ``search_vocab`` / ``search_grams``
# (deletion variants and skeletons of every indexed word) replace pg_trgm's vocabulary,
# which a C-locale database cannot use for non-ASCII words. Existing rows are re-indexed by
# the Python step (delivery.modules.search_index.reindex_all), in this same transaction.

_SEARCH_FTS_OPTIONS = (
    "tokenize = \"unicode61 remove_diacritics 0 categories 'L* N* Co M*'\", prefix = '2 3 4'"
)

# table -> (search columns, key columns, PostgreSQL weight of each search column). The
# genre's lexemes are marked (~rock): free text never matches them, so it needs no weight
# restriction, which a GIN index cannot check without reading every matching row.
_SEARCH_COLUMNS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "tracks": (
        ["t_title", "t_artist", "t_album", "t_genre"],
        ["k_title", "k_artist", "k_album"],
        ["A", "B", "C", "D"],
    ),
    "artists": (["t_name"], ["k_name"], ["A"]),
    "albums": (["t_title", "t_artist"], ["k_title", "k_artist"], ["A", "B"]),
    "playlist_search": (["t_name", "t_description"], ["k_name"], ["A", "B"]),
}


_TSV_MARKS = {"t_genre": ", '~'"}  # delivery.modules.search: Field.mark


# ``pop``: popularity as ranking uses it, min(1, ln(1 + plays) / ln(1 + 10^6))
# (delivery.modules.search.POPULARITY_FULL), kept by the database as plays change: stored
# on PostgreSQL (ranking reads it, never recomputes it), computed on read on SQLite (which
# cannot add a stored generated column to an existing table).
_LN_FULL = "13.815511557963774"
_POP_TABLES = ("tracks", "artists", "albums")


def _search_v9_sqlite() -> str:
    out = ["ALTER TABLE tracks ADD COLUMN genre TEXT NOT NULL DEFAULT '';"]
    out += [
        f"ALTER TABLE {t} ADD COLUMN pop REAL GENERATED ALWAYS AS "
        f"(min(ln(1.0 + plays) / {_LN_FULL}, 1.0)) VIRTUAL;"
        for t in _POP_TABLES
    ]
    for table, (search, keys, _) in _SEARCH_COLUMNS.items():
        fts = f"{table}_fts"
        out += [f"ALTER TABLE {table} ADD COLUMN {c} TEXT NOT NULL DEFAULT '';" for c in search]
        out += [f"ALTER TABLE {table} ADD COLUMN {c} TEXT NOT NULL DEFAULT '';" for c in keys]
        out += [f"DROP TRIGGER {table}_fts_{op};" for op in ("insert", "delete", "update")]
        out.append(f"DROP TABLE {fts};")
        out.append(_fts_sqlite(table, search, _SEARCH_FTS_OPTIONS))
        out.append(f"INSERT INTO {fts} ({fts}) VALUES ('rebuild');")
    out.append("""
CREATE TABLE search_vocab (
    term TEXT PRIMARY KEY,
    n_rows INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE search_grams (
    gram TEXT NOT NULL,
    term TEXT NOT NULL,
    len  INTEGER NOT NULL,
    PRIMARY KEY (gram, term)
) WITHOUT ROWID;""")
    return "\n".join(out) + "\n"


def _search_v9_postgres() -> str:
    out = [
        "ALTER TABLE tracks ADD COLUMN genre TEXT NOT NULL DEFAULT '';",
        *(
            f"ALTER TABLE {t} ADD COLUMN pop DOUBLE PRECISION GENERATED ALWAYS AS "
            f"(LEAST(ln(CAST(1 + plays AS DOUBLE PRECISION)) / {_LN_FULL}, 1.0)) STORED;"
            for t in _POP_TABLES
        ),
        # Tokens are letters, digits and marks only (no quote, backslash or colon), so each
        # is a valid quoted lexeme; positions start at 2, leaving a gap between fields.
        """
CREATE FUNCTION delivery_tsv(body TEXT, weight "char", mark TEXT DEFAULT '')
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(setweight(CAST(string_agg('''' || mark || tok || ''':' || (n + 1), ' ')
                                   AS tsvector), weight), CAST('' AS tsvector))
    FROM unnest(string_to_array(body, ' ')) WITH ORDINALITY AS u(tok, n)
    WHERE tok <> ''
$$;""",
    ]
    for table, (search, keys, weights) in _SEARCH_COLUMNS.items():
        adds = ", ".join(f"ADD COLUMN {c} TEXT NOT NULL DEFAULT ''" for c in search + keys)
        vector = " || ".join(
            f"delivery_tsv(NEW.{c}, '{w}'{_TSV_MARKS.get(c, '')})"
            for c, w in zip(search, weights, strict=True)
        )
        out.append(f"""
ALTER TABLE {table} {adds}, ALTER COLUMN search SET DEFAULT CAST('' AS tsvector);
CREATE FUNCTION {table}_search_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := {vector};
    RETURN NEW;
END $$;
CREATE TRIGGER {table}_search_tsv BEFORE INSERT OR UPDATE OF {", ".join(search)} ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_search_tsv();""")
    out.append("""
DROP TABLE search_terms;
DROP TEXT SEARCH CONFIGURATION delivery_search;
CREATE TABLE search_vocab (
    term TEXT COLLATE "C" PRIMARY KEY,
    n_rows BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE search_grams (
    gram TEXT COLLATE "C" NOT NULL,
    term TEXT COLLATE "C" NOT NULL,
    len  SMALLINT NOT NULL,
    PRIMARY KEY (gram, term)
);""")
    return "\n".join(out) + "\n"


def _reindex_search(tx: Transaction, dialect: str) -> None:
    # Imported here: the modules' normalisation, not part of the database layer.
    from delivery.modules.search_index import reindex_all

    reindex_all(tx, dialect)


MIGRATIONS += [
    Migration(
        9,
        "search: normalised text, typo vocabulary",
        _search_v9_sqlite(),
        _search_v9_postgres(),
        then=_reindex_search,
    ),
]


# --- 10: recommendations (delivery.modules.recommend) --------------------------------------
#
# ``delivery recommend build`` writes a whole new build (its rows keyed by ``build_id``) in
# batches, then marks it complete in one statement: readers always use the newest complete
# build, so they see the old set or the new one, never half. Older builds' rows are then
# deleted.

_RECOMMEND = """
CREATE TABLE recommend_builds (
    build_id {serial},
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    plays BIGINT NOT NULL DEFAULT 0,
    users BIGINT NOT NULL DEFAULT 0,
    tracks BIGINT NOT NULL DEFAULT 0,
    seconds {real}
);
CREATE TABLE track_neighbours (
    build_id BIGINT NOT NULL,
    track_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    neighbour_id TEXT NOT NULL,
    score {real} NOT NULL,
    PRIMARY KEY (build_id, track_id, rank)
);
CREATE TABLE user_recommendations (
    build_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    track_id TEXT NOT NULL,
    score {real} NOT NULL,
    PRIMARY KEY (build_id, user_id, rank)
);
"""

MIGRATIONS += [
    Migration(
        10,
        "recommendations",
        _RECOMMEND.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL"),
        _RECOMMEND.format(serial="BIGSERIAL PRIMARY KEY", real="DOUBLE PRECISION"),
    ),
]


# --- 11: the library (delivery.modules.library): album artists, positions, genres, art ------
#
# Tracks get what browsing needs: the album artist (albums group by it and the album title,
# so a compilation is one album), disc and track numbers, the genre's grouping key, the
# cover art keys of their version, when they were first added (``added_at``: existing rows
# take their indexing time) and byte-wise sort keys (``COLLATE "C"`` on PostgreSQL, as
# SQLite compares, so both order alike). Albums and artists get their aggregates (duration,
# album count, genre, art). Existing rows are filled from their manifests by the next
# ``delivery catalog sync`` or ``track.published`` event: ``library_rev`` 0 marks a row
# indexed before this, which both re-index although its version is unchanged
# (delivery.modules.track_index.LIBRARY_REV).


def _library(big: str, sort: str) -> str:
    text = f"TEXT{sort} NOT NULL DEFAULT ''"
    return f"""
ALTER TABLE tracks ADD COLUMN album_artist TEXT NOT NULL DEFAULT '';
ALTER TABLE tracks ADD COLUMN album_artist_id TEXT NOT NULL DEFAULT '';
ALTER TABLE tracks ADD COLUMN genre_key {text};
ALTER TABLE tracks ADD COLUMN disc_no INTEGER;
ALTER TABLE tracks ADD COLUMN track_no INTEGER;
ALTER TABLE tracks ADD COLUMN art_key TEXT;
ALTER TABLE tracks ADD COLUMN art_thumb_key TEXT;
ALTER TABLE tracks ADD COLUMN added_at {big} NOT NULL DEFAULT 0;
ALTER TABLE tracks ADD COLUMN sort_title {text};
ALTER TABLE tracks ADD COLUMN sort_artist {text};
ALTER TABLE tracks ADD COLUMN sort_album {text};
ALTER TABLE tracks ADD COLUMN library_rev INTEGER NOT NULL DEFAULT 0;
UPDATE tracks SET added_at = indexed_at;
CREATE INDEX tracks_added ON tracks (added_at);
CREATE INDEX tracks_album_artist ON tracks (album_artist_id);
CREATE INDEX tracks_genre ON tracks (genre_key);
CREATE INDEX tracks_sort_title ON tracks (sort_title);
CREATE INDEX tracks_sort_artist ON tracks (sort_artist);
ALTER TABLE albums ADD COLUMN duration_ms {big} NOT NULL DEFAULT 0;
ALTER TABLE albums ADD COLUMN added_at {big} NOT NULL DEFAULT 0;
ALTER TABLE albums ADD COLUMN genre TEXT NOT NULL DEFAULT '';
ALTER TABLE albums ADD COLUMN art_key TEXT;
ALTER TABLE albums ADD COLUMN art_thumb_key TEXT;
ALTER TABLE albums ADD COLUMN sort_title {text};
ALTER TABLE albums ADD COLUMN sort_artist {text};
CREATE INDEX albums_added ON albums (added_at);
CREATE INDEX albums_sort_title ON albums (sort_title);
CREATE INDEX albums_artist ON albums (artist_id);
ALTER TABLE artists ADD COLUMN album_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE artists ADD COLUMN art_key TEXT;
ALTER TABLE artists ADD COLUMN art_thumb_key TEXT;
ALTER TABLE artists ADD COLUMN sort_name {text};
CREATE INDEX artists_sort_name ON artists (sort_name);
"""


MIGRATIONS += [
    Migration(
        11,
        "library: album artists, positions, genres, art",
        _library("INTEGER", ""),
        _library("BIGINT", ' COLLATE "C"'),
    ),
]


# --- 12: bounded ranking of very common terms (delivery.modules.search) ---------------------
#
# A word or prefix matching a large share of the catalogue is ranked from a bounded set of
# candidates instead of every match: the most popular matches, the rows whose key equals
# the query (the best text evidence) in popularity order, or every row whose key begins
# with it when they are few, each read from an index. ``plays`` orders popularity (``pop``
# is a non-decreasing function of it). Only the key columns whose match outranks any other
# text evidence get an index: a track's or album's title, an artist's name. On PostgreSQL
# they are indexed byte-wise (``COLLATE "C"``, as SQLite compares), so a key prefix is a
# range of the index whatever the database's collation.


def _bounded_indexes(key: str) -> str:
    return f"""
CREATE INDEX tracks_plays ON tracks (plays);
CREATE INDEX tracks_k_title ON tracks (k_title{key}, plays);
CREATE INDEX artists_plays ON artists (plays);
CREATE INDEX artists_k_name ON artists (k_name{key}, plays);
CREATE INDEX albums_plays ON albums (plays);
CREATE INDEX albums_k_title ON albums (k_title{key}, plays);
"""


MIGRATIONS += [
    Migration(
        12,
        "search: popularity and key indexes",
        _bounded_indexes(""),
        _bounded_indexes(' COLLATE "C"'),
    ),
]


# --- 13: Subsonic app passwords and stars (delivery.subsonic) --------------------------------
#
# An app password is kept encrypted (AES-GCM, key outside the database): Subsonic's token
# login sends md5(password + salt), so the server needs the password itself, never a hash of
# it. The OpenSubsonic API key issued with it is stored as its SHA-256 only (a random 32-byte
# key needs no slow hash). Stars are one partition per user, clustered by kind and id.

_SUBSONIC = """
CREATE TABLE app_passwords (
    password_id TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    api_key_sha256 TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX app_passwords_by_user ON app_passwords (user_id, created_at);
CREATE TABLE stars (
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    starred_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind, item_id)
);
"""

MIGRATIONS += [
    Migration(13, "subsonic: app passwords and stars", _SUBSONIC, _SUBSONIC),
]
