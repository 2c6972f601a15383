"""A Subsonic client library nobody here wrote (py-sonic) against the real stack.

The stack's own processes (tests/e2e/stack.py): ``delivery serve``, an edge and an origin
serving what ``encoder batch`` published. A user gets an app password from ``delivery
users app-password create`` and py-sonic logs in with it the way apps do (token + salt,
form POSTs to ``*.view``). Every endpoint the README lists is called; stream and download
are followed through their redirect to the edge and the bytes decoded with ffmpeg; a
scrobble raises the song's play count; a wrong password is error 40.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse

import imageio_ffmpeg
import libsonic
import pytest
from libsonic.errors import CredentialError, DataNotFoundError

from tests.e2e.stack import Stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # end-to-end: left out by `make test-fast`


def connect(stack: Stack, user: str, password: str) -> libsonic.Connection:
    parsed = urllib.parse.urlsplit(stack.delivery_url)
    return libsonic.Connection(
        f"{parsed.scheme}://{parsed.hostname}",
        user,
        password,
        port=parsed.port,
        appName="py-sonic-e2e",
    )


@pytest.fixture(scope="module")
def app_password(stack: Stack) -> dict:
    out = stack.cli("delivery", "users", "app-password", "create", "premium-user", "--name", "e2e")
    made = json.loads(out.stdout)
    assert made["user"] == "premium-user" and len(made["password"]) >= 20
    return made


@pytest.fixture(scope="module")
def sonic(stack: Stack, app_password) -> libsonic.Connection:
    return connect(stack, "premium-user", app_password["password"])


def decode_seconds(audio: bytes) -> float:
    """How many seconds of audio ffmpeg decodes from ``audio`` (fails unless it is audio)."""
    done = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", "pipe:0",
         "-f", "null", "-"],
        input=audio, capture_output=True, timeout=120,
    )  # fmt: skip
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-2000:]
    assert "Audio: vorbis" in stderr, stderr[-2000:]
    h, m, s = stderr.rsplit("time=", 1)[1].split()[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_system_endpoints(sonic):
    assert sonic.ping() is True
    assert sonic.getLicense()["license"]["valid"] is True
    response = sonic.getMusicFolders()
    assert response["openSubsonic"] is True and response["type"] == "audiocdn"
    assert response["musicFolders"]["musicFolder"] == [{"id": 1, "name": "Music"}]
    # py-sonic has no method for this OpenSubsonic call: its own request machinery sends it.
    raw = sonic._doInfoReq(sonic._getRequest("getOpenSubsonicExtensions.view"))
    assert {"apiKeyAuthentication", "formPost"} <= {
        e["name"] for e in raw["openSubsonicExtensions"]
    }
    user = sonic.getUser("premium-user")["user"]
    assert user["username"] == "premium-user" and user["streamRole"] is True


def test_wrong_password_is_error_40(stack: Stack, app_password):
    wrong = connect(stack, "premium-user", app_password["password"] + "x")
    with pytest.raises(CredentialError):
        wrong.getLicense()
    stranger = connect(stack, "free-user", app_password["password"])  # not free-user's
    with pytest.raises(CredentialError):
        stranger.getArtists()


def test_browse_by_artist_and_album(stack: Stack, sonic):
    indexes = sonic.getIndexes()["indexes"]["index"]
    artists = {a["name"]: a for i in sonic.getArtists()["artists"]["index"] for a in i["artist"]}
    assert {"The Test Tones", "Ogg & the Vorbises"} <= set(artists)
    assert {a["name"] for i in indexes for a in i["artist"]} == set(artists)
    vorbises = sonic.getArtist(artists["Ogg & the Vorbises"]["id"])["artist"]
    (album,) = vorbises["album"]
    assert album["name"] == "Range Requests" and album["year"] == 2025
    songs = sonic.getAlbum(album["id"])["album"]["song"]
    assert {s["id"] for s in songs} == {"demo-night-drive", "demo-cafe"}
    newest = sonic.getAlbumList2("newest", size=10)["albumList2"]["album"]
    assert {"Range Requests", "Synthetic Mornings"} <= {a["name"] for a in newest}
    song = sonic.getSong("demo-sunrise")["song"]
    assert song["title"] == stack.tracks["demo-sunrise"].title
    assert song["album"] == "Synthetic Mornings" and song["suffix"] == "ogg"
    with pytest.raises(DataNotFoundError):
        sonic.getSong("no-such-track")


def test_genres_random_songs_and_scan_status(sonic):
    genres = {g["value"]: g for g in sonic.getGenres()["genres"]["genre"]}
    assert {"Ambient", "Synthwave", "Lo-fi"} <= set(genres)
    by_genre = sonic.getSongsByGenre("Synthwave", count=10)["songsByGenre"]["song"]
    assert [s["id"] for s in by_genre] == ["demo-night-drive"]
    randoms = sonic.getRandomSongs(size=500)["randomSongs"]["song"]
    assert {"demo-sunrise", "demo-night-drive", "demo-cafe"} <= {s["id"] for s in randoms}
    assert sonic.getScanStatus()["scanStatus"]["count"] >= 3


def test_search3(sonic):
    found = sonic.search3("night drive")["searchResult3"]
    assert [s["id"] for s in found["song"]][:1] == ["demo-night-drive"]
    found = sonic.search3("vorbises")["searchResult3"]
    assert [a["name"] for a in found["artist"]] == ["Ogg & the Vorbises"]


def test_stream_follows_the_redirect_to_the_edge_and_decodes(stack: Stack, sonic):
    track = stack.tracks["demo-sunrise"]
    response = sonic.stream("demo-sunrise")
    assert response.geturl().startswith(f"{stack.edge_url}/tracks/demo-sunrise/")
    assert response.geturl().split("?")[0].endswith("/320.ogg")  # premium: the best
    audio = response.read()
    assert response.headers["Content-Type"] == "audio/ogg"
    assert decode_seconds(audio) == pytest.approx(track.duration_s, abs=0.3)

    capped = sonic.stream("demo-cafe", maxBitRate=128)
    assert capped.geturl().split("?")[0].endswith("/96.ogg")
    assert decode_seconds(capped.read()) > 1
    download = sonic.download("demo-night-drive")
    assert download.geturl().split("?")[0].endswith("/320.ogg")
    assert decode_seconds(download.read()) > 1


def test_cover_art_comes_from_the_edge(stack: Stack, sonic):
    thumb = sonic.getCoverArt("demo-sunrise", size=300)
    assert thumb.geturl().startswith(f"{stack.edge_url}/tracks/demo-sunrise/")
    assert thumb.read()[:3] == b"\xff\xd8\xff"  # a JPEG thumbnail
    album_id = sonic.getSong("demo-cafe")["song"]["albumId"]
    original = sonic.getCoverArt(album_id).read()
    assert original[:8] == b"\x89PNG\r\n\x1a\n" or original[:3] == b"\xff\xd8\xff"


def test_scrobble_counts_a_play(sonic):
    before = sonic.getSong("demo-night-drive")["song"]["playCount"]
    sonic.scrobble("demo-night-drive", submission=False)  # "now playing": not counted
    sonic.scrobble("demo-night-drive", submission=True)
    wait_for(
        lambda: sonic.getSong("demo-night-drive")["song"]["playCount"] == before + 1,
        what="the scrobble to be counted",
        timeout=10,
    )
    assert sonic.getSong("demo-night-drive")["song"]["playCount"] == before + 1
    recent = sonic.getAlbumList2("recent")["albumList2"]["album"]
    assert recent[0]["name"] == "Range Requests"


def test_playlists(sonic):
    created = sonic.createPlaylist(name="Road trip", songIds=["demo-sunrise", "demo-cafe"])
    playlist = created["playlist"]
    pid = playlist["id"]
    assert [e["id"] for e in playlist["entry"]] == ["demo-sunrise", "demo-cafe"]
    sonic.updatePlaylist(
        pid, name="Road trip II", songIdsToAdd=["demo-night-drive"], songIndexesToRemove=[0]
    )
    got = sonic.getPlaylist(pid)["playlist"]
    assert got["name"] == "Road trip II" and got["songCount"] == 2
    assert [e["id"] for e in got["entry"]] == ["demo-cafe", "demo-night-drive"]
    assert pid in {p["id"] for p in sonic.getPlaylists()["playlists"]["playlist"]}
    sonic.deletePlaylist(pid)
    assert pid not in {p["id"] for p in sonic.getPlaylists()["playlists"].get("playlist", [])}


def test_star_unstar_and_starred(sonic):
    album_id = sonic.getSong("demo-sunrise")["song"]["albumId"]
    artist_id = sonic.getSong("demo-cafe")["song"]["artistId"]
    sonic.star(sids=["demo-sunrise"], albumIds=[album_id], artistIds=[artist_id])
    starred = sonic.getStarred2()["starred2"]
    assert [s["id"] for s in starred["song"]] == ["demo-sunrise"]
    assert [a["id"] for a in starred["album"]] == [album_id]
    assert [a["id"] for a in starred["artist"]] == [artist_id]
    sonic.unstar(sids=["demo-sunrise"], albumIds=[album_id], artistIds=[artist_id])
    assert sonic.getStarred2()["starred2"] == {"artist": [], "album": [], "song": []}
