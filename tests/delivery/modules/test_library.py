"""The library API on both databases: paging, sorting, grouping, disc/track order, genres, art.

One catalogue per backend, indexed from manifests (as ``delivery catalog sync`` and the
publish events do), is the whole content of this module's database:

* "Blue Hour", album artist "Various Artists" (spelt two ways): Bob's "apple pie" (1/1),
  Ana's "Zebra Crossing" (1/2), Ana's "Coda" (disc 2, track 1); genre Jazz / jazz / JAZZ;
* "Solo" by Ana: "Éclair" (track 1, genre "Électro"), "Bolero" (track "A2": unnumbered,
  so last; genre "electro"); no art;
* "Untitled" by Cy: no album, no genre.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from delivery.modules.ids import now_ms
from delivery.modules.plays import PlayIn
from tests.delivery.modules.library_support import publish_tagged
from tests.delivery.modules.support import assert_error
from tests.support.waiting import wait_for

pytestmark = pytest.mark.anyio

VA = "Various Artists"
CATALOGUE = [
    # track id, tags, art
    (
        "va-1",
        {"title": "Zebra Crossing", "artist": "Ana", "albumartist": VA, "album": "Blue Hour",
         "tracknumber": "2/3", "discnumber": "1/2", "genre": "Jazz", "date": "2001-05-01"},
        True,
    ),
    (
        "va-2",
        {"title": "apple pie", "artist": "Bob", "albumartist": VA, "album": "Blue Hour",
         "tracknumber": "1/3", "discnumber": "1/2", "genre": "jazz", "date": "2001"},
        True,
    ),
    (
        "va-3",
        {"title": "Coda", "artist": "Ana", "albumartist": "various artists", "album": "blue hour",
         "tracknumber": "1", "discnumber": "2/2", "genre": "JAZZ"},
        False,
    ),
    (
        "ana-1",
        {"title": "Éclair", "artist": "Ana", "album": "Solo", "tracknumber": "1",
         "genre": "Électro", "date": "1999"},
        False,
    ),
    (
        "ana-2",
        {"title": "Bolero", "artist": "Ana", "album": "Solo", "tracknumber": "A2",
         "genre": "electro"},
        False,
    ),
    ("loose-1", {"title": "Untitled", "artist": "Cy"}, False),
]  # fmt: skip
PLAYS = {"va-3": 3, "ana-1": 1}


@pytest.fixture(scope="module")
def catalogue(app, store):
    modules = app.state.services.modules
    versions = {}
    for track_id, tags, art in CATALOGUE:
        versions[track_id] = publish_tagged(store, track_id, tags, art=art)
        indexed = now_ms()
        modules.track_index.index_track(track_id)
        # Added in this order, each at its own millisecond ("added" sorts by the time).
        wait_for(lambda t=indexed: now_ms() > t, what="the next millisecond", timeout=1)
    for track_id, count in PLAYS.items():
        for n in range(count):
            modules.plays.record("listener", PlayIn(f"{track_id}-{n}", track_id, 30_000))
    return versions


async def get(api, auth, path: str, status: int = 200, **params) -> dict:
    r = await api.get(path, params=params, headers=auth("listener"))
    assert r.status_code == status, r.text
    return r.json()


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


async def every(api, auth, path: str, limit: int, **params) -> list[dict]:
    """All items of a listing, page by page through ``next``."""
    out, url = [], None
    page = await get(api, auth, path, limit=limit, **params)
    while True:
        out += page["items"]
        assert len(page["items"]) <= limit
        url = page["next"]
        if url is None:
            return out
        parts = urlsplit(url)
        r = await api.get(f"{parts.path}?{parts.query}", headers=auth("listener"))
        page = r.json()


async def test_tracks_page_and_sort_every_way(api, auth, catalogue):
    page = await get(api, auth, "/v1/library/tracks", sort="title", limit=2)
    assert set(page) == {"href", "items", "limit", "offset", "total", "next", "previous"}
    assert page["total"] == 6 and page["limit"] == 2 and page["offset"] == 0
    assert page["previous"] is None and "offset=2" in page["next"]
    titles = [t["title"] for t in await every(api, auth, "/v1/library/tracks", 4, sort="title")]
    # Folded, byte-wise: case and accents do not decide, on either database.
    assert titles == ["apple pie", "Bolero", "Coda", "Éclair", "Untitled", "Zebra Crossing"]
    added = await every(api, auth, "/v1/library/tracks", 5, sort="added")
    assert [t["id"] for t in added] == [c[0] for c in reversed(CATALOGUE)]
    recent = await get(api, auth, "/v1/library/recent", limit=2)
    assert ids(recent) == ["loose-1", "ana-2"] and recent["total"] == 6
    by_artist = await every(api, auth, "/v1/library/tracks", 50, sort="artist")
    # Artist, then album title, then disc/track order.
    assert [t["id"] for t in by_artist] == ["va-1", "va-3", "ana-1", "ana-2", "va-2", "loose-1"]
    plays = await get(api, auth, "/v1/library/tracks", sort="plays", limit=2)
    assert ids(plays) == ["va-3", "ana-1"]
    assert [t["plays"] for t in plays["items"]] == [3, 1]
    last = await get(api, auth, "/v1/library/tracks", sort="title", limit=4, offset=4)
    assert len(last["items"]) == 2 and last["next"] is None and "offset=0" in last["previous"]


async def test_track_objects_carry_tags_positions_and_art(api, auth, catalogue):
    items = {t["id"]: t for t in await every(api, auth, "/v1/library/tracks", 50)}
    zebra = items["va-1"]
    assert {k: zebra[k] for k in ("title", "artist", "album", "album_artist", "genre")} == {
        "title": "Zebra Crossing",
        "artist": "Ana",
        "album": "Blue Hour",
        "album_artist": VA,
        "genre": "Jazz",
    }
    assert (zebra["disc"], zebra["track"], zebra["year"]) == (1, 2, 2001)
    assert zebra["duration_ms"] == 3500 and zebra["added_at"].endswith("Z")
    version = catalogue["va-1"]
    assert urlsplit(zebra["art"]["url"]).path == f"/tracks/va-1/{version}/cover.png"
    assert urlsplit(zebra["art"]["thumbnail_url"]).path == f"/tracks/va-1/{version}/cover-300.jpg"
    assert items["ana-2"]["track"] is None and items["ana-2"]["art"] is None
    loose = items["loose-1"]
    assert (loose["album"], loose["album_id"], loose["genre"]) == (None, None, None)
    assert set(zebra) >= {
        "id", "title", "artist", "artist_id", "album", "album_id", "album_artist", "genre",
        "year", "disc", "track", "duration_ms", "plays", "added_at", "art",
    }  # fmt: skip


async def test_albums_group_by_album_artist_and_list_tracks_in_disc_order(api, auth, catalogue):
    albums = await get(api, auth, "/v1/library/albums", sort="title")
    assert [a["title"] for a in albums["items"]] == ["Blue Hour", "Solo"]
    blue, solo = albums["items"]
    assert blue["artist"] == VA and blue["track_count"] == 3 and blue["duration_ms"] == 10_500
    assert blue["plays"] == 3 and blue["genre"] == "jazz"  # the first track's (disc/track order)
    # The first track with art, in disc/track order: va-2 (1/1).
    assert urlsplit(blue["art"]["url"]).path.startswith(f"/tracks/va-2/{catalogue['va-2']}/")
    assert solo["artist"] == "Ana" and solo["year"] == 1999 and solo["art"] is None
    album = await get(api, auth, f"/v1/library/albums/{blue['id']}")
    assert [t["id"] for t in album["tracks"]] == ["va-2", "va-1", "va-3"]
    assert {k: album[k] for k in blue} == blue
    solo_tracks = (await get(api, auth, f"/v1/library/albums/{solo['id']}"))["tracks"]
    assert [t["id"] for t in solo_tracks] == ["ana-1", "ana-2"]  # the unnumbered one last
    for sort, expected in [
        ("added", ["Solo", "Blue Hour"]),
        ("artist", ["Solo", "Blue Hour"]),  # Ana before Various Artists
        ("year", ["Blue Hour", "Solo"]),  # newest first
        ("plays", ["Blue Hour", "Solo"]),
    ]:
        page = await get(api, auth, "/v1/library/albums", sort=sort)
        assert [a["title"] for a in page["items"]] == expected, sort
    jazz = await get(api, auth, "/v1/library/albums", genre="JaZz")
    assert [a["title"] for a in jazz["items"]] == ["Blue Hour"] and jazz["total"] == 1


async def test_artists_list_and_page(api, auth, catalogue):
    page = await get(api, auth, "/v1/library/artists")
    names = [a["name"] for a in page["items"]]
    assert names == ["Ana", "Bob", "Cy", VA]
    by_name = {a["name"]: a for a in page["items"]}
    assert set(by_name["Ana"]) == {"id", "name", "track_count", "album_count", "plays", "art"}
    assert (by_name["Ana"]["track_count"], by_name["Ana"]["album_count"]) == (4, 2)
    assert by_name["Ana"]["plays"] == 4
    assert (by_name[VA]["track_count"], by_name[VA]["album_count"]) == (0, 1)
    assert by_name["Cy"]["album_count"] == 0 and by_name["Cy"]["art"] is None
    # Ana's first track with art: her albums by year, Solo has none, then Blue Hour's va-1.
    assert f"/tracks/va-1/{catalogue['va-1']}/" in by_name["Ana"]["art"]["url"]
    plays = await get(api, auth, "/v1/library/artists", sort="plays", limit=1)
    assert ids(plays) == [by_name["Ana"]["id"]] and plays["total"] == 4
    ana = await get(api, auth, f"/v1/library/artists/{by_name['Ana']['id']}")
    assert [a["title"] for a in ana["albums"]] == ["Solo", "Blue Hour"]
    assert [t["id"] for t in ana["top_tracks"]][:2] == ["va-3", "ana-1"]
    assert {t["id"] for t in ana["top_tracks"]} == {"va-1", "va-3", "ana-1", "ana-2"}
    various = await get(api, auth, f"/v1/library/artists/{by_name[VA]['id']}")
    assert [a["title"] for a in various["albums"]] == ["Blue Hour"]
    assert len(various["top_tracks"]) == 3


async def test_genres_group_spellings_and_show_the_first_seen(api, auth, catalogue):
    page = await get(api, auth, "/v1/library/genres")
    assert page["items"] == [
        {"name": "Électro", "track_count": 2, "album_count": 1},
        {"name": "Jazz", "track_count": 3, "album_count": 1},
    ]
    assert page["total"] == 2
    tracks = await get(api, auth, "/v1/library/genres/electro/tracks")
    assert ids(tracks) == ["ana-1", "ana-2"] and tracks["total"] == 2
    jazz = await get(api, auth, "/v1/library/genres/JAZZ/tracks", limit=1, offset=1)
    assert ids(jazz) == ["va-3"] and jazz["total"] == 3


async def test_the_python_entry_points_match_the_api(modules, catalogue):
    library = modules.library
    assert [r["track_id"] for r in library.recent(limit=2).items] == ["loose-1", "ana-2"]
    assert library.track("va-1")["disc_no"] == 1 and library.track("nope") is None
    assert set(library.tracks_by_id(["va-1", "ana-1", "nope"])) == {"va-1", "ana-1"}
    album_id = library.track("va-1")["album_id"]
    assert library.album(album_id)["track_count"] == 3
    assert [r["track_id"] for r in library.album_tracks(album_id)] == ["va-2", "va-1", "va-3"]
    years = library.albums("title", years=(2005, 2000))
    assert [r["title"] for r in years.items] == ["Blue Hour"]
    with pytest.raises(ValueError, match="unknown sort"):
        library.tracks("nonsense")


async def test_unknown_ids_are_404_and_bad_parameters_400(api, auth, catalogue):
    for path in (
        "/v1/library/albums/0000000000000000000000",
        "/v1/library/albums/short",
        "/v1/library/albums/" + "a" * 21 + "-",
        "/v1/library/albums/" + "a" * 23,
        "/v1/library/artists/0000000000000000000000",
        "/v1/library/genres/polka/tracks",
        "/v1/library/genres/%20/tracks",
    ):
        r = await api.get(path, headers=auth("listener"))
        assert_error(r, 404)
    bad = [
        ("/v1/library/tracks", {"sort": "random"}, "invalid_sort"),
        ("/v1/library/albums", {"sort": "name"}, "invalid_sort"),
        ("/v1/library/artists", {"sort": "added"}, "invalid_sort"),
        ("/v1/library/tracks", {"limit": 0}, None),
        ("/v1/library/tracks", {"limit": 51}, None),
        ("/v1/library/recent", {"offset": -1}, None),
        ("/v1/library/genres", {"offset": 100_001}, "invalid_offset"),
        ("/v1/library/albums", {"offset": 2**63}, None),
        ("/v1/library/albums", {"limit": "ten"}, None),
        ("/v1/library/albums", {"genre": "x" * 201}, None),
        ("/v1/library/tracks", {"sort": "s" * 50}, None),
        ("/v1/library/albums/" + "a" * 22 + "%0A", {}, None),  # matched in full
    ]
    for path, params, code in bad:
        r = await api.get(path, params=params, headers=auth("listener"))
        assert_error(r, 400, code)


async def test_the_library_needs_a_user_token(api, catalogue):
    for path in ("/v1/library/tracks", "/v1/library/recent", "/v1/library/genres"):
        assert_error(await api.get(path), 401)
        r = await api.get(path, headers={"Authorization": "Bearer not-a-jwt"})
        assert_error(r, 401)
