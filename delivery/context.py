"""Everything a request handler needs, built once by :func:`delivery.app.create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from delivery.auth import JwtAuthenticator
from delivery.db import Database
from delivery.metrics import DeliveryMetrics
from delivery.ratelimit import RateLimiter
from delivery.resolver import TrackResolver
from delivery.settings import DeliverySettings
from delivery.streams import StreamIssuer
from delivery.tiers import TierStore
from origin.store import ObjectStore


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    settings: DeliverySettings
    db: Database
    store: ObjectStore
    catalog: TrackResolver
    tiers: TierStore
    authenticator: JwtAuthenticator
    issuer: StreamIssuer
    limiter: RateLimiter
    metrics: DeliveryMetrics
    admin_tokens: tuple[str, ...]
