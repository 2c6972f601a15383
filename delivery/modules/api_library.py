"""Library endpoints: browse the catalogue by track, album, artist, genre, recently added.

Every list is a Spotify-shaped offset page ``{href, items, limit, offset, total, next,
previous}``: ``limit`` 1-50 (default 20), ``offset`` 0-:data:`MAX_OFFSET`; an unknown
``sort`` is a 400 ``invalid_sort``. Authenticated like every ``/v1`` route (a user
token). Objects are :mod:`.library`'s; ``art`` is null or signed edge URLs of the cover
and its thumbnail (:mod:`.art_urls`: any listener, no entitlement).

==================================================  ======================================
``GET /v1/library/tracks?sort=added|title|artist|plays``  tracks (``added``: newest first)
``GET /v1/library/recent``                            recently added tracks, newest first
``GET /v1/library/artists?sort=name|plays``           artists
``GET /v1/library/artists/{artist_id}``               artist + ``albums`` + ``top_tracks``
``GET /v1/library/albums?sort=added|title|artist|year|plays&genre=``  albums
``GET /v1/library/albums/{album_id}``                 album + ``tracks`` in disc/track order
``GET /v1/library/genres``                            genres by name
``GET /v1/library/genres/{name}/tracks``              a genre's tracks, by artist and album
==================================================  ======================================

An artist or album id of the wrong shape names nothing: 404, like an unknown one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from delivery.edge_routing import client_region
from delivery.errors import BadRequest, NotFound
from delivery.identity import Principal
from delivery.modules.art_urls import ArtSigner
from delivery.modules.bounds import INT32_MAX
from delivery.modules.library import (
    ALBUM_SORTS,
    ARTIST_SORTS,
    TRACK_SORTS,
    ArtUrls,
    Page,
    album_item,
    artist_item,
    genre_item,
    track_item,
)
from delivery.modules.library_tags import genre_key
from delivery.modules.paging import check_limit, check_offset, offset_page
from delivery.services import Services, ServicesDep, current_user

router = APIRouter(tags=["library"])

MAX_LIMIT = 50
MAX_OFFSET = 100_000
MAX_NAME = 200
TOP_TRACKS = 10
_ID_RE = re.compile(r"[0-9A-Za-z]{22}")  # delivery.modules.ids.stable_id

Limit = Query(20, ge=1, le=MAX_LIMIT)
Offset = Query(0, ge=0, le=INT32_MAX)  # MAX_OFFSET: checked, with its own code


def _art(s: Services, request: Request, user: Principal) -> ArtUrls:
    signer = ArtSigner(s.signer, ttl_s=s.settings.url_ttl_s, bind_ip=s.settings.bind_client_ip)
    client = request.client
    region = client_region(request.headers, s.settings.region_header)
    return signer.for_listener(user.user_id, client.host if client else None, region)


def _sort(sort: str, sorts: dict[str, str]) -> str:
    if sort not in sorts:
        raise BadRequest(f"unknown sort {sort[:20]!r}: use {'|'.join(sorts)}", code="invalid_sort")
    return sort


@dataclass(frozen=True, slots=True)
class Paging:
    """A list request's ``limit`` and ``offset``, bounded (the one check every list uses)."""

    limit: int
    offset: int

    def respond(self, request: Request, page: Page, items: list[Any]) -> dict:
        return offset_page(request, items, limit=self.limit, offset=self.offset, total=page.total)


def paging(limit: int = Limit, offset: int = Offset) -> Paging:
    check_limit(limit, MAX_LIMIT)
    check_offset(offset, MAX_OFFSET)
    return Paging(limit, offset)


PagingDep = Annotated[Paging, Depends(paging)]


def _known_id(value: str, what: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise NotFound(f"{what} {value[:40]!r} not found", code=f"{what}_not_found")
    return value


@router.get("/v1/library/tracks")
def library_tracks(
    s: ServicesDep,
    request: Request,
    pg: PagingDep,
    sort: str = Query("added", max_length=20),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    _sort(sort, TRACK_SORTS)
    page = s.modules.library.tracks(sort, limit=pg.limit, offset=pg.offset)
    art = _art(s, request, user)
    return pg.respond(request, page, [track_item(r, art) for r in page.items])


@router.get("/v1/library/recent")
def library_recent(
    s: ServicesDep,
    request: Request,
    pg: PagingDep,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    page = s.modules.library.recent(limit=pg.limit, offset=pg.offset)
    art = _art(s, request, user)
    return pg.respond(request, page, [track_item(r, art) for r in page.items])


@router.get("/v1/library/artists")
def library_artists(
    s: ServicesDep,
    request: Request,
    pg: PagingDep,
    sort: str = Query("name", max_length=20),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    _sort(sort, ARTIST_SORTS)
    page = s.modules.library.artists(sort, limit=pg.limit, offset=pg.offset)
    art = _art(s, request, user)
    return pg.respond(request, page, [artist_item(r, art) for r in page.items])


@router.get("/v1/library/artists/{artist_id}")
def library_artist(
    s: ServicesDep,
    request: Request,
    artist_id: str = Path(max_length=MAX_NAME),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    library = s.modules.library
    row = library.artist(_known_id(artist_id, "artist"))
    if row is None:
        raise NotFound(f"artist {artist_id!r} not found", code="artist_not_found")
    art = _art(s, request, user)
    return {
        **artist_item(row, art),
        "albums": [album_item(r, art) for r in library.artist_albums(artist_id)],
        "top_tracks": [
            track_item(r, art) for r in library.artist_top_tracks(artist_id, limit=TOP_TRACKS)
        ],
    }


@router.get("/v1/library/albums")
def library_albums(
    s: ServicesDep,
    request: Request,
    pg: PagingDep,
    sort: str = Query("added", max_length=20),
    genre: str | None = Query(None, max_length=MAX_NAME),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    _sort(sort, ALBUM_SORTS)
    page = s.modules.library.albums(sort, limit=pg.limit, offset=pg.offset, genre=genre)
    art = _art(s, request, user)
    return pg.respond(request, page, [album_item(r, art) for r in page.items])


@router.get("/v1/library/albums/{album_id}")
def library_album(
    s: ServicesDep,
    request: Request,
    album_id: str = Path(max_length=MAX_NAME),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    library = s.modules.library
    row = library.album(_known_id(album_id, "album"))
    if row is None:
        raise NotFound(f"album {album_id!r} not found", code="album_not_found")
    art = _art(s, request, user)
    return {
        **album_item(row, art),
        "tracks": [track_item(r, art) for r in library.album_tracks(album_id)],
    }


@router.get("/v1/library/genres")
def library_genres(
    s: ServicesDep,
    request: Request,
    pg: PagingDep,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    page = s.modules.library.genres(limit=pg.limit, offset=pg.offset)
    return pg.respond(request, page, [genre_item(r) for r in page.items])


@router.get("/v1/library/genres/{name:path}/tracks")
def library_genre_tracks(
    s: ServicesDep,
    request: Request,
    pg: PagingDep,
    name: str = Path(max_length=MAX_NAME),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    if not genre_key(name):
        raise NotFound("genre not found", code="genre_not_found")
    page = s.modules.library.genre_tracks(name, limit=pg.limit, offset=pg.offset)
    if page.total == 0:
        raise NotFound(f"genre {name[:40]!r} not found", code="genre_not_found")
    art = _art(s, request, user)
    return pg.respond(request, page, [track_item(r, art) for r in page.items])
