"""HTTP routes of the delivery service (v1).

=======================================  ==============================================
``GET /v1/tracks/{id}/stream``           signed URLs at the caller's bitrate (docs/architecture.md)
``GET /v1/tracks/{id}``                  metadata, loudness, durations, renditions
``GET /v1/me``                           who the token says you are, and your tier
``GET|PUT /v1/admin/users/{id}[/tier]``  subscription tiers, behind the admin token
``GET /healthz`` / ``GET /readyz``       liveness / readiness (database + store)
``GET /metrics``                         Prometheus
=======================================  ==============================================

Every error is the JSON body of :mod:`delivery.errors`. The stream route is
``async`` and does no blocking work on a warm cache (see :mod:`delivery.streams`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from delivery.edge_routing import client_region
from delivery.errors import ApiError, BadRequest
from delivery.identity import Principal
from delivery.ratelimit import refuse_if_limited
from delivery.schemas import ErrorBody, Health, Me, StreamAnswer, TierChange, TrackInfo, UserTier
from delivery.services import Services, ServicesDep, require_admin
from delivery.tiers import InvalidUserId, UnknownTier
from origin.keys import latest_key

router = APIRouter()

_ERRORS = {
    400: {"model": ErrorBody, "description": "Bad input"},
    401: {"model": ErrorBody, "description": "Missing, invalid or expired token"},
    404: {"model": ErrorBody, "description": "Unknown track (`track_not_found`) or version"},
}
_BEARER = {"security": [{"bearer": []}]}
_ADMIN = {"security": [{"admin": []}]}
_ADMIN_ERRORS = {
    **_ERRORS,
    401: {"model": ErrorBody, "description": "Missing or wrong admin token"},
    503: {"model": ErrorBody, "description": "No admin token configured (`admin_disabled`)"},
}


async def _principal(request: Request, s: Services) -> Principal:
    principal = await s.authenticator.authenticate_async(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


class _JsonAnswer(Response):
    """A JSON body that must not be cached, with its headers built in one step.

    The headers Starlette's ``Response`` would make for the same arguments, in the same
    order, without its per-response header scan (a few microseconds of the stream route).
    """

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"cache-control", b"private, no-store"),
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
        ]


def _json(body: bytes, status: int = 200) -> Response:
    return _JsonAnswer(body, status)


_QUALITIES = ("low", "normal", "high", "auto")
# The stream route parses its two query parameters itself: FastAPI's per-parameter
# validation is a measurable share of this hot path. They are documented here instead.
_STREAM_PARAMETERS = [
    {
        "name": "quality",
        "in": "query",
        "required": False,
        "description": "low | normal | high | auto (default: the best your tier allows)",
        "schema": {"type": "string", "enum": list(_QUALITIES), "default": "auto"},
    },
    {
        "name": "version",
        "in": "query",
        "required": False,
        "description": "Pin a version (16 lowercase hex characters)",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
    },
]


def _stream_query(request: Request) -> tuple[str, str | None]:
    # What Starlette's QueryParams does (the last of repeated names wins), without building
    # a multi-dict for two names.
    query = request.scope["query_string"].decode("latin-1")
    params = dict(parse_qsl(query, keep_blank_values=True))
    quality = params.get("quality", "auto")
    if quality not in _QUALITIES:
        raise BadRequest(
            f"quality: use one of {', '.join(_QUALITIES)}, not {quality[:20]!r}",
            code="invalid_request",
        )
    return quality, params.get("version")


class DirectRoute(APIRoute):
    """A route whose endpoint is called with the request and the path parameters alone.

    FastAPI's per-request work around an endpoint (dependency solving, parameter
    validation, telemetry, response-model handling) costs about as much as the whole
    stream answer, whose endpoint checks its few inputs itself. ``get_route_handler``
    is FastAPI's extension point for this; everything else (matching, the error
    handlers, the OpenAPI document built from the signature and the decorator) is
    unchanged.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        return handle


async def stream(request: Request, track_id: str) -> Response:
    # The one route that reads the container itself rather than through ServicesDep:
    # a DirectRoute runs no dependencies (delivery.services documents the container).
    ctx: Services = request.app.state.services
    principal = await ctx.authenticator.authenticate_async(request.headers.get("authorization"))
    quality, version = _stream_query(request)
    if ctx.limiter.gcra.enabled:
        try:
            # A round trip to the database or Redis: off the event loop.
            await anyio.to_thread.run_sync(
                refuse_if_limited, ctx.limiter, principal.user_id, ctx.metrics.rate_limit_errors.inc
            )
        except ApiError:
            ctx.metrics.rate_limited.inc()
            raise
    client = request.client
    region = client_region(request.headers, ctx.settings.region_header)
    answer = await ctx.issuer.answer(
        principal, track_id, quality, version, client.host if client else None, region
    )
    return _json(ctx.issuer.encode(answer))


router.add_api_route(
    "/v1/tracks/{track_id}/stream",
    stream,
    methods=["GET"],
    route_class_override=DirectRoute,
    response_model=StreamAnswer,
    responses={**_ERRORS, 429: {"model": ErrorBody, "description": "Rate limited"}},
    openapi_extra={**_BEARER, "parameters": _STREAM_PARAMETERS},
    tags=["tracks"],
    summary="Signed stream URLs at the bitrate your subscription allows",
)


@router.get(
    "/v1/tracks/{track_id}",
    response_model=TrackInfo,
    responses=_ERRORS,
    openapi_extra=_BEARER,
    tags=["tracks"],
    summary="Track metadata: tags, loudness, durations and renditions",
)
async def track_info(
    request: Request,
    ctx: ServicesDep,
    track_id: str = Path(max_length=200),
    version: str | None = Query(None, max_length=64),
) -> Response:
    principal = await _principal(request, ctx)
    track = await ctx.resolver.track(track_id, version)
    allowed = set(ctx.issuer.allowed(principal.tier))
    m = track.manifest
    body = {
        "track_id": m.track_id,
        "version": m.version,
        "created_at": m.created_at,
        "published_at": track.published_at,
        "duration_s": track.duration_s,
        "tags": dict(m.tags),
        "loudness": track.loudness,
        "source": {
            "codec": m.source.codec,
            "container": m.source.container,
            "sample_rate": m.source.sample_rate,
            "channels": m.source.channels,
            "duration_s": m.source.duration_s,
            "lossless": m.source.lossless,
        },
        "renditions": [
            {
                "bitrate_kbps": r.bitrate_kbps,
                "bytes": r.bytes,
                "duration_s": r.duration_s,
                "avg_bitrate_kbps": r.avg_bitrate_kbps,
                "sample_rate": r.sample_rate,
                "channels": r.channels,
                "content_type": r.content_type,
                "entitled": r.bitrate_kbps in allowed,
            }
            for r in sorted(m.renditions, key=lambda r: r.bitrate_kbps)
        ],
        "entitled_bitrates": [b for b in track.bitrates if b in allowed],
    }
    return _json(ctx.issuer.encode(body))


@router.get("/v1/me", response_model=Me, responses=_ERRORS, openapi_extra=_BEARER, tags=["users"])
async def me(request: Request, ctx: ServicesDep) -> Me:
    principal = await _principal(request, ctx)
    return Me(
        user_id=principal.user_id,
        tier=principal.tier,
        entitled_bitrates=list(ctx.issuer.allowed(principal.tier)),
    )


# -- admin (every route behind delivery.services.require_admin) -------------------


def _user_tier(record) -> UserTier:
    return UserTier(user_id=record.user_id, tier=record.tier, updated_at=record.updated_at)


@router.put(
    "/v1/admin/users/{user_id}/tier",
    response_model=UserTier,
    responses=_ADMIN_ERRORS,
    openapi_extra=_ADMIN,
    tags=["admin"],
    summary="Set a user's subscription tier",
    dependencies=[Depends(require_admin)],
)
def set_tier(ctx: ServicesDep, change: TierChange, user_id: str = Path(max_length=200)) -> UserTier:
    try:
        record = ctx.tiers.set(user_id, change.tier)
    except InvalidUserId as exc:
        raise BadRequest(str(exc), code="invalid_user_id") from None
    except UnknownTier as exc:
        raise BadRequest(str(exc), code="unknown_tier") from None
    return _user_tier(record)


@router.get(
    "/v1/admin/users/{user_id}",
    response_model=UserTier,
    responses=_ADMIN_ERRORS,
    openapi_extra=_ADMIN,
    tags=["admin"],
    summary="A user's subscription tier",
    dependencies=[Depends(require_admin)],
)
def get_user(ctx: ServicesDep, user_id: str = Path(max_length=200)) -> UserTier:
    try:
        return _user_tier(ctx.tiers.get(user_id))
    except InvalidUserId as exc:
        raise BadRequest(str(exc), code="invalid_user_id") from None


# -- operations -------------------------------------------------------------------


@router.get("/healthz", response_model=Health, tags=["operations"], summary="Liveness")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health}},
    tags=["operations"],
    summary="Readiness: the database and the object store answer",
)
async def readyz(ctx: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}

    def probe_db() -> None:
        ctx.db.ping()

    def probe_store() -> None:
        ctx.store.exists(latest_key("readiness-probe"))

    for name, probe in (("database", probe_db), ("store", probe_store)):
        try:
            await anyio.to_thread.run_sync(probe)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready", with the reason shown
            checks[name] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics")
async def metrics(ctx: ServicesDep) -> Response:
    m = ctx.metrics
    return Response(m.render(), media_type=m.content_type)
