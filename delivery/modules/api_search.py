"""``GET /v1/search?q=&type=track,artist,album,playlist&limit=&offset=`` (Spotify's shape).

The answer has one paging object per requested type, under its plural
(``tracks``, ``artists``, ``albums``, ``playlists``). ``limit`` is 1-50 (default
20) and ``offset`` 0-``DELIVERY_SEARCH_MAX_OFFSET`` (default 1000), per type.
The query syntax, normalisation, typo tolerance and ranking: ``docs/search.md``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from delivery.errors import BadRequest
from delivery.identity import Principal
from delivery.modules.bounds import INT32_MAX
from delivery.modules.container import base_url
from delivery.modules.objects import (
    album_object,
    artist_object,
    playlist_object,
    track_object,
)
from delivery.modules.paging import check_limit, check_offset, offset_page
from delivery.modules.search import TYPES, with_id_match
from delivery.modules.search_query import parse_query
from delivery.services import ServicesDep, current_user

router = APIRouter(tags=["search"])


def _types(raw: str | None) -> list[str]:
    if not raw or not raw.strip():
        raise BadRequest(f"type is required: one or more of {','.join(TYPES)}", code="invalid_type")
    out = []
    for part in raw.split(","):
        part = part.strip()
        if part not in TYPES:
            raise BadRequest(
                f"unknown type {part[:20]!r}: use {','.join(TYPES)}", code="invalid_type"
            )
        if part not in out:
            out.append(part)
    return out


def _item(base: str, kind: str, row: dict[str, Any]) -> dict[str, Any]:
    if kind == "track":
        return track_object(base, row["track_id"], row)
    if kind == "artist":
        return artist_object(base, row["artist_id"], row["name"], row)
    if kind == "album":
        return album_object(base, row, full=True)
    return playlist_object(base, row)


@router.get("/v1/search")
def search(
    s: ServicesDep,
    request: Request,
    q: str | None = None,
    type: str | None = None,  # noqa: A002 - Spotify's parameter name
    limit: int = Query(20, ge=1, le=50),
    offset: int = Query(0, ge=0, le=INT32_MAX),  # DELIVERY_SEARCH_MAX_OFFSET: checked below
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    query = parse_query(q or "")
    kinds = _types(type)
    check_limit(limit, 50)
    check_offset(offset, s.settings.search_max_offset)
    base = base_url(request)
    out: dict[str, Any] = {}
    query = s.modules.search.expand(query)  # typo corrections: once for every type
    for kind in kinds:
        rows, total = s.modules.search.search(
            query, kind, limit=limit, offset=offset, expanded=True
        )
        if kind == "track" and offset == 0:
            rows, total = with_id_match(rows, total, s.modules.search.track_by_id(q or ""), limit)
        page = offset_page(
            request,
            [_item(base, kind, r) for r in rows],
            limit=limit,
            offset=offset,
            total=total,
        )
        if offset + limit > s.settings.search_max_offset:
            page["next"] = None  # the next page would be past the deepest offset we serve
        out[f"{kind}s"] = page
    return out
