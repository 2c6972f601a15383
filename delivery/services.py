"""What every route of the delivery service works with: one typed container, one dependency.

:func:`delivery.app.create_app` builds one :class:`Services` from the settings and
attaches it as ``app.state.services``; nothing else is kept on ``app.state``. Routes
never reach for it themselves, they take the typed dependency::

    @router.get("/v1/things")
    def things(s: ServicesDep, user: Principal = Depends(current_user)): ...

and the two guards that read it:

* :func:`current_user`: the caller's :class:`~delivery.identity.Principal`, from the
  user token (401 with ``WWW-Authenticate: Bearer realm="delivery"`` otherwise);
* :func:`require_admin`: the admin routes' check (docs/architecture.md, "Admin"). The
  accepted tokens are ``Services.admin_tokens``, resolved once at start-up from
  ``DELIVERY_ADMIN_TOKENS`` and ``DELIVERY_ADMIN_TOKEN_FILE``
  (:func:`delivery.credentials.admin_tokens`). None configured: 503 ``admin_disabled``.
  A missing, malformed or wrong token: 401 ``unauthorized`` with
  ``WWW-Authenticate: Bearer realm="delivery-admin"``. The presented token is compared
  with every accepted one in constant time (:mod:`common.bearer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from common.bearer import bearer_token, matches_any
from delivery.auth import JwtAuthenticator
from delivery.db import Database
from delivery.edge_health import EdgeHealth
from delivery.errors import ServiceUnavailable, Unauthorized
from delivery.identity import Principal
from delivery.metrics import DeliveryMetrics
from delivery.modules.container import Modules
from delivery.outbox import OutboxEventBus
from delivery.ratelimit import RateLimiter
from delivery.resolver import TrackResolver
from delivery.settings import DeliverySettings
from delivery.signing.port import UrlSigner
from delivery.streams import StreamIssuer
from delivery.subsonic.container import Subsonic
from delivery.tiers import TierStore
from origin.store import ObjectStore

ADMIN_REALM = "delivery-admin"


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the delivery app holds, built once per app by ``create_app``."""

    settings: DeliverySettings
    db: Database
    store: ObjectStore
    resolver: TrackResolver  # track id -> its current (or pinned) version, cached
    tiers: TierStore
    authenticator: JwtAuthenticator
    signer: UrlSigner
    issuer: StreamIssuer
    limiter: RateLimiter
    metrics: DeliveryMetrics
    events: OutboxEventBus
    edge_health: EdgeHealth
    modules: Modules  # playlists, search, social, plays and their cache and track index
    admin_tokens: tuple[str, ...]
    subsonic: Subsonic  # the Subsonic API's app passwords, catalogue reads and stars


async def services(request: Request) -> Services:
    """The app's :class:`Services` (``async``: FastAPI calls it inline, no thread hop)."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]


def current_user(request: Request, s: ServicesDep) -> Principal:
    """The authenticated caller (the same principal for every dependency of one request)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = s.authenticator.authenticate(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


async def require_admin(request: Request, s: ServicesDep) -> None:
    """The one admin check of every ``/v1/admin/...`` route (see the module docstring)."""
    if not s.admin_tokens:
        raise ServiceUnavailable(
            "the admin API is disabled: configure DELIVERY_ADMIN_TOKENS "
            "(or DELIVERY_ADMIN_TOKEN_FILE)",
            code="admin_disabled",
        )
    if not matches_any(bearer_token(request.headers.get("authorization")), s.admin_tokens):
        raise Unauthorized(
            "admin bearer token required",
            headers={"WWW-Authenticate": f'Bearer realm="{ADMIN_REALM}"'},
        )
