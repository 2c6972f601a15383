"""The index side of search: the normalised columns of catalogue rows, the typo vocabulary.

Every searchable row carries, next to its display text, what
:mod:`delivery.modules.search_text` makes of it:

* ``t_<field>``: the field's tokens, space-separated. SQLite's FTS5 tables index these
  columns (kept in step by triggers); on PostgreSQL a trigger builds the weighted
  ``search`` tsvector from them with ``delivery_tsv`` (migration 9), position by
  position, so no text search parser ever sees the text. Ranking reads them too.
* ``k_<field>``: the field's key (separators removed), for exact and prefix ranking.

``search_vocab`` holds every distinct word indexed (letters of segmented scripts, 3-24
characters) with the number of rows written with it (it only grows: an estimate of how
common the word is), and ``search_grams`` files each under its single-deletion variants and its
skeleton (:func:`delivery.modules.search_text.grams`): the typo lookup of
:mod:`delivery.modules.search` reads a few short posting lists there, the same on both
backends. Words are added, never removed: a word no row holds any more only costs a
correction that matches nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from delivery.db import Transaction
from delivery.db.base import in_list
from delivery.modules.search_text import field_tokens, grams, key, vocab_terms

_BATCH = 500


def track_columns(title: str, artist: str, album: str, genre: str = "") -> dict[str, str]:
    return {
        "t_title": field_tokens(title),
        "t_artist": field_tokens(artist),
        "t_album": field_tokens(album),
        "t_genre": field_tokens(genre),
        "k_title": key(title),
        "k_artist": key(artist),
        "k_album": key(album),
    }


def playlist_columns(name: str, description: str) -> dict[str, str]:
    return {
        "t_name": field_tokens(name),
        "t_description": field_tokens(description),
        "k_name": key(name),
    }


def add_vocab(tx: Transaction, dialect: str, token_texts: Iterable[str]) -> int:
    """File the words of ``token_texts`` (``t_*`` column values, one per row and field) in
    the vocabulary, counting the rows each was written in; returns how many were new."""
    counts: Counter[str] = Counter()
    for text in token_texts:
        counts.update(vocab_terms(text))
    if not counts:
        return 0
    ordered = sorted(counts)
    known: set[str] = set()
    for i in range(0, len(ordered), _BATCH):
        placeholders, params = in_list(ordered[i : i + _BATCH], "t")
        rows = tx.fetchall(f"SELECT term FROM search_vocab WHERE term IN ({placeholders})", params)
        known |= {r["term"] for r in rows}
    new = [t for t in ordered if t not in known]
    old = [t for t in ordered if t in known]
    postings = [(g, t, len(t)) for t in new for g in sorted(grams(t))]
    if dialect == "postgresql":  # arrays: one statement, not a round trip per row
        tx.execute(
            "INSERT INTO search_vocab (term, n_rows) SELECT * FROM unnest("
            "CAST(:t AS TEXT[]), CAST(:n AS BIGINT[])) "
            "ON CONFLICT (term) DO UPDATE SET n_rows = search_vocab.n_rows + excluded.n_rows",
            {"t": new, "n": [counts[t] for t in new]},
        )
        tx.execute(
            "UPDATE search_vocab v SET n_rows = v.n_rows + u.n FROM unnest("
            "CAST(:t AS TEXT[]), CAST(:n AS BIGINT[])) AS u(t, n) WHERE v.term = u.t",
            {"t": old, "n": [counts[t] for t in old]},
        )
        for i in range(0, len(postings), 20_000):
            batch = postings[i : i + 20_000]
            tx.execute(
                "INSERT INTO search_grams (gram, term, len) SELECT * FROM unnest("
                "CAST(:g AS TEXT[]), CAST(:t AS TEXT[]), CAST(:n AS INTEGER[])) "
                "ON CONFLICT (gram, term) DO NOTHING",
                {
                    "g": [p[0] for p in batch],
                    "t": [p[1] for p in batch],
                    "n": [p[2] for p in batch],
                },
            )
    else:
        tx.executemany(
            "INSERT INTO search_vocab (term, n_rows) VALUES (:t, :n) "
            "ON CONFLICT (term) DO UPDATE SET n_rows = search_vocab.n_rows + excluded.n_rows",
            [{"t": t, "n": counts[t]} for t in ordered],
        )
        tx.executemany(
            "INSERT INTO search_grams (gram, term, len) VALUES (:g, :t, :n) "
            "ON CONFLICT (gram, term) DO NOTHING",
            [{"g": g, "t": t, "n": n} for g, t, n in postings],
        )
    return len(new)


def bulk_update(
    tx: Transaction,
    dialect: str,
    table: str,
    id_column: str,
    rows: Sequence[dict[str, Any]],
) -> None:
    """``UPDATE table SET <every key but id> WHERE id_column = id`` for many rows (each a
    dict with ``id`` and the same columns)."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != "id"]
    if dialect == "postgresql":  # one statement per batch: arrays, not round trips
        for i in range(0, len(rows), 5000):
            batch = rows[i : i + 5000]
            arrays = ", ".join(f"CAST(:{c} AS TEXT[])" for c in ["id", *columns])
            sets = ", ".join(f"{c} = u.{c}" for c in columns)
            tx.execute(
                f"UPDATE {table} x SET {sets} FROM unnest({arrays}) "
                f"AS u(id, {', '.join(columns)}) WHERE x.{id_column} = u.id",
                {c: [r[c] for r in batch] for c in ["id", *columns]},
            )
        return
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    tx.executemany(f"UPDATE {table} SET {sets} WHERE {id_column} = :id", rows)


def reindex_all(tx: Transaction, dialect: str) -> None:
    """Recompute every row's search columns and the vocabulary from the display text
    (migration 9; run again if the normalisation ever changes)."""
    tokens: list[str] = []
    rows = []
    for r in tx.fetchall("SELECT track_id, title, artist, album, genre FROM tracks"):
        cols = track_columns(r["title"], r["artist"], r["album"], r["genre"])
        tokens += [cols["t_title"], cols["t_artist"], cols["t_album"], cols["t_genre"]]
        rows.append({"id": r["track_id"], **cols})
    bulk_update(tx, dialect, "tracks", "track_id", rows)
    rows = [
        {"id": r["artist_id"], "t_name": field_tokens(r["name"]), "k_name": key(r["name"])}
        for r in tx.fetchall("SELECT artist_id, name FROM artists")
    ]
    bulk_update(tx, dialect, "artists", "artist_id", rows)
    rows = [
        {
            "id": r["album_id"],
            "t_title": field_tokens(r["title"]),
            "t_artist": field_tokens(r["artist"]),
            "k_title": key(r["title"]),
            "k_artist": key(r["artist"]),
        }
        for r in tx.fetchall("SELECT album_id, title, artist FROM albums")
    ]
    bulk_update(tx, dialect, "albums", "album_id", rows)
    rows = []
    for r in tx.fetchall("SELECT playlist_id, name, description FROM playlist_search"):
        cols = playlist_columns(r["name"], r["description"])
        tokens += [cols["t_name"], cols["t_description"]]
        rows.append({"id": r["playlist_id"], **cols})
    bulk_update(tx, dialect, "playlist_search", "playlist_id", rows)
    add_vocab(tx, dialect, tokens)
