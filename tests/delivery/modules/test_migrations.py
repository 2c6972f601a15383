"""The modules' migrations (2-5, 9) on both backends."""

from __future__ import annotations

import pytest

from delivery.db import migrations
from delivery.db.migrations import MIGRATIONS
from delivery.modules.search import SearchService
from delivery.modules.search_query import parse_query
from tests.delivery.conftest import BACKENDS, backend_database
from tests.delivery.modules.conftest import modules_settings


def test_migrations_apply_once_and_are_idempotent(database):
    latest = max(m.version for m in MIGRATIONS)
    assert latest >= 5
    assert database.migrate() == latest  # again: nothing to do, nothing breaks
    with database.transaction(write=False) as tx:
        versions = [r["version"] for r in tx.fetchall("SELECT version FROM schema_migrations")]
    assert sorted(versions) == sorted(m.version for m in MIGRATIONS)


def test_search_gin_indexes_have_no_pending_list(database):
    if database.dialect != "postgresql":
        with database.transaction(write=False) as tx:
            fts = {
                r["name"]
                for r in tx.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        assert {"tracks_fts", "artists_fts", "albums_fts", "playlist_search_fts"} <= fts
        return
    with database.transaction(write=False) as tx:
        rows = tx.fetchall(
            "SELECT c.relname, c.reloptions FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relname IN ('tracks_search', "
            "'artists_search', 'albums_search', 'playlist_search_search')"
        )
    assert len(rows) == 4
    for row in rows:
        assert "fastupdate=off" in (row["reloptions"] or []), row


@pytest.fixture(params=BACKENDS)
def at_version_8(request, tmp_path, monkeypatch):
    """A database migrated only up to 8 (search as it was before 9); the test migrates on."""
    monkeypatch.setattr(migrations, "MIGRATIONS", [m for m in MIGRATIONS if m.version <= 8])
    with backend_database(request, tmp_path / "old.db") as db:
        yield db


# Rows as the code before migration 9 wrote them (PostgreSQL also filled the tsvector).
_OLD_ROWS = {
    "sqlite": [
        "INSERT INTO tracks (track_id, version, title, artist, album, artist_id, album_id, "
        "year, duration_ms, indexed_at, plays) VALUES ('t1', 'v', 'Highway to Hell', 'AC/DC', "
        "'Highway', 'a1', 'b1', 1979, 1, 0, 5)",
        "INSERT INTO artists (artist_id, name, track_count, plays) VALUES ('a1', 'AC/DC', 1, 5)",
    ],
    "postgresql": [
        "INSERT INTO tracks (track_id, version, title, artist, album, artist_id, album_id, "
        "year, duration_ms, indexed_at, plays, search) VALUES ('t1', 'v', 'Highway to Hell', "
        "'AC/DC', 'Highway', 'a1', 'b1', 1979, 1, 0, 5, "
        "to_tsvector('delivery_search', 'Highway to Hell AC/DC'))",
        "INSERT INTO artists (artist_id, name, track_count, plays, search) "
        "VALUES ('a1', 'AC/DC', 1, 5, to_tsvector('delivery_search', 'AC/DC'))",
        "INSERT INTO search_terms (term) VALUES ('highway'), ('hell'), ('ac/dc')",
    ],
}


def test_migration_9_reindexes_existing_rows(at_version_8, monkeypatch):
    db = at_version_8
    with db.transaction() as tx:
        for sql in _OLD_ROWS[db.dialect]:
            tx.execute(sql)
    monkeypatch.undo()  # every migration again
    assert db.migrate() == max(m.version for m in MIGRATIONS)
    service = SearchService(db, modules_settings())
    for q, kind in (("acdc", "artist"), ("ac/dc", "artist"), ("highway to hel", "track")):
        rows, total = service.search(parse_query(q), kind, limit=5, offset=0)
        assert total == 1, (q, kind)
    rows, _ = service.search(parse_query("hihgway"), "track", limit=5, offset=0)  # a typo
    assert [r["track_id"] for r in rows] == ["t1"]
