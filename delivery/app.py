"""The delivery app factory: settings in, a ready ASGI app out (or a loud start-up error).

:func:`create_app` builds every collaborator once, in this one place: the database
(migrated), the object store, the track resolver (the ``latest.json`` cache), the
user authenticator, the URL signer, the rate limiter, the metrics, the event bus
(:mod:`delivery.outbox`) and the modules' services. They form ONE typed container,
:class:`delivery.services.Services`, attached as ``app.state.services`` and read by
every route through the :data:`delivery.services.ServicesDep` dependency; the
per-worker caches and the modules subscribe to the event bus here.

``delivery serve`` passes the settings it loaded; a worker process of ``delivery
serve --workers N`` builds its app with :func:`create_worker_app`, which reads them
from the environment it inherited.
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
from delivery import api, credentials, player
from delivery.auth import JwksError, JwksKeySet, JwtAuthenticator
from delivery.db import Database, DatabaseError, open_database
from delivery.edge_health import EdgeHealth
from delivery.errors import error_response, install_error_handlers
from delivery.events import TIER_CHANGED, TRACK_PUBLISHED, TRACK_REMOVED
from delivery.keys import jwks_router
from delivery.metrics import DeliveryMetrics, MetricsMiddleware
from delivery.modules import (
    api_admin,
    api_library,
    api_playlists,
    api_recommend,
    api_search,
    api_social,
)
from delivery.modules.container import build_modules
from delivery.outbox import OutboxEventBus
from delivery.ratelimit import open_rate_limiter
from delivery.requestguard import RequestGuard
from delivery.resolver import TrackResolver
from delivery.services import Services
from delivery.settings import (
    DeliverySettings,
    SettingsError,
    load_settings,
    require_user_token_keys,
)
from delivery.signing import build_signer
from delivery.streams import StreamIssuer
from delivery.subsonic import routes as subsonic_routes
from delivery.subsonic.container import build_subsonic
from delivery.tiers import TierResolver, TierStore
from origin.errors import StoreError
from origin.store import ObjectStore, open_store

log = logging.getLogger("delivery")
DOCS_STATIC_URL = "/docs/static"


def build_authenticator(
    settings: DeliverySettings, tiers: TierStore, *, jwks_client: httpx.Client | None = None
) -> JwtAuthenticator:
    """The user-token verifier; the JWKS (if any) is fetched now, so a bad one fails start-up."""
    require_user_token_keys(settings)
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


def build_services(
    settings: DeliverySettings,
    *,
    store: ObjectStore | None = None,
    db: Database | None = None,
    jwks_client: httpx.Client | None = None,
) -> Services:
    """Every collaborator of one app, each built once (a bad setting raises here)."""
    store = store or _open_store(settings)
    db = db or open_migrated_database(settings)
    metrics = DeliveryMetrics()
    tiers = TierStore(
        db, settings.entitlements, settings.default_tier, cache_ttl_s=settings.tier_cache_ttl_s
    )
    authenticator = build_authenticator(settings, tiers, jwks_client=jwks_client)
    resolver = TrackResolver(
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
    signer = build_signer(settings, store, edge_health.is_up)
    issuer = StreamIssuer(
        resolver=resolver,
        signer=signer,
        entitlements=settings.entitlements,
        quality_bitrates=settings.quality_bitrates,
        default_tier=settings.default_tier,
        ttl_s=settings.url_ttl_s,
        ttl_factor=settings.url_ttl_duration_factor,
        ttl_max_s=settings.url_ttl_max_s,
        bind_client_ip=settings.bind_client_ip,
        metrics=metrics,
        reuse_s=settings.effective_url_reuse_s,
    )
    events = OutboxEventBus(
        db,
        max_attempts=settings.events_max_attempts,
        poll_s=settings.events_poll_s,
        lease_s=settings.events_lease_s,
        retention_s=settings.events_retention_s,
        redis_url=settings.redis_url,
        registry=metrics.registry,
    )
    tiers.events = events  # tier changes are written with their event
    return Services(
        settings=settings,
        db=db,
        store=store,
        resolver=resolver,
        tiers=tiers,
        authenticator=authenticator,
        signer=signer,
        issuer=issuer,
        limiter=open_rate_limiter(settings, db),
        metrics=metrics,
        events=events,
        edge_health=edge_health,
        modules=build_modules(settings, db, store, events, metrics.registry),
        admin_tokens=tuple(credentials.admin_tokens(settings, create=settings.dev_mode)),
        subsonic=build_subsonic(settings, db),
    )


def _subscribe(services: Services) -> None:
    """Every event handler of the app, on its one bus.

    The per-worker caches hear every change in EVERY worker process: a publication
    (``encoder ingest --notify``, the admin endpoint, ``delivery catalog sync``) drops
    the track's cached latest.json and any cached "no such track", and so does a removal
    (``delivery catalog sync --prune``); a tier change drops
    the user's cached tier. The modules' come first (search indexing, popularity, ...).
    """
    events, resolver, tiers = services.events, services.resolver, services.tiers
    services.modules.subscribe_handlers(events)
    for topic, name in (
        (TRACK_PUBLISHED, "delivery.catalog.forget"),
        (TRACK_REMOVED, "delivery.catalog.forget_removed"),
    ):
        events.subscribe(
            topic,
            lambda event: resolver.forget(str(event.payload.get("track_id", ""))),
            name=name,
            every_worker=True,
        )
    events.subscribe(
        TIER_CHANGED,
        lambda event: tiers.forget(str(event.payload.get("user_id", ""))),
        name="delivery.tiers.forget",
        every_worker=True,
    )


def create_app(
    settings: DeliverySettings,
    *,
    store: ObjectStore | None = None,
    db: Database | None = None,
    jwks_client: httpx.Client | None = None,
) -> FastAPI:
    """Build the delivery service. ``store``/``db`` override the settings (tests, embedding)."""
    if settings.dev_mode:
        log.warning(
            "DELIVERY_DEV_MODE is on: missing secrets are generated under %s "
            "(set DELIVERY_DEV_MODE=false in production)",
            settings.data_dir,
        )
    services = build_services(settings, store=store, db=db, jwks_client=jwks_client)
    _subscribe(services)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything built so far lives as long as the worker: move it out of the
        # collector's generations so full collections stay short (p99 latency).
        gc.collect()
        gc.freeze()
        # The dispatcher: other workers' and hosts' events (LISTEN/NOTIFY, Redis, polling).
        # Without a lifespan (in-process test clients) a worker still handles its own
        # events right after each commit.
        services.events.start()
        services.edge_health.start()
        yield
        services.edge_health.stop()
        services.events.stop()
        services.authenticator.close()
        services.db.close()

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
        # FastAPI's own OpenTelemetry asks on every request whether a provider is set up
        # (a few environment lookups: ~3 % of a stream answer). This service reports
        # through Prometheus (/metrics) and sets up none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services  # the one thing on app.state (delivery.services)
    install_error_handlers(app)

    @app.exception_handler(DatabaseError)
    async def _database_down(request: Request, exc: DatabaseError) -> JSONResponse:
        log.error("database error on %s: %s", request.url.path, exc)
        return error_response(503, "database_unavailable", "the database is unavailable")

    app.include_router(api.router)
    app.include_router(jwks_router(settings))  # /.well-known/jwks.json: keys for edges
    app.include_router(player.router)  # the web player at /player (delivery.player)
    app.include_router(subsonic_routes.router)  # /rest/: Subsonic apps (delivery.subsonic)
    modules = (api_playlists, api_search, api_social, api_recommend, api_library, api_admin)
    for module in modules:
        app.include_router(module.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "PUT", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # `/v1/me%0A` is not `/v1/me`; no NUL, lone surrogate or 1 MB-deep JSON (delivery.requestguard)
    app.add_middleware(RequestGuard)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics, access_log=settings.access_log)
    _document_security(app)
    # Added last, so outermost: an oversized body is refused (413) before any parsing or
    # authentication sees it, on every route (DELIVERY_MAX_BODY_BYTES).
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, part="delivery")
    return app


def create_worker_app() -> FastAPI:
    """The app of one worker process of ``delivery serve --workers N`` (uvicorn's factory).

    uvicorn starts each worker by importing this: the worker reads the settings from the
    environment it inherited from ``delivery serve``, which has already loaded and checked
    the same variables (so this cannot fail where the parent did not).
    """
    settings = load_settings()
    if not logging.getLogger().handlers:
        # uvicorn spawns the worker with log_config=None: the same JSON lines as the parent.
        configure_logging("delivery", settings.log_level)
    return create_app(settings)
