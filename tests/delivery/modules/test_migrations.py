"""The modules' migrations (2-5) on both backends."""

from __future__ import annotations

from delivery.db.migrations import MIGRATIONS


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
            "'artists_search', 'albums_search', 'playlist_search_search', 'search_terms_trgm')"
        )
    assert len(rows) == 5
    for row in rows:
        assert "fastupdate=off" in (row["reloptions"] or []), row
