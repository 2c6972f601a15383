"""Playlist order against a reference list, on both backends (hypothesis).

Random sequences of add (at a position), move (Spotify's range_start /
range_length / insert_before) and remove (by positions, by track) must leave
the playlist in exactly the order a plain Python list would have. Separately:
writes touch only the rows they move, and renumbering keeps order.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.errors import BadRequest
from delivery.modules import playlist_order
from delivery.modules.playlists import RemoveSpec
from tests.delivery.modules.support import playlist_track_ids, seed_tracks

N_TRACKS = 12

op = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 1000), st.integers(1, 4), st.integers(0, 1000)),
    st.tuples(st.just("move"), st.integers(0, 1000), st.integers(1, 4), st.integers(0, 1000)),
    st.tuples(st.just("remove_positions"), st.lists(st.integers(0, 1000), min_size=1, max_size=3)),
    st.tuples(st.just("remove_track"), st.integers(0, N_TRACKS - 1)),
)


@pytest.fixture(scope="module")
def catalog_tracks(app):
    return seed_tracks(app.state.services.modules.track_index, "model", N_TRACKS)


def apply_to_model(model: list[str], step, tracks: list[str]):
    """Apply ``step`` to the list; return the service call's keyword arguments."""
    kind = step[0]
    n = len(model)
    if kind == "add":
        position = step[1] % (n + 1)
        new = [tracks[(step[3] + i) % len(tracks)] for i in range(step[2])]
        model[position:position] = new
        return "add", {"track_ids": new, "position": position}
    if kind == "move":
        if n == 0:
            return None
        start = step[1] % n
        length = 1 + (step[2] - 1) % (n - start)
        before = step[3] % (n + 1)
        moved = model[start : start + length]
        rest = model[:start] + model[start + length :]
        # insert_before counts positions in the list *before* the move.
        target = before if before <= start else before - length
        if start <= before <= start + length:
            target = start
        model[:] = rest[:target] + moved + rest[target:]
        return "reorder", {"range_start": start, "range_length": length, "insert_before": before}
    if kind == "remove_positions":
        if n == 0:
            return None
        positions = sorted({p % n for p in step[1]})
        for p in reversed(positions):
            del model[p]
        return "remove", {"positions": positions}
    track = tracks[step[1]]
    model[:] = [t for t in model if t != track]
    return "remove", {"tracks": [RemoveSpec(track)]}


def read_all(service, pid, user):
    return playlist_track_ids(service, pid, user, page_size=37)  # odd size: pages must tile


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(op, min_size=1, max_size=14))
def test_order_matches_a_reference_list(app, catalog_tracks, steps):
    service = app.state.services.modules.playlists
    owner = "model-owner"
    pid = service.create(owner, name="model")["playlist_id"]
    model: list[str] = []
    for step in steps:
        call = apply_to_model(model, step, catalog_tracks)
        if call is None:
            continue
        method, kwargs = call
        if method == "add":
            service.add(pid, owner, kwargs["track_ids"], position=kwargs["position"])
        else:
            getattr(service, method)(pid, owner, **kwargs)
        got, count = read_all(service, pid, owner)
        assert got == model, (step, got, model)
        assert count == len(model)


def item_rows(db, pid):
    with db.transaction(write=False) as tx:
        return {
            r["pos"]: r["track_id"]
            for r in tx.fetchall(
                "SELECT pos, track_id FROM playlist_items WHERE playlist_id = :p", {"p": pid}
            )
        }


def test_writes_touch_only_the_moved_rows(app, catalog_tracks):
    service, db = app.state.services.modules.playlists, app.state.services.db
    owner = "rows-owner"
    pid = service.create(owner, name="rows")["playlist_id"]
    for _ in range(20):
        service.add(pid, owner, catalog_tracks)  # 240 items
    before = item_rows(db, pid)
    service.reorder(pid, owner, range_start=200, range_length=3, insert_before=10)
    after = item_rows(db, pid)
    changed = set(before.items()) ^ set(after.items())
    assert len(changed) == 2 * 3  # three rows left their old keys for three new ones
    service.add(pid, owner, catalog_tracks[:2], position=120)
    again = item_rows(db, pid)
    assert set(after.items()) <= set(again.items()) and len(again) == len(after) + 2
    with pytest.raises(BadRequest):
        service.add(pid, owner, catalog_tracks[:1], position=len(again) + 1)


def test_inserting_at_one_spot_renumbers_and_keeps_order(app, catalog_tracks, monkeypatch):
    monkeypatch.setattr(playlist_order, "MAX_KEY_LENGTH", 6)
    service, db = app.state.services.modules.playlists, app.state.services.db
    owner = "spot-owner"
    pid = service.create(owner, name="spot")["playlist_id"]
    service.add(pid, owner, catalog_tracks[:2])
    model = list(catalog_tracks[:2])
    for i in range(60):
        track = catalog_tracks[2 + i % 10]
        service.add(pid, owner, [track], position=1)
        model.insert(1, track)
    service.reorder(pid, owner, range_start=0, insert_before=31)
    model.insert(30, model.pop(0))
    assert read_all(service, pid, owner)[0] == model
    assert max(len(k) for k in item_rows(db, pid)) <= 6 + 1


def test_postgres_orders_keys_byte_wise(database):
    if database.dialect != "postgresql":
        with database.transaction(write=False) as tx:
            # SQLite compares TEXT with memcmp (BINARY) unless told otherwise.
            assert tx.fetchone("SELECT 'a0' > 'Zz' AS ok")["ok"] == 1
        return
    with database.transaction(write=False) as tx:
        row = tx.fetchone(
            "SELECT collation_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'playlist_items' "
            "AND column_name = 'pos'"
        )
    assert row["collation_name"] == "C"
