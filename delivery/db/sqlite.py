"""SQLite backend: WAL journal, one connection per thread, IMMEDIATE write transactions.

The database holds users, tiers and playlists, so it is private like the secrets
beside it: the file is created 0600 before SQLite opens it (SQLite gives its
``-wal`` and ``-shm`` files the database file's mode), and an existing file
readable by others is tightened to 0600 at start-up.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from delivery.db.base import AfterCommitCallbacks, DatabaseError, Params, Row, run_after_commit
from delivery.db.migrations import Migration, apply_pending


class SQLiteTransaction(AfterCommitCallbacks):
    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._conn = conn

    def execute(self, sql: str, params: Params = None) -> int:
        return self._conn.execute(sql, params or {}).rowcount

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.executemany(sql, rows)

    def fetchone(self, sql: str, params: Params = None) -> Row | None:
        row = self._conn.execute(sql, params or {}).fetchone()
        return dict(row) if row is not None else None

    def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        return [dict(r) for r in self._conn.execute(sql, params or {}).fetchall()]

    def iterate(self, sql: str, params: Params = None) -> Iterator[Row]:
        for r in self._conn.execute(sql, params or {}):
            yield dict(r)


class SQLiteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            _make_private(self.path)
        self.url = f"sqlite:///{self.path}"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SQLiteDatabase:
        # sqlite:///relative/path, sqlite:////abs/path, sqlite:///:memory:
        rest = url.removeprefix("sqlite:")
        if rest.startswith("///"):
            path = rest[3:]
        elif rest.startswith("//"):
            path = rest[2:]
        else:
            path = rest
        if not path:
            raise ValueError(f"sqlite URL {url!r} has no path")
        return cls(path)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30
                )
            except sqlite3.Error as exc:
                raise DatabaseError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[SQLiteTransaction]:
        conn = self._connection()
        try:
            # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
            # instead of deadlocking when both try to upgrade a read lock.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise DatabaseError(f"SQLite: {exc}") from exc
        tx = SQLiteTransaction(conn)
        try:
            yield tx
        except BaseException as exc:
            conn.execute("ROLLBACK")
            # "database is locked" past busy_timeout, a full disk, a missing table: the
            # database cannot serve, like PostgreSQL's OperationalError (503, not 500).
            if isinstance(exc, sqlite3.OperationalError):
                raise DatabaseError(f"SQLite: {exc}") from exc
            raise
        else:
            conn.execute("COMMIT")
            run_after_commit(tx._after_commit)

    def migrate(self) -> int:
        with self.transaction() as tx:

            def run(m: Migration) -> None:
                for statement in _split(m.sqlite):
                    tx.execute(statement)

            return apply_pending(tx, run)

    def ping(self) -> None:
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise DatabaseError(f"SQLite: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


DB_FILE_MODE = 0o600


def _make_private(path: str) -> None:
    """Create the database file 0600 if missing; tighten it and its WAL/SHM files if not."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, DB_FILE_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseError(f"cannot create SQLite database {path!r}: {exc.strerror}") from None
    else:
        os.close(fd)
    for name in (path, path + "-wal", path + "-shm"):
        try:
            st = os.stat(name)
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(name, DB_FILE_MODE)
        except OSError:
            pass  # absent, or not ours to change: SQLite reports what matters


def _split(script: str) -> list[str]:
    # Migrations are plain DDL; splitting per statement keeps them in one transaction
    # (sqlite3's executescript would commit first).
    out, buf = [], []
    for line in script.splitlines():
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            stmt = "\n".join(buf).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out
