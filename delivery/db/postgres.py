"""PostgreSQL backend: psycopg 3 with a connection pool; ``:name`` placeholders rewritten."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from delivery.db.base import AfterCommitCallbacks, DatabaseError, Params, Row, run_after_commit
from delivery.db.migrations import apply_pending

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_MIGRATION_LOCK = 0x6175646F  # pg_advisory_xact_lock key: several workers may start at once


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """Rewrite ``:name`` to ``%(name)s`` and escape literal ``%`` for psycopg."""
    return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


class PostgresTransaction(AfterCommitCallbacks):
    def __init__(self, conn: psycopg.Connection) -> None:
        super().__init__()
        self._conn = conn

    def execute(self, sql: str, params: Params = None) -> int:
        cur = self._conn.execute(to_pyformat(sql), params or {})
        return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(to_pyformat(sql), rows)

    def fetchone(self, sql: str, params: Params = None) -> Row | None:
        return self._conn.execute(to_pyformat(sql), params or {}).fetchone()

    def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        return self._conn.execute(to_pyformat(sql), params or {}).fetchall()

    def iterate(self, sql: str, params: Params = None) -> Iterator[Row]:
        yield from self._conn.execute(to_pyformat(sql), params or {})


# While PostgreSQL is unreachable, a request waits this long for a pooled connection and
# then answers 503 ``database_unavailable``: long enough for a failover or a restart to
# finish, short enough that clients and load balancers see an answer, not a hang (the
# pool's default is 30 s).
CONNECTION_WAIT_S = 5.0
# A readiness probe answers within its probe's timeout (Kubernetes: 1 s by default), so
# it waits less for a connection than a request does.
PING_WAIT_S = 1.0


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            timeout=CONNECTION_WAIT_S,
            # A pooled connection the server dropped (restart, failover, terminated) is
            # replaced on checkout rather than failing the request that drew it.
            check=ConnectionPool.check_connection,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except Exception as exc:  # psycopg_pool.PoolTimeout, OperationalError
            raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[PostgresTransaction]:
        callbacks: list[Callable[[], None]] = []
        try:
            with self._pool.connection() as conn, conn.transaction():
                tx = PostgresTransaction(conn)
                callbacks = tx._after_commit
                yield tx
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"PostgreSQL: {exc}") from exc
        # Committed, and the connection is back in the pool for the callbacks to use.
        run_after_commit(callbacks)

    def migrate(self) -> int:
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(:k)", {"k": _MIGRATION_LOCK})
            # Raw DDL: no placeholders, so skip the rewrite (it would double any '%').
            return apply_pending(tx, lambda m: tx._conn.execute(m.postgresql))

    def ping(self) -> None:
        try:
            with self._pool.connection(timeout=PING_WAIT_S) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.OperationalError as exc:  # PoolTimeout is one too
            raise DatabaseError(f"PostgreSQL: {exc}") from exc

    def close(self) -> None:
        self._pool.close()
