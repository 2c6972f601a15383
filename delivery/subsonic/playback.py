"""Playing: ``stream``, ``download``, ``getCoverArt`` (redirects) and ``scrobble`` (plays).

A scrobble with ``submission=true`` (the default) is a play recorded through the plays
module (:class:`delivery.modules.plays.PlayService`), so it counts like a play reported
by the web player; its play id is derived from the user, song and time, so an app that
retries a scrobble counts it once. ``submission=false`` is "now playing": accepted (for a
known song) and not counted.
"""

from __future__ import annotations

import hashlib
import time

import anyio.to_thread
from fastapi.responses import RedirectResponse, Response

from delivery.edge_routing import client_region
from delivery.identity import Principal
from delivery.modules.art_urls import ArtSigner
from delivery.modules.plays import MAX_MS_PLAYED, PlayIn
from delivery.ratelimit import refuse_if_limited
from delivery.subsonic.browsing import Body, Call
from delivery.subsonic.errors import invalid, missing, not_found
from delivery.subsonic.media import art_url, audio_url
from delivery.subsonic.shapes import parse_sid

MAX_BITRATE_PARAM = 100_000
MAX_SIZE_PARAM = 10_000
MAX_TIME_MS = 10**15  # a scrobble's time, milliseconds since 1970
# A signed URL expires: no client or proxy may keep the redirect to it.
_NO_STORE = {"Cache-Control": "private, no-store"}


def _principal(call: Call) -> Principal:
    tiers = call.s.tiers
    tier = tiers.lookup(call.user)
    return Principal(call.user, tier if tier in tiers.tiers else tiers.default_tier)


def _where(call: Call) -> tuple[str | None, str | None]:
    client = call.request.client
    region = client_region(call.request.headers, call.s.settings.region_header)
    return (client.host if client else None), region


def _song_id(call: Call) -> str:
    parsed = parse_sid(call.params.required("id"))
    if parsed is None or parsed[0] != "song":
        raise not_found("Song")
    return parsed[1]


async def _audio(call: Call, max_bitrate: int) -> Response:
    s = call.s
    principal = await anyio.to_thread.run_sync(_principal, call)
    track_id = _song_id(call)
    if s.limiter.gcra.enabled:
        await anyio.to_thread.run_sync(
            refuse_if_limited, s.limiter, call.user, s.metrics.rate_limit_errors.inc
        )
    track = await s.resolver.track(track_id, None)
    ip, region = _where(call)
    url = audio_url(s.issuer, principal, track, max_bitrate, ip, region)
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


async def stream(call: Call) -> Response:
    # ``format`` (transcoding) is not offered: every rendition is Ogg Vorbis already.
    return await _audio(call, call.params.integer("maxBitRate", 0, 0, MAX_BITRATE_PARAM) or 0)


async def download(call: Call) -> Response:
    return await _audio(call, 0)


def get_cover_art(call: Call) -> Response:
    s = call.s
    parsed = parse_sid(call.params.required("id"))
    size = call.params.integer("size", None, 1, MAX_SIZE_PARAM)
    if parsed is None:
        raise not_found("Cover art")
    kind, item_id = parsed
    library = s.modules.library
    row = {"song": library.track, "album": library.album, "artist": library.artist}[kind](item_id)
    ip, region = _where(call)
    settings = s.settings
    signer = ArtSigner(s.signer, ttl_s=settings.url_ttl_s, bind_ip=settings.bind_client_ip)
    url = art_url(signer, row, size, call.user, ip, region)
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


def play_id(user: str, track_id: str, at_ms: int) -> str:
    """A scrobble's play id: the same user, song and time is the same play."""
    digest = hashlib.sha256(f"{user}\x1f{track_id}\x1f{at_ms}".encode()).hexdigest()
    return f"subsonic.{digest[:40]}"


def scrobble(call: Call) -> Body:
    p = call.params
    ids = p.all("id")
    if not ids:
        raise missing("id")
    times = p.integers("time", 0, MAX_TIME_MS)
    if times and len(times) != len(ids):
        raise invalid("time", "give one time per id, or none")
    submission = p.boolean("submission", True)
    now = int(time.time() * 1000)
    catalog = call.s.subsonic.catalog
    for n, raw in enumerate(ids):
        parsed = parse_sid(raw)
        if parsed is None or parsed[0] != "song":
            raise not_found("Song")
        song = catalog.song(parsed[1])
        if song is None:
            raise not_found("Song")
        if not submission:
            continue
        at = times[n] if times else now  # the plays module bounds it (DELIVERY_PLAY_MAX_AGE_S)
        play = PlayIn(
            play_id=play_id(call.user, parsed[1], at),
            track_id=parsed[1],
            ms_played=min(int(song["duration_ms"] or 0), MAX_MS_PLAYED),
            played_at=at,
            context_type="other",
        )
        call.s.modules.plays.record(call.user, play)
    return {}
