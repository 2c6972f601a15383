"""The library stays fresh: publish events, new versions, removals, and rows from before 11."""

from __future__ import annotations

import pytest

from delivery.db import migrations
from delivery.db.migrations import MIGRATIONS
from delivery.modules.track_index import LIBRARY_REV, TrackIndex
from origin.keys import latest_key
from origin.store import open_store
from tests.delivery.conftest import BACKENDS, backend_database
from tests.delivery.modules.conftest import ADMIN_TOKEN
from tests.delivery.modules.library_support import publish_tagged
from tests.delivery.modules.support import assert_error

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def announce(api, track_id: str, version: str) -> None:
    r = await api.post(
        "/v1/admin/events",
        json={"event": "track.published", "track_id": track_id, "version": version},
        headers=ADMIN,
    )
    assert r.status_code == 202, r.text


async def get(api, auth, path: str, status: int = 200, **params) -> dict:
    r = await api.get(path, params=params, headers=auth("listener"))
    assert r.status_code == status, r.text
    return r.json()


@pytest.mark.anyio
async def test_a_publish_event_reaches_the_library_and_a_new_version_regroups(
    api, auth, store, uid
):
    track_id = uid("fresh")
    tags = {"title": "First Light", "artist": "Dawn", "album": "Morning", "genre": "Ambient"}
    version = publish_tagged(store, track_id, {**tags, "tracknumber": "4/9"}, art=True)
    await announce(api, track_id, version)
    recent = await get(api, auth, "/v1/library/recent", limit=1)
    track = recent["items"][0]
    assert track["id"] == track_id and track["track"] == 4 and track["art"] is not None
    album_id = track["album_id"]
    album = await get(api, auth, f"/v1/library/albums/{album_id}")
    assert [t["id"] for t in album["tracks"]] == [track_id] and album["art"] is not None
    added_at = track["added_at"]
    # A new version: another album artist, no art. The old album disappears at once.
    v2 = publish_tagged(store, track_id, {**tags, "albumartist": "Dusk"})
    await announce(api, track_id, v2)
    await get(api, auth, f"/v1/library/albums/{album_id}", status=404)
    track = (await get(api, auth, "/v1/library/recent", limit=1))["items"][0]
    assert track["album_artist"] == "Dusk" and track["art"] is None and track["track"] is None
    assert track["added_at"] == added_at  # added once: a new version is not a new track
    album = await get(api, auth, f"/v1/library/albums/{track['album_id']}")
    assert album["artist"] == "Dusk" and album["art"] is None


@pytest.mark.anyio
async def test_removal_drops_the_track_its_album_artist_and_genre(api, auth, store, uid, modules):
    track_id = uid("gone")
    genre = f"Genre {track_id}"
    tags = {"title": "Soon Gone", "artist": f"Artist {track_id}", "album": "Ephemera"}
    version = publish_tagged(store, track_id, {**tags, "genre": genre}, art=True)
    await announce(api, track_id, version)
    track = (await get(api, auth, "/v1/library/recent", limit=1))["items"][0]
    assert track["id"] == track_id
    assert (await get(api, auth, f"/v1/library/genres/{genre}/tracks"))["total"] == 1
    store.delete(latest_key(track_id))
    report = modules.track_index.sync(store, prune=True)  # `delivery catalog sync --prune`
    assert report.removed >= 1
    recent = await get(api, auth, "/v1/library/recent", limit=50)
    assert track_id not in [t["id"] for t in recent["items"]]
    await get(api, auth, f"/v1/library/albums/{track['album_id']}", status=404)
    await get(api, auth, f"/v1/library/artists/{track['artist_id']}", status=404)
    r = await api.get(f"/v1/library/genres/{genre}/tracks", headers=auth("listener"))
    assert_error(r, 404, "genre_not_found")
    genres = await get(api, auth, "/v1/library/genres", limit=50)
    assert genre not in [g["name"] for g in genres["items"]]


@pytest.fixture(params=BACKENDS)
def at_version_10(request, tmp_path, monkeypatch):
    """A database migrated only up to 10 (the catalogue before the library)."""
    monkeypatch.setattr(migrations, "MIGRATIONS", [m for m in MIGRATIONS if m.version <= 10])
    with backend_database(request, tmp_path / "old.db") as db:
        yield db


def test_rows_indexed_before_migration_11_are_reindexed_by_the_next_sync(
    at_version_10, monkeypatch, tmp_path
):
    db = at_version_10
    store = open_store((tmp_path / "origin").as_uri())
    version = publish_tagged(
        store,
        "old-row",
        {"title": "Old", "artist": "Ana", "albumartist": "Band", "album": "Then",
         "discnumber": "2", "tracknumber": "7/10", "genre": "Folk"},
        art=True,
    )  # fmt: skip
    with db.transaction() as tx:  # the row as the code before 11 wrote it
        tx.execute(
            "INSERT INTO tracks (track_id, version, title, artist, album, artist_id, album_id, "
            "year, duration_ms, indexed_at, plays) VALUES ('old-row', :v, 'Old', 'Ana', 'Then', "
            "'a1', 'b1', NULL, 3500, 1700000000000, 0)",
            {"v": version},
        )
    monkeypatch.undo()  # every migration again
    assert db.migrate() == max(m.version for m in MIGRATIONS)
    with db.transaction(write=False) as tx:
        row = tx.fetchone("SELECT added_at, library_rev FROM tracks WHERE track_id = 'old-row'")
    assert row == {"added_at": 1700000000000, "library_rev": 0}
    index = TrackIndex(db, store)
    assert index.versions() == {"old-row": ""}  # out of date although the version matches
    report = index.sync(store)
    assert report.indexed == 1 and report.unchanged == 0
    with db.transaction(write=False) as tx:
        row = tx.fetchone(
            "SELECT album_artist, disc_no, track_no, genre_key, art_key, added_at, library_rev "
            "FROM tracks WHERE track_id = 'old-row'"
        )
        albums = tx.fetchall("SELECT album_id, artist, art_key FROM albums")
    assert row["album_artist"] == "Band" and (row["disc_no"], row["track_no"]) == (2, 7)
    assert row["genre_key"] == "folk" and row["art_key"].endswith("/cover.png")
    assert row["added_at"] == 1700000000000 and row["library_rev"] == LIBRARY_REV
    # The album regrouped under its album artist; the stale 'b1' row is gone.
    assert [a["artist"] for a in albums] == ["Band"] and albums[0]["album_id"] != "b1"
    assert index.sync(store).unchanged == 1  # and now it is up to date


@pytest.mark.anyio
async def test_a_genre_name_with_a_slash_is_one_path_segment_or_several(api, auth, store, uid):
    track_id = uid("slash")
    genre = f"Rock/Pop {track_id}"
    version = publish_tagged(store, track_id, {"title": "Both", "artist": "X", "genre": genre})
    await announce(api, track_id, version)
    for path in (
        f"/v1/library/genres/{genre}/tracks",
        f"/v1/library/genres/{genre.replace('/', '%2F')}/tracks",
    ):
        page = await get(api, auth, path)
        assert [t["id"] for t in page["items"]] == [track_id], path
