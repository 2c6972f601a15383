"""One data layer, two backends, chosen by ``DELIVERY_DATABASE_URL``.

* ``sqlite:///./data/delivery.db`` (default; WAL, one connection per thread)
* ``postgresql://user@host:port/db`` (psycopg 3 with a connection pool)

SQL is written once, with ``:name`` placeholders; the PostgreSQL backend
rewrites them to psycopg's ``%(name)s``. Keep statements to the common
dialect (``ON CONFLICT ... DO UPDATE``, ``RETURNING``, no ``::`` casts); where
the dialects must differ, branch on :attr:`Database.dialect` in one place.

    db = open_database(url)
    db.migrate()
    with db.transaction() as tx:
        tx.execute("INSERT INTO users (user_id, tier) VALUES (:u, :t)", {"u": "alice", "t": "free"})
        row = tx.fetchone("SELECT tier FROM users WHERE user_id = :u", {"u": "alice"})
"""

from delivery.db.base import (
    Database,
    DatabaseError,
    Transaction,
    contains_flags,
    in_list,
    open_database,
)

__all__ = [
    "Database",
    "DatabaseError",
    "Transaction",
    "contains_flags",
    "in_list",
    "open_database",
]
