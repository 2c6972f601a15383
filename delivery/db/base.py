"""The data-layer port and the URL -> backend table."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

log = logging.getLogger("delivery.db")

Params = Mapping[str, Any] | None
Row = dict[str, Any]


def in_list(values: Sequence[Any], prefix: str = "v") -> tuple[str, dict[str, Any]]:
    """An SQL ``IN (...)`` list as named parameters: ``(":v0, :v1", {"v0": a, "v1": b})``.

    Values always travel as parameters, never as SQL text; both backends take
    ``:name`` placeholders. Pick a ``prefix`` no other parameter of the statement uses.
    """
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{n}" for n in params), params


def contains_flags(
    tx: Transaction, sql: str, ids: Sequence[str], params: Mapping[str, Any]
) -> list[bool]:
    """For each of ``ids``, whether ``sql`` returns it (the Spotify ``.../contains`` shape).

    ``sql`` selects the one id column and has ``{ids}`` where the ``IN (...)`` list goes.
    """
    placeholders, in_params = in_list(ids)
    rows = tx.fetchall(sql.format(ids=placeholders), {**params, **in_params})
    found = {next(iter(row.values())) for row in rows}
    return [i in found for i in ids]


def run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    """Run a committed transaction's callbacks; one failing never reaches the committer."""
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the change is committed: report, never undo the caller's success
            log.exception("after-commit callback %r failed", callback)


class AfterCommitCallbacks:
    """What both backends' transactions share: the callbacks :meth:`Transaction.after_commit`
    collects (each callable once, in order), which the backend hands to
    :func:`run_after_commit` once the transaction has committed."""

    def __init__(self) -> None:
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        if callback not in self._after_commit:
            self._after_commit.append(callback)


class DatabaseError(Exception):
    """The database could not be reached or a statement failed (mapped to 503 by the API)."""


class Transaction(Protocol):
    """One transaction; commits when the ``with`` block ends cleanly, rolls back otherwise."""

    def execute(self, sql: str, params: Params = None) -> int:
        """Run one statement; return the affected row count."""

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def fetchone(self, sql: str, params: Params = None) -> Row | None: ...

    def fetchall(self, sql: str, params: Params = None) -> list[Row]: ...

    def iterate(self, sql: str, params: Params = None) -> Iterator[Row]: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once this transaction has committed (never on a rollback).

        Callbacks run in the committing thread, after the connection is released, in
        the order added; the same callable added twice runs once. One that raises is
        logged and the others still run.
        """


class Database(Protocol):
    url: str
    dialect: Literal["sqlite", "postgresql"]

    def transaction(self, write: bool = True) -> AbstractContextManager[Transaction]:
        """Open a transaction. ``write=False`` lets SQLite readers run beside a writer."""

    def migrate(self) -> int:
        """Apply pending migrations (idempotent, safe across processes); return the version."""

    def ping(self) -> None:
        """Raise :class:`DatabaseError` when the database cannot answer (readiness checks)."""

    def close(self) -> None: ...


def open_database(url: str) -> Database:
    if url.startswith("sqlite:"):
        from delivery.db.sqlite import SQLiteDatabase

        return SQLiteDatabase.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        from delivery.db.postgres import PostgresDatabase

        return PostgresDatabase(url)
    raise ValueError(
        f"unsupported database URL {url.split('@')[-1]!r}: use sqlite:///path or postgresql://..."
    )
