"""Fences (position -> key index): pure checks, then big playlists on both backends."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.modules.fractional import key_between, spread_keys
from delivery.modules.playlists import PlaylistService, RemoveSpec
from delivery.modules.positions import MAX_GAP, MIN_ITEMS, STRIDE, Fences
from delivery.outbox import OutboxEventBus
from tests.delivery.modules.conftest import modules_settings
from tests.delivery.modules.support import playlist_track_ids, seed_tracks


def check(fences: Fences, keys: list[str]) -> None:
    assert fences.count == len(keys)
    for position, key in zip(fences.positions, fences.keys, strict=True):
        assert keys[position] == key


def test_build_and_anchor():
    keys = spread_keys(1000)
    fences = Fences.build("s1", keys)
    check(fences, keys)
    assert fences.positions[:3] == (0, STRIDE, 2 * STRIDE)
    assert fences.anchor(0) == (0, keys[0])
    assert fences.anchor(STRIDE + 5) == (STRIDE, keys[STRIDE])
    assert fences.anchor(999) == (7 * STRIDE, keys[7 * STRIDE])
    assert Fences("s", 0, (), ()).anchor(3) == (0, None)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 10_000), st.integers(1, 40)),
        min_size=1,
        max_size=25,
    )
)
def test_after_tracks_every_fence_or_asks_for_a_rebuild(steps):
    keys = spread_keys(600)
    fences: Fences | None = Fences.build("s0", keys)
    for n, (adding, where, howmany) in enumerate(steps):
        if fences is None:
            fences = Fences.build(f"r{n}", keys)
        if adding or len(keys) < 50:
            i = where % (len(keys) + 1)
            new: list[str] = []
            lo = keys[i - 1] if i else None
            hi = keys[i] if i < len(keys) else None
            for _ in range(howmany):
                lo = key_between(lo, hi)
                new.append(lo)
            keys[i:i] = new
            added, removed = new, []
        else:
            removed = random.Random(where).sample(keys, min(howmany, len(keys) - 1))
            gone = set(removed)
            keys = [k for k in keys if k not in gone]
            added = []
        fences = fences.after(f"s{n + 1}", added, removed)
        if fences is not None:
            check(fences, keys)
            edges = [0, *fences.positions, len(keys)]
            assert max(b - a for a, b in zip(edges, edges[1:], strict=False)) <= MAX_GAP


def test_a_crowded_gap_asks_for_a_rebuild():
    keys = spread_keys(400)
    fences = Fences.build("s0", keys)
    crowd = []
    lo, hi = keys[10], keys[11]
    for _ in range(MAX_GAP):
        lo = key_between(lo, hi)
        crowd.append(lo)
    assert fences.after("s1", crowd, []) is None


# -- big playlists through the service -------------------------------------------------------

N_TRACKS = 20


@pytest.fixture(scope="module")
def big_tracks(app):
    return seed_tracks(app.state.services.modules.track_index, "fence", N_TRACKS)


def service(database) -> PlaylistService:
    return PlaylistService(
        database, modules_settings(playlist_max_items=5000), OutboxEventBus(database)
    )


def order(svc: PlaylistService, pid: str, owner: str) -> list[str]:
    return playlist_track_ids(svc, pid, owner, page_size=100)[0]


def fill(svc, pid, owner, tracks, n):
    model = []
    for start in range(0, n, 100):
        batch = [tracks[(start + i) % len(tracks)] for i in range(min(100, n - start))]
        svc.add(pid, owner, batch)
        model += batch
    return model


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32))
def test_big_playlist_matches_a_reference_list(database, big_tracks, seed):
    rng = random.Random(seed)
    svc, other = service(database), service(database)  # other: a second worker process
    owner = "fence-owner"
    pid = svc.create(owner, name="big")["playlist_id"]
    model = fill(svc, pid, owner, big_tracks, 700)
    for _step in range(30):
        n = len(model)
        writer = other if rng.random() < 0.15 else svc
        kind = rng.choice(["add", "move", "remove", "remove_track"])
        if kind == "add":
            at = rng.randint(0, n)
            new = [rng.choice(big_tracks) for _ in range(rng.randint(1, 5))]
            writer.add(pid, owner, new, position=at)
            model[at:at] = new
        elif kind == "move":
            start = rng.randrange(n)
            length = rng.randint(1, min(20, n - start))
            before = rng.randint(0, n)
            writer.reorder(pid, owner, range_start=start, range_length=length, insert_before=before)
            if not start <= before <= start + length:
                moved = model[start : start + length]
                del model[start : start + length]
                target = before if before < start else before - length
                model[target:target] = moved
        elif kind == "remove":
            positions = sorted({rng.randrange(n) for _ in range(rng.randint(1, 4))})
            writer.remove(pid, owner, positions=positions)
            for p in reversed(positions):
                del model[p]
        else:
            track = rng.choice(big_tracks[-5:])  # rarer tracks, so the playlist stays big
            writer.remove(pid, owner, tracks=[RemoveSpec(track)])
            model = [t for t in model if t != track]
        if len(model) < MIN_ITEMS:
            model += fill(svc, pid, owner, big_tracks, 300)
    assert order(svc, pid, owner) == model
    assert order(other, pid, owner) == model


def test_fences_are_used_and_carried_across_writes(database, big_tracks):
    svc = service(database)
    owner = "fence-user"
    pid = svc.create(owner, name="used")["playlist_id"]
    model = fill(svc, pid, owner, big_tracks, 600)
    svc.add(pid, owner, [big_tracks[0]], position=300)  # builds the fences
    model.insert(300, big_tracks[0])
    snapshot = svc.get(pid, owner)["snapshot_id"]
    fences = svc.order.cached_fences(pid)
    assert fences.snapshot_id == snapshot and fences.count == len(model)
    svc.reorder(pid, owner, range_start=500, insert_before=2)
    model.insert(2, model.pop(500))
    # Advanced, not rebuilt: the same fence keys, at shifted positions.
    moved = svc.order.cached_fences(pid)
    assert moved.snapshot_id == svc.get(pid, owner)["snapshot_id"]
    assert set(moved.keys) <= set(fences.keys)
    assert order(svc, pid, owner) == model
