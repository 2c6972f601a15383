"""Search on both backends: indexing by event, ranking, filters, types, paging, errors."""

from __future__ import annotations

import uuid

import httpx
import pytest

from delivery.events import TRACK_PUBLISHED
from delivery.modules.track_index import IndexedTrack
from tests.delivery.modules.conftest import ADMIN_TOKEN, build_app, modules_settings
from tests.delivery.modules.support import assert_error, new_version, publish_manifest

pytestmark = pytest.mark.anyio
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def tok():
    """A word no other test uses, so results are this test's alone."""
    return "w" + uuid.uuid4().hex[:9]


async def search(api, auth, q, type_="track", expect=200, **params):
    r = await api.get(
        "/v1/search", params={"q": q, "type": type_, **params}, headers=auth("searcher")
    )
    assert r.status_code == expect, r.text
    return r.json()


def ids(page):
    return [item["id"] for item in page["items"]]


def index(modules, track_id, title, artist="", album="", year=None, genre=""):
    modules.track_index.upsert(
        [
            IndexedTrack(
                track_id, new_version(track_id), title, artist, album, year, 200_000, genre=genre
            )
        ]
    )


async def test_a_published_track_is_searchable_right_after_the_event(api, auth, store, tok):
    track_id = f"pub-{tok}"
    version = publish_manifest(
        store,
        track_id,
        title=f"Midnight {tok}",
        artist="Night Owls",
        album="Late",
        date="2019-05-01",
    )
    assert (await search(api, auth, tok))["tracks"]["total"] == 0
    r = await api.post(
        "/v1/admin/events",
        json={"event": "track.published", "track_id": track_id, "version": version},
        headers=ADMIN,
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] is True and r.json()["event_id"]
    page = (await search(api, auth, tok))["tracks"]
    assert ids(page) == [track_id]
    track = page["items"][0]
    assert track["name"] == f"Midnight {tok}" and track["version"] == version
    assert track["artists"][0]["name"] == "Night Owls"
    assert track["album"]["name"] == "Late" and track["album"]["release_date"] == "2019"
    assert track["duration_ms"] == 3500


async def test_republishing_reindexes_the_latest_version(app, api, auth, store, tok):
    events = app.state.services.events
    track_id = f"re-{tok}"
    first = publish_manifest(store, track_id, title=f"Old{tok} title")
    events.publish(TRACK_PUBLISHED, {"track_id": track_id, "version": first})
    second = publish_manifest(store, track_id, title=f"New{tok} title")
    # An event naming the old version still indexes what latest.json points to.
    events.publish(TRACK_PUBLISHED, {"track_id": track_id, "version": first})
    assert (await search(api, auth, f"new{tok}"))["tracks"]["items"][0]["version"] == second
    old = (await search(api, auth, f"old{tok}"))["tracks"]["items"]
    # No word matches any more (PostgreSQL may still offer the similar new title: typos).
    assert all(item["name"] == f"New{tok} title" for item in old)


async def test_admin_events_check_their_input(api, auth, store, tok):
    body = {"event": "track.published", "track_id": f"adm-{tok}", "version": new_version()}
    assert_error(await api.post("/v1/admin/events", json=body), 401)
    wrong = {"Authorization": "Bearer not-the-token"}
    assert_error(await api.post("/v1/admin/events", json=body, headers=wrong), 401)
    assert_error(await api.post("/v1/admin/events", json=body, headers=auth("someone")), 401)
    assert_error(
        await api.post("/v1/admin/events", json=body, headers=ADMIN), 404, "track_not_found"
    )
    cases = [
        ({**body, "event": "track.deleted"}, "unsupported_event"),
        ({**body, "track_id": "../x"}, "invalid_track_id"),
        ({**body, "version": "XYZ"}, "invalid_version"),
        ({"event": "track.published"}, None),
    ]
    for bad, code in cases:
        assert_error(await api.post("/v1/admin/events", json=bad, headers=ADMIN), 400, code)
    # Without a version, latest.json decides.
    publish_manifest(store, f"adm-{tok}", title=f"{tok} latest")
    r = await api.post(
        "/v1/admin/events",
        json={"event": "track.published", "track_id": f"adm-{tok}"},
        headers=ADMIN,
    )
    assert r.status_code == 202
    assert ids((await search(api, auth, tok))["tracks"]) == [f"adm-{tok}"]


async def test_accents_are_folded_both_ways(api, auth, modules, tok):
    index(modules, f"acc-{tok}", f"Caf\u00e9{tok} society", artist="Beyonc\u00e9")
    assert ids((await search(api, auth, f"cafe{tok}"))["tracks"]) == [f"acc-{tok}"]
    assert ids((await search(api, auth, f"CAF\u00c9{tok}"))["tracks"]) == [f"acc-{tok}"]
    page = (await search(api, auth, f"beyonce cafe{tok}"))["tracks"]
    assert ids(page) == [f"acc-{tok}"]


async def test_prefixes_match_while_typing(api, auth, modules, tok):
    index(modules, f"pre-{tok}", f"{tok}xylophone")
    assert ids((await search(api, auth, f"{tok}xy"))["tracks"]) == [f"pre-{tok}"]
    # Only the last word is a prefix: an earlier partial word must be whole.
    assert (await search(api, auth, f"{tok}xy whatever"))["tracks"]["total"] == 0


async def test_title_outranks_artist_outranks_album(api, auth, modules, tok):
    index(modules, f"rank-c-{tok}", "Alpha", artist="Beta", album=f"{tok} Gamma")
    index(modules, f"rank-b-{tok}", "Alpha", artist=f"{tok} Beta", album="Gamma")
    index(modules, f"rank-a-{tok}", f"{tok} Alpha", artist="Beta", album="Gamma")
    page = (await search(api, auth, tok))["tracks"]
    assert ids(page) == [f"rank-a-{tok}", f"rank-b-{tok}", f"rank-c-{tok}"]


async def test_popularity_lifts_equally_relevant_tracks(api, auth, modules, tok):
    index(modules, f"pop-a-{tok}", f"{tok} Anthem", artist="Same", album="Same")
    index(modules, f"pop-b-{tok}", f"{tok} Anthem", artist="Same", album="Same")
    assert ids((await search(api, auth, tok))["tracks"]) == [f"pop-a-{tok}", f"pop-b-{tok}"]
    for n in range(3):
        r = await api.post(
            "/v1/me/plays",
            json={"play_id": f"{tok}-{n}", "track_id": f"pop-b-{tok}", "ms_played": 30_000},
            headers=auth(f"listener{n}"),
        )
        assert r.status_code == 201
    page = (await search(api, auth, tok))["tracks"]
    assert ids(page) == [f"pop-b-{tok}", f"pop-a-{tok}"]
    assert page["items"][0]["play_count"] == 3
    artists = (await search(api, auth, "same", "artist"))["artists"]
    assert any(a["name"] == "Same" and a["play_count"] >= 3 for a in artists["items"])


async def test_field_filters(api, auth, modules, tok):
    index(modules, f"f1-{tok}", f"{tok} one", artist=f"Alpha {tok}x", album="First", year=2001)
    index(modules, f"f2-{tok}", f"{tok} two", artist=f"Beta {tok}x", album="Second", year=1995)
    index(modules, f"f3-{tok}", f"{tok} three", artist=f"Alpha {tok}x", album="Third", year=1999)

    async def found(q):
        return sorted(ids((await search(api, auth, q))["tracks"]))

    assert await found(f"{tok} artist:alpha") == [f"f1-{tok}", f"f3-{tok}"]
    assert await found(f'{tok} artist:"alpha {tok}x"') == [f"f1-{tok}", f"f3-{tok}"]
    assert await found(f"{tok} year:2001") == [f"f1-{tok}"]
    assert await found(f"{tok} year:1995-1999") == [f"f2-{tok}", f"f3-{tok}"]
    assert await found(f"{tok} album:second") == [f"f2-{tok}"]
    assert await found(f"track:{tok} artist:beta") == [f"f2-{tok}"]
    assert await found(f"artist:{tok}x year:1999") == [f"f3-{tok}"]
    assert await found(f"album:{tok}") == []  # the word is in titles, not albums
    assert await found(f'"{tok} three"') == [f"f3-{tok}"]


async def test_genre_filter(api, auth, modules, store, tok):
    index(modules, f"g1-{tok}", f"{tok} one", artist="A", genre="Hip-Hop")
    index(modules, f"g2-{tok}", f"{tok} two", artist="B", genre="Rock")
    publish_manifest(store, f"g3-{tok}", title=f"{tok} three", genre="Hard Rock")
    modules.track_index.index_track(f"g3-{tok}")  # the manifest's genre tag

    async def found(q, type_="track"):
        return sorted(ids((await search(api, auth, q, type_))[f"{type_}s"]))

    assert await found(f"{tok} genre:rock") == [f"g2-{tok}", f"g3-{tok}"]
    assert await found(f'{tok} genre:"hard rock"') == [f"g3-{tok}"]
    for spelt in ("hip-hop", "hiphop", '"hip hop"'):
        assert await found(f"{tok} genre:{spelt}") == [f"g1-{tok}"], spelt
    assert await found(f"{tok} rock") == []  # free text never matches a genre
    assert await found(f"{tok} genre:rock", "artist") == []  # artists carry no genre


async def test_unknown_fields_are_refused(api, auth):
    body = assert_error(
        await api.get("/v1/search", params={"q": "mood:happy", "type": "track"}, headers=auth("s")),
        400,
        "invalid_query",
    )
    message = body["error"]["message"]
    assert "mood" in message and "genre:" in message and "artist:" in message


async def test_star_lists_everything_most_played_first(api, auth, modules, tok):
    index(modules, f"star-{tok}", f"{tok} star")
    page = (await search(api, auth, "*"))["tracks"]
    assert page["total"] >= 1 and page["items"]
    assert (await search(api, auth, "*", "artist,album,playlist"))["artists"]["total"] >= 0
    plays = [item["play_count"] for item in page["items"]]
    assert plays == sorted(plays, reverse=True)


async def test_a_track_id_finds_its_track_first(api, auth, modules, tok):
    """Ids are what make run, the encoder and links print: pasting one finds that track,
    first, once, whether or not its words also match other tracks."""
    track_id = f"demo-{tok}"
    index(modules, track_id, "Quiet Morning")
    index(modules, f"other-{tok}", f"demo {tok}")  # the id's words, as a title
    page = (await search(api, auth, f" {track_id} "))["tracks"]
    assert ids(page)[0] == track_id and ids(page).count(track_id) == 1
    assert f"other-{tok}" in ids(page) and page["total"] == len(page["items"]) == 2
    assert ids((await search(api, auth, track_id, limit=1))["tracks"]) == [track_id]
    # Not a page's worth later, and not for a near miss or an unknown id.
    assert track_id not in ids((await search(api, auth, track_id, offset=1))["tracks"])
    assert track_id not in ids((await search(api, auth, f"{track_id}x"))["tracks"])
    assert (await search(api, auth, f"nope-{tok}"))["tracks"]["total"] == 0


async def test_names_people_type(api, auth, modules, tok):
    """Punctuation, symbols and unsegmented scripts, end to end (the relevance set has more)."""
    index(modules, f"n1-{tok}", "Thunderstruck", artist=f"AC/DC{tok}")
    index(modules, f"n2-{tok}", "Music", artist=f"!!!{tok}")
    index(modules, f"n3-{tok}", f"晴天 {tok}", artist="周杰伦")
    for q, want in (
        (f"ac/dc{tok}", "n1"),
        (f"acdc{tok}", "n1"),
        (f"ac dc{tok}", "n1"),
        (f"!!!{tok}", "n2"),
        (f"天 {tok}", "n3"),
        (f"杰伦 {tok}", "n3"),
    ):
        assert f"{want}-{tok}" in ids((await search(api, auth, q))["tracks"]), q


async def test_artists_and_albums(api, auth, modules, tok):
    index(
        modules, f"aa1-{tok}", "Song one", artist=f"Gamma {tok}", album=f"{tok} Record", year=2010
    )
    index(
        modules, f"aa2-{tok}", "Song two", artist=f"Gamma {tok}", album=f"{tok} Record", year=2010
    )
    index(modules, f"aa3-{tok}", "Song three", artist=f"Delta {tok}", album="Other", year=2011)
    body = await search(api, auth, tok, "artist,album")
    artists = {a["name"]: a for a in body["artists"]["items"]}
    assert set(artists) == {f"Gamma {tok}", f"Delta {tok}"}
    assert (
        artists[f"Gamma {tok}"]["track_count"] == 2 and artists[f"Gamma {tok}"]["type"] == "artist"
    )
    albums = body["albums"]["items"]
    # "Other" matches through its artist; a match in the album title ranks first.
    assert [a["name"] for a in albums] == [f"{tok} Record", "Other"]
    assert albums[0]["total_tracks"] == 2 and albums[0]["release_date"] == "2010"
    assert albums[0]["artists"][0]["name"] == f"Gamma {tok}"
    assert (await search(api, auth, f"{tok} year:2010", "album"))["albums"]["total"] == 1
    assert (await search(api, auth, f"album:{tok}", "album"))["albums"]["total"] == 1
    assert (await search(api, auth, f"{tok} year:2010", "artist"))["artists"]["total"] == 0
    # Re-tagging a track moves it between artists; an emptied artist disappears.
    index(modules, f"aa3-{tok}", "Song three", artist=f"Gamma {tok}", album="Other")
    artists = (await search(api, auth, tok, "artist"))["artists"]
    assert [a["name"] for a in artists["items"]] == [f"Gamma {tok}"]
    assert artists["items"][0]["track_count"] == 3


async def test_public_playlists_are_searchable(api, auth, tok):
    owner = f"owner{tok}"
    r = await api.post(
        "/v1/me/playlists",
        json={"name": f"{tok} party", "description": "loud"},
        headers=auth(owner),
    )
    pid = r.json()["id"]
    r = await api.post(
        "/v1/me/playlists", json={"name": f"{tok} secret", "public": False}, headers=auth(owner)
    )
    page = (await search(api, auth, tok, "playlist"))["playlists"]
    assert ids(page) == [pid] and page["items"][0]["owner"]["id"] == owner
    await api.put(f"/v1/playlists/{pid}", json={"name": f"{tok} renamed"}, headers=auth(owner))
    assert ids((await search(api, auth, f"{tok} renamed", "playlist"))["playlists"]) == [pid]
    assert (await search(api, auth, f"{tok} party", "playlist"))["playlists"]["total"] == 0
    await api.put(f"/v1/playlists/{pid}", json={"public": False}, headers=auth(owner))
    assert (await search(api, auth, tok, "playlist"))["playlists"]["total"] == 0


async def test_typo_tolerance_on_both_backends(api, auth, modules, tok):
    index(modules, f"typo-{tok}", f"{tok}lovely day", artist="Someone")
    page = (await search(api, auth, f"{tok}lovelx"))["tracks"]
    assert ids(page) == [f"typo-{tok}"]  # one edit away: found, while typed and once typed
    assert ids((await search(api, auth, f"{tok}lovelx "))["tracks"]) == [f"typo-{tok}"]
    assert ids((await search(api, auth, f"{tok}loevly"))["tracks"]) == [f"typo-{tok}"]  # a swap


async def test_paging(api, auth, modules, tok):
    for i in range(25):
        index(modules, f"pg{i:02d}-{tok}", f"{tok} number {i}")
    body = await search(api, auth, tok, limit=10)
    page = body["tracks"]
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (25, 10, 0, 10)
    assert "offset=10" in page["next"] and page["previous"] is None
    last = (await search(api, auth, tok, limit=10, offset=20))["tracks"]
    assert len(last["items"]) == 5 and last["next"] is None and "offset=10" in last["previous"]
    seen = (
        ids(page) + ids((await search(api, auth, tok, limit=10, offset=10))["tracks"]) + ids(last)
    )
    assert sorted(seen) == sorted(f"pg{i:02d}-{tok}" for i in range(25))
    assert (await search(api, auth, tok, offset=1000))["tracks"]["items"] == []


async def test_next_never_points_past_the_deepest_offset(
    database, store, user_secret_bytes, auth, modules, tok
):
    for i in range(30):
        index(modules, f"deep{i:02d}-{tok}", f"{tok} deep {i}")
    app = build_app(database, store, user_secret_bytes, modules_settings(search_max_offset=20))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery.test"
    ) as shallow:
        page = (await search(shallow, auth, tok, limit=10, offset=10))["tracks"]
        assert page["total"] == 30 and "offset=20" in page["next"]
        page = (await search(shallow, auth, tok, limit=10, offset=15))["tracks"]
        assert page["next"] is None and len(page["items"]) == 10
        await search(shallow, auth, tok, expect=400, offset=21)


@pytest.mark.parametrize(
    "params",
    [
        {"type": "track"},
        {"q": "x"},
        {"q": "x", "type": "song"},
        {"q": "x", "type": "track,bogus"},
        {"q": "x", "type": "track", "limit": 0},
        {"q": "x", "type": "track", "limit": 51},
        {"q": "x", "type": "track", "offset": -1},
        {"q": "x", "type": "track", "offset": 1001},
        {"q": "year:20x1", "type": "track"},
        {"q": "   ", "type": "track"},
        {"q": "x", "type": "track", "limit": "many"},
    ],
)
async def test_bad_requests(api, auth, params):
    r = await api.get("/v1/search", params=params, headers=auth("searcher"))
    assert_error(r, 400)


async def test_hostile_text_is_just_words(api, auth, modules, tok):
    index(modules, f"h-{tok}", f"{tok} near")
    for q in (
        f"{tok} NEAR(",
        f"{tok}' OR 1=1 --",
        f'{tok} "unterminated',
        f"{tok} * ^ :",
        f"{tok} \\",
    ):
        r = await api.get(
            "/v1/search",
            params={"q": q, "type": "track,artist,album,playlist"},
            headers=auth("searcher"),
        )
        assert r.status_code == 200, (q, r.text)
