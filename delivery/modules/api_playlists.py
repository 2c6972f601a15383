"""Playlist endpoints, after the Spotify Web API's.

===========================================  ==========================================
``POST /v1/me/playlists``                    create (also ``POST /v1/users/{me}/playlists``)
``GET  /v1/me/playlists``                    my library: owned, followed, collaborating
``GET  /v1/users/{user_id}/playlists``       someone's public library
``GET  /v1/playlists/{id}``                  details + the first items (paging object)
``PUT  /v1/playlists/{id}``                  change name/description/public/collaborative
``GET  /v1/playlists/{id}/items``            items page (``/tracks`` is an alias)
``POST /v1/playlists/{id}/items``            add <= 100 (``uris``, optional ``position``)
``PUT  /v1/playlists/{id}/items``            reorder (``range_start``, ``insert_before``,
                                             ``range_length``) or replace (``uris``)
``DELETE /v1/playlists/{id}/items``          remove by track (``tracks: [{uri}]``) or by
                                             position (``positions`` / ``tracks[].positions``)
``PUT|DELETE /v1/playlists/{id}/followers``  follow / unfollow
``GET  /v1/playlists/{id}/followers/contains?ids=``
``GET|PUT|DELETE /v1/playlists/{id}/collaborators[?ids=]``  (owner manages)
===========================================  ==========================================

Every write answers ``{"snapshot_id": ...}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from delivery.errors import BadRequest, Forbidden
from delivery.identity import Principal
from delivery.modules.bounds import INT32_MAX, INT32_MIN, Int32
from delivery.modules.container import base_url
from delivery.modules.ids import iso_ms, split_user_ids, track_id_from_uri
from delivery.modules.objects import playlist_item_object, playlist_object, user_object
from delivery.modules.paging import check_limit, check_offset, offset_page
from delivery.modules.playlists import MAX_ITEMS_PER_REQUEST, RemoveSpec
from delivery.services import ServicesDep, current_user

router = APIRouter(tags=["playlists"])

MAX_LIBRARY_OFFSET = 100_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreatePlaylist(_Body):
    name: str
    description: str = ""
    public: bool = True
    collaborative: bool = False


class ChangeDetails(_Body):
    name: str | None = None
    description: str | None = None
    public: bool | None = None
    collaborative: bool | None = None


class AddItems(_Body):
    uris: list[str] | None = None
    position: Int32 | None = None


class ReorderOrReplace(_Body):
    uris: list[str] | None = None
    range_start: Int32 | None = None
    insert_before: Int32 | None = None
    range_length: Int32 = 1
    snapshot_id: str | None = None


class RemoveTrack(_Body):
    uri: str
    positions: list[Int32] | None = None


class RemoveItems(_Body):
    tracks: list[RemoveTrack] | None = None
    items: list[RemoveTrack] | None = None  # the newer Spotify name
    positions: list[Int32] | None = None
    snapshot_id: str | None = None


def _uris(values: list[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip(" ")]
    if len(values) > MAX_ITEMS_PER_REQUEST:
        raise BadRequest(
            f"at most {MAX_ITEMS_PER_REQUEST} items per request ({len(values)} given)",
            code="too_many_items",
        )
    return [track_id_from_uri(v.strip(" ")) for v in values]


def _snapshot(snapshot_id: str) -> dict[str, str]:
    return {"snapshot_id": snapshot_id}


def _library_page(request: Request, rows, total: int, limit: int, offset: int) -> dict[str, Any]:
    base = base_url(request)
    return offset_page(
        request, [playlist_object(base, r) for r in rows], limit=limit, offset=offset, total=total
    )


@router.post("/v1/me/playlists", status_code=201)
def create_playlist(
    s: ServicesDep, body: CreatePlaylist, request: Request, user: Principal = Depends(current_user)
) -> dict[str, Any]:
    h = s.modules.playlists.create(
        user.user_id,
        name=body.name,
        description=body.description,
        public=body.public,
        collaborative=body.collaborative,
    )
    return playlist_object(base_url(request), h)


@router.post("/v1/users/{user_id}/playlists", status_code=201)
def create_playlist_for_user(
    s: ServicesDep,
    user_id: str,
    body: CreatePlaylist,
    request: Request,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    if user_id != user.user_id:
        raise Forbidden("you can only create playlists for yourself", code="not_yourself")
    return create_playlist(s, body, request, user)


@router.get("/v1/me/playlists")
def my_playlists(
    s: ServicesDep,
    request: Request,
    limit: int = Query(20, ge=1, le=50),
    offset: int = Query(0, ge=0, le=MAX_LIBRARY_OFFSET),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, 50)
    check_offset(offset, MAX_LIBRARY_OFFSET)
    rows, total = s.modules.sharing.library(user.user_id, offset=offset, limit=limit)
    return _library_page(request, rows, total, limit, offset)


@router.get("/v1/users/{user_id}/playlists")
def user_playlists(
    s: ServicesDep,
    user_id: str,
    request: Request,
    limit: int = Query(20, ge=1, le=50),
    offset: int = Query(0, ge=0, le=MAX_LIBRARY_OFFSET),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, 50)
    check_offset(offset, MAX_LIBRARY_OFFSET)
    rows, total = s.modules.sharing.user_playlists(
        user_id, user.user_id, offset=offset, limit=limit
    )
    return _library_page(request, rows, total, limit, offset)


def _items_page(request: Request, page, *, href: str, next_limit: int) -> dict[str, Any]:
    base = base_url(request)
    total = page.header["item_count"]
    items = [playlist_item_object(base, item) for item in page.items]
    out = offset_page(None, items, limit=page.limit, offset=page.offset, total=total, href=href)
    if page.offset + page.limit < total:
        out["next"] = f"{href}?offset={page.offset + page.limit}&limit={next_limit}"
    if page.offset > 0:
        out["previous"] = f"{href}?offset={max(0, page.offset - next_limit)}&limit={next_limit}"
    return out


@router.get("/v1/playlists/{playlist_id}")
def get_playlist(
    s: ServicesDep, playlist_id: str, request: Request, user: Principal = Depends(current_user)
) -> dict[str, Any]:
    page = s.modules.playlists.page(
        playlist_id, user.user_id, offset=0, limit=s.settings.playlist_embed_items
    )
    href = f"{base_url(request)}/v1/playlists/{playlist_id}/items"
    tracks = _items_page(request, page, href=href, next_limit=s.settings.playlist_page_max)
    return playlist_object(base_url(request), page.header, tracks)


@router.put("/v1/playlists/{playlist_id}")
def change_playlist_details(
    s: ServicesDep,
    playlist_id: str,
    body: ChangeDetails,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    snapshot = s.modules.playlists.change_details(
        playlist_id,
        user.user_id,
        name=body.name,
        description=body.description,
        public=body.public,
        collaborative=body.collaborative,
    )
    return _snapshot(snapshot)


@router.get("/v1/playlists/{playlist_id}/items")
@router.get("/v1/playlists/{playlist_id}/tracks", include_in_schema=False)
def get_playlist_items(
    s: ServicesDep,
    playlist_id: str,
    request: Request,
    # The ceilings of DELIVERY_PLAYLIST_PAGE_MAX and of any playlist's length;
    # the configured page maximum is checked below.
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=INT32_MAX),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, s.settings.playlist_page_max)
    check_offset(offset)
    page = s.modules.playlists.page(playlist_id, user.user_id, offset=offset, limit=limit)
    out = _items_page(
        request,
        page,
        href=f"{base_url(request)}/v1/playlists/{playlist_id}/items",
        next_limit=limit,
    )
    out["href"] = str(request.url)
    return out


@router.post("/v1/playlists/{playlist_id}/items", status_code=201)
@router.post("/v1/playlists/{playlist_id}/tracks", status_code=201, include_in_schema=False)
def add_playlist_items(
    s: ServicesDep,
    playlist_id: str,
    body: AddItems | None = None,
    uris: str | None = Query(None, description="comma-separated track URIs"),
    position: int | None = Query(None, ge=INT32_MIN, le=INT32_MAX),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    if body is not None and body.uris is not None:
        track_ids = _uris(body.uris)
        position = body.position if body.position is not None else position
    else:
        track_ids = _uris(uris)
    snapshot = s.modules.playlists.add(playlist_id, user.user_id, track_ids, position=position)
    return _snapshot(snapshot)


@router.put("/v1/playlists/{playlist_id}/items")
@router.put("/v1/playlists/{playlist_id}/tracks", include_in_schema=False)
def reorder_or_replace_items(
    s: ServicesDep,
    playlist_id: str,
    body: ReorderOrReplace | None = None,
    uris: str | None = Query(None, description="comma-separated track URIs (replace)"),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    service = s.modules.playlists
    body = body or ReorderOrReplace()
    replace_with = body.uris if body.uris is not None else uris
    reorder = body.range_start is not None or body.insert_before is not None
    if replace_with is not None and reorder:
        raise BadRequest("give uris (replace) or range_start/insert_before (reorder), not both")
    if replace_with is not None:
        snapshot = service.replace(playlist_id, user.user_id, _uris(replace_with))
    elif body.range_start is not None and body.insert_before is not None:
        snapshot = service.reorder(
            playlist_id,
            user.user_id,
            range_start=body.range_start,
            insert_before=body.insert_before,
            range_length=body.range_length,
            snapshot_id=body.snapshot_id,
        )
    else:
        raise BadRequest(
            "reorder needs range_start and insert_before; replace needs uris",
            code="invalid_request",
        )
    return _snapshot(snapshot)


@router.delete("/v1/playlists/{playlist_id}/items")
@router.delete("/v1/playlists/{playlist_id}/tracks", include_in_schema=False)
def remove_playlist_items(
    s: ServicesDep,
    playlist_id: str,
    body: RemoveItems,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    entries = (body.tracks or []) + (body.items or [])
    specs = [
        RemoveSpec(
            track_id_from_uri(e.uri), tuple(e.positions) if e.positions is not None else None
        )
        for e in entries
    ]
    snapshot = s.modules.playlists.remove(
        playlist_id,
        user.user_id,
        tracks=specs,
        positions=body.positions or (),
        snapshot_id=body.snapshot_id,
    )
    return _snapshot(snapshot)


@router.put("/v1/playlists/{playlist_id}/followers")
def follow_playlist(
    s: ServicesDep, playlist_id: str, user: Principal = Depends(current_user)
) -> dict[str, Any]:
    s.modules.sharing.follow(playlist_id, user.user_id)
    return {}


@router.delete("/v1/playlists/{playlist_id}/followers")
def unfollow_playlist(
    s: ServicesDep, playlist_id: str, user: Principal = Depends(current_user)
) -> dict[str, Any]:
    s.modules.sharing.unfollow(playlist_id, user.user_id)
    return {}


@router.get("/v1/playlists/{playlist_id}/followers/contains")
def playlist_followers_contain(
    s: ServicesDep,
    playlist_id: str,
    ids: str | None = None,
    user: Principal = Depends(current_user),
) -> list[bool]:
    user_ids = split_user_ids(ids, maximum=5)
    return s.modules.sharing.followers_contain(playlist_id, user.user_id, user_ids)


@router.get("/v1/playlists/{playlist_id}/collaborators")
def list_collaborators(
    s: ServicesDep, playlist_id: str, request: Request, user: Principal = Depends(current_user)
) -> dict[str, Any]:
    base = base_url(request)
    rows = s.modules.sharing.collaborators(playlist_id, user.user_id)
    return {
        "items": [
            {**user_object(base, r["user_id"]), "added_at": iso_ms(r["added_at"])} for r in rows
        ]
    }


@router.put("/v1/playlists/{playlist_id}/collaborators")
def add_collaborators(
    s: ServicesDep,
    playlist_id: str,
    ids: str | None = None,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    user_ids = split_user_ids(ids, maximum=50)
    s.modules.sharing.add_collaborators(playlist_id, user.user_id, user_ids)
    return {}


@router.delete("/v1/playlists/{playlist_id}/collaborators")
def remove_collaborators(
    s: ServicesDep,
    playlist_id: str,
    ids: str | None = None,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    user_ids = split_user_ids(ids, maximum=50)
    s.modules.sharing.remove_collaborators(playlist_id, user.user_id, user_ids)
    return {}
