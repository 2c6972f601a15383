"""Playlist endpoints on both backends: shapes, paging, writes, permissions, limits."""

from __future__ import annotations

import pytest

from delivery.settings import DeliverySettings
from tests.delivery.modules.conftest import TEST_PLAYLIST_MAX_ITEMS
from tests.delivery.modules.support import assert_error, seed_tracks

pytestmark = pytest.mark.anyio


def uris(track_ids):
    return [f"audiocdn:track:{t}" for t in track_ids]


async def make_playlist(api, auth, owner, **body):
    r = await api.post("/v1/me/playlists", json={"name": "Mix", **body}, headers=auth(owner))
    assert r.status_code == 201, r.text
    return r.json()


async def add(api, auth, user, pid, track_ids, position=None, expect=201):
    body = {"uris": uris(track_ids)}
    if position is not None:
        body["position"] = position
    r = await api.post(f"/v1/playlists/{pid}/items", json=body, headers=auth(user))
    assert r.status_code == expect, r.text
    return r.json()


async def order(api, auth, user, pid):
    """Every track id in playlist order, read page by page through the API."""
    out, offset = [], 0
    while True:
        r = await api.get(
            f"/v1/playlists/{pid}/items", params={"offset": offset, "limit": 50}, headers=auth(user)
        )
        assert r.status_code == 200, r.text
        page = r.json()
        out += [i["track"]["id"] for i in page["items"]]
        if page["next"] is None:
            return out
        offset += 50


@pytest.fixture
def tracks(modules, uid):
    return seed_tracks(modules.track_index, uid("t"), 30)


async def test_requires_authentication(api):
    assert_error(await api.get("/v1/me/playlists"), 401)
    assert_error(
        await api.post(
            "/v1/me/playlists", json={"name": "x"}, headers={"Authorization": "Bearer junk"}
        ),
        401,
    )


async def test_create_and_get(api, auth, uid):
    me = uid()
    p = await make_playlist(api, auth, me, description="road trip")
    assert p["type"] == "playlist" and p["uri"] == f"audiocdn:playlist:{p['id']}"
    assert p["owner"]["id"] == me and p["public"] is True and p["collaborative"] is False
    assert p["tracks"]["total"] == 0 and p["snapshot_id"] and p["description"] == "road trip"
    r = await api.get(f"/v1/playlists/{p['id']}", headers=auth(me))
    assert r.status_code == 200
    full = r.json()
    assert full["tracks"]["items"] == [] and full["tracks"]["total"] == 0
    assert full["snapshot_id"] == p["snapshot_id"]


async def test_create_for_user_path(api, auth, uid):
    me = uid()
    r = await api.post(f"/v1/users/{me}/playlists", json={"name": "A"}, headers=auth(me))
    assert r.status_code == 201 and r.json()["owner"]["id"] == me
    r = await api.post(f"/v1/users/{uid()}/playlists", json={"name": "A"}, headers=auth(me))
    assert_error(r, 403)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": 5},
        {"name": "x", "public": "maybe"},
        {"name": "x", "public": True, "collaborative": True},
        {"name": "x", "description": "d" * 1001},
    ],
)
async def test_create_rejects_bad_input(api, auth, uid, body):
    r = await api.post("/v1/me/playlists", json=body, headers=auth(uid()))
    assert_error(r, 400)


async def test_unknown_and_malformed_ids_are_404(api, auth, uid):
    assert_error(
        await api.get("/v1/playlists/" + "A" * 22, headers=auth(uid())), 404, "playlist_not_found"
    )
    assert_error(await api.get("/v1/playlists/..%2F..", headers=auth(uid())), 404)
    assert_error(await api.get("/v1/playlists/short/items", headers=auth(uid())), 404)


async def test_add_items_positions_and_snapshots(api, auth, uid, tracks):
    me = uid()
    p = await make_playlist(api, auth, me)
    pid, snapshots = p["id"], {p["snapshot_id"]}
    snapshots.add((await add(api, auth, me, pid, tracks[:3]))["snapshot_id"])
    snapshots.add((await add(api, auth, me, pid, [tracks[3]], position=0))["snapshot_id"])
    snapshots.add((await add(api, auth, me, pid, tracks[4:6], position=2))["snapshot_id"])
    snapshots.add((await add(api, auth, me, pid, [tracks[6]], position=6))["snapshot_id"])
    assert len(snapshots) == 5  # every write made a new snapshot
    assert await order(api, auth, me, pid) == [
        tracks[3],
        tracks[0],
        tracks[4],
        tracks[5],
        tracks[1],
        tracks[2],
        tracks[6],
    ]
    # The query-string form (Spotify's), with a bare id too.
    r = await api.post(
        f"/v1/playlists/{pid}/items",
        params={"uris": f"audiocdn:track:{tracks[7]},{tracks[8]}", "position": 1},
        headers=auth(me),
    )
    assert r.status_code == 201, r.text
    assert (await order(api, auth, me, pid))[:4] == [tracks[3], tracks[7], tracks[8], tracks[0]]
    # The same track may appear twice.
    await add(api, auth, me, pid, [tracks[0]])
    assert (await order(api, auth, me, pid)).count(tracks[0]) == 2


async def test_add_rejects_bad_input(api, auth, uid, tracks):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, tracks[:2])
    url = f"/v1/playlists/{pid}/items"
    cases = [
        ({"uris": uris(tracks[:1]), "position": 3}, "invalid_position"),
        ({"uris": uris(tracks[:1]), "position": -1}, "invalid_position"),
        ({"uris": []}, "no_items"),
        ({"uris": ["spotify:track:abc"]}, "invalid_uri"),
        ({"uris": ["audiocdn:album:abc"]}, "invalid_uri"),
        ({"uris": ["../etc"]}, "invalid_track_id"),
        ({"uris": ["audiocdn:track:does-not-exist"]}, "unknown_track"),
        ({"uris": "notalist"}, None),
        ({"uris": uris(tracks[:1]), "position": "two"}, None),
    ]
    for body, code in cases:
        assert_error(await api.post(url, json=body, headers=auth(me)), 400, code)
    assert_error(await api.post(url, headers=auth(me)), 400, "no_items")
    assert await order(api, auth, me, pid) == tracks[:2]  # nothing partial was written


async def test_at_most_100_items_per_request(api, auth, uid, modules):
    me = uid()
    many = seed_tracks(modules.track_index, uid("t"), 101)
    pid = (await make_playlist(api, auth, me))["id"]
    r = await api.post(f"/v1/playlists/{pid}/items", json={"uris": uris(many)}, headers=auth(me))
    assert_error(r, 400, "too_many_items")
    await add(api, auth, me, pid, many[:100])
    r = await api.put(f"/v1/playlists/{pid}/items", json={"uris": uris(many)}, headers=auth(me))
    assert_error(r, 400, "too_many_items")
    body = {"tracks": [{"uri": u} for u in uris(many)]}
    r = await api.request("DELETE", f"/v1/playlists/{pid}/items", json=body, headers=auth(me))
    assert_error(r, 400, "too_many_items")
    assert len(await order(api, auth, me, pid)) == 100


async def test_playlist_size_limit(api, auth, uid, modules):
    me = uid()
    many = seed_tracks(modules.track_index, uid("t"), 100)
    pid = (await make_playlist(api, auth, me))["id"]
    for _ in range(TEST_PLAYLIST_MAX_ITEMS // 100):
        await add(api, auth, me, pid, many)
    room = TEST_PLAYLIST_MAX_ITEMS % 100
    r = await api.post(
        f"/v1/playlists/{pid}/items", json={"uris": uris(many[: room + 1])}, headers=auth(me)
    )
    assert_error(r, 400, "playlist_full")
    await add(api, auth, me, pid, many[:room])
    r = await api.post(
        f"/v1/playlists/{pid}/items", json={"uris": uris(many[:1])}, headers=auth(me)
    )
    assert_error(r, 400, "playlist_full")
    r = await api.get(f"/v1/playlists/{pid}", headers=auth(me))
    assert r.json()["tracks"]["total"] == TEST_PLAYLIST_MAX_ITEMS


def test_default_limit_is_ten_thousand(monkeypatch):
    monkeypatch.delenv("DELIVERY_PLAYLIST_MAX_ITEMS", raising=False)
    assert DeliverySettings().playlist_max_items == 10_000
    monkeypatch.setenv("DELIVERY_PLAYLIST_MAX_ITEMS", "500")
    assert DeliverySettings().playlist_max_items == 500


async def test_paging(api, auth, uid, tracks):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, tracks[:25])
    url = f"/v1/playlists/{pid}/items"
    r = await api.get(url, headers=auth(me))
    page = r.json()
    assert page["limit"] == 20 and page["offset"] == 0 and page["total"] == 25
    assert len(page["items"]) == 20 and page["previous"] is None
    assert page["next"].endswith(f"/v1/playlists/{pid}/items?offset=20&limit=20")
    r = await api.get(url, params={"offset": 20, "limit": 10}, headers=auth(me))
    page = r.json()
    assert [i["track"]["id"] for i in page["items"]] == tracks[20:25]
    assert page["next"] is None and page["previous"].endswith("offset=10&limit=10")
    r = await api.get(url, params={"offset": 25}, headers=auth(me))
    assert r.json()["items"] == [] and r.json()["total"] == 25
    r = await api.get(url, params={"offset": 24, "limit": 1}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[24]]
    for params in ({"limit": 0}, {"limit": 51}, {"offset": -1}, {"limit": "x"}):
        assert_error(await api.get(url, params=params, headers=auth(me)), 400)
    # The alias Spotify used before /items.
    r = await api.get(f"/v1/playlists/{pid}/tracks", params={"limit": 5}, headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == tracks[:5]


async def test_get_playlist_embeds_the_first_hundred(api, auth, uid, modules):
    me = uid()
    many = seed_tracks(modules.track_index, uid("t"), 100)
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, many)
    await add(api, auth, me, pid, many[:5])
    r = await api.get(f"/v1/playlists/{pid}", headers=auth(me))
    tracks = r.json()["tracks"]
    assert len(tracks["items"]) == 100 and tracks["total"] == 105
    assert tracks["next"].endswith(f"/v1/playlists/{pid}/items?offset=100&limit=50")
    item = tracks["items"][0]
    assert item["added_by"]["id"] == me and item["added_at"].endswith("Z")
    assert item["track"]["name"] and item["track"]["artists"][0]["name"]
    assert item["track"]["album"]["name"] and item["track"]["duration_ms"] == 180_000


async def test_reorder(api, auth, uid, tracks):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, tracks[:6])
    url = f"/v1/playlists/{pid}/items"
    a, b, c, d, e, f = tracks[:6]
    r = await api.put(url, json={"range_start": 0, "insert_before": 3}, headers=auth(me))
    assert r.status_code == 200 and r.json()["snapshot_id"]
    assert await order(api, auth, me, pid) == [b, c, a, d, e, f]
    r = await api.put(
        url, json={"range_start": 3, "range_length": 3, "insert_before": 0}, headers=auth(me)
    )
    assert await order(api, auth, me, pid) == [d, e, f, b, c, a]
    r = await api.put(
        url, json={"range_start": 0, "range_length": 2, "insert_before": 6}, headers=auth(me)
    )
    assert await order(api, auth, me, pid) == [f, b, c, a, d, e]
    snapshot = r.json()["snapshot_id"]
    # Moving a range onto itself changes nothing, not even the snapshot.
    r = await api.put(
        url, json={"range_start": 1, "range_length": 2, "insert_before": 3}, headers=auth(me)
    )
    assert r.json()["snapshot_id"] == snapshot
    # With the current snapshot_id it applies; with a stale one it is a 409.
    r = await api.put(
        url, json={"range_start": 5, "insert_before": 0, "snapshot_id": snapshot}, headers=auth(me)
    )
    assert r.status_code == 200 and await order(api, auth, me, pid) == [e, f, b, c, a, d]
    r = await api.put(
        url, json={"range_start": 0, "insert_before": 2, "snapshot_id": snapshot}, headers=auth(me)
    )
    assert_error(r, 409, "snapshot_conflict")


@pytest.mark.parametrize(
    "body, code",
    [
        ({"range_start": 6, "insert_before": 0}, "invalid_range"),
        ({"range_start": -1, "insert_before": 0}, "invalid_range"),
        ({"range_start": 4, "range_length": 3, "insert_before": 0}, "invalid_range"),
        ({"range_start": 0, "range_length": 0, "insert_before": 3}, "invalid_range"),
        ({"range_start": 0, "insert_before": 7}, "invalid_position"),
        ({"range_start": 0}, "invalid_request"),
        ({}, "invalid_request"),
        ({"range_start": 0, "insert_before": 2, "uris": []}, None),
        ({"range_start": "a", "insert_before": 2}, None),
    ],
)
async def test_reorder_rejects_bad_ranges(api, auth, uid, tracks, body, code):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, tracks[:6])
    r = await api.put(f"/v1/playlists/{pid}/items", json=body, headers=auth(me))
    assert_error(r, 400, code)
    assert await order(api, auth, me, pid) == tracks[:6]


async def test_replace(api, auth, uid, tracks):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, tracks[:5])
    url = f"/v1/playlists/{pid}/items"
    r = await api.put(url, json={"uris": uris([tracks[9], tracks[8]])}, headers=auth(me))
    assert r.status_code == 200
    assert await order(api, auth, me, pid) == [tracks[9], tracks[8]]
    r = await api.put(url, params={"uris": ",".join(uris(tracks[:3]))}, headers=auth(me))
    assert await order(api, auth, me, pid) == tracks[:3]
    r = await api.put(url, json={"uris": []}, headers=auth(me))
    assert await order(api, auth, me, pid) == []
    assert_error(await api.put(url, json={"uris": ["audiocdn:track:nope"]}, headers=auth(me)), 400)
    r = await api.get(f"/v1/playlists/{pid}", headers=auth(me))
    assert r.json()["tracks"]["total"] == 0


async def test_remove_by_track_and_by_position(api, auth, uid, tracks):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    a, b, c, d = tracks[:4]
    await add(api, auth, me, pid, [a, b, a, c, d, a])
    url = f"/v1/playlists/{pid}/items"

    async def delete(body, expect=200):
        r = await api.request("DELETE", url, json=body, headers=auth(me))
        assert r.status_code == expect, r.text
        return r.json()

    await delete({"tracks": [{"uri": f"audiocdn:track:{a}", "positions": [2]}]})
    assert await order(api, auth, me, pid) == [a, b, c, d, a]
    await delete({"positions": [0, 3]})
    assert await order(api, auth, me, pid) == [b, c, a]
    snap = (await delete({"items": [{"uri": f"audiocdn:track:{a}"}]}))["snapshot_id"]
    assert await order(api, auth, me, pid) == [b, c]
    # Removing something absent changes nothing.
    assert (await delete({"tracks": [{"uri": f"audiocdn:track:{d}"}]}))["snapshot_id"] == snap
    body = await delete({"tracks": [{"uri": f"audiocdn:track:{b}", "positions": [1]}]}, 400)
    assert body["error"]["code"] == "position_mismatch"
    body = await delete({"positions": [2]}, 400)
    assert body["error"]["code"] == "invalid_position"
    body = await delete({}, 400)
    assert body["error"]["code"] == "no_items"
    body = await delete({"positions": [0], "snapshot_id": "1.stale"}, 409)
    assert await order(api, auth, me, pid) == [b, c]
    r = await api.get(f"/v1/playlists/{pid}", headers=auth(me))
    assert r.json()["tracks"]["total"] == 2


async def test_change_details(api, auth, uid):
    me = uid()
    p = await make_playlist(api, auth, me)
    url = f"/v1/playlists/{p['id']}"
    r = await api.put(url, json={"name": "Renamed", "description": "new"}, headers=auth(me))
    assert r.status_code == 200 and r.json()["snapshot_id"] != p["snapshot_id"]
    got = (await api.get(url, headers=auth(me))).json()
    assert (got["name"], got["description"], got["public"]) == ("Renamed", "new", True)
    assert_error(await api.put(url, json={"collaborative": True}, headers=auth(me)), 400)
    r = await api.put(url, json={"public": False, "collaborative": True}, headers=auth(me))
    assert r.status_code == 200
    got = (await api.get(url, headers=auth(me))).json()
    assert got["public"] is False and got["collaborative"] is True
    assert_error(await api.put(url, json={"name": ""}, headers=auth(me)), 400)


async def test_permissions(api, auth, uid, tracks):
    owner, stranger, friend = uid(), uid(), uid()
    public = (await make_playlist(api, auth, owner))["id"]
    private = (await make_playlist(api, auth, owner, public=False))["id"]
    await add(api, auth, owner, public, tracks[:3])
    await add(api, auth, owner, private, tracks[:3])
    # A public playlist is readable by anyone, writable by nobody else.
    assert (await api.get(f"/v1/playlists/{public}", headers=auth(stranger))).status_code == 200
    items = f"/v1/playlists/{public}/items"
    writes = [
        ("POST", items, {"uris": uris(tracks[3:4])}),
        ("PUT", items, {"range_start": 0, "insert_before": 2}),
        ("PUT", items, {"uris": uris(tracks[3:4])}),
        ("DELETE", items, {"positions": [0]}),
        ("PUT", f"/v1/playlists/{public}", {"name": "mine now"}),
    ]
    for method, url, body in writes:
        r = await api.request(method, url, json=body, headers=auth(stranger))
        assert_error(r, 403)
    assert_error(
        await api.put(
            f"/v1/playlists/{public}/collaborators",
            params={"ids": stranger},
            headers=auth(stranger),
        ),
        403,
    )
    assert await order(api, auth, owner, public) == tracks[:3]
    # A private playlist does not exist for a stranger.
    assert_error(await api.get(f"/v1/playlists/{private}", headers=auth(stranger)), 404)
    assert_error(await api.get(f"/v1/playlists/{private}/items", headers=auth(stranger)), 404)
    r = await api.post(
        f"/v1/playlists/{private}/items", json={"uris": uris(tracks[:1])}, headers=auth(stranger)
    )
    assert_error(r, 404)
    # A collaborator of a non-collaborative playlist may read it but not edit it.
    r = await api.put(
        f"/v1/playlists/{private}/collaborators", params={"ids": friend}, headers=auth(owner)
    )
    assert r.status_code == 200
    assert (await api.get(f"/v1/playlists/{private}", headers=auth(friend))).status_code == 200
    r = await api.post(
        f"/v1/playlists/{private}/items", json={"uris": uris(tracks[:1])}, headers=auth(friend)
    )
    assert_error(r, 403, "not_playlist_editor")
    # Once collaborative, the collaborator edits; the stranger still cannot.
    await api.put(f"/v1/playlists/{private}", json={"collaborative": True}, headers=auth(owner))
    await add(api, auth, friend, private, tracks[5:6])
    r = await api.get(f"/v1/playlists/{private}/items", params={"offset": 3}, headers=auth(owner))
    assert r.json()["items"][0]["added_by"]["id"] == friend
    r = await api.post(
        f"/v1/playlists/{private}/items", json={"uris": uris(tracks[:1])}, headers=auth(stranger)
    )
    assert_error(r, 404)
    # Only the owner changes details, even of a collaborative playlist.
    assert_error(
        await api.put(f"/v1/playlists/{private}", json={"name": "x"}, headers=auth(friend)), 403
    )
    r = await api.get(f"/v1/playlists/{private}/collaborators", headers=auth(friend))
    assert [u["id"] for u in r.json()["items"]] == [friend]
    # Removed, the collaborator loses access.
    r = await api.request(
        "DELETE",
        f"/v1/playlists/{private}/collaborators",
        params={"ids": friend},
        headers=auth(owner),
    )
    assert r.status_code == 200
    assert_error(await api.get(f"/v1/playlists/{private}", headers=auth(friend)), 404)
    assert_error(
        await api.put(
            f"/v1/playlists/{private}/collaborators", params={"ids": owner}, headers=auth(owner)
        ),
        400,
    )


async def test_follow_and_libraries(api, auth, uid):
    owner, fan = uid(), uid()
    public = (await make_playlist(api, auth, owner, name="Public one"))["id"]
    private = (await make_playlist(api, auth, owner, name="Secret", public=False))["id"]
    r = await api.put(f"/v1/playlists/{public}/followers", headers=auth(fan))
    assert r.status_code == 200
    await api.put(f"/v1/playlists/{public}/followers", headers=auth(fan))  # idempotent
    assert_error(await api.put(f"/v1/playlists/{private}/followers", headers=auth(fan)), 404)
    got = (await api.get(f"/v1/playlists/{public}", headers=auth(owner))).json()
    assert got["followers"]["total"] == 1
    r = await api.get(
        f"/v1/playlists/{public}/followers/contains",
        params={"ids": f"{fan},{owner}"},
        headers=auth(owner),
    )
    assert r.json() == [True, False]
    assert_error(
        await api.get(f"/v1/playlists/{public}/followers/contains", headers=auth(owner)), 400
    )
    # Libraries: mine has both of mine; the fan's has the followed one; others see public only.
    mine = (await api.get("/v1/me/playlists", headers=auth(owner))).json()
    assert {p["id"] for p in mine["items"]} == {public, private} and mine["total"] == 2
    fans = (await api.get("/v1/me/playlists", headers=auth(fan))).json()
    assert [p["id"] for p in fans["items"]] == [public]
    seen = (await api.get(f"/v1/users/{owner}/playlists", headers=auth(fan))).json()
    assert [p["id"] for p in seen["items"]] == [public] and seen["total"] == 1
    r = await api.get("/v1/me/playlists", params={"limit": 1}, headers=auth(owner))
    assert len(r.json()["items"]) == 1 and r.json()["next"]
    assert_error(await api.get("/v1/me/playlists", params={"limit": 51}, headers=auth(owner)), 400)
    assert_error(await api.get("/v1/users/bad user/playlists", headers=auth(owner)), 400)
    # Unfollow.
    r = await api.request("DELETE", f"/v1/playlists/{public}/followers", headers=auth(fan))
    assert r.status_code == 200
    assert (await api.get("/v1/me/playlists", headers=auth(fan))).json()["total"] == 0
    got = (await api.get(f"/v1/playlists/{public}", headers=auth(owner))).json()
    assert got["followers"]["total"] == 0


async def test_unfollowing_a_private_playlist_answers_like_an_unknown_id(api, auth, uid):
    from delivery.modules.ids import new_playlist_id

    owner, fan, stranger = uid(), uid(), uid()
    private = (await make_playlist(api, auth, owner, name="Secret", public=False))["id"]
    unknown = new_playlist_id()
    answers = []
    for pid in (private, unknown):
        r = await api.request("DELETE", f"/v1/playlists/{pid}/followers", headers=auth(stranger))
        body = assert_error(r, 404, "playlist_not_found")
        answers.append(body["error"]["message"].replace(pid, "ID"))
    assert answers[0] == answers[1]
    # Someone who followed it while it was public may still leave after it turned private.
    await api.put(f"/v1/playlists/{private}", json={"public": True}, headers=auth(owner))
    r = await api.put(f"/v1/playlists/{private}/followers", headers=auth(fan))
    assert r.status_code == 200
    await api.put(f"/v1/playlists/{private}", json={"public": False}, headers=auth(owner))
    r = await api.request("DELETE", f"/v1/playlists/{private}/followers", headers=auth(fan))
    assert r.status_code == 200
    got = (await api.get(f"/v1/playlists/{private}", headers=auth(owner))).json()
    assert got["followers"]["total"] == 0
    # Once gone, it is unknown to them again; the owner may always leave their own.
    r = await api.request("DELETE", f"/v1/playlists/{private}/followers", headers=auth(fan))
    assert_error(r, 404, "playlist_not_found")
    r = await api.request("DELETE", f"/v1/playlists/{private}/followers", headers=auth(owner))
    assert r.status_code == 200


async def test_reads_are_cached_by_snapshot_and_never_stale(api, auth, uid, tracks, modules):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, tracks[:3])
    before = modules.cache.stats()
    for _ in range(3):
        r = await api.get(f"/v1/playlists/{pid}/items", headers=auth(me))
        assert [i["track"]["id"] for i in r.json()["items"]] == tracks[:3]
    after = modules.cache.stats()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 2
    # A write makes a new snapshot: the next read is fresh without any invalidation.
    await add(api, auth, me, pid, tracks[3:4], position=0)
    r = await api.get(f"/v1/playlists/{pid}/items", headers=auth(me))
    assert [i["track"]["id"] for i in r.json()["items"]] == [tracks[3], *tracks[:3]]


async def test_tracks_missing_from_the_catalog_still_list(api, auth, uid, tracks, modules):
    me = uid()
    pid = (await make_playlist(api, auth, me))["id"]
    await add(api, auth, me, pid, tracks[:2])
    modules.track_index.remove([tracks[0]])
    r = await api.get(f"/v1/playlists/{pid}/items", headers=auth(me))
    first = r.json()["items"][0]["track"]
    assert first["id"] == tracks[0] and first["name"] is None and first["is_playable"] is False
