"""Recommendation endpoints (lists built offline by ``delivery recommend build``).

===========================================  ================================================
``GET /v1/me/recommendations?limit=&offset=``  "for you": offset paging of track objects,
                                               plus ``source``: ``personal`` (this user's
                                               list) or ``popular`` (no list yet: the most
                                               played tracks the user does not play often)
``GET /v1/tracks/{id}/radio?limit=``           the seed track, then its most similar tracks
                                               (``source``: ``similar``, or ``none`` before a
                                               build knows the seed); 404 for an unknown seed
===========================================  ================================================
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from delivery.identity import Principal
from delivery.modules.bounds import INT32_MAX
from delivery.modules.container import base_url
from delivery.modules.objects import track_object
from delivery.modules.paging import check_limit, check_offset, offset_page
from delivery.services import ServicesDep, current_user

router = APIRouter(tags=["recommendations"])

MAX_LIMIT = 50
MAX_RADIO = 100


@router.get("/v1/me/recommendations")
def my_recommendations(
    s: ServicesDep,
    request: Request,
    limit: int = Query(20, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0, le=INT32_MAX),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, MAX_LIMIT)
    check_offset(offset, 1000)  # lists hold at most DELIVERY_RECOMMEND_SIZE (<= 1000) tracks
    rows, total, source = s.modules.recommend.for_you(user.user_id, limit=limit, offset=offset)
    base = base_url(request)
    items = [track_object(base, r["track_id"], r) for r in rows]
    page = offset_page(request, items, limit=limit, offset=offset, total=total)
    page["source"] = source
    return page


@router.get("/v1/tracks/{track_id}/radio")
def track_radio(
    s: ServicesDep,
    track_id: str,
    request: Request,
    limit: int = Query(25, ge=1, le=MAX_RADIO),
    user: Principal = Depends(current_user),
) -> dict[str, Any]:
    check_limit(limit, MAX_RADIO)
    rows, source = s.modules.recommend.radio(track_id, limit=limit)
    base = base_url(request)
    tracks = [track_object(base, r["track_id"], r) for r in rows]
    return {
        "seeds": [{"id": track_id, "type": "track", "href": tracks[0]["href"]}],
        "tracks": tracks,
        "source": source,
    }
