"""The web player in headless Chromium against the real stack (delivery -> edge -> origin).

The page keeps its Content-Security-Policy in force (no ``bypass_csp``), so
conditions are polled with ``page.evaluate`` rather than ``wait_for_function``
(which would need ``eval``).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import imageio_ffmpeg
import pytest

from tests.e2e.conftest import record_timing
from tests.e2e.stack import Stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # end-to-end: left out by `make test-fast`
AUDIO = "document.getElementById('audio')"


class PageWatch:
    """Console errors, page errors and CSP violations of one page.

    ``expected`` lists substrings of console errors a test provokes on purpose
    (Chromium logs every 4xx fetch as "Failed to load resource ... status of 400").
    """

    def __init__(self, page, expected: tuple[str, ...] = ()) -> None:
        self.problems: list[str] = []
        self.expected = expected
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type == "error" and not any(e in message.text for e in self.expected):
            self.problems.append(f"console: {message.text}")


def wait_js(page, expression: str, timeout: float = 20.0, what: str = "") -> object:
    def shown() -> str:
        state = page.evaluate(
            "({error: document.getElementById('error-text').textContent,"
            " status: document.getElementById('status').textContent})"
        )
        return f"page: {state}"

    return wait_for(
        lambda: page.evaluate(expression), what=what or expression, timeout=timeout, detail=shown
    )


def expected_gain_db(loudness: dict) -> float:
    """The player's rule: track gain, lowered so the true peak stays at or below -1 dBTP."""
    db = loudness["track_gain_db"]
    peak = loudness.get("true_peak_dbtp")
    if peak is not None and db + peak > -1:
        db = -1 - peak
    return db


def sign_in(page, stack: Stack, user: str) -> None:
    page.goto(f"{stack.delivery_url}/player")
    page.wait_for_selector("#signin-dev:not([hidden])")
    page.select_option("#user-select", user)
    page.click("#sign-in")
    page.wait_for_selector("#app:not([hidden])")
    assert page.inner_text("#me-user") == user


def search(page, query: str, expect_track: str) -> None:
    page.fill("#search-q", query)
    page.press("#search-q", "Enter")
    page.wait_for_selector(f'#results li[data-track-id="{expect_track}"]')


def api(stack: Stack, token: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(
        method,
        f"{stack.delivery_url}{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kw,
    )


def record_play(stack: Stack, token: str, track_id: str, ms_played: int) -> None:
    """A play listened to on another device: straight through the API."""
    body = {"play_id": uuid.uuid4().hex, "track_id": track_id, "ms_played": ms_played}
    r = api(stack, token, "POST", "/v1/me/plays", json=body)
    assert r.status_code == 201, r.text


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


def test_free_user_plays_seeks_and_is_capped_at_160(stack: Stack, page):
    watch = PageWatch(page)
    track = stack.tracks["demo-sunrise"]
    path = f"/tracks/{track.track_id}/{track.version}/160.ogg"
    sign_in(page, stack, "free-user")
    assert page.inner_text("#me-tier") == "free"
    search(page, "sunrise", track.track_id)

    started = time.perf_counter()
    page.click(f'#results li[data-track-id="{track.track_id}"] button.play')
    wait_js(page, f"{AUDIO}.currentTime > 0", what="first audio")
    first_audio_s = time.perf_counter() - started
    first = stack.wait_edge_access(lambda e: e["path"] == path)
    cache = first[0]["cache"] if first else "?"
    record_timing(f"browser: click Play -> audio.currentTime > 0 (edge {cache})", first_audio_s)
    timing = page.evaluate("audiocdnPlayer.state.timing")
    record_timing("browser: stream URL from delivery (page-measured)", timing["urlMs"] / 1000)
    if timing["firstAudioMs"] is not None:
        record_timing(
            "browser: click -> 'playing' event (page-measured)", timing["firstAudioMs"] / 1000
        )

    # currentTime advances: the audio really flows.
    t1 = page.evaluate(f"{AUDIO}.currentTime")
    wait_js(page, f"{AUDIO}.currentTime > {t1 + 1.5}", what="playback to advance")

    # The free user's stream is 160 kbps: in the page and in the URL the edge serves.
    assert page.inner_text("#now-bitrate") == "160 kbps"
    src = page.evaluate(f"{AUDIO}.currentSrc")
    parts = urlsplit(src)
    assert f"{parts.scheme}://{parts.netloc}" == stack.edge_url
    assert parts.path == path
    assert parse_qs(parts.query)["token"][0].count(".") == 2  # a compact JWT
    assert page.get_attribute("#now-capped", "data-capped") == "false"  # auto = tier's best

    # Web Audio hears the cross-origin stream (the edge answers CORS) and applies ReplayGain.
    wait_js(page, "audiocdnPlayer.level() > 0.001", what="non-silent Web Audio output")
    token = page.evaluate("sessionStorage.getItem('audiocdn.player.token')")
    answer = stack.stream(token, track.track_id)
    want = 10 ** (expected_gain_db(answer["loudness"]) / 20)
    assert page.evaluate("audiocdnPlayer.gain") == pytest.approx(want, rel=1e-4)
    page.uncheck("#rg-toggle")
    assert page.evaluate("audiocdnPlayer.gain") == 1
    page.check("#rg-toggle")
    assert page.evaluate("audiocdnPlayer.gain") == pytest.approx(want, rel=1e-4)

    # A seek to the middle lands there and playback carries on from it.
    middle = track.duration_s / 2
    page.evaluate(f"{AUDIO}.currentTime = {middle}")
    wait_js(page, f"!{AUDIO}.seeking && {AUDIO}.currentTime >= {middle}", what="the seek")
    wait_js(page, f"{AUDIO}.currentTime >= {middle + 0.5}", what="playback after the seek")
    ranged = stack.wait_edge_access(lambda e: e["path"] == path and e["status"] == 206)
    assert ranged, f"no 206 for {path} in the edge log: {stack.edge_access()[-10:]}"
    assert all(e["status"] in (200, 206, 304) for e in stack.edge_access() if e["path"] == path)

    # Asking for "high" is not an error: still 160, and the page says it was capped.
    page.select_option("#quality", "high")
    wait_js(page, "document.getElementById('now-capped').dataset.capped === 'true'")
    assert "free tier" in page.inner_text("#now-capped")
    assert page.inner_text("#now-bitrate") == "160 kbps"
    assert urlsplit(page.evaluate(f"{AUDIO}.currentSrc")).path == path
    wait_js(
        page, f"{AUDIO}.currentTime >= {middle}", what="the quality switch to keep the position"
    )

    # Listening to the end reports the play (over half the track was heard).
    wait_js(page, f"{AUDIO}.ended", timeout=track.duration_s + 15, what="the end of the track")

    def reported() -> list[dict]:
        items = api(stack, token, "GET", "/v1/me/player/recently-played").json()["items"]
        return [i for i in items if i["track"]["id"] == track.track_id]

    plays = wait_for(reported, what="the player to report the play", timeout=10)
    assert plays[0]["bitrate_kbps"] == 160
    assert track.duration_s * 1000 / 2 <= plays[0]["ms_played"] <= track.duration_s * 1000 + 500
    assert plays[0]["context"] == {"type": "search", "uri": None}
    assert not watch.problems, watch.problems


def test_premium_user_playlists_friends_and_errors(stack: Stack, page, tmp_path):
    watch = PageWatch(page, expected=("status of 400",))
    # free-user listened to Night Drive (on another device: straight through the API).
    free = stack.user_token("free-user")
    record_play(stack, free, "demo-night-drive", 9000)

    sign_in(page, stack, "premium-user")
    assert page.inner_text("#me-tier") == "premium"

    # An API error is shown with the message and code from its JSON body.
    page.fill("#search-q", "year:19xx")
    page.press("#search-q", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "(400 invalid_query)" in page.inner_text("#error-text")
    assert "year" in page.inner_text("#error-text")

    page.fill("#follow-id", "free-user")
    page.press("#follow-id", "Enter")
    page.wait_for_selector("#following li:has-text('free-user')")

    page.fill("#playlist-name", "Road trip")
    page.press("#playlist-name", "Enter")
    page.wait_for_selector("#playlist-select option:has-text('Road trip')", state="attached")
    search(page, "year:2024-2025", "demo-cafe")
    for track_id in ("demo-sunrise", "demo-night-drive", "demo-cafe"):
        n = page.locator("#playlist-items li").count()
        page.click(f'#results li[data-track-id="{track_id}"] button.add')
        wait_js(
            page,
            f"document.querySelectorAll('#playlist-items li').length === {n + 1}",
            what=f"{track_id} in the playlist",
        )

    def order() -> list[str]:
        return page.eval_on_selector_all(
            "#playlist-items li", "rows => rows.map(r => r.dataset.trackId)"
        )

    assert order() == ["demo-sunrise", "demo-night-drive", "demo-cafe"]
    page.click(
        "#playlist-items li[data-track-id='demo-cafe'] button[aria-label^='Move'][aria-label$='up']"
    )
    wait_js(
        page,
        "document.querySelector('#playlist-items li').nextElementSibling.dataset.trackId"
        " === 'demo-cafe'",
        what="the button reorder",
    )
    assert order() == ["demo-sunrise", "demo-cafe", "demo-night-drive"]
    page.drag_and_drop(
        "#playlist-items li[data-track-id='demo-sunrise']",
        "#playlist-items li[data-track-id='demo-night-drive']",
    )
    wait_js(
        page,
        "document.querySelector('#playlist-items li:last-child').dataset.trackId"
        " === 'demo-sunrise'",
        what="the drag reorder",
    )
    assert order() == ["demo-cafe", "demo-night-drive", "demo-sunrise"]
    # The server holds that order too.
    token = page.evaluate("sessionStorage.getItem('audiocdn.player.token')")
    playlist_id = page.eval_on_selector("#playlist-select", "s => s.value")
    items = api(stack, token, "GET", f"/v1/playlists/{playlist_id}/items").json()["items"]
    assert [i["track"]["id"] for i in items] == ["demo-cafe", "demo-night-drive", "demo-sunrise"]

    # Playing from the playlist: premium gets 320 kbps, and the friends line names free-user.
    page.click("#playlist-items li[data-track-id='demo-night-drive'] button.play")
    wait_js(page, f"{AUDIO}.currentTime > 0.5", what="playlist playback")
    assert page.inner_text("#now-bitrate") == "320 kbps"
    assert page.get_attribute("#now-capped", "data-capped") == "false"
    wait_js(
        page,
        "document.getElementById('now-friends').textContent.includes('free-user')",
        what="the friends-listened line",
    )
    assert page.inner_text("#now-friends").startswith("Friends who listened: free-user")

    wait_js(page, f"{AUDIO}.currentTime > 2", what="a little more playback")
    shot = tmp_path / "player.png"
    page.screenshot(path=str(shot))
    print(f"[e2e] player screenshot: {shot}")
    # The pictures in docs/ are test_browser_player.py's (both sizes, the library shown).
    assert not watch.problems, watch.problems


def save_small_png(source: Path, target: Path) -> None:
    """A 64-colour palette copy of a screenshot: a third of the size, same legibility."""
    target.parent.mkdir(exist_ok=True)
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(source),
            "-vf", "split[a][b];[a]palettegen=max_colors=64:stats_mode=full[p];"
            "[b][p]paletteuse=dither=none",
            "-compression_level", "100", str(target),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
