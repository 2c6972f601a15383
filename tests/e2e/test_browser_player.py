"""The web player's listener features in headless Chromium, on the real stack.

At 1280x800 and at a phone's 390x844: the now-playing bar and its controls, the
queue with shuffle and repeat, keyboard shortcuts, the Media Session, resuming after
a reload, recently played, playlist management, the bitrate badge, and adaptive
bitrate under Chromium's network emulation. The stack is the package's one
(``tests/e2e/conftest.py``); two extra tracks of noise (whose renditions' real
bitrates are close to their rungs, unlike the demo's tones) are ingested into it
once for this module.

As in ``test_browser.py`` the page keeps its Content-Security-Policy, so
conditions are polled with ``page.evaluate``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import pytest

from tests.e2e.stack import Stack
from tests.e2e.test_browser import (
    AUDIO,
    PageWatch,
    api,
    record_play,
    save_small_png,
    sign_in,
    wait_js,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # end-to-end: left out by `make test-fast`

DOCS = Path(__file__).resolve().parents[2] / "docs"
LABEL = "document.getElementById('play-pause').getAttribute('aria-label')"
SIZES = {"desktop": (1280, 800), "mobile": (390, 844)}
DEMO = ("demo-sunrise", "demo-night-drive", "demo-cafe")
MEDIA_ACTIONS = {
    "play",
    "pause",
    "previoustrack",
    "nexttrack",
    "seekto",
    "seekbackward",
    "seekforward",
}
# Records the Media Session action handlers the page registers, so a test can invoke
# exactly what the browser would call from a lock screen or a media key.
CAPTURE_MEDIA_HANDLERS = """
(() => {
  window.__mediaHandlers = {};
  const original = MediaSession.prototype.setActionHandler;
  MediaSession.prototype.setActionHandler = function (action, handler) {
    window.__mediaHandlers[action] = handler;
    return original.call(this, action, handler);
  };
})();
"""


@dataclass(frozen=True)
class Extra:
    track_id: str
    title: str
    duration_s: float


def _ingest_noise(stack: Stack, track_id: str, title: str, seconds: int, *, mp3: bool) -> Extra:
    """Pink noise (it compresses badly, so each rendition's real bitrate is near its
    rung), published with ``encoder ingest`` and indexed with ``catalog sync``."""
    src = stack.root / "src" / f"{track_id}.{'mp3' if mp3 else 'flac'}"
    codec = ["-c:a", "libmp3lame", "-b:a", "128k"] if mp3 else ["-c:a", "flac"]
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.25:r=44100",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=white:a=0.1:r=44100:seed=7",
            "-filter_complex", "[0][1]join=inputs=2:channel_layout=stereo", *codec, str(src),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    stack.cli(
        "encoder", "ingest", str(src), "--track-id", track_id, "--store", stack.store_url,
        "--title", title, "--artist", "Noise Floor", "--album", "Headroom",
        "--genre", "Noise", "--year", "2025", "--quiet",
        timeout=300,
    )  # fmt: skip
    return Extra(track_id, title, float(seconds))


@pytest.fixture(scope="module")
def noise(stack: Stack) -> dict[str, Extra]:
    tracks = {
        "abr": _ingest_noise(stack, "e2e-noise-abr", "Static Shower", 60, mp3=False),
        "lossy": _ingest_noise(stack, "e2e-noise-mp3", "Compressed Hiss", 12, mp3=True),
    }
    stack.cli("delivery", "catalog", "sync")
    return tracks


@pytest.fixture(params=list(SIZES))
def page(request, browser):
    width, height = SIZES[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(CAPTURE_MEDIA_HANDLERS)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.size_name = request.param
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(CAPTURE_MEDIA_HANDLERS)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


# -- helpers ----------------------------------------------------------------------------


def search_for(page, query: str, *track_ids: str) -> None:
    page.fill("#search-q", query)
    page.press("#search-q", "Enter")
    for track_id in track_ids:
        page.wait_for_selector(f'#results li[data-track-id="{track_id}"]')


def play_demo_album(page) -> list[str]:
    """Search the three demo tracks and play the first: the queue becomes the results."""
    search_for(page, "year:2024-2025", *DEMO)
    order = page.eval_on_selector_all("#results li", "rows => rows.map(r => r.dataset.trackId)")
    page.click(f'#results li[data-track-id="{order[0]}"] button.play')
    wait_js(page, f"{AUDIO}.currentTime > 0.3", what="playback of the first result")
    return order


def current_id(page) -> str | None:
    return page.evaluate("audiocdnPlayer.state.current && audiocdnPlayer.state.current.track.id")


def queue_ids(page) -> list[str]:
    return page.evaluate("audiocdnPlayer.queue")


def wait_current(page, track_id: str, what: str = "") -> None:
    wait_js(
        page,
        f"audiocdnPlayer.state.current && audiocdnPlayer.state.current.track.id === '{track_id}'"
        f" && {AUDIO}.currentTime > 0.2",
        what=what or f"{track_id} to play",
    )


def no_sideways_overflow(page) -> None:
    sizes = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: innerWidth,"
        " body: document.body.scrollWidth})"
    )
    assert sizes["scroll"] <= sizes["inner"], sizes
    assert sizes["body"] <= sizes["inner"], sizes


def inside_viewport(page, selector: str) -> dict:
    box = page.locator(selector).bounding_box()
    view = page.viewport_size
    assert box is not None, f"{selector} is not displayed"
    assert box["width"] > 0 and box["height"] > 0, (selector, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"] + 0.5, (selector, box)
    assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"] + 0.5, (selector, box)
    return box


def token_of(page) -> str:
    return page.evaluate("sessionStorage.getItem('audiocdn.player.token')")


def rewind(page) -> None:
    """Back to the start, so "previous" goes to the previous track (after 3 s it
    restarts the current one, as players do)."""
    page.evaluate(f"{AUDIO}.currentTime = 0")
    wait_js(page, f"!{AUDIO}.seeking && {AUDIO}.currentTime < 2", what="the rewind")


def focus_page(page) -> None:
    """Keys go to the document, as after clicking an empty part of the page."""
    page.evaluate("document.activeElement && document.activeElement.blur()")


def maybe_save_screenshot(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot))
    target = DOCS / f"{name}.png"
    # Committed pictures: only (re)written when missing or asked for.
    if not target.exists() or os.environ.get("E2E_UPDATE_SCREENSHOT") == "1":
        save_small_png(shot, target)


# -- the bar -----------------------------------------------------------------------------


def test_now_playing_bar_drives_the_hidden_audio_at_both_sizes(stack: Stack, page, tmp_path):
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    no_sideways_overflow(page)
    order = play_demo_album(page)
    first = stack.tracks[order[0]]

    # The element has no controls of its own: the bar is what a listener uses.
    assert page.evaluate(f"{AUDIO}.controls") is False
    assert page.locator("#audio").is_hidden()
    bar = inside_viewport(page, "#now")
    assert abs(bar["y"] + bar["height"] - page.viewport_size["height"]) < 1  # fixed at the bottom
    for control in ("#play-pause", "#prev", "#next", "#shuffle", "#repeat", "#seek", "#time-cur"):
        inside_viewport(page, control)
    assert page.inner_text("#now-title") == first.title
    assert first.artist in page.inner_text("#now-artist")
    assert page.inner_text("#time-dur") == f"0:{int(first.duration_s):02d}"
    inside_viewport(page, "#now-art .cover")

    # Pause and play with the bar's button.
    page.click("#play-pause")
    wait_js(page, f"{AUDIO}.paused && {LABEL} === 'Play'", what="pause from the bar")
    paused_at = page.evaluate(f"{AUDIO}.currentTime")
    page.click("#play-pause")
    wait_js(
        page,
        f"!{AUDIO}.paused && {AUDIO}.currentTime > {paused_at + 0.5} && {LABEL} === 'Pause'",
        what="play again",
    )

    # Clicking three quarters along the slider seeks there; the clock follows.
    box = page.locator("#seek").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    target = first.duration_s * 0.75
    wait_js(
        page,
        f"!{AUDIO}.seeking && Math.abs({AUDIO}.currentTime - {target}) < 2.5",
        what="the slider seek",
    )
    wait_js(
        page,
        f"document.getElementById('time-cur').textContent.startsWith('0:{int(target) // 10}')",
        what="the clock",
    )

    # Next and previous walk the queue (the search results, in order).
    page.click("#next")
    wait_current(page, order[1])
    assert page.inner_text("#now-title") == stack.tracks[order[1]].title
    rewind(page)
    page.click("#prev")  # within the first 3 s: the previous track
    wait_current(page, order[0])
    no_sideways_overflow(page)
    assert not watch.problems, watch.problems


# -- queue, shuffle, repeat ----------------------------------------------------------------


def test_queue_add_play_next_reorder_remove_shuffle_and_repeat(stack: Stack, page):
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    order = play_demo_album(page)
    assert queue_ids(page) == order
    assert page.eval_on_selector_all("#queue li", "r => r.map(x => x.dataset.trackId)") == order

    # "Add to queue" appends, "Play next" inserts after the track playing.
    page.click(f'#results li[data-track-id="{order[0]}"] button.queue-add')
    wait_js(page, "audiocdnPlayer.queue.length === 4", what="the added track")
    assert queue_ids(page) == [*order, order[0]]
    page.click(f'#results li[data-track-id="{order[2]}"] button.queue-next')
    wait_js(page, "audiocdnPlayer.queue.length === 5", what="the play-next track")
    assert queue_ids(page) == [order[0], order[2], order[1], order[2], order[0]]
    assert page.locator("#queue li").count() == 5

    # Remove the last two with their buttons, then reorder by button and by drag.
    page.click("#queue li:nth-child(5) button[aria-label$='from the queue']")
    page.click("#queue li:nth-child(2) button[aria-label$='from the queue']")
    wait_js(page, "audiocdnPlayer.queue.length === 3", what="removals")
    assert queue_ids(page) == order
    page.click("#queue li:nth-child(3) button[aria-label$='up in the queue']")
    wait_js(page, f"audiocdnPlayer.queue[1] === '{order[2]}'", what="the button move")
    assert queue_ids(page) == [order[0], order[2], order[1]]
    page.drag_and_drop("#queue li:nth-child(3)", "#queue li:nth-child(2)")
    wait_js(page, f"audiocdnPlayer.queue[1] === '{order[1]}'", what="the drag move")
    assert queue_ids(page) == order
    assert current_id(page) == order[0]  # the track playing never changed

    # Shuffle keeps the track playing first and reorders what comes next; off restores.
    page.click("#shuffle")
    wait_js(page, "audiocdnPlayer.state.queue.shuffle", what="shuffle on")
    assert page.get_attribute("#shuffle", "aria-pressed") == "true"
    shuffled = queue_ids(page)
    assert shuffled[0] == order[0] and sorted(shuffled) == sorted(order)
    assert shuffled != order
    assert "shuffled" in page.inner_text("#queue-summary")
    page.click("#shuffle")
    wait_js(page, "!audiocdnPlayer.state.queue.shuffle", what="shuffle off")
    assert queue_ids(page) == order
    assert current_id(page) == order[0]

    # Repeat cycles off -> all -> one -> off.
    modes = []
    for _ in range(3):
        page.click("#repeat")
        modes.append(page.get_attribute("#repeat", "data-mode"))
    assert modes == ["all", "one", "off"]

    # Off: at the last track "next" has nowhere to go. All: it wraps to the first.
    page.click("#queue li:nth-child(3) button.play")
    wait_current(page, order[2])
    assert page.is_disabled("#next")
    page.click("#repeat")  # all
    assert page.is_enabled("#next")
    page.click("#next")
    wait_current(page, order[0], "repeat all to wrap around")

    # One: the track starts over by itself at its end, and stays the current one.
    page.click("#repeat")  # one
    assert page.evaluate(f"{AUDIO}.loop") is True
    duration = stack.tracks[order[0]].duration_s
    page.evaluate(f"{AUDIO}.currentTime = {duration - 1.5}")
    wait_js(page, f"{AUDIO}.currentTime > {duration - 1.2}", what="the end of the track")
    wait_js(page, f"{AUDIO}.currentTime < 3 && !{AUDIO}.paused", what="repeat one to restart it")
    assert current_id(page) == order[0]
    assert not watch.problems, watch.problems


# -- keyboard and Media Session -----------------------------------------------------------


def test_keyboard_shortcuts_and_help(stack: Stack, page):
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    order = play_demo_album(page)
    focus_page(page)

    page.keyboard.press("Space")
    wait_js(page, f"{AUDIO}.paused", what="space to pause")
    page.keyboard.press("Space")
    wait_js(page, f"!{AUDIO}.paused", what="space to play")

    t = page.evaluate(f"{AUDIO}.currentTime")
    page.keyboard.press("ArrowRight")
    wait_js(page, f"{AUDIO}.currentTime >= {t + 4.5}", what="→ to seek forward 5 s")
    t = page.evaluate(f"{AUDIO}.currentTime")
    page.keyboard.press("ArrowLeft")
    wait_js(page, f"{AUDIO}.currentTime <= {t - 4}", what="← to seek back 5 s")

    page.keyboard.press("Shift+ArrowRight")
    wait_current(page, order[1], "Shift+→ to play the next track")
    page.keyboard.press("n")
    wait_current(page, order[2], "N to play the next track")
    rewind(page)
    page.keyboard.press("p")
    wait_current(page, order[1], "P to play the previous track")
    rewind(page)
    page.keyboard.press("Shift+ArrowLeft")
    wait_current(page, order[0], "Shift+← to play the previous track")

    page.keyboard.press("m")
    wait_js(page, f"{AUDIO}.muted", what="M to mute")
    wait_js(page, "document.getElementById('mute').getAttribute('aria-pressed') === 'true'")
    page.keyboard.press("m")
    wait_js(page, f"!{AUDIO}.muted", what="M to unmute")

    # "/" focuses the search; typing a space there types, it does not pause.
    page.keyboard.press("/")
    wait_js(page, "document.activeElement.id === 'search-q'", what="/ to focus the search")
    page.fill("#search-q", "")
    page.keyboard.type("night drive")
    assert page.input_value("#search-q") == "night drive"
    assert page.evaluate(f"{AUDIO}.paused") is False

    focus_page(page)
    page.keyboard.press("?")
    page.wait_for_selector("#help:not([hidden])")
    assert "play / pause" in page.inner_text("#help")
    page.keyboard.press("Escape")
    page.wait_for_selector("#help", state="hidden")
    assert not watch.problems, watch.problems


def test_media_session_metadata_and_actions(stack: Stack, page):
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    order = play_demo_album(page)
    first = stack.tracks[order[0]]

    meta = page.evaluate(
        "(() => { const m = navigator.mediaSession.metadata;"
        " return {title: m.title, artist: m.artist, album: m.album,"
        " artwork: m.artwork.map(a => a.src)}; })()"
    )
    assert meta["title"] == first.title and meta["artist"] == first.artist
    assert meta["album"]
    # Search answers no art: the player finds the cover in the library, by album.
    wait_js(page, "navigator.mediaSession.metadata.artwork.length === 1", what="the artwork")
    artwork = page.evaluate("navigator.mediaSession.metadata.artwork[0]")
    assert artwork["src"] == page.evaluate("audiocdnPlayer.state.current.track.art.thumbnail_url")
    assert artwork["src"].startswith(f"{stack.edge_url}/tracks/{first.track_id}/")
    assert "/cover-300.jpg?token=" in artwork["src"]
    wait_js(page, "document.querySelector('#now-art img')?.naturalWidth > 0", what="bar thumbnail")
    assert set(page.evaluate("Object.keys(window.__mediaHandlers)")) >= MEDIA_ACTIONS
    wait_js(page, "navigator.mediaSession.playbackState === 'playing'")

    def action(name: str, details: str = "{}") -> None:
        page.evaluate(f"window.__mediaHandlers['{name}']({{action: '{name}', ...{details}}})")

    action("pause")
    wait_js(page, f"{AUDIO}.paused && navigator.mediaSession.playbackState === 'paused'")
    action("play")
    wait_js(page, f"!{AUDIO}.paused", what="the play action")
    action("seekto", "{seekTime: 2}")
    wait_js(page, f"!{AUDIO}.seeking && Math.abs({AUDIO}.currentTime - 2) < 1", what="seekto")
    action("seekforward", "{seekOffset: 5}")
    wait_js(page, f"{AUDIO}.currentTime >= 6.5", what="seekforward")
    action("seekbackward", "{seekOffset: 10}")
    wait_js(page, f"!{AUDIO}.seeking && {AUDIO}.currentTime < 3", what="seekbackward")
    action("nexttrack")
    wait_current(page, order[1], "the nexttrack action")
    second = stack.tracks[order[1]]
    wait_js(page, f"navigator.mediaSession.metadata.title === {second.title!r}")
    rewind(page)
    action("previoustrack")
    wait_current(page, order[0], "the previoustrack action")
    assert not watch.problems, watch.problems


# -- resume, recently played, playlists -------------------------------------------------------


def test_queue_track_and_position_survive_a_reload(stack: Stack, page):
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    order = play_demo_album(page)
    page.click("#next")
    wait_current(page, order[1])
    page.click("#repeat")  # all: saved too
    page.evaluate(f"{AUDIO}.currentTime = 7")
    wait_js(page, f"!{AUDIO}.seeking && {AUDIO}.currentTime >= 7", what="the seek")
    page.click("#play-pause")  # pausing saves at once
    wait_js(page, f"{AUDIO}.paused")
    position = page.evaluate(f"{AUDIO}.currentTime")

    page.reload()
    page.wait_for_selector("#app:not([hidden])")
    wait_js(page, f"audiocdnPlayer.state.current && {AUDIO}.readyState >= 1", what="the restore")
    assert queue_ids(page) == order
    assert current_id(page) == order[1]
    assert page.inner_text("#now-title") == stack.tracks[order[1]].title
    assert page.get_attribute("#repeat", "data-mode") == "all"
    wait_js(page, f"Math.abs({AUDIO}.currentTime - {position}) < 0.75", what="the saved position")
    assert page.evaluate(f"{AUDIO}.paused") is True  # it was paused
    assert "Resumed" in page.inner_text("#status")
    page.click("#play-pause")
    wait_js(page, f"{AUDIO}.currentTime > {position + 1}", what="playback from the position")

    # Reloaded while playing: it plays on where it was (this Chromium allows autoplay).
    rewind(page)  # far from the end, so the track is still this one after the reload
    before = page.evaluate(f"{AUDIO}.currentTime")
    page.reload()
    page.wait_for_selector("#app:not([hidden])")
    wait_js(
        page,
        f"audiocdnPlayer.state.current && !{AUDIO}.paused && {AUDIO}.currentTime > {before}",
        what="playback to resume by itself",
    )
    assert current_id(page) == order[1]
    assert not watch.problems, watch.problems


def test_recently_played_view(stack: Stack, page):
    watch = PageWatch(page)
    token = stack.user_token("free-user")
    record_play(stack, token, "demo-cafe", 9000)
    sign_in(page, stack, "free-user")
    page.click("#nav a[data-view='recent']")
    page.wait_for_selector("#recent li[data-track-id='demo-cafe']")
    row = page.inner_text("#recent li[data-track-id='demo-cafe']")
    assert stack.tracks["demo-cafe"].title in row and "just now" in row
    page.click("#recent li[data-track-id='demo-cafe'] button.play")
    wait_current(page, "demo-cafe")
    no_sideways_overflow(page)
    assert not watch.problems, watch.problems


def test_playlist_rename_visibility_collaborators_delete_and_play_counts(stack: Stack, desktop):
    page = desktop
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    token = token_of(page)
    name = f"Mix {uuid.uuid4().hex[:6]}"
    page.fill("#playlist-name", name)
    page.press("#playlist-name", "Enter")
    page.wait_for_selector(f"#playlist-select option:has-text('{name}')", state="attached")
    playlist_id = page.eval_on_selector("#playlist-select", "s => s.value")
    search_for(page, "year:2024-2025", *DEMO)
    page.click('#results li[data-track-id="demo-sunrise"] button.add')
    page.wait_for_selector("#playlist-items li[data-track-id='demo-sunrise']")

    def server() -> dict:
        return api(stack, token, "GET", f"/v1/playlists/{playlist_id}").json()

    page.click("#playlist-play")  # the playlist becomes the queue
    wait_current(page, "demo-sunrise", "the playlist to play")
    assert queue_ids(page) == ["demo-sunrise"]

    page.fill("#playlist-rename-name", f"{name} renamed")
    page.click("#playlist-rename button[type=submit]")
    wait_for(lambda: server()["name"] == f"{name} renamed", what="the rename on the server")
    page.wait_for_selector(f"#playlist-select option:has-text('{name} renamed')", state="attached")

    page.select_option("#playlist-visibility", "public")
    wait_for(lambda: server()["public"] is True, what="public on the server")
    page.select_option("#playlist-visibility", "collaborative")
    wait_for(
        lambda: (s := server())["collaborative"] is True and s["public"] is False,
        what="collaborative on the server",
    )
    page.wait_for_selector("#collab-section:not([hidden])")
    page.fill("#collab-id", "free-user")
    page.press("#collab-id", "Enter")
    page.wait_for_selector("#collaborators li[data-user-id='free-user']")
    collaborators = api(stack, token, "GET", f"/v1/playlists/{playlist_id}/collaborators")
    assert [u["id"] for u in collaborators.json()["items"]] == ["free-user"]
    page.click("#collaborators button[aria-label='Remove collaborator free-user']")
    page.wait_for_selector("#collaborators li[data-user-id='free-user']", state="detached")
    collaborators = api(stack, token, "GET", f"/v1/playlists/{playlist_id}/collaborators")
    assert collaborators.json()["items"] == []
    page.select_option("#playlist-visibility", "private")
    wait_for(lambda: not server()["public"] and not server()["collaborative"], what="private")

    # Play counts: a play recorded elsewhere shows on the track's rows once counted.
    record_play(stack, token, "demo-sunrise", 15000)

    def counted() -> int:
        hits = api(stack, token, "GET", "/v1/search", params={"q": "sunrise", "type": "track"})
        items = [t for t in hits.json()["tracks"]["items"] if t["id"] == "demo-sunrise"]
        return items[0].get("play_count", 0) if items else 0

    plays = wait_for(counted, what="the play to be counted", timeout=30)
    search_for(page, "sunrise", "demo-sunrise")
    label = "1 play" if plays == 1 else f"{plays} plays"
    wait_js(
        page,
        f"document.querySelector('#results li[data-track-id=\"demo-sunrise\"] .plays')"
        f".textContent === '{label}'",
        what="the play count on the row",
    )

    # Delete asks first: dismissing keeps it, accepting removes it from the library.
    page.once("dialog", lambda d: d.dismiss())
    page.click("#playlist-delete")
    assert page.eval_on_selector("#playlist-select", "s => s.value") == playlist_id
    page.once("dialog", lambda d: d.accept())
    page.click("#playlist-delete")
    page.wait_for_selector(f"#playlist-select option[value='{playlist_id}']", state="detached")
    mine = api(stack, token, "GET", "/v1/me/playlists", params={"limit": 50}).json()["items"]
    assert playlist_id not in [p["id"] for p in mine]
    assert not watch.problems, watch.problems


# -- bitrate ---------------------------------------------------------------------------------


def test_bitrate_badge_shows_the_real_average_and_a_limiting_source(stack: Stack, desktop, noise):
    page = desktop
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    token = token_of(page)
    search_for(page, "sunrise", "demo-sunrise")
    page.click('#results li[data-track-id="demo-sunrise"] button.play')
    wait_current(page, "demo-sunrise")
    answer = stack.stream(token, "demo-sunrise")
    top = next(r for r in answer["renditions"] if r["bitrate_kbps"] == 320)
    assert page.inner_text("#now-bitrate") == "320 kbps"
    assert page.inner_text("#now-avg") == f"≈{math.floor(top['avg_bitrate_kbps'] + 0.5)} kbps real"
    assert top["avg_bitrate_kbps"] < 320  # tones compress: the rung is not the rate
    assert page.locator("#now-source").is_hidden()  # a lossless master limits nothing

    # A 128 kbps MP3 master: no 320 rendition (no upscaling), and the page says why.
    lossy = noise["lossy"]
    search_for(page, "compressed hiss", lossy.track_id)
    page.click(f'#results li[data-track-id="{lossy.track_id}"] button.play')
    wait_current(page, lossy.track_id)
    answer = stack.stream(token, lossy.track_id)
    assert max(r["bitrate_kbps"] for r in answer["renditions"]) < 320
    assert answer["source"]["lossless"] is False and answer["source"]["bitrate_kbps"] < 200
    note = page.inner_text("#now-source")
    assert page.locator("#now-source").is_visible()
    assert "no 320 kbps rendition" in note and "128 kbps mp3" in note
    assert not watch.problems, watch.problems


def test_adaptive_bitrate_steps_down_on_a_slow_network_and_back_up(stack: Stack, page, noise):
    watch = PageWatch(page)
    track = noise["abr"]
    sign_in(page, stack, "premium-user")
    answer = stack.stream(token_of(page), track.track_id)
    real = {r["bitrate_kbps"]: r["avg_bitrate_kbps"] for r in answer["renditions"]}
    # Between the middle rung's real rate and the top one's: 320 cannot keep up.
    kbps = (real[160] + real[320]) / 2
    assert real[160] < kbps < real[320]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": kbps * 1000 / 8,
            "uploadThroughput": -1,
        },
    )
    search_for(page, "static shower", track.track_id)
    page.click("#repeat")
    page.click("#repeat")  # repeat one: however slow this machine, the track never runs out
    assert page.get_attribute("#repeat", "data-mode") == "one"
    page.click(f'#results li[data-track-id="{track.track_id}"] button.play')

    def abr_log() -> list[dict]:
        return page.evaluate("audiocdnPlayer.abr.log")

    def detail() -> str:
        state = page.evaluate(
            f"({{t: {AUDIO}.currentTime, ready: {AUDIO}.readyState, paused: {AUDIO}.paused,"
            " bitrate: audiocdnPlayer.state.current && audiocdnPlayer.state.current.bitrate,"
            " kbps: audiocdnPlayer.abr.throughputKbps})"
        )
        return f"state {state}, switches {abr_log()}"

    # Down: the top rung stalls, the player moves to a lower one and keeps playing.
    wait_for(
        lambda: page.evaluate("audiocdnPlayer.state.current?.bitrate ?? 999") < 320,
        what="a step down from 320 kbps",
        timeout=60,
        detail=detail,
    )
    down = abr_log()[0]
    assert down["from"] == 320 and down["to"] < 320, down
    wait_js(page, f"{AUDIO}.currentTime > 3", timeout=60, what="playback at the lower rung")
    assert not page.evaluate(f"{AUDIO}.paused")
    assert page.locator("#now-abr").is_visible()

    def settled() -> dict | None:
        """One consistent view once every switch so far has resumed (another step down
        may still come while the network is slow)."""
        now = page.evaluate(
            f"({{src: {AUDIO}.currentSrc, bitrate: audiocdnPlayer.state.current.bitrate,"
            " log: audiocdnPlayer.abr.log})"
        )
        return now if all(s["resumedAt"] is not None for s in now["log"]) else None

    now = wait_for(settled, what="the switches to resume", timeout=60, detail=detail)
    assert f"/{now['bitrate']}.ogg?" in now["src"]
    for switch in now["log"]:
        assert abs(switch["resumedAt"] - switch["position"]) < 1, switch  # same position

    # Up: the network recovers, throughput is measured, back to 320 where it was.
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    wait_for(
        lambda: page.evaluate("audiocdnPlayer.state.current.bitrate") == 320,
        what="a step back up to 320 kbps",
        timeout=60,
        detail=detail,
    )
    up = [s for s in abr_log() if s["to"] == 320][-1]
    assert up["from"] < 320 and up["reason"] == "sustained throughput", up
    wait_js(
        page,
        "audiocdnPlayer.abr.log.filter(s => s.to === 320).at(-1).resumedAt !== null",
        what="the resume at 320",
    )
    up = [s for s in abr_log() if s["to"] == 320][-1]
    assert up["position"] > 0 and abs(up["resumedAt"] - up["position"]) < 1, up
    t = page.evaluate(f"{AUDIO}.currentTime")
    wait_js(page, f"{AUDIO}.currentTime > {t + 1}", what="playback at 320 kbps again")
    assert "/320.ogg?" in page.evaluate(f"{AUDIO}.currentSrc")
    assert page.locator("#now-abr").is_hidden()
    assert not watch.problems, watch.problems


# -- the library -----------------------------------------------------------------------------


def library(stack: Stack, token: str, path: str, **params) -> dict:
    r = api(stack, token, "GET", f"/v1/library/{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def card_ids(page, selector: str, key: str) -> list[str]:
    return page.eval_on_selector_all(selector, f"cards => cards.map(c => c.dataset.{key})")


def assert_covers(page, selector: str, items: list[dict], edge_url: str) -> None:
    """Each card has the thumbnail as a loaded image when its item has art, and a plain
    block (no image at all) when it has none."""
    for item in items:
        card = f"{selector} [data-album-id='{item['id']}'] .cover"
        if item["art"]:
            wait_js(
                page,
                f'(() => {{ const i = document.querySelector("{card} img");'
                " return i && i.complete && i.naturalWidth > 0; })()",
                what=f"the cover of {item['title']}",
            )
            src = page.get_attribute(f"{card} img", "src")
            assert src == item["art"]["thumbnail_url"]
            assert src.startswith(f"{edge_url}/tracks/") and "/cover-300.jpg?token=" in src
        else:
            assert page.locator(f"{card} img").count() == 0, item
            assert page.locator(card).bounding_box()["height"] > 0  # the neutral block


def test_browse_albums_artists_and_genres_with_covers(stack: Stack, page, noise, tmp_path):
    watch = PageWatch(page)
    sign_in(page, stack, "premium-user")
    token = token_of(page)

    def with_noise_album() -> dict | None:
        found = library(stack, token, "albums", sort="added", limit=12)
        return found if any(a["title"] == "Headroom" for a in found["items"]) else None

    albums = wait_for(with_noise_album, what="the noise album in the library", timeout=30)
    assert any(a["art"] for a in albums["items"]) and any(not a["art"] for a in albums["items"])

    # Home: the newest albums with their covers (or none), and the recently added tracks.
    page.wait_for_selector("#home-albums li")
    assert card_ids(page, "#home-albums li", "albumId") == [a["id"] for a in albums["items"]]
    assert_covers(page, "#home-albums", albums["items"], stack.edge_url)
    recent = library(stack, token, "recent", limit=10)["items"]
    assert card_ids(page, "#recently-added li", "trackId") == [t["id"] for t in recent]
    no_sideways_overflow(page)

    # Albums, sorted by title; an album's tracks in disc/track order; play it.
    page.click("#nav a[data-view='albums']")
    page.wait_for_selector("#albums li")
    page.select_option("#albums-sort", "title")
    by_title = library(stack, token, "albums", sort="title", limit=48)["items"]
    wait_js(
        page,
        "JSON.stringify([...document.querySelectorAll('#albums li')].map(c => c.dataset.albumId))"
        f" === {json.dumps([a['id'] for a in by_title], separators=(',', ':'))!r}",
        what="albums by title",
    )
    album = next(a for a in by_title if a["title"] == "Range Requests")
    page.click(f"#albums li[data-album-id='{album['id']}'] a")
    page.wait_for_selector("#album-tracks li")
    detail = library(stack, token, f"albums/{album['id']}")
    assert page.inner_text("#album-title") == "Range Requests"
    assert card_ids(page, "#album-tracks li", "trackId") == [t["id"] for t in detail["tracks"]]
    assert len(detail["tracks"]) == 2
    wait_js(page, "document.querySelector('.hero .cover img')?.naturalWidth > 0", what="album art")
    page.click("#album-play")
    first = detail["tracks"][0]
    wait_current(page, first["id"])
    assert queue_ids(page) == [t["id"] for t in detail["tracks"]]
    wait_js(page, "document.querySelector('#now-art img')?.naturalWidth > 0", what="bar thumbnail")
    assert page.get_attribute("#now-art img", "src") == first["art"]["thumbnail_url"]
    artwork = page.evaluate("navigator.mediaSession.metadata.artwork.map(a => a.src)")
    assert artwork == [first["art"]["thumbnail_url"]]
    assert page.evaluate("navigator.mediaSession.metadata.album") == "Range Requests"
    no_sideways_overflow(page)

    # The artist: albums and top tracks.
    page.click(".hero a[href^='#/artist/']")
    page.wait_for_selector("#top-tracks li")
    artist = library(stack, token, f"artists/{album['artist_id']}")
    assert page.inner_text("#artist-title") == artist["name"] == "Ogg & the Vorbises"
    assert card_ids(page, "#artist-albums li", "albumId") == [a["id"] for a in artist["albums"]]
    assert card_ids(page, "#top-tracks li", "trackId") == [t["id"] for t in artist["top_tracks"]]
    no_sideways_overflow(page)

    # Genres, and one genre's tracks (the noise has no cover: a plain block, no image).
    page.click("#nav a[data-view='genres']")
    page.wait_for_selector("#genres li")
    genres = library(stack, token, "genres", limit=50)["items"]
    assert card_ids(page, "#genres li", "genre") == [g["name"] for g in genres]
    page.click("#genres li[data-genre='Noise'] a")
    page.wait_for_selector("#genre-tracks li")
    noise_tracks = library(stack, token, "genres/Noise/tracks", limit=48)["items"]
    assert card_ids(page, "#genre-tracks li", "trackId") == [t["id"] for t in noise_tracks]
    assert {t["id"] for t in noise_tracks} == {noise["abr"].track_id, noise["lossy"].track_id}
    assert page.locator("#genre-tracks .cover img").count() == 0
    page.go_back()  # the address keeps the view: Back returns to the genres
    page.wait_for_selector("#genres li")
    no_sideways_overflow(page)

    # The pictures for the README: an album playing, at this size.
    page.evaluate(f"location.hash = '#/album/{album['id']}'")
    page.wait_for_selector("#album-tracks li")
    wait_js(page, "document.querySelector('.hero .cover img')?.naturalWidth > 0", what="album art")
    maybe_save_screenshot(page, tmp_path, f"player-{page.size_name}")
    assert not watch.problems, watch.problems
