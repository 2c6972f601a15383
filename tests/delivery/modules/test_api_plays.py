"""Plays: idempotent recording, history with time cursors, popularity counting."""

from __future__ import annotations

import pytest

from delivery.events import Event
from delivery.modules.ids import iso_ms, now_ms
from delivery.modules.paging import encode_cursor
from delivery.settings import SettingsError, load_settings
from tests.delivery.conftest import client_for
from tests.delivery.modules.conftest import build_app, modules_settings
from tests.delivery.modules.support import assert_error, publish_manifest, seed_tracks

pytestmark = pytest.mark.anyio


def stats(db, track_id):
    with db.transaction(write=False) as tx:
        row = tx.fetchone("SELECT plays FROM track_stats WHERE track_id = :t", {"t": track_id})
    return row["plays"] if row else 0


async def test_recording_is_idempotent_on_the_client_play_id(api, auth, uid, modules, database):
    me = uid()
    (track,) = seed_tracks(modules.track_index, uid("t"), 1)
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
    (track,) = seed_tracks(modules.track_index, uid("t"), 1)
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


async def test_plays_of_unknown_tracks_are_rejected(api, auth, uid, modules, database, store):
    me = uid()
    unknown = uid("nowhere")
    r = await api.post(
        "/v1/me/plays",
        json={"play_id": "x", "track_id": unknown, "ms_played": 1},
        headers=auth(me),
    )
    assert_error(r, 404, "track_not_found")
    assert stats(database, unknown) == 0
    r = await api.get("/v1/me/player/recently-played", headers=auth(me))
    assert r.json()["items"] == []
    # Published in the store but not indexed yet (no notify, no sync): streamable, so counted.
    fresh = uid("fresh")
    publish_manifest(store, fresh, title="Just out")
    r = await api.post(
        "/v1/me/plays",
        json={"play_id": "y", "track_id": fresh, "ms_played": 1},
        headers=auth(me),
    )
    assert r.status_code == 201, r.text
    assert stats(database, fresh) == 1
    r = await api.get("/v1/me/player/recently-played", headers=auth(me))
    track = r.json()["items"][0]["track"]
    assert track["id"] == fresh and track["name"] is None


async def test_plays_older_than_the_window_are_rejected(api, auth, uid, modules, database):
    me = uid()
    (track,) = seed_tracks(modules.track_index, uid("t"), 1)
    now = now_ms()
    day = 86_400_000
    too_old = [
        now - 15 * day,  # beyond the default 14 days
        now // 1000,  # seconds sent where milliseconds are expected: 1970
        0,
        "1970-01-01T00:00:00Z",
        iso_ms(now - 15 * day),
    ]
    for n, played_at in enumerate(too_old):
        body = {"play_id": f"old-{n}", "track_id": track, "ms_played": 1, "played_at": played_at}
        r = await api.post("/v1/me/plays", json=body, headers=auth(me))
        assert_error(r, 400, "play_too_old")
    assert stats(database, track) == 0
    body = {"play_id": "recent", "track_id": track, "ms_played": 1, "played_at": now - 13 * day}
    r = await api.post("/v1/me/plays", json=body, headers=auth(me))
    assert r.status_code == 201, r.text
    assert stats(database, track) == 1


async def test_the_play_age_window_is_a_setting(database, store, user_secret_bytes, auth, uid):
    app = build_app(database, store, user_secret_bytes, modules_settings(play_max_age_s=3600))
    (track,) = seed_tracks(app.state.services.modules.track_index, uid("t"), 1)
    me = uid()
    now = now_ms()
    async with client_for(app) as client:
        for play_id, age_ms, status in (("a", 2 * 3_600_000, 400), ("b", 1_800_000, 201)):
            body = {
                "play_id": play_id,
                "track_id": track,
                "ms_played": 1,
                "played_at": now - age_ms,
            }
            r = await client.post("/v1/me/plays", json=body, headers=auth(me))
            assert r.status_code == status, r.text
    with pytest.raises(SettingsError, match="DELIVERY_PLAY_MAX_AGE_S"):
        load_settings(play_max_age_s=0)


async def _record(api, auth, me, track, play_id, played_at):
    body = {"play_id": play_id, "track_id": track, "ms_played": 1, "played_at": played_at}
    r = await api.post("/v1/me/plays", json=body, headers=auth(me))
    assert r.status_code == 201, r.text


async def test_recently_played_newest_first_with_time_cursors(api, auth, uid, modules):
    me = uid()
    tracks = seed_tracks(modules.track_index, uid("t"), 5)
    base = now_ms() - 3_600_000
    for i, track in enumerate(tracks):
        await _record(api, auth, me, track, f"p{i}", base + i * 1000)
    url = "/v1/me/player/recently-played"
    r = await api.get(url, params={"limit": 2}, headers=auth(me))
    page = r.json()
    assert [i["track"]["id"] for i in page["items"]] == [tracks[4], tracks[3]]
    # Opaque cursors (a time and a play id); "next" walks back in time with "before".
    before = page["cursors"]["before"]
    assert before and page["cursors"]["after"] and f"before={before}" in page["next"]
    r = await api.get(url, params={"limit": 2, "before": before}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[2], tracks[1]]
    after = r.json()["cursors"]["after"]
    r = await api.get(url, params={"limit": 2, "after": after}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[4], tracks[3]]
    # Spotify's bare millisecond times still work, in both directions.
    r = await api.get(url, params={"limit": 2, "before": base + 3000}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[2], tracks[1]]
    r = await api.get(url, params={"limit": 2, "after": base + 1000}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[3], tracks[2]]
    r = await api.get(url, params={"limit": 50}, headers=auth(me))
    assert len(r.json()["items"]) == 5 and r.json()["next"] is None
    # Someone else's history is not mine.
    assert (await api.get(url, headers=auth(uid()))).json()["items"] == []
    for bad in (
        {"before": "x"},
        {"after": "-1"},
        {"before": 1, "after": 2},
        {"limit": 51},
        {"before": "9223372036854775808"},
        {"after": "9" * 40},
        {"before": encode_cursor(2**63, "p1")},
        {"before": encode_cursor(base, "p1\n")},
        {"before": encode_cursor(base)},
        {"before": "M" * 1000},
    ):
        assert_error(await api.get(url, params=bad, headers=auth(me)), 400)


async def test_recently_played_pages_through_plays_sharing_a_millisecond(api, auth, uid, modules):
    me = uid()
    (track,) = seed_tracks(modules.track_index, uid("t"), 1)
    at = now_ms() - 60_000
    ids = [f"same-{n}" for n in range(7)]
    for play_id in ids:
        await _record(api, auth, me, track, play_id, at)
    await _record(api, auth, me, track, "older", at - 1)
    await _record(api, auth, me, track, "newer", at + 1)
    url = "/v1/me/player/recently-played"
    seen, params = [], {"limit": 2}
    while True:
        page = (await api.get(url, params=params, headers=auth(me))).json()
        seen += [i["play_id"] for i in page["items"]]
        if page["next"] is None:
            break
        params = {"limit": 2, "before": page["cursors"]["before"]}
    assert seen == ["newer", *sorted(ids, reverse=True), "older"]
    # And forward in time from the oldest, with "after".
    seen, params = [], {"limit": 3, "after": "0"}
    while True:
        page = (await api.get(url, params=params, headers=auth(me))).json()
        if not page["items"]:
            break
        seen = [i["play_id"] for i in page["items"]] + seen
        params = {"limit": 3, "after": page["cursors"]["after"]}
    assert seen == ["newer", *sorted(ids, reverse=True), "older"]
