"""Artists and albums: rows derived from the tracks, recomputed whenever a track joins or
leaves them (:mod:`.track_index` calls :func:`refresh_artist` / :func:`refresh_album` for
every id an upsert or removal touched, in its transaction), so they cannot drift.

An album is its album artist and title; an artist row exists while some track names it
as artist or album artist (``track_count`` and ``plays``: the tracks it performs;
``album_count``: the albums it performs on or is credited with). Each shows the cover
art of its first track that has some: an album in disc/track order (:data:`TRACK_ORDER`),
an artist over its albums by year. An album's genre is its first track's with one.
"""

from __future__ import annotations

from delivery.db import Transaction
from delivery.modules.library_tags import sort_key
from delivery.modules.search_text import field_tokens
from delivery.modules.search_text import key as search_key

# Tracks of an album in disc/track order (unnumbered last), the same on both databases:
# sort keys compare byte-wise, and so do ids breaking ties ({C}: see bytewise()).
TRACK_ORDER = "COALESCE(t.disc_no, 1), t.track_no IS NULL, t.track_no, t.sort_title, t.track_id{C}"


def bytewise(sql: str, dialect: str) -> str:
    """``sql`` with each ``{C}`` made a byte-wise collation: ``COLLATE "C"`` on PostgreSQL
    (whose default follows the locale), nothing on SQLite (byte-wise already)."""
    return sql.replace("{C}", ' COLLATE "C"' if dialect == "postgresql" else "")


# Aggregates are recomputed from the tracks, a few statements per artist/album touched.
# Tracks of one artist (album) carry names equal under normalize_name, which the search
# normalisation folds further, so MIN() of their search columns is the name's own; an album
# artist's search columns are made from its name here, as no track column holds them.
_ARTIST_FIGURES = """
    SELECT COALESCE(MIN(CASE WHEN t.artist_id = :id THEN t.artist END),
                    MIN(CASE WHEN t.album_artist_id = :id THEN t.album_artist END)) AS name,
           COUNT(*) AS n, COUNT(CASE WHEN t.artist_id = :id THEN 1 END) AS track_count,
           COALESCE(SUM(CASE WHEN t.artist_id = :id THEN t.plays END), 0) AS plays,
           COUNT(DISTINCT CASE WHEN t.album_id <> '' THEN t.album_id END) AS album_count
    FROM tracks t
    WHERE t.artist_id = :id OR t.album_artist_id = :id
"""
_ARTIST_ART = f"""
    SELECT t.art_key, t.art_thumb_key FROM tracks t
    WHERE (t.artist_id = :id OR t.album_artist_id = :id) AND t.art_key IS NOT NULL
    ORDER BY t.year IS NULL, t.year, t.sort_album, {TRACK_ORDER}
    LIMIT 1
"""
_UPSERT_ARTIST = """
    INSERT INTO artists (artist_id, name, track_count, plays, album_count, t_name, k_name,
                         sort_name, art_key, art_thumb_key)
    VALUES (:id, :name, :track_count, :plays, :album_count, :t_name, :k_name, :sort_name,
            :art_key, :art_thumb_key)
    ON CONFLICT (artist_id) DO UPDATE SET name = excluded.name,
        track_count = excluded.track_count, plays = excluded.plays,
        album_count = excluded.album_count, t_name = excluded.t_name, k_name = excluded.k_name,
        sort_name = excluded.sort_name, art_key = excluded.art_key,
        art_thumb_key = excluded.art_thumb_key
"""
_ALBUM_FIGURES = """
    SELECT COALESCE(MIN(t.album), '') AS title, COALESCE(MIN(t.album_artist), '') AS artist,
           COALESCE(MIN(t.album_artist_id), '') AS artist_id, MIN(t.year) AS year,
           COUNT(*) AS track_count, COALESCE(SUM(t.plays), 0) AS plays,
           COALESCE(SUM(t.duration_ms), 0) AS duration_ms, MIN(t.added_at) AS added_at,
           COALESCE(MIN(t.t_album), '') AS t_title, COALESCE(MIN(t.k_album), '') AS k_title
    FROM tracks t
    WHERE t.album_id = :id
"""
# The first track (disc/track order) with a genre, and the first with art.
_ALBUM_FIRST = f"""
    SELECT t.COLUMN AS first FROM tracks t
    WHERE t.album_id = :id AND t.COLUMN IS NOT NULL AND t.COLUMN <> ''
    ORDER BY {TRACK_ORDER}
    LIMIT 1
"""
_UPSERT_ALBUM = """
    INSERT INTO albums (album_id, title, artist, artist_id, year, track_count, plays,
                        t_title, t_artist, k_title, k_artist, duration_ms, added_at, genre,
                        art_key, art_thumb_key, sort_title, sort_artist)
    VALUES (:id, :title, :artist, :artist_id, :year, :track_count, :plays, :t_title,
            :t_artist, :k_title, :k_artist, :duration_ms, :added_at, :genre, :art_key,
            :art_thumb_key, :sort_title, :sort_artist)
    ON CONFLICT (album_id) DO UPDATE SET title = excluded.title, artist = excluded.artist,
        artist_id = excluded.artist_id, year = excluded.year,
        track_count = excluded.track_count, plays = excluded.plays,
        t_title = excluded.t_title, t_artist = excluded.t_artist,
        k_title = excluded.k_title, k_artist = excluded.k_artist,
        duration_ms = excluded.duration_ms, added_at = excluded.added_at,
        genre = excluded.genre, art_key = excluded.art_key,
        art_thumb_key = excluded.art_thumb_key, sort_title = excluded.sort_title,
        sort_artist = excluded.sort_artist
"""


def refresh_artist(tx: Transaction, dialect: str, artist_id: str) -> None:
    figures = tx.fetchone(_ARTIST_FIGURES, {"id": artist_id})
    if figures is None or not figures["n"]:
        tx.execute("DELETE FROM artists WHERE artist_id = :id", {"id": artist_id})
        return
    art = tx.fetchone(bytewise(_ARTIST_ART, dialect), {"id": artist_id}) or {}
    name = figures["name"] or ""
    tx.execute(
        _UPSERT_ARTIST,
        {
            "id": artist_id,
            "name": name,
            "track_count": figures["track_count"],
            "plays": figures["plays"],
            "album_count": figures["album_count"],
            "t_name": field_tokens(name),
            "k_name": search_key(name),
            "sort_name": sort_key(name),
            "art_key": art.get("art_key"),
            "art_thumb_key": art.get("art_thumb_key"),
        },
    )


def refresh_album(tx: Transaction, dialect: str, album_id: str) -> None:
    figures = tx.fetchone(_ALBUM_FIGURES, {"id": album_id})
    if figures is None or not figures["track_count"]:
        tx.execute("DELETE FROM albums WHERE album_id = :id", {"id": album_id})
        return

    def first(column: str) -> str | None:
        sql = bytewise(_ALBUM_FIRST.replace("COLUMN", column), dialect)
        row = tx.fetchone(sql, {"id": album_id})
        return row["first"] if row else None

    art_key = first("art_key")
    thumb = None
    if art_key is not None:  # the thumbnail of that same version
        row = tx.fetchone(
            "SELECT art_thumb_key FROM tracks WHERE album_id = :id AND art_key = :k",
            {"id": album_id, "k": art_key},
        )
        thumb = row["art_thumb_key"] if row else None
    artist = figures["artist"]
    tx.execute(
        _UPSERT_ALBUM,
        {
            **figures,
            "id": album_id,
            "t_artist": field_tokens(artist),
            "k_artist": search_key(artist),
            "genre": first("genre") or "",
            "art_key": art_key,
            "art_thumb_key": thumb,
            "sort_title": sort_key(figures["title"]),
            "sort_artist": sort_key(artist),
        },
    )
