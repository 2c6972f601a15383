"""``delivery catalog sync [--store URL] [--database URL] [--prune]``.

Walks the store's ``latest.json`` pointers and indexes every track whose
current version the search catalog lacks (re-running it is cheap: unchanged
tracks cost one small read each). Defaults come from the service's own
variables, ``DELIVERY_STORE`` and ``DELIVERY_DATABASE_URL``. Exit status: 0 when
every track was indexed, 1 when some manifests could not be read (the others
are indexed; each failure is printed), 2 when the store or database cannot be
opened.
"""

from __future__ import annotations

import argparse
import sys

from pydantic_settings import BaseSettings, SettingsConfigDict


class _Locations(BaseSettings):
    # The same variables and defaults as delivery.settings.DeliverySettings.
    model_config = SettingsConfigDict(env_prefix="DELIVERY_", extra="ignore")
    store: str = "file://./data/origin"
    database_url: str = "sqlite:///./data/delivery.db"


def add_catalog_commands(subparsers) -> None:
    catalog = subparsers.add_parser("catalog", help="the search catalog (tracks from the store)")
    sub = catalog.add_subparsers(dest="catalog_command", metavar="COMMAND", required=True)
    sync = sub.add_parser("sync", help="index new and changed tracks from the store's manifests")
    sync.add_argument(
        "--store", help="store URL (default: $DELIVERY_STORE or file://./data/origin)"
    )
    sync.add_argument(
        "--database", help="database URL (default: $DELIVERY_DATABASE_URL or the SQLite file)"
    )
    sync.add_argument(
        "--prune", action="store_true", help="also drop tracks the store no longer holds"
    )
    sync.set_defaults(func=run_catalog_sync)


def run_catalog_sync(args: argparse.Namespace) -> int:
    from delivery.db import DatabaseError, open_database
    from delivery.modules.track_index import TrackIndex
    from origin.errors import StoreError
    from origin.store import open_store

    defaults = _Locations()
    store_url = args.store or defaults.store
    db_url = args.database or defaults.database_url
    try:
        store = open_store(store_url)
        db = open_database(db_url)
    except (StoreError, DatabaseError, ValueError) as exc:
        print(f"delivery catalog sync: {exc}", file=sys.stderr)
        return 2
    try:
        db.migrate()
        report = TrackIndex(db, store).sync(prune=args.prune)
    except (StoreError, DatabaseError) as exc:
        print(f"delivery catalog sync: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    for error in report.errors:
        print(f"delivery catalog sync: skipped {error}", file=sys.stderr)
    print(report.summary())
    return 1 if report.errors else 0
