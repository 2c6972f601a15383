"""``delivery catalog sync [--store URL] [--database URL] [--prune]`` and ``delivery events``.

Walks the store's ``latest.json`` pointers and indexes every track whose
current version the search catalog lacks (re-running it is cheap: unchanged
tracks cost one small read each). Defaults come from the service's own settings,
``DELIVERY_STORE`` and ``DELIVERY_DATABASE_URL``, which :func:`delivery.cli.main`
loads once and passes to every command (``handler(args, settings)``). Exit status: 0 when
every track was indexed, 1 when some manifests could not be read (the others
are indexed; each failure is printed), 2 when the store or database cannot be
opened. Each track it indexes is announced as a ``track.published`` event written in
the same transaction (the same event ``encoder ingest --notify`` produces), so every
running worker drops its cached ``latest.json`` (and "no such track") for it.

``delivery events failed [--status dead|retrying] [--database URL]`` lists the failed
event deliveries (consumer, event id, topic, attempts, last error); ``delivery events
retry [--consumer NAME]`` requeues the dead ones (a running worker retries them within
``DELIVERY_EVENTS_POLL_S``).

``delivery recommend build [--database URL] [--neighbours K] [--size N] [--quiet]`` computes
the recommendations from the plays and swaps them in (:mod:`delivery.modules.recommend`),
with progress lines on stderr and a summary on stdout; exit 2 (one line) when the database
cannot be opened or read, or an option is out of range.
"""

from __future__ import annotations

import argparse
import sys

from delivery.settings import DeliverySettings


def add_catalog_commands(subparsers) -> None:
    catalog = subparsers.add_parser("catalog", help="the search catalog (tracks from the store)")
    sub = catalog.add_subparsers(dest="catalog_command", metavar="COMMAND", required=True)
    sync = sub.add_parser("sync", help="index new and changed tracks from the store's manifests")
    sync.add_argument(
        "--store", help="store URL (default: $DELIVERY_STORE or file://./data/origin)"
    )
    sync.add_argument(
        "--database",
        dest="database_url",
        help="database URL (default: $DELIVERY_DATABASE_URL or the SQLite file)",
    )
    sync.add_argument(
        "--prune", action="store_true", help="also drop tracks the store no longer holds"
    )
    sync.set_defaults(
        handler=run_catalog_sync, options={"store": "--store", "database_url": "--database"}
    )


def run_catalog_sync(args: argparse.Namespace, settings: DeliverySettings) -> int:
    from delivery.db import DatabaseError, open_database
    from delivery.modules.track_index import TrackIndex
    from delivery.outbox import OutboxEventBus
    from origin.errors import StoreError
    from origin.store import open_store

    store_url, db_url = settings.store, settings.database_url  # --store, --database included
    try:
        store = open_store(store_url)
        db = open_database(db_url)
    except (StoreError, DatabaseError, ValueError) as exc:
        print(f"delivery catalog sync: {exc}", file=sys.stderr)
        return 2
    try:
        db.migrate()
        report = TrackIndex(db, store, events=OutboxEventBus(db)).sync(prune=args.prune)
    except (StoreError, DatabaseError) as exc:
        print(f"delivery catalog sync: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    for error in report.errors:
        print(f"delivery catalog sync: skipped {error}", file=sys.stderr)
    print(report.summary())
    return 1 if report.errors else 0


def add_events_commands(subparsers) -> None:
    events = subparsers.add_parser("events", help="the event outbox: failed deliveries")
    sub = events.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    failed = sub.add_parser("failed", help="list failed event deliveries (dead and retrying)")
    failed.add_argument("--status", choices=["dead", "retrying"], help="only these")
    retry = sub.add_parser("retry", help="requeue dead deliveries")
    retry.add_argument("--consumer", help="only this consumer's")
    for p in (failed, retry):
        p.add_argument(
            "--database",
            dest="database_url",
            help="database URL (default: $DELIVERY_DATABASE_URL or the SQLite file)",
        )
    failed.set_defaults(handler=run_events_failed, options={"database_url": "--database"})
    retry.set_defaults(handler=run_events_retry, options={"database_url": "--database"})


def _on_events_db(args: argparse.Namespace, settings: DeliverySettings, command: str, work):
    """``work(db)`` on the events database; one error line (and None) when it cannot run."""
    from delivery.db import DatabaseError, open_database

    try:
        db = open_database(settings.database_url)  # --database included
        db.migrate()
        try:
            return work(db)
        finally:
            db.close()
    except (DatabaseError, ValueError) as exc:
        print(f"delivery events {command}: {exc}", file=sys.stderr)
        return None


def run_events_failed(args: argparse.Namespace, settings: DeliverySettings) -> int:
    from delivery.outbox import list_failures

    rows = _on_events_db(args, settings, "failed", lambda db: list_failures(db, args.status))
    if rows is None:
        return 2
    print(f"{'CONSUMER':<28} {'EVENT ID':<32} {'TOPIC':<18} {'STATUS':<9} ATTEMPTS  ERROR")
    for r in rows:
        error = " ".join(str(r["error"]).split())[:120]
        print(
            f"{r['consumer']:<28} {r['event_id']:<32} {r['topic']:<18} {r['status']:<9} "
            f"{r['attempts']:>8}  {error}"
        )
    print(f"{len(rows)} failed deliver{'y' if len(rows) == 1 else 'ies'}", file=sys.stderr)
    return 0


def run_events_retry(args: argparse.Namespace, settings: DeliverySettings) -> int:
    from delivery.outbox import retry_dead

    n = _on_events_db(args, settings, "retry", lambda db: retry_dead(db, args.consumer))
    if n is None:
        return 2
    print(f"requeued {n} dead deliver{'y' if n == 1 else 'ies'}")
    return 0


def add_recommend_commands(subparsers) -> None:
    recommend = subparsers.add_parser("recommend", help="recommendations (built offline)")
    sub = recommend.add_subparsers(dest="recommend_command", metavar="COMMAND", required=True)
    build = sub.add_parser(
        "build",
        help='compute similar tracks and every user\'s "for you" list from the plays',
        description='Reads every play, computes similar tracks and "for you" lists, and '
        "swaps them in at once (readers see the old set or the new one). Safe to run on a "
        "schedule while the service runs.",
    )
    build.add_argument(
        "--database",
        dest="database_url",
        help="database URL (default: $DELIVERY_DATABASE_URL or the SQLite file)",
    )
    build.add_argument(
        "--neighbours",
        dest="recommend_neighbours",
        help="similar tracks kept per track (DELIVERY_RECOMMEND_NEIGHBOURS)",
    )
    build.add_argument(
        "--size",
        dest="recommend_size",
        help='"for you" tracks per user (DELIVERY_RECOMMEND_SIZE)',
    )
    build.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    build.set_defaults(
        handler=run_recommend_build,
        options={
            "database_url": "--database",
            "recommend_neighbours": "--neighbours",
            "recommend_size": "--size",
        },
    )


def run_recommend_build(args: argparse.Namespace, settings: DeliverySettings) -> int:
    """Exit 0 when the build is in place, 2 when the database cannot be opened or read."""
    import time

    from delivery.db import DatabaseError, open_database
    from delivery.modules.recommend import RecommendService

    started = time.monotonic()

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"[{time.monotonic() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    try:
        db = open_database(settings.database_url)  # --database included
    except (DatabaseError, ValueError) as exc:
        print(f"delivery recommend build: {exc}", file=sys.stderr)
        return 2
    try:
        db.migrate()
        report = RecommendService(db, settings).build(progress=progress)
    except DatabaseError as exc:
        print(f"delivery recommend build: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    print(report.summary())
    return 0
