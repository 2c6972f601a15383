"""``/rest/{method}[.view]``: the Subsonic endpoints, GET or form POST, XML or JSON.

Every request goes the same way: its parameters are read (:class:`~.params.Params`), the
caller is authenticated (:mod:`.auth` against :mod:`.app_passwords`), the method is looked
up in :data:`METHODS` and run, and the answer is rendered in the requested format
(:mod:`.envelope`). Failures are Subsonic's own ``status="failed"`` envelopes with the
protocol's code, mapped here in one place from :class:`~.errors.SubsonicError` and from
the service's :class:`~delivery.errors.ApiError` tree (404 -> 70, 403 -> 50, other 4xx -> 0),
so a bad request is never a 500 and a private playlist answers like a missing one.
Unknown methods are error 0 ("not implemented"), as clients probe for optional ones.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from delivery.db import DatabaseError
from delivery.errors import ApiError
from delivery.services import Services, ServicesDep
from delivery.subsonic import browsing, playback, playlists
from delivery.subsonic.auth import ApiKeyLogin, parse_login
from delivery.subsonic.browsing import Call
from delivery.subsonic.envelope import failed, ok, render
from delivery.subsonic.errors import (
    GENERIC,
    INVALID_API_KEY,
    NOT_AUTHORIZED,
    NOT_FOUND,
    WRONG_CREDENTIALS,
    SubsonicError,
)
from delivery.subsonic.params import MAX_VALUES, Params
from delivery.subsonic.throttle import throttle_key
from origin.errors import StoreError

log = logging.getLogger("delivery.subsonic")
router = APIRouter(include_in_schema=False)

Handler = Callable[[Call], Any]
METHODS: dict[str, Handler] = {
    "ping": browsing.ping,
    "getLicense": browsing.get_license,
    "getOpenSubsonicExtensions": browsing.get_open_subsonic_extensions,
    "getMusicFolders": browsing.get_music_folders,
    "getIndexes": browsing.get_indexes,
    "getArtists": browsing.get_artists,
    "getArtist": browsing.get_artist,
    "getAlbum": browsing.get_album,
    "getAlbumList2": browsing.get_album_list2,
    "getSong": browsing.get_song,
    "search3": browsing.search3,
    "star": browsing.star,
    "unstar": browsing.unstar,
    "getStarred2": browsing.get_starred2,
    "getUser": browsing.get_user,
    "getGenres": browsing.get_genres,
    "getSongsByGenre": browsing.get_songs_by_genre,
    "getRandomSongs": browsing.get_random_songs,
    "getScanStatus": browsing.get_scan_status,
    "getPlaylists": playlists.get_playlists,
    "getPlaylist": playlists.get_playlist,
    "createPlaylist": playlists.create_playlist,
    "updatePlaylist": playlists.update_playlist,
    "deletePlaylist": playlists.delete_playlist,
    "stream": playback.stream,
    "download": playback.download,
    "getCoverArt": playback.get_cover_art,
    "scrobble": playback.scrobble,
}
# Methods that need no authentication (OpenSubsonic: the extension list is public).
PUBLIC = {"getOpenSubsonicExtensions"}
_METHOD = re.compile(r"[A-Za-z0-9]{1,64}")
_FORM = "application/x-www-form-urlencoded"


def method_name(path_part: str) -> str | None:
    """``getAlbum`` from ``getAlbum`` or ``getAlbum.view``; None for anything else."""
    name = path_part.removesuffix(".view")
    return name if _METHOD.fullmatch(name) else None


def subsonic_code(exc: ApiError) -> int:
    if exc.status == 404:
        return NOT_FOUND
    if exc.status == 403:
        return NOT_AUTHORIZED
    if exc.status == 401:
        return WRONG_CREDENTIALS
    return GENERIC


async def _pairs(request: Request) -> list[tuple[str, str]]:
    pairs = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == _FORM:
        # Parsed here (no multipart machinery needed); the body is already bounded by
        # DELIVERY_MAX_BODY_BYTES, the number of fields by Params.
        body = (await request.body()).decode("utf-8", errors="replace")
        try:
            pairs += parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_VALUES)
        except ValueError:
            raise SubsonicError(GENERIC, f"Too many parameters (at most {MAX_VALUES})") from None
    return pairs


async def _authenticate(call_params: Params, s: Services, request: Request) -> str:
    login = parse_login(call_params.first())
    client = request.client
    key = throttle_key(client.host if client else None, getattr(login, "user", None))
    throttle = s.subsonic.throttle
    # Before the credentials are looked at: a locked-out guess learns nothing.
    await anyio.to_thread.run_sync(throttle.check, key)
    user = await anyio.to_thread.run_sync(s.subsonic.app_passwords.user_for, login)
    if user is None:
        await anyio.to_thread.run_sync(throttle.failed, key)
        if isinstance(login, ApiKeyLogin):
            raise SubsonicError(INVALID_API_KEY, "Invalid API key")
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password")
    return user


async def _run(handler: Handler, call: Call) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(call)
    return await anyio.to_thread.run_sync(handler, call)


@router.api_route("/rest/{method}", methods=["GET", "POST"])
async def rest(method: str, request: Request, s: ServicesDep) -> Response:
    fmt = request.query_params.get("f", "xml")
    try:
        pairs = await _pairs(request)
        # The format first, so that even a refusal of the parameters comes in it.
        fmt = next((v for k, v in pairs if k == "f"), "xml")
        params = Params(pairs)
        name = method_name(method)
        handler = METHODS.get(name or "")
        if name in PUBLIC and handler is not None:
            result = await _run(handler, Call(s, "", params, request))
        else:
            user = await _authenticate(params, s, request)
            if handler is None:
                raise SubsonicError(GENERIC, f"Method not implemented: {str(name or method)[:64]}")
            result = await _run(handler, Call(s, user, params, request))
        if isinstance(result, Response):
            return result
        response = ok(result)
    except SubsonicError as exc:
        response = failed(exc.code, exc.message)
    except ApiError as exc:
        response = failed(subsonic_code(exc), exc.message)
    except (DatabaseError, StoreError) as exc:
        log.error("subsonic %s: %s", method[:64], exc)
        response = failed(GENERIC, "The server cannot answer now; try again")
    body, content_type = render(response, fmt)
    return Response(body, media_type=content_type, headers={"Cache-Control": "private, no-store"})
