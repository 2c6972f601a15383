"""The SQLite database is private like the secrets beside it: 0600, WAL and SHM files too."""

from __future__ import annotations

import os
import stat

import pytest

from delivery.db.sqlite import SQLiteDatabase


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the usual default, under which files come out 0644
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_database_and_its_wal_and_shm_files_are_0600(tmp_path, umask_022):
    path = tmp_path / "data" / "delivery.db"
    db = SQLiteDatabase(path)
    try:
        db.migrate()
        with db.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            tx.execute("INSERT INTO t VALUES (1)")
        wal, shm = f"{path}-wal", f"{path}-shm"
        assert os.path.exists(wal) and os.path.exists(shm)  # WAL mode, connection open
        assert {str(p): mode(p) for p in (path, wal, shm)} == {
            str(path): 0o600,
            wal: 0o600,
            shm: 0o600,
        }
    finally:
        db.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path, umask_022):
    path = tmp_path / "delivery.db"
    SQLiteDatabase(path).close()
    os.chmod(path, 0o644)
    db = SQLiteDatabase(path)
    try:
        db.migrate()
        assert mode(path) == 0o600
    finally:
        db.close()


def test_from_url_relative_path_is_0600(tmp_path, monkeypatch, umask_022):
    monkeypatch.chdir(tmp_path)
    db = SQLiteDatabase.from_url("sqlite:///./data/delivery.db")
    try:
        db.ping()
        assert mode(tmp_path / "data" / "delivery.db") == 0o600
    finally:
        db.close()
