"""``delivery catalog sync``: the store's manifests into the search catalog, via the real CLI."""

from __future__ import annotations

import pytest

from delivery.cli import main as delivery_main
from origin.keys import latest_key, manifest_key
from tests.delivery.conftest import client_for
from tests.delivery.modules.conftest import build_app
from tests.delivery.modules.support import publish_manifest


def catalog(db):
    with db.transaction(write=False) as tx:
        return {
            r["track_id"]: r
            for r in tx.fetchall("SELECT track_id, version, title, artist, year FROM tracks")
        }


@pytest.fixture(scope="module")
def sync_store(tmp_path_factory, database):
    """One store per backend: the catalog must mirror exactly this store."""
    from origin.store import open_store

    return open_store(tmp_path_factory.mktemp("sync-origin").as_uri())


def run(sync_store, database, *extra):
    return delivery_main(
        ["catalog", "sync", "--store", sync_store.url, "--database", database.url, *extra]
    )


def test_sync_indexes_new_and_changed_tracks(sync_store, database, capsys):
    v1 = publish_manifest(sync_store, "sync-a", title="Alpha", artist="A", date="2004-02-03")
    publish_manifest(sync_store, "sync-b", title="Beta", artist="B", album="Bees")
    assert run(sync_store, database) == 0
    out = capsys.readouterr().out
    assert "2 tracks in the store, 2 indexed, 0 unchanged" in out
    rows = catalog(database)
    assert rows["sync-a"]["version"] == v1 and rows["sync-a"]["year"] == 2004
    assert rows["sync-b"]["title"] == "Beta"
    # Nothing changed: nothing re-read.
    assert run(sync_store, database) == 0
    assert "0 indexed, 2 unchanged" in capsys.readouterr().out
    # A new version of one track.
    v2 = publish_manifest(sync_store, "sync-a", title="Alpha (remaster)", artist="A")
    assert run(sync_store, database) == 0
    assert "1 indexed, 1 unchanged" in capsys.readouterr().out
    assert catalog(database)["sync-a"]["version"] == v2
    assert catalog(database)["sync-a"]["title"] == "Alpha (remaster)"


def test_unreadable_manifests_are_reported_and_the_rest_indexed(sync_store, database, capsys):
    publish_manifest(sync_store, "sync-ok", title="Fine")
    version = publish_manifest(sync_store, "sync-bad", title="Broken")
    sync_store.put_bytes(manifest_key("sync-bad", version), b"{not json")
    publish_manifest(sync_store, "sync-dangling", title="x", write_latest=False)
    sync_store.put_bytes(
        latest_key("sync-dangling"),
        b'{"version": "00000000000000ff", "published_at": "2026-01-01T00:00:00Z"}',
    )
    assert run(sync_store, database) == 1
    captured = capsys.readouterr()
    assert "skipped sync-bad:" in captured.err and "skipped sync-dangling:" in captured.err
    rows = catalog(database)
    assert "sync-ok" in rows and "sync-bad" not in rows and "sync-dangling" not in rows
    sync_store.delete(latest_key("sync-bad"))
    sync_store.delete(latest_key("sync-dangling"))


def test_prune_drops_tracks_the_store_lost(sync_store, database, capsys):
    publish_manifest(sync_store, "sync-gone", title="Soon gone")
    assert run(sync_store, database) == 0
    assert "sync-gone" in catalog(database)
    sync_store.delete(latest_key("sync-gone"))
    assert run(sync_store, database) == 0
    assert "sync-gone" in catalog(database)  # without --prune nothing is dropped
    assert run(sync_store, database, "--prune") == 0
    assert "1 removed" in capsys.readouterr().out
    assert "sync-gone" not in catalog(database)


def test_bad_locations_fail_in_one_line(database, tmp_path, capsys):
    code = delivery_main(
        ["catalog", "sync", "--store", "ftp://nowhere", "--database", database.url]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unsupported store URL" in err[0]
    code = delivery_main(
        ["catalog", "sync", "--store", tmp_path.as_uri(), "--database", "mysql://x"]
    )
    assert code == 2 and "unsupported database URL" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_pruned_track_stops_streaming_on_every_worker_at_once(
    sync_store, database, user_secret_bytes, auth
):
    # A worker that streamed the track holds its latest.json for DELIVERY_CATALOG_TTL_S;
    # the prune's track.removed event (written with the deletion) makes it forget now.
    worker = build_app(database, sync_store, user_secret_bytes)
    worker.state.services.events.run_once()  # the worker's position: after older events
    publish_manifest(sync_store, "sync-pruned", title="Pruned")
    assert run(sync_store, database) == 0
    async with client_for(worker) as client:
        r = await client.get("/v1/tracks/sync-pruned/stream", headers=auth("listener"))
        assert r.status_code == 200, r.text
        sync_store.delete(latest_key("sync-pruned"))
        assert run(sync_store, database, "--prune") == 0
        r = await client.get("/v1/tracks/sync-pruned/stream", headers=auth("listener"))
        assert r.status_code == 200  # still cached: the event is not yet applied
        worker.state.services.events.run_once()
        r = await client.get("/v1/tracks/sync-pruned/stream", headers=auth("listener"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "track_not_found"
