"""Follows, follower lists, suggestions and friends-listened on both backends."""

from __future__ import annotations

import pytest

from delivery.modules.ids import iso_ms, now_ms
from tests.delivery.modules.support import assert_error, seed_tracks

pytestmark = pytest.mark.anyio


async def follow(api, auth, me, *others, expect=204):
    r = await api.put(
        "/v1/me/following", params={"type": "user", "ids": ",".join(others)}, headers=auth(me)
    )
    assert r.status_code == expect, r.text


async def play(api, auth, user, track_id, play_id, played_at=None):
    body = {"play_id": play_id, "track_id": track_id, "ms_played": 60_000}
    if played_at is not None:
        body["played_at"] = played_at
    r = await api.post("/v1/me/plays", json=body, headers=auth(user))
    assert r.status_code == 201, r.text


async def test_follow_unfollow_contains(api, auth, uid):
    me, a, b, c = uid(), uid(), uid(), uid()
    await follow(api, auth, me, a, b)
    await follow(api, auth, me, a)  # idempotent
    # The body form (Spotify accepts {"ids": [...]}) works too.
    r = await api.put(
        "/v1/me/following", params={"type": "user"}, json={"ids": [c]}, headers=auth(me)
    )
    assert r.status_code == 204
    r = await api.get(
        "/v1/me/following/contains",
        params={"type": "user", "ids": f"{a},{c},{me}"},
        headers=auth(me),
    )
    assert r.json() == [True, True, False]
    r = await api.request(
        "DELETE", "/v1/me/following", params={"type": "user", "ids": a}, headers=auth(me)
    )
    assert r.status_code == 204
    r = await api.get("/v1/me/following", params={"type": "user"}, headers=auth(me))
    page = r.json()["users"]
    assert sorted(u["id"] for u in page["items"]) == sorted([b, c]) and page["total"] == 2
    assert page["items"][0]["type"] == "user" and page["items"][0]["followed_at"].endswith("Z")
    # The other side sees it too.
    r = await api.get(f"/v1/users/{b}/followers", headers=auth(a))
    assert [u["id"] for u in r.json()["users"]["items"]] == [me]
    r = await api.get("/v1/me/followers", headers=auth(a))
    assert r.json()["users"]["total"] == 0
    r = await api.get(f"/v1/users/{me}/following", headers=auth(a))
    assert r.json()["users"]["total"] == 2


@pytest.mark.parametrize(
    "params, body",
    [
        ({"type": "artist", "ids": "x"}, None),
        ({"ids": "x"}, None),
        ({"type": "user"}, None),
        ({"type": "user", "ids": ","}, None),
        ({"type": "user", "ids": "bad id"}, None),
        ({"type": "user", "ids": ",".join(f"u{i}" for i in range(51))}, None),
        ({"type": "user"}, {"ids": "not-a-list-of-strings-but-ok"}),
        ({"type": "user"}, {"ids": [1, 2]}),
    ],
)
async def test_follow_rejects_bad_input(api, auth, uid, params, body):
    me = uid()
    r = await api.put("/v1/me/following", params=params, json=body, headers=auth(me))
    if body == {"ids": "not-a-list-of-strings-but-ok"}:
        assert r.status_code == 204  # a comma-separated string in the body is fine
        return
    assert_error(r, 400)


async def test_cannot_follow_yourself(api, auth, uid):
    me = uid()
    r = await api.put("/v1/me/following", params={"type": "user", "ids": me}, headers=auth(me))
    assert_error(r, 400, "self_follow")


async def test_cursor_paging(api, auth, uid):
    me = uid()
    others = sorted(f"{uid()}" for _ in range(23))
    await follow(api, auth, me, *others)
    seen, after, pages = [], None, 0
    while True:
        params = {"type": "user", "limit": 10}
        if after:
            params["after"] = after
        r = await api.get("/v1/me/following", params=params, headers=auth(me))
        page = r.json()["users"]
        assert page["total"] == 23 and page["limit"] == 10
        seen += [u["id"] for u in page["items"]]
        pages += 1
        after = page["cursors"]["after"]
        if page["next"] is None:
            assert after is None
            break
        assert f"after={after}" in page["next"]
    assert seen == others and pages == 3
    # A cursor past the end is an empty page, not an error.
    r = await api.get("/v1/me/following", params={"type": "user", "after": "~"}, headers=auth(me))
    assert r.json()["users"]["items"] == []
    for bad in ({"limit": 0}, {"limit": 51}):
        r = await api.get("/v1/me/following", params={"type": "user", **bad}, headers=auth(me))
        assert_error(r, 400)
    assert_error(
        await api.get(f"/v1/users/{me}/followers", params={"limit": 99}, headers=auth(me)), 400
    )


async def test_suggestions_rank_friends_of_friends_by_mutual_count(api, auth, uid):
    me, f1, f2, f3 = uid(), uid(), uid(), uid()
    popular, known, lonely = uid(), uid(), uid()
    await follow(api, auth, me, f1, f2, f3, known)
    await follow(api, auth, f1, popular, known, me)
    await follow(api, auth, f2, popular, lonely)
    await follow(api, auth, f3, popular)
    r = await api.get("/v1/me/following/suggestions", headers=auth(me))
    items = r.json()["items"]
    assert [(i["user"]["id"], i["mutual_count"]) for i in items] == [(popular, 3), (lonely, 1)]
    r = await api.get("/v1/me/following/suggestions", params={"limit": 1}, headers=auth(me))
    assert len(r.json()["items"]) == 1
    assert_error(
        await api.get("/v1/me/following/suggestions", params={"limit": 0}, headers=auth(me)), 400
    )


async def test_friends_listened(api, auth, uid, modules):
    me, early, late, stranger, quiet = uid(), uid(), uid(), uid(), uid()
    track, other = seed_tracks(modules.track_index, uid("t"), 2)
    await follow(api, auth, me, early, late, quiet)
    hour = 3_600_000
    day1 = now_ms() // hour * hour - 5 * 24 * hour  # plays must be recent (play_max_age_s)
    await play(api, auth, early, track, "p1", iso_ms(day1 + 10 * hour))
    await play(api, auth, late, track, "p2", iso_ms(day1 + 34 * hour))
    await play(api, auth, early, track, "p3", day1 + 9 * hour)  # older: last stays 10:00
    await play(api, auth, stranger, track, "p4", day1 + 58 * hour)  # not followed
    await play(api, auth, quiet, other, "p5", day1 + 82 * hour)  # another track
    r = await api.get(f"/v1/tracks/{track}/friends-listened", headers=auth(me))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(i["user"]["id"], i["play_count"]) for i in body["items"]] == [(late, 1), (early, 2)]
    assert body["items"][0]["last_played_at"] == iso_ms(day1 + 34 * hour)
    assert body["items"][1]["last_played_at"] == iso_ms(day1 + 10 * hour)
    assert body["total"] == 2 and body["next"] is None
    # Paging by cursor.
    r = await api.get(f"/v1/tracks/{track}/friends-listened", params={"limit": 1}, headers=auth(me))
    first = r.json()
    assert [i["user"]["id"] for i in first["items"]] == [late] and first["next"]
    cursor = first["cursors"]["after"]
    r = await api.get(
        f"/v1/tracks/{track}/friends-listened",
        params={"limit": 1, "before": cursor},
        headers=auth(me),
    )
    assert [i["user"]["id"] for i in r.json()["items"]] == [early] and r.json()["next"] is None
    # Nobody I follow played it.
    r = await api.get(f"/v1/tracks/{track}/friends-listened", headers=auth(stranger))
    assert r.json()["items"] == [] and r.json()["total"] == 0
    assert_error(
        await api.get(
            f"/v1/tracks/{track}/friends-listened", params={"before": "%%%"}, headers=auth(me)
        ),
        400,
    )
    assert_error(
        await api.get(
            f"/v1/tracks/{track}/friends-listened", params={"before": "eHg"}, headers=auth(me)
        ),
        400,
    )
    assert_error(await api.get("/v1/tracks/bad!id/friends-listened", headers=auth(me)), 400)
    assert_error(
        await api.get(
            f"/v1/tracks/{track}/friends-listened", params={"limit": 51}, headers=auth(me)
        ),
        400,
    )
