"""Recommendations end to end: plays in the database, ``delivery recommend build``, the API."""

from __future__ import annotations

import pytest

from delivery.cli import main as delivery_main
from delivery.events import Event
from delivery.modules.plays import PlayIn
from tests.delivery.modules.support import assert_error, seed_tracks

pytestmark = pytest.mark.anyio


def play(modules, user: str, track: str, times: int = 1) -> None:
    """Record ``times`` plays of ``track`` by ``user``, counted for popularity."""
    for _ in range(times):
        play_id = f"p{play.n}"
        play.n += 1
        modules.plays.record(user, PlayIn(play_id=play_id, track_id=track, ms_played=30_000))
        modules.plays.on_play_recorded(
            Event("play.recorded", {"user_id": user, "play_id": play_id, "track_id": track})
        )


play.n = 0


def build(database, *extra: str) -> int:
    return delivery_main(["recommend", "build", "--database", database.url, *extra])


@pytest.fixture(scope="module")
def taste(database, store, user_secret_bytes):
    """Two tastes, A and B, six tracks each, plus one chart hit everybody plays.

    Listeners of A play A tracks, of B B tracks; ``me`` plays A0 often and A1 once.
    """
    from delivery.modules.track_index import TrackIndex

    index = TrackIndex(database, store)
    a = seed_tracks(index, "tasteA", 6)
    b = seed_tracks(index, "tasteB", 6)
    (hit,) = seed_tracks(index, "hit", 1)
    return {"a": a, "b": b, "hit": hit, "me": "me-recommend"}


async def test_before_the_first_build_lists_fall_back(api, auth, modules, taste):
    # The order matters here: this runs before any build of this module's database.
    for i in range(4):
        play(modules, f"fan{i}", taste["hit"], 2)
    play(modules, "knows-the-hit", taste["hit"], 3)
    r = await api.get("/v1/me/recommendations", headers=auth("newcomer"))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["source"] == "popular"
    assert [t["id"] for t in page["items"]] == [taste["hit"]]
    assert page["items"][0]["name"] and page["total"] == 1
    # Played often: not recommended, even as a fallback.
    r = await api.get("/v1/me/recommendations", headers=auth("knows-the-hit"))
    assert r.json()["items"] == [] and r.json()["total"] == 0
    r = await api.get(f"/v1/tracks/{taste['a'][0]}/radio", headers=auth("newcomer"))
    assert r.status_code == 200
    assert [t["id"] for t in r.json()["tracks"]] == [taste["a"][0]]
    assert r.json()["source"] == "none"


@pytest.fixture
def no_shrink(monkeypatch):
    # Six listeners a taste: shrinkage (meant for thousands) would drown the signal here.
    monkeypatch.setenv("DELIVERY_RECOMMEND_SHRINK", "0")


async def test_the_build_serves_taste_not_the_chart(
    api, auth, modules, taste, database, capsys, no_shrink
):
    a, b, hit, me = taste["a"], taste["b"], taste["hit"], taste["me"]
    for i in range(6):
        for t in a:
            play(modules, f"a-fan{i}", t)
        for t in b:
            play(modules, f"b-fan{i}", t)
        play(modules, f"a-fan{i}", hit, 3)
        play(modules, f"b-fan{i}", hit, 3)
    play(modules, me, a[0], 5)
    play(modules, me, a[1], 1)
    assert build(database, "--neighbours", "5", "--size", "8") == 0
    out, err = capsys.readouterr()
    assert out.startswith("build ") and "recommendations" in out
    assert "reading plays" in err and "rows written" in err  # progress on stderr

    r = await api.get("/v1/me/recommendations?limit=3", headers=auth(me))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["source"] == "personal"
    assert {"href", "items", "limit", "offset", "total", "next", "previous"} <= set(page)
    assert page["limit"] == 3 and page["offset"] == 0 and page["previous"] is None
    assert page["next"] and "offset=3" in page["next"]
    first = [t["id"] for t in page["items"]]
    assert all(t in a for t in first)  # my taste first, not the chart
    assert a[0] not in first  # played often
    assert page["items"][0]["type"] == "track" and page["items"][0]["artists"]
    total = page["total"]
    assert 3 < total <= 8
    everything = []
    for offset in range(0, total, 3):
        r = await api.get(f"/v1/me/recommendations?limit=3&offset={offset}", headers=auth(me))
        everything += [t["id"] for t in r.json()["items"]]
    assert len(everything) == total == len(set(everything)) and a[0] not in everything
    assert set(a[1:]) <= set(everything)
    r = await api.get(f"/v1/me/recommendations?offset={total}", headers=auth(me))
    assert r.json()["items"] == [] and r.json()["total"] == total

    r = await api.get(f"/v1/tracks/{b[2]}/radio?limit=4", headers=auth(me))
    assert r.status_code == 200
    radio = r.json()
    ids = [t["id"] for t in radio["tracks"]]
    assert ids[0] == b[2] and len(ids) == 4 and radio["source"] == "similar"
    assert set(ids[1:]) <= set(b) - {b[2]}
    assert radio["seeds"][0]["id"] == b[2]


async def test_rebuilding_swaps_the_whole_set(
    api, auth, modules, taste, database, capsys, no_shrink
):
    before = (await api.get("/v1/me/recommendations", headers=auth(taste["me"]))).json()
    first = modules.recommend.current_build()
    assert build(database, "--quiet", "--neighbours", "5", "--size", "8") == 0
    out, err = capsys.readouterr()
    assert "reading plays" not in err and "rows written" not in err and out.startswith("build ")
    second = modules.recommend.current_build()
    assert second["build_id"] > first["build_id"] and second["status"] == "complete"
    after = (await api.get("/v1/me/recommendations", headers=auth(taste["me"]))).json()
    assert [t["id"] for t in after["items"]] == [t["id"] for t in before["items"]]  # idempotent
    with database.transaction(write=False) as tx:
        builds = {
            r["build_id"]
            for table in ("track_neighbours", "user_recommendations", "recommend_builds")
            for r in tx.fetchall(f"SELECT DISTINCT build_id FROM {table}")
        }
    assert builds == {second["build_id"]}  # the old set is gone


async def test_bad_requests(api, auth, taste):
    me = auth("someone")
    assert_error(
        await api.get("/v1/tracks/no-such-track/radio", headers=me), 404, "track_not_found"
    )
    assert_error(await api.get("/v1/tracks/bad%20id!/radio", headers=me), 400, "invalid_track_id")
    seed = taste["a"][0]
    for query in ("limit=0", "limit=101", "limit=99999999999999999999", "limit=x"):
        r = await api.get(f"/v1/tracks/{seed}/radio?{query}", headers=me)
        assert r.status_code == 400, query
    for query in ("limit=51", "offset=-1", "offset=1001"):
        r = await api.get(f"/v1/me/recommendations?{query}", headers=me)
        assert r.status_code == 400, query
    assert (await api.get("/v1/me/recommendations")).status_code == 401


def test_cli_errors_are_one_line_and_exit_2(database, capsys):
    assert build(database, "--neighbours", "0") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--neighbours" in err[0]
    assert delivery_main(["recommend", "build", "--database", "mysql://x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unsupported database URL" in err[0]
