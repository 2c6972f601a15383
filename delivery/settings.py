"""Delivery's settings: ``DELIVERY_*`` environment variables, one :class:`DeliverySettings`.

Every variable is described once, in its ``Field(description=...)``; the README's
table is generated from those (``python -m scripts.settings_tables``). The
``delivery`` command line reads them once (:func:`load_settings`, in
:func:`delivery.cli.main`) and hands the model down to whatever it runs, the app
factory and the modules included. A value that cannot work stops the command with
one line naming the variable and exit status 2, never a failure at the first request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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
from common.setting_values import (
    BodyTimeoutS,
    CommaList,
    HeaderTimeoutS,
    IdleTimeoutS,
    MaxConnections,
    MaxHeaderBytes,
    setting_error_lines,
    split_commas,
)
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
    """Every setting of the delivery service and its modules (playlists, search, social, events).

    Descriptions are the README's table (generated from them): keep them short and exact.
    """

    model_config = SettingsConfigDict(
        env_prefix="DELIVERY_", extra="ignore", validate_default=True, frozen=True
    )

    # -- the service -----------------------------------------------------------------
    dev_mode: bool = Field(
        False,
        description="opt-in (`make run` sets `true`): generate missing dev secrets and keys "
        "under `DELIVERY_DATA_DIR` (mode 0600) and enable the demo-user picker of the player "
        "and `POST /v1/dev/token` (anyone can mint demo-user tokens); off, every secret must "
        "be configured and nothing is generated",
    )
    dev_mode_allow_remote: bool = Field(
        False,
        description="in dev mode `delivery serve` refuses a non-loopback `DELIVERY_HOST` / "
        "`--host` (exit 2) unless this is `true`",
    )
    data_dir: Path = Field(
        Path("data"), description="where dev secrets (`secrets/`) and keys (`keys/`) live"
    )
    host: str = Field("127.0.0.1", description="listen address (`--host` overrides)")
    port: int = Field(8000, ge=1, le=65535, description="listen port (`--port` overrides)")
    workers: int = Field(
        default_factory=web_concurrency,
        ge=1,
        le=MAX_WORKERS,
        description="uvicorn worker processes of `delivery serve` (`--workers` overrides)",
        json_schema_extra={"shown_default": "`WEB_CONCURRENCY`, else `1`"},
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="proxies whose X-Forwarded-For is trusted for the client address",
    )
    store: str = Field(
        "file://./data/origin",
        description="the object store holding the catalogue (`file://`, `s3://`, `gs://`, as "
        "`ORIGIN_STORE`); `delivery catalog sync --store` overrides",
    )
    database_url: str = Field(
        "sqlite:///./data/delivery.db",
        description="users/tiers, the modules and the event outbox: `sqlite:///path` (WAL) or "
        "`postgresql://user:pass@host:port/db` (psycopg 3 pool; needs permission to "
        "`CREATE EXTENSION pg_trgm, unaccent`); `--database` of the `catalog` and `events` "
        "commands overrides",
    )
    cors_origins: CommaList = Field([], description="comma-separated origins allowed by CORS")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="`debug`, `info`, `warning`, `error` or `critical`"
    )
    access_log: bool = Field(
        True,
        description="one JSON access line per request (`delivery serve --no-access-log` turns "
        "it off)",
    )
    max_header_bytes: MaxHeaderBytes = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s: HeaderTimeoutS = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: IdleTimeoutS = DEFAULT_IDLE_TIMEOUT_S
    body_timeout_s: BodyTimeoutS = DEFAULT_BODY_TIMEOUT_S
    max_connections: MaxConnections = DEFAULT_MAX_CONNECTIONS
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        le=1 << 30,
        description="largest request body, refused (413 `body_too_large`) before parsing or "
        "authentication; a larger `Content-Length` is not read at all",
    )

    # -- user authentication (JWT bearer tokens) -----------------------------------------
    jwt_hs256_secrets: CommaList = Field(
        [], description="comma-separated HS256 secrets of user tokens (>= 32 bytes each)"
    )
    jwt_hs256_secret_file: Path | None = Field(
        None,
        description="a file holding one more HS256 secret; in dev mode it defaults to "
        "`DELIVERY_DATA_DIR/secrets/user-jwt`, generated at first run",
        json_schema_extra={"shown_default": "unset (dev mode: `./data/secrets/user-jwt`)"},
    )
    jwks: str | None = Field(
        None,
        description="JWKS URL (http/https) or file with RS256 / ES256 / EdDSA public keys "
        "(cached, refreshed on an unknown `kid`)",
    )
    jwt_algorithms: CommaList = Field(
        list(SUPPORTED_JWT_ALGORITHMS),
        description="the allow-list (`none` is never accepted; each key is bound to its own "
        "algorithm)",
    )
    jwt_issuer: str | None = Field("audiocdn", description="required `iss` (empty disables)")
    jwt_audience: str | None = Field(
        "audiocdn-delivery", description="required `aud` (empty disables)"
    )
    jwt_leeway_s: int = Field(
        30, ge=0, le=300, description="clock skew allowed on `exp`, `nbf` and `iat`"
    )
    jwt_cache_size: int = Field(10000, ge=0, description="verified user tokens remembered")
    jwt_cache_ttl_s: float = Field(
        60, ge=0, description="how long a verified token's claims are reused"
    )
    jwks_cache_ttl_s: float = Field(300, gt=0, description="JWKS refresh period")
    jwks_min_refresh_interval_s: float = Field(
        30, ge=0, description="rate limit on JWKS refreshes triggered by unknown `kid`s"
    )
    jwks_timeout_s: float = Field(5, gt=0, le=60, description="JWKS fetch timeout")

    # -- subscriptions and entitlements ----------------------------------------------------
    tier_claim: str | None = Field(
        "tier", description="token claim trusted for the tier; empty: the database only"
    )
    default_tier: str = Field(
        "free", description="tier of users nobody configured (a tier of `DELIVERY_ENTITLEMENTS`)"
    )
    entitlements: dict[str, list[int]] = Field(
        {"free": [96, 160], "premium": [96, 160, 320]},
        description="JSON: tier -> the bitrates it may stream",
        json_schema_extra={"shown_default": '`{"free":[96,160],"premium":[96,160,320]}`'},
    )
    quality_bitrates: dict[str, int] = Field(
        {"low": 96, "normal": 160, "high": 320},
        description="JSON: `quality=` -> bitrate; `auto` is always the tier's best",
        json_schema_extra={"shown_default": '`{"low":96,"normal":160,"high":320}`'},
    )
    tier_cache_ttl_s: float = Field(
        300,
        ge=0,
        description="how long a worker trusts a cached tier (a change reaches every worker at "
        "once through a `tier.changed` event; this is the fallback, should an event be lost)",
    )
    admin_tokens: CommaList = Field(
        [],
        description="comma-separated admin bearer tokens (>= 16 characters each) for "
        "`/v1/admin/...`; with none (nor a token file) those answer 503 `admin_disabled`",
    )
    admin_token_file: Path | None = Field(
        None,
        description="a file holding one more admin token; in dev mode it defaults to "
        "`DELIVERY_DATA_DIR/secrets/delivery-admin-token`, generated at first run",
        json_schema_extra={
            "shown_default": "unset (dev mode: `./data/secrets/delivery-admin-token`)"
        },
    )

    # -- the catalogue (latest.json cache) ---------------------------------------------------
    catalog_ttl_s: float = Field(
        30,
        ge=0,
        description="how long `latest.json` is cached (a `track.published` event, from "
        "`--notify`, the admin endpoint or `catalog sync`, refreshes every worker at once)",
    )
    catalog_negative_ttl_s: float = Field(
        5,
        ge=0,
        description='how long "no such track" is cached (dropped by `track.published` too)',
    )
    catalog_cache_size: int = Field(10000, ge=1, description="tracks cached per worker")

    # -- signed URLs -------------------------------------------------------------------------
    signer: SignerName = Field(
        "edge", description="`edge`, `nginx`, `cloudfront`, `cloudcdn`, `s3` or `gcs`"
    )
    edge_url: str = Field(
        "http://127.0.0.1:8080",
        description="base URL of signed URLs (edge, nginx, CloudFront, Cloud CDN; `s3` and "
        "`gcs` presign the store's own URLs)",
    )
    edge_urls: str = Field(
        "",
        description="several edges instead, `[region=]url,...` (a region: up to 32 letters, "
        "digits, `-`, `_`): each object is signed for ONE "
        "edge, by rendezvous hashing over the healthy edges of the client's region (all "
        "healthy edges when the region has none); losing an edge moves only its objects",
    )
    region_header: str = Field(
        "",
        description="request header carrying the client's region (set and overwritten by your "
        "load balancer, e.g. `X-Client-Region`); empty: no regions",
    )
    edge_health_path: str = Field(
        "/readyz",
        description="probed on each edge; any answer below 500 is up (our edge answers 200 "
        "while it can serve, even from cache alone with its origin down, and 503 when it "
        "cannot); empty: no probing, every edge counts as up",
    )
    edge_health_interval_s: float = Field(
        2,
        gt=0,
        le=300,
        description="probe period; one worker of the whole deployment probes each edge per "
        "period and shares the result through the database",
    )
    url_ttl_s: int = Field(
        900, ge=10, le=MAX_URL_TTL_S, description="base lifetime of a signed URL ..."
    )
    url_ttl_duration_factor: float = Field(
        2.0, ge=0, le=100, description="... stretched to this many track durations ..."
    )
    url_ttl_max_s: int = Field(
        MAX_URL_TTL_S,
        ge=10,
        le=MAX_URL_TTL_S,
        description="... never beyond this (24 h at most)",
    )
    url_reuse_s: int = Field(
        60,
        ge=0,
        description="a user asking again for the same track within this many seconds gets the "
        "same signed URLs (no new signature), so every URL handed out still has more than its "
        "lifetime minus this left; capped at half of `DELIVERY_URL_TTL_S`; `0`: sign every answer",
    )
    bind_client_ip: bool = Field(
        False, description="bind URLs to the caller's address (the `ip` claim)"
    )
    rate_limit_per_s: float = Field(
        5,
        ge=0,
        description="per-user limit on URL issuance (GCRA, 429 + `Retry-After`), one limit "
        "across every worker and host: kept in the database (SQLite: the workers of one host; "
        "PostgreSQL: every host), or in Redis; fails open (logged, "
        "`delivery_rate_limit_errors_total`) when that engine is down; `0` disables",
    )
    rate_limit_burst: int = Field(30, ge=1, description="issuances a rested user may make at once")
    redis_url: str | None = Field(
        None,
        description="`redis://host:port/db` (or `rediss://`): keep the rate limits in Redis, "
        "and wake every worker through its pub/sub when an event is written",
    )

    signing_key_file: Path | None = Field(
        None,
        description="edge signer: the Ed25519 private key (PEM), by default "
        "`keys/stream-signing.pem` under `DELIVERY_DATA_DIR`; in dev mode generated there "
        "with its `.pub.pem`",
        json_schema_extra={"shown_default": "`./data/keys/stream-signing.pem`"},
    )
    signing_hs256_secret: SecretStr | None = Field(
        None, description="edge signer: an HS256 secret instead of the Ed25519 key"
    )
    signing_kid: str | None = Field(
        None,
        description="edge signer: an explicit key id",
        json_schema_extra={"shown_default": "derived from the key"},
    )
    signing_extra_public_keys: CommaList = Field(
        [],
        description="comma-separated Ed25519 public key PEM files published beside the "
        "signing key in the stream JWKS `GET /.well-known/jwks.json` (rotation overlap); "
        "HS256 secrets are never published: with `DELIVERY_SIGNING_HS256_SECRET` edges need "
        "the shared secret",
    )

    nginx_secret: SecretStr | None = Field(
        None, description="nginx signer: the `secure_link_md5` secret"
    )
    nginx_secret_file: Path | None = Field(
        None,
        description="nginx signer: a file holding that secret (dev mode: generated under "
        "`DELIVERY_DATA_DIR/secrets/`)",
    )
    nginx_expression: str = Field(
        "$secure_link_expires$uri $secret",
        description="nginx signer: the same expression as nginx's `secure_link_md5`, with "
        "`$secret` for the secret",
    )

    cloudfront_key_pair_id: str | None = Field(
        None, description="cloudfront signer: the key pair / public key id"
    )
    cloudfront_private_key_file: Path | None = Field(
        None, description="cloudfront signer: its RSA private key (PEM)"
    )
    cloudfront_policy: Literal["canned", "custom"] = Field(
        "canned",
        description="cloudfront signer: `canned`, or `custom` (adds the caller's IP range)",
    )
    cloudfront_ip_prefix_v4: int = Field(
        32, ge=8, le=32, description="cloudfront signer: width of that range for IPv4"
    )
    cloudfront_ip_prefix_v6: int = Field(
        64, ge=16, le=128, description="cloudfront signer: width of that range for IPv6"
    )

    cloudcdn_key_name: str | None = Field(None, description="cloudcdn signer: the key name")
    cloudcdn_key: SecretStr | None = Field(
        None, description="cloudcdn signer: its key, base64url (16 bytes)"
    )
    cloudcdn_key_file: Path | None = Field(
        None, description="cloudcdn signer: a file holding that key"
    )
    cloudcdn_mode: Literal["url", "url_prefix"] = Field(
        "url", description="cloudcdn signer: `url` or `url_prefix`"
    )

    # -- playlists ---------------------------------------------------------------------------
    playlist_max_items: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="items one playlist may hold (beyond: 400 `playlist_full`)",
    )
    playlist_page_max: int = Field(
        50, ge=1, le=100, description="largest `limit` on playlist item pages"
    )
    playlist_embed_items: int = Field(
        100, ge=0, le=100, description="items embedded in `GET /v1/playlists/{id}`"
    )
    playlist_cache_entries: int = Field(
        4096,
        ge=0,
        description="hot-playlist cache size in pages per worker (LRU, keyed by snapshot); "
        "`0` disables it",
    )
    playlist_cache_ttl_s: float = Field(
        300, gt=0, description="lifetime of a cached page (bounds memory only)"
    )
    playlist_cache_xfetch_beta: float = Field(
        0, ge=0, description="XFetch early refresh (`1.0` = the paper's default; `0`: off)"
    )

    # -- search ------------------------------------------------------------------------------
    search_popularity_weight: float = Field(
        0.2,
        ge=0,
        le=0.3,
        description="`a` in `text score * (1 + a * min(1, ln(1 + plays) / ln(1 + 10^6)))`: "
        "popularity is a bounded boost (at most `1 + a`); above 0.3 it could outrank a better "
        "text match, so that is the ceiling (docs/search.md)",
    )
    search_max_offset: int = Field(1000, ge=0, description="deepest search `offset`")
    search_fuzzy: bool = Field(
        True,
        description="typo tolerance on both backends: each query word also matches indexed "
        "words one or two edits away, blended into the ranking at a cost (an exact match "
        "always wins)",
    )
    search_fuzzy_threshold: float = Field(
        0.4,
        gt=0,
        le=1,
        description="least `1 - edits / word length` a correction needs (and never more than "
        "two edits a word)",
    )

    # -- social and plays --------------------------------------------------------------------
    follow_suggestions_scan: int = Field(
        2000,
        ge=10,
        description="friends-of-friends rows considered per suggestion request (bounds its cost)",
    )
    play_max_future_s: int = Field(
        300, ge=0, description="clock skew allowed on a reported play's `played_at`"
    )
    play_max_age_s: int = Field(
        14 * 86400,
        ge=60,
        le=3650 * 86400,
        description="oldest reported play accepted (14 days; older: 400 `play_too_old`)",
    )

    # -- recommendations (delivery.modules.recommend; built by `delivery recommend build`) ----
    recommend_neighbours: int = Field(
        50, ge=1, le=500, description="similar tracks kept per track (radio length, at most)"
    )
    recommend_size: int = Field(100, ge=1, le=1000, description='"for you" tracks stored per user')
    recommend_exclude_min_plays: int = Field(
        3,
        ge=1,
        le=1_000_000,
        description="a track the user played this often is never recommended to them",
    )
    recommend_popularity_alpha: float = Field(
        0.2,
        ge=0,
        le=2,
        description="popularity penalty: a neighbour's score is divided by its listener count "
        "to this power (0: plain co-listening, which drifts to the chart)",
    )
    recommend_shrink: float = Field(
        20.0,
        ge=0,
        le=1e6,
        description="cosine shrinkage: damps pairs of rarely played tracks that share a "
        "listener or two",
    )

    # -- events (delivery.outbox) ------------------------------------------------------------
    events_max_attempts: int = Field(
        8,
        ge=2,
        le=100,
        description="deliveries of one event to a handler before it is dead-lettered "
        "(`delivery events failed` lists them, `delivery events retry` requeues them)",
    )
    events_poll_s: float = Field(
        0.25,
        gt=0,
        le=60,
        description="each worker reads the event outbox at least this often (SQLite's only "
        "cross-process signal; PostgreSQL LISTEN/NOTIFY and Redis wake it at once)",
    )
    events_lease_s: float = Field(
        5,
        ge=0.5,
        le=3600,
        description="lease of a once-per-deployment consumer: a killed worker's work is "
        "taken over within this",
    )
    events_retention_s: float = Field(
        7 * 86400,
        ge=60,
        description="events older than this (7 days) that every consumer has passed are deleted",
    )

    # -- Subsonic / OpenSubsonic API (delivery.subsonic) --------------------------------------
    subsonic_key_file: Path | None = Field(
        None,
        description="AES-256-GCM key sealing Subsonic app passwords in the database (default "
        "`DELIVERY_DATA_DIR/keys/subsonic-app-passwords.key`, generated at first use, mode "
        "0600); every host sharing a database needs the same file",
    )
    subsonic_login_failures_per_hour: float = Field(
        30,
        ge=0,
        le=360_000,
        description="failed Subsonic logins allowed per client address and user name, after "
        "the burst (`0` disables); while spent, even a right password is refused (error 40)",
    )
    subsonic_login_failures_burst: int = Field(
        10, ge=1, le=10_000, description="failed Subsonic logins a rested address may make at once"
    )

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
    def effective_url_reuse_s(self) -> int:
        """``url_reuse_s``, at most half the base URL lifetime (so a short one still works)."""
        return min(self.url_reuse_s, self.url_ttl_s // 2)

    @property
    def effective_subsonic_key_file(self) -> Path:
        if self.subsonic_key_file is not None:
            return self.subsonic_key_file
        return self.keys_dir / "subsonic-app-passwords.key"

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


def load_settings(
    options: Mapping[str, str] | None = None, **overrides: object
) -> DeliverySettings:
    """The environment (``overrides`` on top), read once and validated.

    Raises :class:`SettingsError` whose message is one ``DELIVERY_NAME: reason`` line per
    bad value (a check across several settings names its variables in its reason); a
    value of ``overrides`` whose field ``options`` maps to a command-line option
    (``{"port": "--port"}``) is named by that option instead.
    """
    try:
        return DeliverySettings(**overrides)
    except PydanticSettingsError as exc:
        # Raised before validation, e.g. a JSON setting that is not JSON.
        m = re.search(r'field "(\w+)"', str(exc))
        name = f"DELIVERY_{m[1].upper()}" if m else "DELIVERY settings"
        raise SettingsError(f"{name}: not valid JSON") from None
    except ValidationError as exc:
        named = {k: v for k, v in (options or {}).items() if k in overrides}
        raise SettingsError("\n".join(setting_error_lines(exc, "DELIVERY", named))) from None


def require_user_token_keys(settings: DeliverySettings) -> None:
    """Refuse to serve when no user token could ever verify (outside dev mode).

    Checked where tokens are verified (:func:`delivery.app.create_app`, and ``delivery
    serve`` before it starts workers), not by every command: ``delivery catalog sync``,
    ``events`` or ``config`` need no user-token keys.
    """
    if not settings.dev_mode and not (
        settings.jwt_hs256_secrets or settings.jwt_hs256_secret_file or settings.jwks
    ):
        raise SettingsError(
            "no way to verify user tokens: set DELIVERY_JWKS and/or "
            "DELIVERY_JWT_HS256_SECRETS / DELIVERY_JWT_HS256_SECRET_FILE "
            "(or DELIVERY_DEV_MODE=true for generated development secrets)"
        )
