"""Typed settings of the delivery service: environment variables with the ``DELIVERY_`` prefix.

Read once at start-up (:func:`load_settings`) and validated loudly: a setting
that cannot work stops the process with a message naming the variable, never
a failure at the first request.

Every setting, its default and what it is for:

Service
    ``DELIVERY_DEV_MODE`` (``false``)       Opt-in (``make run`` turns it on): generate
                                            missing dev secrets/keys under
                                            ``DELIVERY_DATA_DIR`` at first run (mode 0600) and
                                            let anyone mint demo-user tokens at
                                            ``POST /v1/dev/token``. Off: every secret must be
                                            configured and nothing is generated.
    ``DELIVERY_DEV_MODE_ALLOW_REMOTE`` (``false``)  ``delivery serve`` refuses to listen on a
                                            non-loopback address in dev mode unless this is
                                            ``true``.
    ``DELIVERY_DATA_DIR`` (``./data``)      Where dev secrets (``secrets/``) and keys
                                            (``keys/``) are generated.
    ``DELIVERY_HOST`` / ``DELIVERY_PORT``   Listen address (``127.0.0.1:8000``).
    ``DELIVERY_WORKERS`` (``WEB_CONCURRENCY`` or ``1``)  worker processes of ``delivery serve``.
    ``DELIVERY_FORWARDED_ALLOW_IPS``        Proxies whose X-Forwarded-For is trusted for
                                            the client address (``127.0.0.1``).
    ``DELIVERY_STORE`` (``file://./data/origin``)  Object store holding the catalog.
    ``DELIVERY_DATABASE_URL`` (``sqlite:///./data/delivery.db``)  Users/tiers and modules.
    ``DELIVERY_CORS_ORIGINS`` (empty)       Comma-separated origins allowed by CORS.
    ``DELIVERY_LOG_LEVEL`` (``info``)       ``DELIVERY_ACCESS_LOG`` (``true``): uvicorn's
                                            per-request log line.
    ``DELIVERY_MAX_HEADER_BYTES`` (``16384``)  Largest request head (request line and headers);
                                            larger: 431 and the connection closed.
    ``DELIVERY_HEADER_TIMEOUT_S`` (``10``)  Time to receive a request's headers, from the
                                            connection's opening or a keep-alive request's
                                            first byte; then 408 and closed.
    ``DELIVERY_IDLE_TIMEOUT_S`` (``5``)     A connection idle this long (no byte since it
                                            opened, or between keep-alive requests) is closed.
    ``DELIVERY_BODY_TIMEOUT_S`` (``30``)    Longest pause in a request body still being sent;
                                            then 408 (or a plain close) and closed.
    ``DELIVERY_MAX_CONNECTIONS`` (``1024``) Open connections per worker; the next one gets
                                            503 and is closed (see :mod:`common.serving`).
    ``DELIVERY_MAX_BODY_BYTES`` (``1048576``)  Largest request body, checked before parsing
                                            and authentication (413 ``body_too_large``).

User authentication (JWT bearer tokens)
    ``DELIVERY_JWT_HS256_SECRETS``          Comma-separated HS256 secrets (>= 32 bytes each).
    ``DELIVERY_JWT_HS256_SECRET_FILE``      File holding one more secret; in dev mode it
                                            defaults to ``{data_dir}/secrets/user-jwt`` and
                                            is generated at first run.
    ``DELIVERY_JWKS``                       JWKS URL (http/https) or file path with RS256 /
                                            ES256 / EdDSA public keys.
    ``DELIVERY_JWT_ALGORITHMS`` (``HS256,RS256,ES256,EdDSA``)  The allow-list.
    ``DELIVERY_JWT_ISSUER`` (``audiocdn``)  Required ``iss``; empty disables the check.
    ``DELIVERY_JWT_AUDIENCE`` (``audiocdn-delivery``)  Required ``aud``; empty disables it.
    ``DELIVERY_JWT_LEEWAY_S`` (``30``)      Clock skew allowed on exp/nbf/iat.
    ``DELIVERY_JWT_CACHE_TTL_S`` (``60``)   How long a verified token's claims are reused.
    ``DELIVERY_JWKS_CACHE_TTL_S`` (``300``) JWKS refresh period.
    ``DELIVERY_JWKS_MIN_REFRESH_INTERVAL_S`` (``30``)  Rate limit on refreshes triggered by
                                            an unknown ``kid``.
    ``DELIVERY_JWKS_TIMEOUT_S`` (``5``)

Subscriptions and entitlements
    ``DELIVERY_TIER_CLAIM`` (``tier``)      Token claim trusted for the tier; empty = database only.
    ``DELIVERY_DEFAULT_TIER`` (``free``)    Tier of users the database does not know.
    ``DELIVERY_ENTITLEMENTS`` (``{"free":[96,160],"premium":[96,160,320]}``)  JSON.
    ``DELIVERY_QUALITY_BITRATES`` (``{"low":96,"normal":160,"high":320}``)  JSON;
                                            ``auto`` is always the tier's best.
    ``DELIVERY_TIER_CACHE_TTL_S`` (``10``)  How long a worker trusts a cached tier lookup
                                            (``tier.changed`` events forget it at once).
    ``DELIVERY_ADMIN_TOKENS``               Comma-separated admin bearer tokens.
    ``DELIVERY_ADMIN_TOKEN_FILE``           One more; dev default
                                            ``{data_dir}/secrets/delivery-admin-token``.

Catalog
    ``DELIVERY_CATALOG_TTL_S`` (``30``)     How long ``latest.json`` is cached (every worker
                                            forgets a track on its ``track.published``).
    ``DELIVERY_CATALOG_NEGATIVE_TTL_S`` (``5``)  How long "no such track" is cached.
    ``DELIVERY_CATALOG_CACHE_SIZE`` (``10000``)

Signed URLs
    ``DELIVERY_SIGNER`` (``edge``)          edge | nginx | cloudfront | cloudcdn | s3 | gcs.
    ``DELIVERY_EDGE_URL`` (``http://127.0.0.1:8080``)  Base URL for edge, nginx, cloudfront
                                            and cloudcdn URLs (s3/gcs use the store).
    ``DELIVERY_EDGE_URLS`` (empty)          Several edges instead: ``[region=]url,...``; each
                                            object goes to one of them by rendezvous hashing
                                            over the healthy edges of the client's region
                                            (:mod:`delivery.edge_routing`).
    ``DELIVERY_REGION_HEADER`` (empty)      Request header naming the client's region, set
                                            (and overwritten) by the load balancer.
    ``DELIVERY_EDGE_HEALTH_PATH`` (``/readyz``)  Probed on each edge; empty: no probing.
    ``DELIVERY_EDGE_HEALTH_INTERVAL_S`` (``2``)  Probe period, shared by all workers and hosts.
    ``DELIVERY_URL_TTL_S`` (``900``)        Base lifetime of a URL ...
    ``DELIVERY_URL_TTL_DURATION_FACTOR`` (``2.0``)  ... stretched to this many track durations
    ``DELIVERY_URL_TTL_MAX_S`` (``86400``)  ... and never beyond this (at most 24 h).
    ``DELIVERY_BIND_CLIENT_IP`` (``false``) Bind URLs to the caller's address.
    ``DELIVERY_RATE_LIMIT_PER_S`` (``5``)   URL issuances per user per second, shared by
                                            every worker and host; ``0`` disables the limit.
    ``DELIVERY_RATE_LIMIT_BURST`` (``30``)  Issuances a rested user may make at once.
    ``DELIVERY_REDIS_URL`` (unset)          ``redis://host:port/db``: the rate limits live
                                            in Redis instead of the database, and a written
                                            event wakes every worker through its pub/sub.
    ``DELIVERY_EVENTS_POLL_S`` (``0.25``)   Each worker reads the event outbox at least this
                                            often (SQLite's only cross-process signal).
    ``DELIVERY_EVENTS_LEASE_S`` (``5``)     A once-per-deployment consumer's lease: a dead
                                            worker's share is taken over within this.
    ``DELIVERY_EVENTS_RETENTION_S`` (``604800``)  Age after which handled events are deleted.
    ``DELIVERY_EVENTS_MAX_ATTEMPTS`` (``8``)  Deliveries before an event is dead-lettered.
                                            (These four are read with the modules' settings,
                                            :mod:`delivery.modules.settings`; the bus is
                                            :mod:`delivery.outbox`.)
    edge:       ``DELIVERY_SIGNING_KEY_FILE`` (``{data_dir}/keys/stream-signing.pem``, Ed25519,
                generated with its ``.pub.pem`` in dev mode), or ``DELIVERY_SIGNING_HS256_SECRET``
                instead; ``DELIVERY_SIGNING_KID`` overrides the derived key id.
                ``DELIVERY_SIGNING_EXTRA_PUBLIC_KEYS`` (empty): comma-separated Ed25519 public
                key PEM files published beside the signing key's public key in the stream JWKS
                (``GET /.well-known/jwks.json``, what edges with ``EDGE_TOKEN_JWKS_URL`` fetch):
                the rotation overlap. HS256 secrets are never published.
    nginx:      ``DELIVERY_NGINX_SECRET`` or ``DELIVERY_NGINX_SECRET_FILE``;
                ``DELIVERY_NGINX_EXPRESSION`` (``$secure_link_expires$uri $secret``) — the same
                expression as nginx's ``secure_link_md5`` with ``$secret`` for the secret.
    cloudfront: ``DELIVERY_CLOUDFRONT_KEY_PAIR_ID``, ``DELIVERY_CLOUDFRONT_PRIVATE_KEY_FILE``,
                ``DELIVERY_CLOUDFRONT_POLICY`` (``canned``; ``custom`` adds an IP range),
                ``DELIVERY_CLOUDFRONT_IP_PREFIX_V4`` (``32``) / ``_V6`` (``64``).
    cloudcdn:   ``DELIVERY_CLOUDCDN_KEY_NAME``, ``DELIVERY_CLOUDCDN_KEY`` or ``_KEY_FILE``
                (base64url, 16 bytes), ``DELIVERY_CLOUDCDN_MODE`` (``url`` | ``url_prefix``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from common.limits import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
)
from common.setting_values import CommaList, setting_error_lines, split_commas
from common.signing_keys import check_hs256_secrets
from common.workers import MAX_WORKERS, web_concurrency
from delivery.edge_routing import Edge, parse_edges
from origin.keys import BITRATES

SignerName = Literal["edge", "nginx", "cloudfront", "cloudcdn", "s3", "gcs"]

# Algorithms a user JWT may carry. "none" is not in the table, so it can never be configured.
SUPPORTED_JWT_ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")
MAX_URL_TTL_S = 24 * 3600
_TIER_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


class SettingsError(ValueError):
    """A setting that cannot work; the message names the environment variable."""


class DeliverySettings(BaseSettings):
    """All settings of the delivery service (see the module docstring for each one)."""

    model_config = SettingsConfigDict(
        env_prefix="DELIVERY_", extra="ignore", validate_default=True, frozen=True
    )

    dev_mode: bool = False
    dev_mode_allow_remote: bool = False
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(default_factory=web_concurrency, ge=1, le=MAX_WORKERS)
    forwarded_allow_ips: str = "127.0.0.1"
    store: str = "file://./data/origin"
    database_url: str = "sqlite:///./data/delivery.db"
    cors_origins: CommaList = []
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = True
    max_header_bytes: int = Field(DEFAULT_MAX_HEADER_BYTES, ge=1024, le=1 << 20)
    header_timeout_s: float = Field(DEFAULT_HEADER_TIMEOUT_S, gt=0, le=3600)
    idle_timeout_s: float = Field(DEFAULT_IDLE_TIMEOUT_S, gt=0, le=3600)
    body_timeout_s: float = Field(DEFAULT_BODY_TIMEOUT_S, gt=0, le=3600)
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=1, le=1_000_000)
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024, le=1 << 30)

    jwt_hs256_secrets: CommaList = []
    jwt_hs256_secret_file: Path | None = None
    jwks: str | None = None
    jwt_algorithms: CommaList = list(SUPPORTED_JWT_ALGORITHMS)
    jwt_issuer: str | None = "audiocdn"
    jwt_audience: str | None = "audiocdn-delivery"
    jwt_leeway_s: int = Field(30, ge=0, le=300)
    jwt_cache_size: int = Field(10000, ge=0)
    jwt_cache_ttl_s: float = Field(60.0, ge=0)
    jwks_cache_ttl_s: float = Field(300.0, gt=0)
    jwks_min_refresh_interval_s: float = Field(30.0, ge=0)
    jwks_timeout_s: float = Field(5.0, gt=0, le=60)

    tier_claim: str | None = "tier"
    default_tier: str = "free"
    entitlements: dict[str, list[int]] = {"free": [96, 160], "premium": [96, 160, 320]}
    quality_bitrates: dict[str, int] = {"low": 96, "normal": 160, "high": 320}
    tier_cache_ttl_s: float = Field(10.0, ge=0)
    admin_tokens: CommaList = []
    admin_token_file: Path | None = None

    catalog_ttl_s: float = Field(30.0, ge=0)
    catalog_negative_ttl_s: float = Field(5.0, ge=0)
    catalog_cache_size: int = Field(10000, ge=1)

    signer: SignerName = "edge"
    edge_url: str = "http://127.0.0.1:8080"
    edge_urls: str = ""
    region_header: str = ""
    edge_health_path: str = "/readyz"
    edge_health_interval_s: float = Field(2.0, gt=0, le=300)
    url_ttl_s: int = Field(900, ge=10, le=MAX_URL_TTL_S)
    url_ttl_duration_factor: float = Field(2.0, ge=0, le=100)
    url_ttl_max_s: int = Field(MAX_URL_TTL_S, ge=10, le=MAX_URL_TTL_S)
    bind_client_ip: bool = False
    rate_limit_per_s: float = Field(5.0, ge=0)
    rate_limit_burst: int = Field(30, ge=1)
    redis_url: str | None = None

    signing_key_file: Path | None = None
    signing_hs256_secret: SecretStr | None = None
    signing_kid: str | None = None
    signing_extra_public_keys: CommaList = []

    nginx_secret: SecretStr | None = None
    nginx_secret_file: Path | None = None
    nginx_expression: str = "$secure_link_expires$uri $secret"

    cloudfront_key_pair_id: str | None = None
    cloudfront_private_key_file: Path | None = None
    cloudfront_policy: Literal["canned", "custom"] = "canned"
    cloudfront_ip_prefix_v4: int = Field(32, ge=8, le=32)
    cloudfront_ip_prefix_v6: int = Field(64, ge=16, le=128)

    cloudcdn_key_name: str | None = None
    cloudcdn_key: SecretStr | None = None
    cloudcdn_key_file: Path | None = None
    cloudcdn_mode: Literal["url", "url_prefix"] = "url"

    # -- field checks -------------------------------------------------------------

    @field_validator("cors_origins", "jwt_hs256_secrets", "jwt_algorithms", "admin_tokens",
                     "signing_extra_public_keys", mode="before")  # fmt: skip
    @classmethod
    def _comma_separated(cls, v: object) -> object:
        return split_commas(v)

    @field_validator("jwt_issuer", "jwt_audience", "jwks", "tier_claim", "signing_kid",
                     "redis_url", mode="before")  # fmt: skip
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("jwt_algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one algorithm is required")
        for alg in v:
            if alg not in SUPPORTED_JWT_ALGORITHMS:
                raise ValueError(
                    f"algorithm {alg!r} is not supported; choose from "
                    f"{', '.join(SUPPORTED_JWT_ALGORITHMS)}"
                )
        return list(dict.fromkeys(v))

    @field_validator("jwt_hs256_secrets")
    @classmethod
    def _secret_length(cls, v: list[str]) -> list[str]:
        return check_hs256_secrets(v)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None:
            parts = urlsplit(v)
            if parts.scheme not in ("redis", "rediss") or not parts.hostname:
                raise ValueError(f"{v!r} is not a redis:// or rediss:// URL with a host")
        return v

    @field_validator("edge_url")
    @classmethod
    def _edge_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{v!r} is not an http(s) base URL")
        if parts.query or parts.fragment:
            raise ValueError("the edge base URL must not carry a query or fragment")
        return v.rstrip("/")

    @field_validator("edge_urls")
    @classmethod
    def _edge_urls(cls, v: str) -> str:
        parse_edges(v)  # raises ValueError naming the bad entry
        return v

    @field_validator("region_header")
    @classmethod
    def _region_header(cls, v: str) -> str:
        v = v.strip().lower()
        if v and not all(c.isascii() and (c.isalnum() or c == "-") for c in v):
            raise ValueError(f"{v!r} is not an HTTP header name")
        return v

    @field_validator("edge_health_path")
    @classmethod
    def _health_path(cls, v: str) -> str:
        v = v.strip()
        if v and (not v.startswith("/") or any(c in v for c in " ?#")):
            raise ValueError(f"{v!r} must be empty or a path starting with /")
        return v

    @property
    def edges(self) -> tuple[Edge, ...]:
        """The edges of signed URLs: ``DELIVERY_EDGE_URLS``, else ``DELIVERY_EDGE_URL``."""
        return parse_edges(self.edge_urls) or (Edge(self.edge_url),)

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = urlsplit(v).scheme
        if scheme in ("http", "https"):
            return v
        path = Path(v.removeprefix("file://"))
        if not path.is_file():
            raise ValueError(f"JWKS file {str(path)!r} does not exist")
        return str(path)

    @field_validator("entitlements")
    @classmethod
    def _entitlements(cls, v: dict[str, list[int]]) -> dict[str, list[int]]:
        if not v:
            raise ValueError("at least one tier is required")
        out = {}
        for tier, bitrates in v.items():
            if not tier or len(tier) > 32 or not set(tier) <= _TIER_NAME_CHARS:
                raise ValueError(f"tier name {tier!r}: use 1-32 characters a-z 0-9 _ -")
            if not bitrates:
                raise ValueError(f"tier {tier!r} has no bitrates")
            for b in bitrates:
                if b not in BITRATES:
                    raise ValueError(f"tier {tier!r}: bitrate {b} is not one of {BITRATES}")
            out[tier] = sorted(set(bitrates))
        return out

    @field_validator("quality_bitrates")
    @classmethod
    def _qualities(cls, v: dict[str, int]) -> dict[str, int]:
        if set(v) != {"low", "normal", "high"}:
            raise ValueError("quality_bitrates must map exactly low, normal and high")
        for q, b in v.items():
            if b not in BITRATES:
                raise ValueError(f"quality {q!r}: bitrate {b} is not one of {BITRATES}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DeliverySettings:
        if self.default_tier not in self.entitlements:
            raise ValueError(
                f"default_tier {self.default_tier!r} is not a tier in entitlements "
                f"({', '.join(self.entitlements)})"
            )
        if self.url_ttl_s > self.url_ttl_max_s:
            raise ValueError("url_ttl_s must not exceed url_ttl_max_s")
        if self.signer == "cloudfront" and not (
            self.cloudfront_key_pair_id and self.cloudfront_private_key_file
        ):
            raise ValueError(
                "signer 'cloudfront' needs DELIVERY_CLOUDFRONT_KEY_PAIR_ID and "
                "DELIVERY_CLOUDFRONT_PRIVATE_KEY_FILE"
            )
        if self.signer == "cloudcdn" and not (
            self.cloudcdn_key_name and (self.cloudcdn_key or self.cloudcdn_key_file)
        ):
            raise ValueError(
                "signer 'cloudcdn' needs DELIVERY_CLOUDCDN_KEY_NAME and "
                "DELIVERY_CLOUDCDN_KEY (or DELIVERY_CLOUDCDN_KEY_FILE)"
            )
        if (
            self.signer == "nginx"
            and not (self.nginx_secret or self.nginx_secret_file)
            and not self.dev_mode
        ):
            raise ValueError(
                "signer 'nginx' needs DELIVERY_NGINX_SECRET or DELIVERY_NGINX_SECRET_FILE"
            )
        if self.signer == "nginx" and "$secure_link_expires" not in self.nginx_expression:
            raise ValueError("DELIVERY_NGINX_EXPRESSION must contain $secure_link_expires")
        if not self.dev_mode and not (
            self.jwt_hs256_secrets or self.jwt_hs256_secret_file or self.jwks
        ):
            raise ValueError(
                "no way to verify user tokens: set DELIVERY_JWKS and/or "
                "DELIVERY_JWT_HS256_SECRETS / DELIVERY_JWT_HS256_SECRET_FILE "
                "(or DELIVERY_DEV_MODE=true for generated development secrets)"
            )
        if self.jwks and not any(a != "HS256" for a in self.jwt_algorithms):
            raise ValueError("DELIVERY_JWKS is set but DELIVERY_JWT_ALGORITHMS allows only HS256")
        return self

    # -- derived paths ------------------------------------------------------------

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def effective_signing_key_file(self) -> Path:
        if self.signing_key_file is not None:
            return self.signing_key_file
        return self.keys_dir / "stream-signing.pem"

    @property
    def effective_jwt_secret_file(self) -> Path | None:
        if self.jwt_hs256_secret_file is not None:
            return self.jwt_hs256_secret_file
        return self.secrets_dir / "user-jwt" if self.dev_mode else None

    @property
    def effective_admin_token_file(self) -> Path | None:
        if self.admin_token_file is not None:
            return self.admin_token_file
        return self.secrets_dir / "delivery-admin-token" if self.dev_mode else None

    def public_dict(self) -> dict:
        """The settings without secret values (for logs and ``delivery config``)."""
        return json.loads(self.model_dump_json(exclude={"jwt_hs256_secrets", "admin_tokens"}))


def load_settings(**overrides: object) -> DeliverySettings:
    """Read the environment once; raise :class:`SettingsError` naming each bad variable."""
    try:
        return DeliverySettings(**overrides)
    except PydanticSettingsError as exc:
        # Raised before validation, e.g. a JSON setting that is not JSON.
        m = re.search(r'field "(\w+)"', str(exc))
        name = f"DELIVERY_{m[1].upper()}" if m else "DELIVERY settings"
        raise SettingsError(f"invalid delivery settings:\n  {name}: not valid JSON") from None
    except ValidationError as exc:
        lines = [_plain(line) for line in setting_error_lines(exc, "DELIVERY")]
        if len(lines) == 1:  # the usual case: one line naming what to configure
            raise SettingsError(f"invalid delivery settings: {lines[0]}") from None
        raise SettingsError("invalid delivery settings:\n  " + "\n  ".join(lines)) from None


def _plain(line: str) -> str:
    # A check across several settings names its variables itself: drop pydantic's prefixes.
    return line.removeprefix("DELIVERY settings: ").replace("Value error, ", "", 1)
