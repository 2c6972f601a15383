"""The /rest/ endpoints in-process, on SQLite and PostgreSQL: protocol errors, formats,
bounds, and the SQL of browsing, album lists, stars and playlists.

End to end with a real client library against real processes: tests/e2e/test_subsonic_client.py.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from common.signing_keys import eddsa_verification_key
from edge.token import TokenVerifier
from tests.delivery.modules.support import publish_manifest

pytestmark = pytest.mark.anyio
NS = "{http://subsonic.org/restapi}"


def form(pairs) -> dict:
    """A form body with repeated names (httpx's ``data=`` takes a dict only)."""
    return {
        "content": urlencode(list(pairs.items()) if isinstance(pairs, dict) else pairs),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


def sub(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()["subsonic-response"]


def error_code(r) -> int:
    body = sub(r)
    assert body["status"] == "failed", body
    assert body["error"]["message"]
    return body["error"]["code"]


@pytest.fixture(scope="module")
def catalog(app, store):
    """Two albums of one artist, a loose single of another, each published in the store."""
    index = app.state.services.modules.track_index
    tag = lambda: __import__("uuid").uuid4().hex[:8]  # noqa: E731
    ids = {}
    for key, title, artist, album, date, genre in [
        ("a1", "Alpha", "The Testers", "First Light", "1999", "Rock"),
        ("a2", "Beta", "The Testers", "First Light", "1999", "Rock"),
        ("b1", "Gamma", "The Testers", "Second Wind", "2005", "Jazz"),
        ("c1", "Delta", "Zed Solo", "Single", "2010", ""),
    ]:
        track_id = f"t{tag()}-{key}"
        publish_manifest(store, track_id, title=title, artist=artist, album=album, date=date,
                         genre=genre or None)  # fmt: skip
        index.index_track(track_id)
        ids[key] = track_id
    return ids


async def test_ping_in_xml_by_default_with_view_suffix_and_post(api, login):
    me = login()
    params = {k: v for k, v in me.token().items() if k != "f"}
    r = await api.get("/rest/ping.view", params=params)
    assert r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{NS}subsonic-response" and root.get("status") == "ok"
    assert root.get("openSubsonic") == "true" and root.get("version") == "1.16.1"
    r = await api.post("/rest/ping", **form(me.token()))
    assert sub(r)["status"] == "ok"


async def test_wrong_password_missing_parameters_and_api_keys(api, login):
    me = login()
    bad = {**me.token(), "t": "0" * 32}
    assert error_code(await api.get("/rest/ping", params=bad)) == 40
    assert error_code(await api.get("/rest/ping", params={"f": "json"})) == 10
    assert error_code(await api.get("/rest/ping", params={"u": me.user, "f": "json"})) == 10
    clear = {"u": me.user, "p": me.password, "f": "json"}
    assert sub(await api.get("/rest/ping", params=clear))["status"] == "ok"
    hexed = {"u": me.user, "p": "enc:" + me.password.encode().hex(), "f": "json"}
    assert sub(await api.get("/rest/ping", params=hexed))["status"] == "ok"
    # another user's password does not open this account
    other = login()
    assert error_code(await api.get("/rest/ping", params={**other.token(), "u": me.user})) == 40
    # OpenSubsonic API keys
    assert sub(await api.get("/rest/ping", params={"apiKey": me.api_key, "f": "json"}))
    key_and_user = {"apiKey": me.api_key, "u": me.user, "f": "json"}
    assert error_code(await api.get("/rest/ping", params=key_and_user)) == 43
    assert error_code(await api.get("/rest/ping", params={"apiKey": "nope", "f": "json"})) == 44


async def test_revoked_password_stops_working_at_once(app, api, login):
    me = login()
    passwords = app.state.services.subsonic.app_passwords
    (row,) = passwords.list(me.user)
    passwords.revoke(me.user, row["password_id"])
    assert error_code(await api.get("/rest/ping", params=me.token())) == 40
    assert error_code(await api.get("/rest/ping", params={"apiKey": me.api_key, "f": "json"})) == 44


async def test_passwords_are_sealed_and_bound_to_their_user(app, login, database):
    me, other = login(), login()
    with database.transaction(write=False) as tx:
        rows = tx.fetchall(
            "SELECT user_id, sealed, api_key_sha256 FROM app_passwords WHERE user_id IN (:a, :b)",
            {"a": me.user, "b": other.user},
        )
    blob = json.dumps(rows)
    assert me.password not in blob and me.api_key not in blob
    # A sealed value copied onto another account does not open there.
    sealed = {r["user_id"]: r["sealed"] for r in rows}
    with database.transaction() as tx:
        tx.execute(
            "UPDATE app_passwords SET sealed = :s WHERE user_id = :u",
            {"s": sealed[me.user], "u": other.user},
        )
    from delivery.subsonic.auth import PasswordLogin

    passwords = app.state.services.subsonic.app_passwords
    assert passwords.user_for(PasswordLogin(other.user, me.password)) is None
    assert passwords.user_for(PasswordLogin(me.user, me.password)) == me.user


async def test_unknown_method_and_hostile_input_are_protocol_errors(api, login):
    me = login()
    assert error_code(await api.get("/rest/getPodcasts", params=me.token())) == 0
    assert error_code(await api.get("/rest/ping", params={**me.token(), "x": "y" * 5000})) == 0
    many = [("id", str(i)) for i in range(1001)]
    assert (
        error_code(await api.post("/rest/star?f=json", **form([*me.token().items(), *many]))) == 0
    )
    # (a control character in the query string is refused earlier, by delivery.requestguard)
    r = await api.post("/rest/getSong", **form({**me.token(), "id": "x\n"}))
    assert error_code(r) == 70
    for bad in ("../../etc/passwd", "al.short", "ar." + "a" * 30):
        assert error_code(await api.get("/rest/getSong", params={**me.token(), "id": bad})) == 70
    r = await api.get(
        "/rest/getAlbumList2", params={**me.token(), "type": "newest", "size": "9999"}
    )
    assert error_code(r) == 0
    r = await api.get("/rest/getAlbumList2", params={**me.token(), "type": "byYear"})
    assert error_code(r) == 10
    assert error_code(await api.get("/rest/getAlbum", params=me.token())) == 10


async def test_browsing_by_tags(api, login, catalog):
    me = login()
    t = me.token()
    artists = sub(await api.get("/rest/getArtists", params=t))["artists"]
    names = {a["name"]: (i["name"], a) for i in artists["index"] for a in i["artist"]}
    letter, testers = names["The Testers"]
    assert letter == "T" and testers["albumCount"] == 2  # filed under "Testers"
    artist = sub(await api.get("/rest/getArtist", params={**t, "id": testers["id"]}))["artist"]
    assert [a["name"] for a in artist["album"]] == ["First Light", "Second Wind"]  # oldest first
    first = next(a for a in artist["album"] if a["name"] == "First Light")
    assert first["songCount"] == 2 and first["year"] == 1999 and first["genre"] == "Rock"
    album = sub(await api.get("/rest/getAlbum", params={**t, "id": first["id"]}))["album"]
    assert [s["title"] for s in album["song"]] == ["Alpha", "Beta"]
    song = album["song"][0]
    assert song["id"] == catalog["a1"] and song["albumId"] == first["id"]
    assert song["suffix"] == "ogg" and song["contentType"] == "audio/ogg"
    # the same answer in XML (the default), valid and with the same content
    xml_params = {k: v for k, v in t.items() if k != "f"}
    r = await api.get("/rest/getAlbum.view", params={**xml_params, "id": first["id"]})
    root = ET.fromstring(r.content)
    xml_album = root.find(f"{NS}album")
    assert xml_album.get("id") == first["id"] and xml_album.get("songCount") == "2"
    assert [s.get("title") for s in xml_album.findall(f"{NS}song")] == ["Alpha", "Beta"]
    got = sub(await api.get("/rest/getSong", params={**t, "id": catalog["a1"]}))["song"]
    assert got["title"] == "Alpha" and got["artistId"] == testers["id"]
    indexes = sub(await api.get("/rest/getIndexes", params=t))["indexes"]
    assert indexes["lastModified"] > 0 and indexes["index"]
    assert error_code(await api.get("/rest/getArtists", params={**t, "musicFolderId": "7"})) == 70


async def test_album_lists(api, login, catalog):
    me = login()
    t = me.token()

    async def names(**params) -> list[str]:
        r = await api.get("/rest/getAlbumList2", params={**t, "size": "500", **params})
        return [a["name"] for a in sub(r)["albumList2"]["album"]]

    everything = await names(type="alphabeticalByName")
    assert {"First Light", "Second Wind", "Single"} <= set(everything)
    assert everything == sorted(everything, key=str.lower)
    for kind in ("newest", "frequent", "highest", "random", "alphabeticalByArtist"):
        assert {"First Light", "Single"} <= set(await names(type=kind))
    assert await names(type="byYear", fromYear="1998", toYear="2006") == [
        "First Light",
        "Second Wind",
    ]
    assert await names(type="byYear", fromYear="2006", toYear="1998") == [
        "Second Wind",
        "First Light",
    ]
    assert "Second Wind" in await names(type="byGenre", genre="Jazz")
    assert "First Light" not in await names(type="byGenre", genre="Jazz")
    assert await names(type="starred") == []
    assert await names(type="recent") == []
    await api.get("/rest/scrobble", params={**t, "id": catalog["c1"]})
    assert await names(type="recent") == ["Single"]


async def test_stars(api, login, catalog):
    me = login()
    t = me.token()
    artists = sub(await api.get("/rest/getArtists", params=t))["artists"]["index"]
    zed = next(a for i in artists for a in i["artist"] if a["name"] == "Zed Solo")
    song = sub(await api.get("/rest/getSong", params={**t, "id": catalog["b1"]}))["song"]
    r = await api.post(
        "/rest/star",
        **form({**t, "id": catalog["a1"], "albumId": song["albumId"], "artistId": zed["id"]}),
    )
    assert sub(r)["status"] == "ok"
    starred = sub(await api.get("/rest/getStarred2", params=t))["starred2"]
    assert [s["id"] for s in starred["song"]] == [catalog["a1"]]
    assert [a["name"] for a in starred["album"]] == ["Second Wind"]
    assert [a["name"] for a in starred["artist"]] == ["Zed Solo"]
    assert starred["song"][0]["starred"]
    # nothing written when one id is unknown; another user sees none of it
    r = await api.get("/rest/star", params={**t, "id": [catalog["a2"], "no-such-track"]})
    assert error_code(r) == 70
    starred = sub(await api.get("/rest/getStarred2", params=t))["starred2"]
    assert [s["id"] for s in starred["song"]] == [catalog["a1"]]
    other = sub(await api.get("/rest/getStarred2", params=login().token()))["starred2"]
    assert other == {"artist": [], "album": [], "song": []}
    await api.get("/rest/unstar", params={**t, "id": catalog["a1"], "artistId": zed["id"]})
    starred = sub(await api.get("/rest/getStarred2", params=t))["starred2"]
    assert starred["song"] == [] and starred["artist"] == [] and len(starred["album"]) == 1


async def test_playlists_keep_the_modules_visibility_rules(api, login, catalog):
    owner, stranger = login(), login()
    t = owner.token()
    r = await api.post(
        "/rest/createPlaylist", **form([*t.items(), ("name", "Mine"), ("songId", catalog["a1"]),
                                      ("songId", catalog["b1"])]),
    )  # fmt: skip
    playlist = sub(r)["playlist"]
    assert playlist["public"] is False and playlist["owner"] == owner.user
    assert [e["id"] for e in playlist["entry"]] == [catalog["a1"], catalog["b1"]]
    pid = playlist["id"]
    # private: a stranger gets exactly "not found", and cannot change it either
    assert (
        error_code(await api.get("/rest/getPlaylist", params={**stranger.token(), "id": pid})) == 70
    )
    r = await api.get("/rest/updatePlaylist", params={**stranger.token(), "playlistId": pid,
                                                       "name": "x"})  # fmt: skip
    assert error_code(r) == 70
    r = await api.post("/rest/updatePlaylist", **form([*t.items(), ("playlistId", pid),
                       ("name", "Renamed"), ("public", "true"), ("songIndexToRemove", "0"),
                       ("songIdToAdd", catalog["c1"])]))  # fmt: skip
    assert sub(r)["status"] == "ok"
    got = sub(await api.get("/rest/getPlaylist", params={**t, "id": pid}))["playlist"]
    assert got["name"] == "Renamed" and got["public"] is True
    assert [e["id"] for e in got["entry"]] == [catalog["b1"], catalog["c1"]]
    # public now: visible, still not editable by the stranger (50)
    seen = sub(await api.get("/rest/getPlaylist", params={**stranger.token(), "id": pid}))
    assert seen["playlist"]["name"] == "Renamed"
    r = await api.get("/rest/updatePlaylist", params={**stranger.token(), "playlistId": pid,
                                                       "songIdToAdd": catalog["a1"]})  # fmt: skip
    assert error_code(r) == 50
    mine = sub(await api.get("/rest/getPlaylists", params=t))["playlists"]["playlist"]
    assert [p["id"] for p in mine] == [pid]
    assert sub(await api.get("/rest/deletePlaylist", params={**t, "id": pid}))["status"] == "ok"
    assert sub(await api.get("/rest/getPlaylists", params=t))["playlists"]["playlist"] == []


async def test_stream_redirects_to_a_signed_url_at_the_entitled_bitrate(
    app, api, login, catalog, store, stream_keys
):
    import json as _json

    from origin.keys import manifest_key, rendition_key

    # Give one track all three renditions (what the encoder writes for a lossless source).
    track_id = catalog["a2"]
    version = app.state.services.modules.track_index.read_track(track_id).version
    manifest = _json.loads(store.get_bytes(manifest_key(track_id, version)))
    first = manifest["renditions"][0]
    manifest["renditions"] = [
        {**first, "bitrate_kbps": b, "key": rendition_key(track_id, version, b)}
        for b in (96, 160, 320)
    ]
    store.put_bytes(manifest_key(track_id, version), _json.dumps(manifest).encode())
    app.state.services.resolver.forget(track_id)
    verifier = TokenVerifier([eddsa_verification_key(stream_keys[1].read_bytes())], cache_size=0)
    me = login()
    app.state.services.tiers.set(me.user, "premium")

    async def bitrate(method: str, **params) -> int:
        r = await api.get(f"/rest/{method}", params={**me.token(), "id": track_id, **params})
        assert r.status_code == 302, r.text
        assert r.headers["cache-control"] == "private, no-store"
        url = r.headers["location"]
        path, _, query = url.removeprefix("http://edge.test:8080").partition("?token=")
        verifier.verify(query, path)  # an edge would serve it
        return int(path.rsplit("/", 1)[1].removesuffix(".ogg"))

    assert await bitrate("stream") == 320
    assert await bitrate("stream.view", maxBitRate="192") == 160
    assert await bitrate("stream", maxBitRate="32") == 96
    assert await bitrate("download") == 320
    app.state.services.tiers.set(me.user, "free")
    assert await bitrate("stream", maxBitRate="0") == 160
    assert await bitrate("download") == 160
    r = await api.get("/rest/stream", params={**me.token(), "id": "no-such-track"})
    assert error_code(r) == 70
    # no art in these manifests: error 70, no placeholder
    for art_id in (track_id, "al." + "x" * 22, "ar." + "x" * 22):
        r = await api.get("/rest/getCoverArt", params={**me.token(), "id": art_id})
        assert error_code(r) == 70


async def test_get_user_only_for_oneself(api, login):
    me = login()
    user = sub(await api.get("/rest/getUser", params={**me.token(), "username": me.user}))["user"]
    assert user["username"] == me.user and user["streamRole"] is True
    assert user["adminRole"] is False
    r = await api.get("/rest/getUser", params={**me.token(), "username": "someone-else"})
    assert error_code(r) == 50


async def test_extensions_are_public(api):
    r = await api.get("/rest/getOpenSubsonicExtensions", params={"f": "json"})
    names = {e["name"] for e in sub(r)["openSubsonicExtensions"]}
    assert {"apiKeyAuthentication", "formPost"} <= names


async def test_cover_art_redirects_to_the_signed_art_of_a_song_album_or_artist(
    app, api, login, store, stream_keys
):
    from origin.keys import THUMBNAIL_NAME, art_key, cover_key, manifest_key

    track_id = f"art{__import__('uuid').uuid4().hex[:8]}"
    version = publish_manifest(store, track_id, title="Pictured", artist="Painter", album="Canvas")
    manifest = json.loads(store.get_bytes(manifest_key(track_id, version)))
    image = {"bytes": 10, "sha256": "0" * 64, "width": 300, "height": 300}
    manifest["art"] = {
        "original": {**image, "key": cover_key(track_id, version, "image/png"),
                     "content_type": "image/png"},
        "thumbnail": {**image, "key": art_key(track_id, version, THUMBNAIL_NAME),
                      "content_type": "image/jpeg"},
    }  # fmt: skip
    store.put_bytes(manifest_key(track_id, version), json.dumps(manifest).encode())
    app.state.services.modules.track_index.index_track(track_id)
    verifier = TokenVerifier([eddsa_verification_key(stream_keys[1].read_bytes())], cache_size=0)
    me = login()
    song = sub(await api.get("/rest/getSong", params={**me.token(), "id": track_id}))["song"]
    assert song["coverArt"] == track_id

    async def art_path(art_id: str, **params) -> str:
        r = await api.get("/rest/getCoverArt", params={**me.token(), "id": art_id, **params})
        assert r.status_code == 302, r.text
        path, _, token = (
            r.headers["location"].removeprefix("http://edge.test:8080").partition("?token=")
        )
        verifier.verify(token, path)
        return path.rsplit("/", 1)[1]

    assert await art_path(track_id, size="300") == THUMBNAIL_NAME
    assert await art_path(track_id, size="64") == THUMBNAIL_NAME
    assert await art_path(track_id) == "cover.png"
    assert await art_path(track_id, size="1200") == "cover.png"
    assert await art_path(song["albumId"], size="200") == THUMBNAIL_NAME
    assert await art_path(song["artistId"]) == "cover.png"
    r = await api.get("/rest/getCoverArt", params={**me.token(), "id": track_id, "size": "0"})
    assert error_code(r) == 0


def test_a_user_holds_a_bounded_number_of_app_passwords(app, login):
    from delivery.subsonic.app_passwords import MAX_PER_USER, AppPasswordError

    me = login()
    passwords = app.state.services.subsonic.app_passwords
    for _ in range(MAX_PER_USER - 1):
        passwords.create(me.user, "more")
    with pytest.raises(AppPasswordError, match="revoke one first"):
        passwords.create(me.user, "one too many")
    assert len(passwords.list(me.user)) == MAX_PER_USER


async def test_genres_random_songs_and_scan_status(api, login, catalog):
    t = login().token()
    genres = sub(await api.get("/rest/getGenres", params=t))["genres"]["genre"]
    by_name = {g["value"]: g for g in genres}
    assert by_name["Rock"]["songCount"] >= 2 and by_name["Rock"]["albumCount"] >= 1
    xml = {k: v for k, v in t.items() if k != "f"}
    root = ET.fromstring((await api.get("/rest/getGenres", params=xml)).content)
    assert "Jazz" in {g.text for g in root.iter(f"{NS}genre")}
    r = await api.get("/rest/getSongsByGenre", params={**t, "genre": "jazz", "count": "50"})
    assert catalog["b1"] in {s["id"] for s in sub(r)["songsByGenre"]["song"]}
    r = await api.get("/rest/getRandomSongs", params={**t, "size": "500", "genre": "Rock"})
    songs = sub(r)["randomSongs"]["song"]
    assert {catalog["a1"], catalog["a2"]} <= {s["id"] for s in songs}
    assert all(s["genre"] == "Rock" for s in songs)
    r = await api.get("/rest/getRandomSongs", params={**t, "size": "500", "fromYear": "2006"})
    assert all(s["year"] >= 2006 for s in sub(r)["randomSongs"]["song"])
    status = sub(await api.get("/rest/getScanStatus", params=t))["scanStatus"]
    assert status["scanning"] is False and status["count"] >= 4
    assert error_code(await api.get("/rest/getSongsByGenre", params=t)) == 10


async def test_failed_logins_lock_the_address_and_user_out_without_an_oracle(
    database, store, tmp_path, stream_keys
):
    import httpx

    from delivery.app import create_app
    from delivery.settings import DeliverySettings

    settings = DeliverySettings(
        dev_mode=False,
        data_dir=tmp_path / "data",
        jwt_hs256_secrets=["x" * 64],
        jwt_issuer="",
        jwt_audience="",
        signing_key_file=stream_keys[0],
        edge_url="http://edge.test:8080",
        subsonic_login_failures_burst=2,
        subsonic_login_failures_per_hour=1,
    )
    app = create_app(settings, store=store, db=database)
    made = app.state.services.subsonic.app_passwords.create("locked-" + tmp_path.name[-8:], "t")
    right = {"u": made.user_id, "p": made.password, "f": "json"}
    wrong = {**right, "p": "not-it"}

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://delivery.test")

    async with client("192.0.2.1") as guesser, client("198.51.100.7") as listener:
        assert sub(await guesser.get("/rest/ping", params=right))["status"] == "ok"
        for _ in range(2):  # the burst; spent, the key is locked from now on
            r = await guesser.get("/rest/ping", params=wrong)
            assert sub(r)["error"]["message"] == "Wrong username or password"
        for params in (wrong, right):  # the right password answers exactly as a wrong one
            body = sub(await guesser.get("/rest/ping", params=params))
            assert body["error"]["code"] == 40
            assert body["error"]["message"].startswith("Too many failed logins; retry in")
        # the same user from elsewhere, and another user from the guesser's address: fine
        assert sub(await listener.get("/rest/ping", params=right))["status"] == "ok"
        other = app.state.services.subsonic.app_passwords.create("other-" + tmp_path.name[-8:], "t")
        mine = {"u": other.user_id, "p": other.password, "f": "json"}
        assert sub(await guesser.get("/rest/ping", params=mine))["status"] == "ok"


async def test_scrobble_times_and_hostile_numbers(app, api, login, catalog, database):
    me = login()
    t = me.token()
    at = int(__import__("time").time() * 1000) - 60_000
    r = await api.get("/rest/scrobble", params={**t, "id": catalog["a1"], "time": str(at)})
    assert sub(r)["status"] == "ok"
    again = await api.get("/rest/scrobble", params={**t, "id": catalog["a1"], "time": str(at)})
    assert sub(again)["status"] == "ok"  # a retried scrobble is the same play
    with database.transaction(write=False) as tx:
        plays = tx.fetchall("SELECT played_at FROM plays WHERE user_id = :u", {"u": me.user})
    assert [p["played_at"] for p in plays] == [at]
    for bad in ("²", "١٢", "12a", "-5", "9" * 17):
        r = await api.get("/rest/scrobble", params={**t, "id": catalog["a1"], "time": bad})
        assert error_code(r) == 0
        r = await api.get("/rest/getAlbumList2", params={**t, "type": "newest", "size": bad})
        assert error_code(r) == 0
    r = await api.get("/rest/scrobble", params={**t, "id": catalog["a1"], "time": "1000"})
    assert error_code(r) == 0  # 1970: older than DELIVERY_PLAY_MAX_AGE_S
    r = await api.get("/rest/scrobble", params={**t, "id": [catalog["a1"], catalog["a2"]],
                                                "time": str(at)})  # fmt: skip
    assert error_code(r) == 0  # one time per id, or none
    assert error_code(await api.get("/rest/scrobble", params=t)) == 10
