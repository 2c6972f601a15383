"""Social and listening endpoints.

=================================================  =====================================
``PUT|DELETE /v1/me/following?type=user&ids=``     follow / unfollow (<= 50 ids; 204)
``GET /v1/me/following?type=user&after=&limit=``   whom I follow (cursor: last id)
``GET /v1/me/following/contains?type=user&ids=``   [bool, ...]
``GET /v1/me/followers?after=&limit=``             who follows me
``GET /v1/users/{id}/followers`` / ``/following``  the same for anyone
``GET /v1/me/following/suggestions?limit=``        friends of friends by mutual count
``GET /v1/tracks/{id}/friends-listened``           people I follow who played it, newest first
``POST /v1/me/plays``                              record a play (idempotent on ``play_id``)
``GET /v1/me/player/recently-played``              my history (``before``/``after``: ms or cursor)
=================================================  =====================================
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from delivery.errors import BadRequest
from delivery.identity import Principal
from delivery.modules.bounds import EpochMs, Int32
from delivery.modules.container import base_url
from delivery.modules.ids import iso_ms, split_user_ids, track_id_from_uri
from delivery.modules.objects import track_object, user_object
from delivery.modules.paging import check_limit, cursor_page
from delivery.modules.plays import (
    PlayIn,
    encode_play_cursor,
    parse_play_cursor,
    parse_played_at,
)
from delivery.modules.social import MAX_IDS
from delivery.services import ServicesDep, current_user

router = APIRouter(tags=["social"])


def _check_type(type_: str | None) -> None:
    if type_ != "user":
        raise BadRequest(
            "type must be 'user' (artists are not followable here)", code="invalid_type"
        )


def _ids_from(ids: str | None, body: dict[str, Any] | None) -> list[str]:
    raw: Any = ids
    if raw is None and isinstance(body, dict):
        raw = body.get("ids")
    return split_user_ids(raw, maximum=MAX_IDS)


@router.put("/v1/me/following", status_code=204)
def follow_users(
    s: ServicesDep,
    type: str | None = None,  # noqa: A002
    ids: str | None = None,
    body: dict[str, Any] | None = Body(None),
    user: Principal = Depends(current_user),
) -> Response:
    _check_type(type)
    s.modules.social.follow(user.user_id, _ids_from(ids, body))
    return Response(status_code=204)


@router.delete("/v1/me/following", status_code=204)
def unfollow_users(
    s: ServicesDep,
    type: str | None = None,  # noqa: A002
    ids: str | None = None,
    body: dict[str, Any] | None = Body(None),
    user: Principal = Depends(current_user),
) -> Response:
    _check_type(type)
    s.modules.social.unfollow(user.user_id, _ids_from(ids, body))
    return Response(status_code=204)


@router.get("/v1/me/following/contains")
def following_contains(
    s: ServicesDep,
    type: str | None = None,  # noqa: A002
    ids: str | None = None,
    user: Principal = Depends(current_user),
) -> list[bool]:
    _check_type(type)
    return s.modules.social.contains(user.user_id, _ids_from(ids, None))


def _people(request: Request, listing, user_id: str, after: str | None, limit: int):
    """One cursor page of a follow list (``social.following`` or ``social.followers``)."""
    check_limit(limit, 50)
    rows, cursor, total = listing(user_id, after=after, limit=limit)
    base = base_url(request)
    items = [
        {**user_object(base, r["user_id"]), "followed_at": iso_ms(r["followed_at"])} for r in rows
    ]
    return {"users": cursor_page(request, items, limit=limit, after=cursor, total=total)}


@router.get("/v1/me/following")
def my_following(
    s: ServicesDep,
    request: Request,
    type: str | None = None,  # noqa: A002
    after: str | None = None,
    limit: int = Query(20, ge=1, le=50),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    _check_type(type)
    return _people(request, s.modules.social.following, user.user_id, after, limit)


@router.get("/v1/me/followers")
def my_followers(
    s: ServicesDep,
    request: Request,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=50),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    return _people(request, s.modules.social.followers, user.user_id, after, limit)


@router.get("/v1/users/{user_id}/following")
def user_following(
    s: ServicesDep,
    user_id: str,
    request: Request,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=50),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    return _people(request, s.modules.social.following, user_id, after, limit)


@router.get("/v1/users/{user_id}/followers")
def user_followers(
    s: ServicesDep,
    user_id: str,
    request: Request,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=50),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    return _people(request, s.modules.social.followers, user_id, after, limit)


@router.get("/v1/me/following/suggestions")
def follow_suggestions(
    s: ServicesDep,
    request: Request,
    limit: int = Query(20, ge=1, le=50),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, 50)
    base = base_url(request)
    rows = s.modules.social.suggestions(user.user_id, limit=limit)
    return {
        "items": [
            {"user": user_object(base, r["user_id"]), "mutual_count": r["mutual_count"]}
            for r in rows
        ]
    }


@router.get("/v1/tracks/{track_id}/friends-listened")
def friends_listened(
    s: ServicesDep,
    track_id: str,
    request: Request,
    limit: int = Query(20, ge=1, le=50),
    before: str | None = None,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, 50)
    rows, cursor, total = s.modules.social.friends_listened(
        user.user_id, track_id, limit=limit, before=before
    )
    base = base_url(request)
    items = [
        {
            "user": user_object(base, r["user_id"]),
            "last_played_at": iso_ms(r["last_played_at"]),
            "play_count": r["play_count"],
        }
        for r in rows
    ]
    return cursor_page(
        request, items, limit=limit, after=cursor, total=total, cursor_param="before"
    )


class Context(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str | None = None
    uri: str | None = None


class PlayBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    play_id: str
    track_id: str | None = None
    uri: str | None = None
    version: str | None = None
    bitrate_kbps: Int32 | None = None
    ms_played: Int32
    context: Context | None = None
    played_at: str | EpochMs | None = None


def _play_object(base: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "play_id": row["play_id"],
        "track": track_object(base, row["track_id"], row.get("_track")),
        "version": row["version"],
        "bitrate_kbps": row["bitrate_kbps"],
        "ms_played": row["ms_played"],
        "played_at": iso_ms(row["played_at"]),
        "context": (
            {"type": row["context_type"], "uri": row["context_uri"]}
            if row["context_type"] or row["context_uri"]
            else None
        ),
    }


@router.post("/v1/me/plays", status_code=201)
def record_play(
    s: ServicesDep,
    body: PlayBody,
    request: Request,
    response: Response,
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    if (body.track_id is None) == (body.uri is None):
        raise BadRequest("give track_id or uri", code="invalid_play")
    track_id = track_id_from_uri(body.uri if body.uri is not None else body.track_id)
    play = PlayIn(
        play_id=body.play_id,
        track_id=track_id,
        ms_played=body.ms_played,
        version=body.version,
        bitrate_kbps=body.bitrate_kbps,
        context_type=body.context.type if body.context else None,
        context_uri=body.context.uri if body.context else None,
        played_at=parse_played_at(body.played_at),
    )
    row, created = s.modules.plays.record(user.user_id, play)
    if not created:
        response.status_code = 200  # the same play again: already recorded
    return {**_play_object(base_url(request), row), "created": created}


@router.get("/v1/me/player/recently-played")
def recently_played(
    s: ServicesDep,
    request: Request,
    limit: int = Query(20, ge=1, le=50),
    before: str | None = Query(
        None, description="Unix time in ms, or `cursors.before` of a page: older plays"
    ),
    after: str | None = Query(
        None, description="Unix time in ms, or `cursors.after` of a page: newer plays"
    ),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, 50)
    rows = s.modules.plays.recently_played(
        user.user_id,
        limit=limit,
        before=parse_play_cursor(before, "before"),
        after=parse_play_cursor(after, "after"),
    )
    base = base_url(request)
    items = []
    for r in rows:
        track = None
        if r["title"] is not None:
            track = {**r, "version": r["track_version"]}
        items.append(_play_object(base, {**r, "_track": track}))
    # Cursors carry (played_at, play_id): plays sharing a millisecond are not skipped.
    oldest = encode_play_cursor(rows[-1]) if rows else None
    newest = encode_play_cursor(rows[0]) if rows else None
    page = cursor_page(
        request, items, limit=limit, after=newest, before=oldest, cursor_param="before"
    )
    # Spotify: "next" walks back in time with the oldest item's time as ``before``.
    page["next"] = (
        str(request.url.remove_query_params("after").include_query_params(before=oldest))
        if len(rows) == limit
        else None
    )
    return page
