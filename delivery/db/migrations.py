"""Versioned schema migrations, applied in order at start-up.

Append new migrations at the end; never edit one that has shipped. Each entry
holds the SQL for both dialects (often identical). Tables are keyed the way a
wide-column store would partition them (by user, by playlist), so the model
could move to Cassandra without reshaping queries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: str
    postgresql: str


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
