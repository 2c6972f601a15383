"""Routes of the web player.

==============================  ====================================================
``GET /``                       a redirect to ``/player``
``GET /player``                 the page (``static/index.html``)
``GET /player/assets/{name}``   the page's ES modules, ``player.css``, ``icon.svg`` (a fixed table)
``GET /player/config.json``     what the page needs to start: dev mode, the demo users,
                                whether this service has the library API
``POST /v1/dev/token``          dev mode only: a one-hour user JWT for a demo user
==============================  ====================================================

Everything else the page does goes through the public v1 API with the user's
bearer token, exactly as any other client would (search, stream URLs,
playlists, plays, friends-listened).

``POST /v1/dev/token`` mints with the same code as ``delivery token``
(:func:`delivery.auth.mint_user_token` and the dev secret). It answers 404 — as
if the route did not exist — unless ``DELIVERY_DEV_MODE`` is on, and it only
mints for the fixed demo users, never for an arbitrary id: dev mode is opt-in
(``make run`` turns it on; ``delivery serve`` refuses it on a non-loopback
address), and a forgotten setting must not hand out tokens for real accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from delivery import credentials
from delivery.auth import mint_user_token
from delivery.errors import BadRequest, NotFound, ServiceUnavailable
from delivery.services import Services, ServicesDep

router = APIRouter(tags=["player"])

STATIC_DIR = Path(__file__).with_name("static")
# name -> content type. Only these files are served: a request names a key of this
# table, never a path, so there is nothing to traverse.
_JS = "text/javascript; charset=utf-8"
ASSETS = {
    "player.js": _JS,  # the entry module; it imports the others below
    "lib.js": _JS,
    "queue.js": _JS,
    "playback.js": _JS,
    "abr.js": _JS,
    "keys.js": _JS,
    "views.js": _JS,
    "playlists.js": _JS,
    "player.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# The demo accounts `make run` creates, with the tier each one demonstrates.
DEMO_USERS = {"free-user": "free", "premium-user": "premium"}
DEV_TOKEN_TTL_S = 3600
# The page loads nothing but its own files; media, cover art, the error probe of a failed
# stream and the bitrate probe go to the signer's host (our edge, nginx, a CDN or a
# bucket), hence http(s).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; "
    "connect-src 'self' http: https:; media-src http: https:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class _Static:
    body: bytes
    etag: str


@cache
def _static(name: str) -> _Static:
    body = (STATIC_DIR / name).read_bytes()
    return _Static(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def _static_response(request: Request, name: str, media_type: str, **headers: str) -> Response:
    item = _static(name)
    common = {"ETag": item.etag, "Cache-Control": "no-cache", **headers}
    if request.headers.get("if-none-match") == item.etag:
        return Response(status_code=304, headers=common)
    return Response(item.body, media_type=media_type, headers=common)


@router.get("/player", include_in_schema=False)
def player_page(request: Request) -> Response:
    return _static_response(
        request,
        "index.html",
        "text/html; charset=utf-8",
        **{
            "Content-Security-Policy": PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/", include_in_schema=False)
def root() -> Response:
    return RedirectResponse("/player", status_code=307)


@router.get("/player/", include_in_schema=False)
def player_slash() -> Response:
    return RedirectResponse("/player", status_code=308)


@router.get("/player/assets/{name}", include_in_schema=False)
def player_asset(name: str, request: Request) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no player asset {name[:40]!r}", code="not_found")
    return _static_response(request, name, media_type, **{"X-Content-Type-Options": "nosniff"})


def _demo_tier(ctx: Services, user_id: str) -> tuple[str, bool]:
    """(the tier the user will have, whether the database says so)."""
    record = ctx.tiers.get(user_id)
    if record.updated_at is not None:
        return record.tier, True
    wanted = DEMO_USERS[user_id]
    if wanted in ctx.settings.entitlements and ctx.settings.tier_claim:
        return wanted, False
    return record.tier, True


def _has_library(request: Request) -> bool:
    # The OpenAPI document lists every route (FastAPI builds it once and keeps it).
    return any(path.startswith("/v1/library/") for path in request.app.openapi()["paths"])


@router.get("/player/config.json", tags=["player"], summary="Start-up data of the web player")
def player_config(ctx: ServicesDep, request: Request) -> dict:
    settings = ctx.settings
    users = []
    if settings.dev_mode:
        for user_id in DEMO_USERS:
            tier, _ = _demo_tier(ctx, user_id)
            users.append(
                {
                    "user_id": user_id,
                    "tier": tier,
                    "entitled_bitrates": list(ctx.issuer.allowed(tier)),
                }
            )
    return {
        "dev_mode": settings.dev_mode,
        "demo_users": users,
        "qualities": ["auto", *settings.quality_bitrates],
        "quality_bitrates": dict(settings.quality_bitrates),
        "signer": settings.signer,
        "library": _has_library(request),
    }


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(max_length=64, examples=["free-user"])


@router.post(
    "/v1/dev/token",
    tags=["player"],
    summary="Development only: a one-hour user token for a demo user",
    description="404 unless DELIVERY_DEV_MODE is on. Only the demo users "
    f"({', '.join(DEMO_USERS)}) can be chosen.",
)
def dev_token(body: DevTokenRequest, response: Response, ctx: ServicesDep) -> dict:
    settings = ctx.settings
    if not settings.dev_mode:
        # The same answer as any unknown route: production does not even show it exists.
        raise NotFound("Not Found", code="not_found")
    if body.user_id not in DEMO_USERS:
        raise BadRequest(
            f"user_id must be one of the demo users: {', '.join(DEMO_USERS)}",
            code="unknown_demo_user",
        )
    secrets = credentials.user_jwt_secrets(settings, create=True)
    if not secrets or "HS256" not in settings.jwt_algorithms:
        raise ServiceUnavailable(
            "no local HS256 user-token secret (DELIVERY_JWT_ALGORITHMS excludes HS256)",
            code="dev_token_unavailable",
        )
    tier, in_database = _demo_tier(ctx, body.user_id)
    # The database decides the tier when it knows the user (`delivery users set-tier`),
    # so changing it there takes effect; otherwise the token carries the demo tier.
    extra = {} if in_database else {settings.tier_claim: tier}
    token = mint_user_token(
        secrets[0],
        body.user_id,
        ttl_s=DEV_TOKEN_TTL_S,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        extra=extra,
    )
    response.headers["Cache-Control"] = "no-store"
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": DEV_TOKEN_TTL_S,
        "user_id": body.user_id,
        "tier": tier,
    }
