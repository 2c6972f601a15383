"""Plays: idempotent recording, history with time cursors, popularity counting."""

from __future__ import annotations

import pytest

from delivery.events import Event
from tests.delivery.modules.support import assert_error, seed_tracks

pytestmark = pytest.mark.anyio


def stats(db, track_id):
    with db.transaction(write=False) as tx:
        row = tx.fetchone("SELECT plays FROM track_stats WHERE track_id = :t", {"t": track_id})
    return row["plays"] if row else 0


async def test_recording_is_idempotent_on_the_client_play_id(api, auth, uid, modules, database):
    me = uid()
    (track,) = seed_tracks(modules.catalog, uid("t"), 1)
    body = {
        "play_id": "abc-1",
        "uri": f"audiocdn:track:{track}",
        "version": "0123456789abcdef",
        "bitrate_kbps": 160,
        "ms_played": 42_000,
        "context": {"type": "playlist", "uri": "audiocdn:playlist:x"},
    }
    r = await api.post("/v1/me/plays", json=body, headers=auth(me))
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["created"] is True and first["track"]["id"] == track
    assert first["context"] == {"type": "playlist", "uri": "audiocdn:playlist:x"}
    r = await api.post("/v1/me/plays", json=body, headers=auth(me))
    assert r.status_code == 200 and r.json()["created"] is False
    assert r.json()["played_at"] == first["played_at"]
    assert stats(database, track) == 1  # counted once
    # The same id for a different play is a conflict; another user may reuse the id.
    r = await api.post("/v1/me/plays", json={**body, "ms_played": 1}, headers=auth(me))
    assert_error(r, 409, "play_id_conflict")
    r = await api.post("/v1/me/plays", json=body, headers=auth(uid()))
    assert r.status_code == 201
    assert stats(database, track) == 2


async def test_the_handler_counts_each_play_once_however_often_delivered(uid, modules, database):
    me = uid()
    (track,) = seed_tracks(modules.catalog, uid("t"), 1)
    from delivery.modules.plays import PlayIn

    row, created = modules.plays.record(me, PlayIn(play_id="dup", track_id=track, ms_played=5))
    assert created and stats(database, track) == 1
    event = Event("play.recorded", {"user_id": me, "play_id": "dup", "track_id": track})
    modules.plays.on_play_recorded(event)  # redelivered
    modules.plays.on_play_recorded(event)
    assert stats(database, track) == 1
    with database.transaction(write=False) as tx:
        listener = tx.fetchone(
            "SELECT play_count FROM track_listeners WHERE track_id = :t AND user_id = :u",
            {"t": track, "u": me},
        )
    assert listener["play_count"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"play_id": ""},
        {"play_id": "has space"},
        {"play_id": "x" * 65},
        {"track_id": "../etc"},
        {"track_id": None, "uri": "spotify:track:x"},
        {"uri": "audiocdn:track:y"},  # both track_id and uri
        {"ms_played": -1},
        {"ms_played": "long"},
        {"bitrate_kbps": 100},
        {"version": "NOTHEX"},
        {"played_at": "yesterday"},
        {"played_at": "2026-01-01T10:00:00"},  # no time zone
        {"played_at": "2999-01-01T00:00:00Z"},
        {"played_at": -5},
        {"context": {"type": "mood"}},
        {"context": "playlist"},
    ],
)
async def test_bad_plays_are_400(api, auth, uid, change):
    body = {"play_id": "ok-1", "track_id": "some-track", "ms_played": 1000, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await api.post("/v1/me/plays", json=body, headers=auth(uid()))
    assert_error(r, 400)


async def test_unknown_tracks_are_recorded_anyway(api, auth, uid):
    me = uid()
    r = await api.post(
        "/v1/me/plays",
        json={"play_id": "x", "track_id": "not-indexed-yet", "ms_played": 1},
        headers=auth(me),
    )
    assert r.status_code == 201
    r = await api.get("/v1/me/player/recently-played", headers=auth(me))
    track = r.json()["items"][0]["track"]
    assert track["id"] == "not-indexed-yet" and track["name"] is None


async def test_recently_played_newest_first_with_time_cursors(api, auth, uid, modules):
    me = uid()
    tracks = seed_tracks(modules.catalog, uid("t"), 5)
    base = 1_767_000_000_000
    for i, track in enumerate(tracks):
        r = await api.post(
            "/v1/me/plays",
            json={
                "play_id": f"p{i}",
                "track_id": track,
                "ms_played": 1,
                "played_at": base + i * 1000,
            },
            headers=auth(me),
        )
        assert r.status_code == 201
    url = "/v1/me/player/recently-played"
    r = await api.get(url, params={"limit": 2}, headers=auth(me))
    page = r.json()
    assert [i["track"]["id"] for i in page["items"]] == [tracks[4], tracks[3]]
    assert page["cursors"] == {"after": str(base + 4000), "before": str(base + 3000)}
    assert f"before={base + 3000}" in page["next"]
    r = await api.get(url, params={"limit": 2, "before": base + 3000}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[2], tracks[1]]
    r = await api.get(url, params={"limit": 2, "after": base + 1000}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[3], tracks[2]]
    r = await api.get(url, params={"limit": 50}, headers=auth(me))
    assert len(r.json()["items"]) == 5 and r.json()["next"] is None
    # Someone else's history is not mine.
    assert (await api.get(url, headers=auth(uid()))).json()["items"] == []
    for bad in ({"before": "x"}, {"after": "-1"}, {"before": 1, "after": 2}, {"limit": 51}):
        assert_error(await api.get(url, params=bad, headers=auth(me)), 400)
