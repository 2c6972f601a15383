"""The delivery app factory: settings in, a ready ASGI app out (or a loud start-up error).

:func:`create_app` builds every collaborator once and wires them in this one
place: the database (migrated), the object store, the catalog cache, the user
authenticator, the URL signer, the rate limiter and the metrics. It sets the
``app.state`` attributes the modules rely on (``db``, ``store``, ``settings``,
``authenticator``) and then calls :func:`delivery.modules.install_modules`,
which adds ``app.state.events`` (the event bus, :mod:`delivery.outbox`) and the
modules' routes; the per-worker caches subscribe to it here.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from common.logs import configure_logging
from common.serving import BodyLimit
from delivery import api, credentials, modules, player
from delivery.auth import JwksError, JwksKeySet, JwtAuthenticator
from delivery.context import DeliveryContext
from delivery.db import Database, DatabaseError, open_database
from delivery.edge_health import EdgeHealth
from delivery.errors import error_response, install_error_handlers
from delivery.events import TIER_CHANGED, TRACK_PUBLISHED
from delivery.keys import jwks_router
from delivery.metrics import DeliveryMetrics, MetricsMiddleware
from delivery.ratelimit import open_rate_limiter
from delivery.requestguard import RequestGuard
from delivery.resolver import TrackResolver
from delivery.settings import DeliverySettings, SettingsError, load_settings
from delivery.signing import build_signer
from delivery.streams import StreamIssuer
from delivery.tiers import TierResolver, TierStore
from origin.errors import StoreError
from origin.store import ObjectStore, open_store

log = logging.getLogger("delivery")
DOCS_STATIC_URL = "/docs/static"


def build_authenticator(
    settings: DeliverySettings, tiers: TierStore, *, jwks_client: httpx.Client | None = None
) -> JwtAuthenticator:
    """The user-token verifier; the JWKS (if any) is fetched now, so a bad one fails start-up."""
    secrets = credentials.user_jwt_secrets(settings, create=settings.dev_mode)
    jwks = None
    if settings.jwks:
        jwks = JwksKeySet(
            settings.jwks,
            [a for a in settings.jwt_algorithms if a != "HS256"],
            cache_ttl_s=settings.jwks_cache_ttl_s,
            min_refresh_interval_s=settings.jwks_min_refresh_interval_s,
            timeout_s=settings.jwks_timeout_s,
            client=jwks_client,
        )
        try:
            jwks.load()
        except JwksError as exc:
            raise SettingsError(f"DELIVERY_JWKS: {exc}") from None
    if not secrets and jwks is None:
        raise SettingsError(
            "no user-token keys: set DELIVERY_JWT_HS256_SECRETS / _SECRET_FILE or DELIVERY_JWKS"
        )
    if jwks is not None and not (settings.jwt_issuer and settings.jwt_audience):
        log.warning(
            "DELIVERY_JWKS without issuer and audience checks accepts any token the IdP signs"
        )
    return JwtAuthenticator(
        tiers=TierResolver(tiers, settings.tier_claim),
        algorithms=settings.jwt_algorithms,
        hs256_secrets=secrets,
        jwks=jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_s=settings.jwt_leeway_s,
        cache_size=settings.jwt_cache_size,
        cache_ttl_s=settings.jwt_cache_ttl_s,
    )


def open_migrated_database(settings: DeliverySettings) -> Database:
    try:
        db = open_database(settings.database_url)
        db.migrate()
    except (DatabaseError, ValueError) as exc:
        raise SettingsError(f"DELIVERY_DATABASE_URL: {exc}") from None
    return db


def _open_store(settings: DeliverySettings) -> ObjectStore:
    try:
        return open_store(settings.store)
    except (StoreError, ValueError) as exc:
        raise SettingsError(f"DELIVERY_STORE: {exc}") from None


def _document_security(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "admin": {"type": "http", "scheme": "bearer", "description": "admin token"},
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: DeliverySettings | None = None,
    *,
    store: ObjectStore | None = None,
    db: Database | None = None,
    jwks_client: httpx.Client | None = None,
) -> FastAPI:
    """Build the delivery service. ``store``/``db`` override the settings (tests, embedding)."""
    settings = settings or load_settings()
    if not logging.getLogger().handlers:
        # A worker process of `delivery serve --workers N` starts with no logging set up
        # (uvicorn spawns it with log_config=None): the same JSON lines as the parent.
        configure_logging("delivery", settings.log_level)
    if settings.dev_mode:
        log.warning(
            "DELIVERY_DEV_MODE is on: missing secrets are generated under %s "
            "(set DELIVERY_DEV_MODE=false in production)",
            settings.data_dir,
        )
    store = store or _open_store(settings)
    db = db or open_migrated_database(settings)
    metrics = DeliveryMetrics()
    tiers = TierStore(
        db, settings.entitlements, settings.default_tier, cache_ttl_s=settings.tier_cache_ttl_s
    )
    authenticator = build_authenticator(settings, tiers, jwks_client=jwks_client)
    catalog = TrackResolver(
        store,
        ttl_s=settings.catalog_ttl_s,
        negative_ttl_s=settings.catalog_negative_ttl_s,
        maxsize=settings.catalog_cache_size,
        on_store_read=metrics.catalog_reads.inc,
    )
    # Several edges: which are up, probed once per interval for the whole deployment.
    edge_health = EdgeHealth(
        db,
        settings.edges,
        path=settings.edge_health_path,
        interval_s=settings.edge_health_interval_s,
        registry=metrics.registry,
    )
    issuer = StreamIssuer(
        catalog=catalog,
        signer=build_signer(settings, store, edge_health.is_up),
        entitlements=settings.entitlements,
        quality_bitrates=settings.quality_bitrates,
        default_tier=settings.default_tier,
        ttl_s=settings.url_ttl_s,
        ttl_factor=settings.url_ttl_duration_factor,
        ttl_max_s=settings.url_ttl_max_s,
        bind_client_ip=settings.bind_client_ip,
        metrics=metrics,
    )
    context = DeliveryContext(
        settings=settings,
        db=db,
        store=store,
        catalog=catalog,
        tiers=tiers,
        authenticator=authenticator,
        issuer=issuer,
        limiter=open_rate_limiter(settings, db),
        metrics=metrics,
        admin_tokens=tuple(credentials.admin_tokens(settings, create=settings.dev_mode)),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything built so far lives as long as the worker: move it out of the
        # collector's generations so full collections stay short (p99 latency).
        gc.collect()
        gc.freeze()
        # The dispatcher: other workers' and hosts' events (LISTEN/NOTIFY, Redis, polling).
        # Without a lifespan (in-process test clients) a worker still handles its own
        # events right after each commit.
        app.state.events.start()
        edge_health.start()
        yield
        edge_health.stop()
        app.state.events.stop()
        authenticator.close()
        db.close()

    # /docs (Swagger UI) loads its script and styles from this service (the fastapi-offline
    # package ships them), never from a public CDN. ReDoc is off: its bundle fetches a logo
    # from the vendor's CDN at run time.
    app = FastAPIOffline(
        static_url=DOCS_STATIC_URL,
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
        title="audiocdn delivery",
        version="1",
        description="Authenticates listeners, picks the bitrate their subscription allows "
        "and answers with short-lived signed URLs.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.exception_handler(DatabaseError)
    async def _database_down(request: Request, exc: DatabaseError) -> JSONResponse:
        log.error("database error on %s: %s", request.url.path, exc)
        return error_response(503, "database_unavailable", "the database is unavailable")

    app.state.settings = settings
    app.state.db = db
    app.state.store = store
    app.state.authenticator = authenticator
    app.state.metrics = metrics
    app.state.delivery = context
    app.include_router(api.router)
    app.include_router(jwks_router(settings))  # /.well-known/jwks.json: keys for edges
    app.include_router(player.router)  # the web player at /player (delivery.player)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "PUT", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # `/v1/me%0A` is not `/v1/me`; no NUL, lone surrogate or 1 MB-deep JSON (delivery.requestguard)
    app.add_middleware(RequestGuard)
    app.add_middleware(MetricsMiddleware, metrics=metrics, access_log=settings.access_log)
    _document_security(app)
    modules.install_modules(app)
    # The per-worker caches hear every change through the one event bus (delivery.outbox),
    # in EVERY worker process: a publication (``encoder ingest --notify``, the admin
    # endpoint, ``delivery catalog sync``) drops the track's cached latest.json and any
    # cached "no such track"; a tier change drops the user's cached tier.
    events = app.state.events
    events.subscribe(
        TRACK_PUBLISHED,
        lambda event: catalog.forget(str(event.payload.get("track_id", ""))),
        name="delivery.catalog.forget",
        every_worker=True,
    )
    events.subscribe(
        TIER_CHANGED,
        lambda event: tiers.forget(str(event.payload.get("user_id", ""))),
        name="delivery.tiers.forget",
        every_worker=True,
    )
    tiers.events = events  # tier changes are written with their event
    # Added last, so outermost: an oversized body is refused (413) before any parsing or
    # authentication sees it, on every route (DELIVERY_MAX_BODY_BYTES).
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, part="delivery")
    return app
