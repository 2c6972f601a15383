"""The edge's settings: ``EDGE_*`` environment variables, one :class:`EdgeSettings`.

Each variable is described once, in its ``Field(description=...)``; the README's
configuration table is generated from those (``python -m scripts.settings_tables``).
Read once at start-up (:func:`load_settings`, ``edge serve``'s options on top) and
validated loudly: a value that cannot work stops the process with one line naming
the variable (or the option). Sizes accept plain bytes or a binary unit (``512MiB``,
``2GiB``, ``64k``). Keys and secrets named by the settings are read (and, in dev
mode, generated) by the ``resolve_*`` methods, once, before any worker starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.limits import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
)
from common.secrets import DEFAULT_PULL_TOKEN_FILE, ensure_secret
from common.setting_values import (
    MAX_HEADER_BYTES_DOC,
    BodyTimeoutS,
    CommaList,
    HeaderTimeoutS,
    IdleTimeoutS,
    InvalidSettings,
    MaxConnections,
    build_settings,
    split_commas,
)
from common.signing_keys import (
    DEFAULT_KEYS_DIR,
    KeyConfigError,
    VerificationKey,
    check_hs256_secrets,
    eddsa_verification_key,
    ensure_dev_keypair,
    hs256_verification_key,
)
from common.workers import MAX_WORKERS, web_concurrency
from edge.errors import EdgeConfigError
from edge.token import DEFAULT_MAX_LIFETIME_S

DEFAULT_PUBLIC_KEY = DEFAULT_KEYS_DIR / "stream-signing.pub.pem"
STORE_SCHEMES = ("file", "s3", "gs", "gcs")
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: object) -> int:
    """``"256MiB"`` -> 268435456. Units are binary (k = 1024); plain numbers are bytes."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes")
    if isinstance(value, int):
        return value
    m = _SIZE_RE.fullmatch(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size (bytes, or e.g. 512MiB / 2GiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


class EdgeSettingsError(EdgeConfigError, InvalidSettings):
    """Bad ``EDGE_*`` values (or options): ``lines``, one per bad value."""

    def __init__(self, lines: list[str]) -> None:
        InvalidSettings.__init__(self, lines)  # EdgeError's __init__ would pass it a string
        self.message = str(self)


class EdgeSettings(BaseSettings):
    """Every setting of the edge (descriptions: the README table, generated from them)."""

    model_config = SettingsConfigDict(
        env_prefix="EDGE_", extra="ignore", validate_default=True, frozen=True
    )

    # -- serving ------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="listen address; `--host` overrides")
    port: int = Field(8080, ge=0, le=65535, description="listen port; `--port` overrides")
    workers: int = Field(
        default_factory=web_concurrency,
        ge=1,
        le=MAX_WORKERS,
        description=f"worker processes (1-{MAX_WORKERS}); they share the disk cache and its "
        "fill locks; `--workers` overrides",
        json_schema_extra={"shown_default": "`WEB_CONCURRENCY`, else `1`"},
    )
    forwarded_allow_ips: str = Field(
        "",
        description="proxies whose X-Forwarded-For is trusted for the client address "
        "(checked against a token's `ip`), comma-separated; empty: the socket peer's address",
    )
    access_log: str = Field("-", description="JSON lines: `-` stdout, a file path, or `off`")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="`debug`, `info`, `warning`, `error` or `critical`"
    )
    dev_mode: bool = Field(
        False,
        description="opt-in (`make run` sets `true`): generate the dev signing key pair and "
        "the pull token at their default paths when missing (mode 0600)",
    )
    max_header_bytes: int = Field(
        DEFAULT_MAX_HEADER_BYTES,
        ge=1024,
        le=1 << 20,
        description=f"{MAX_HEADER_BYTES_DOC} (a size: bytes, or e.g. `16KiB`)",
    )
    header_timeout_s: HeaderTimeoutS = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: IdleTimeoutS = DEFAULT_IDLE_TIMEOUT_S
    body_timeout_s: BodyTimeoutS = DEFAULT_BODY_TIMEOUT_S
    max_connections: MaxConnections = DEFAULT_MAX_CONNECTIONS

    # -- upstream -----------------------------------------------------------------------
    upstream: CommaList = Field(
        ["http://127.0.0.1:8090"],
        description="comma-separated http(s) origins or parent (shield) edges, each object "
        "pulled from one by rendezvous hashing with failover; or ONE store URL (`file://`, "
        "`s3://`, `gs://`) read directly",
    )
    pull_token: SecretStr | None = Field(
        None,
        description="Bearer token sent to http upstreams (`Authorization: Bearer`); unset: "
        "the token file",
    )
    pull_token_file: Path = Field(
        DEFAULT_PULL_TOKEN_FILE,
        description="read when `EDGE_PULL_TOKEN` is unset; missing with an http upstream: the "
        "edge does not start (dev mode generates it at the default path)",
    )
    accept_pull_token: CommaList | None = Field(
        None,
        description="comma-separated pull tokens child edges (or a CDN) may present instead of "
        "`?token=`; `off`: none",
        json_schema_extra={"shown_default": "the edge's own pull token"},
    )
    upstream_connect_timeout_s: float = Field(
        3.0, gt=0, le=120, description="seconds to connect to an upstream"
    )
    upstream_read_timeout_s: float = Field(
        30.0, gt=0, le=600, description="seconds an upstream may stay silent while answering"
    )
    upstream_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="extra attempts per upstream on connect errors, timeouts, 5xx and broken "
        "bodies (resumed by range)",
    )
    upstream_backoff_s: float = Field(
        0.2, ge=0, le=30, description="first retry delay in seconds; doubles each attempt, jittered"
    )
    upstream_max_connections: int = Field(
        64, ge=1, le=4096, description="connection pool size, per worker"
    )
    breaker_failures: int = Field(
        5, ge=1, le=1000, description="consecutive failures that open an upstream's circuit breaker"
    )
    breaker_reset_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="seconds an open circuit stays open; then one probe request is let through",
    )

    # -- stream tokens ------------------------------------------------------------------
    token_public_keys: CommaList = Field(
        [str(DEFAULT_PUBLIC_KEY)],
        description="comma-separated Ed25519 public key PEM files (several `kid`s during a "
        "rotation); not read when `EDGE_TOKEN_JWKS_URL` is set and this is left at its default",
        json_schema_extra={"shown_default": f"`./{DEFAULT_PUBLIC_KEY}`"},
    )
    token_hs256_secrets: CommaList = Field(
        [],
        description="comma-separated HS256 secrets (>= 32 bytes each), instead of or beside "
        "public keys",
    )
    token_jwks_url: str | None = Field(
        None,
        description="delivery's `http://.../.well-known/jwks.json` (or a file): its Ed25519 "
        "keys are fetched at start-up (a failure stops the edge unless public keys or secrets "
        "are also set) and refreshed, so keys rotate without restarting edges",
    )
    token_jwks_refresh_s: float = Field(
        300.0, ge=1, le=86400, description="seconds between periodic JWKS refreshes"
    )
    token_jwks_min_refresh_interval_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="rate limit on JWKS refreshes, which a token with an unknown `kid` "
        "triggers: at most one per this many seconds",
    )
    token_jwks_timeout_s: float = Field(
        3.0,
        gt=0,
        le=60,
        description="JWKS fetch timeout in seconds, also the longest a request with an unknown "
        "`kid` waits for that refresh",
    )
    token_leeway_s: int = Field(
        0,
        ge=0,
        le=300,
        description="clock skew allowed on `exp`, in seconds, and on `iat` (at least 5 s ahead "
        "is always tolerated; further: 403 `token_not_yet_valid`)",
    )
    token_max_lifetime_s: int = Field(
        DEFAULT_MAX_LIFETIME_S,
        ge=60,
        le=30 * 86400,
        description="longest `exp - iat` accepted, in seconds (403 `token_lifetime_too_long`); "
        "keep it >= `DELIVERY_URL_TTL_MAX_S`",
    )
    token_cache_size: int = Field(
        16384, ge=0, description="verified tokens remembered per worker (`0`: no cache)"
    )
    token_cache_ttl_s: float = Field(
        30.0,
        ge=0,
        description="seconds a verified token is remembered (never past its `exp`; `0`: not "
        "remembered)",
    )

    # -- cache --------------------------------------------------------------------------
    cache_dir: Path = Field(
        Path("data") / "edge-cache", description="disk tier, shared by every worker"
    )
    cache_disk_max_bytes: int = Field(
        "2GiB", description="size bound of the disk tier (LRU eviction)"
    )
    cache_memory_max_bytes: int = Field(
        "256MiB", description="memory tier, per worker process (LRU by bytes)"
    )
    cache_memory_max_object_bytes: int = Field(
        "32MiB",
        description="larger objects stay on disk only; at most `EDGE_CACHE_MEMORY_MAX_BYTES`",
    )
    hold_unverified: bool = Field(
        True,
        description="while a fill runs, hold back the last byte of each response until the "
        "whole object's sha256 verified",
    )
    pull_max_age_s: int = Field(
        31536000,
        ge=0,
        description="pull-token responses (child edges, a CDN or nginx in front) carry "
        "`Cache-Control: public, max-age=<this>, immutable`; `?token=` ones stay `private`",
    )

    # -- field checks -------------------------------------------------------------

    @field_validator("upstream", "token_public_keys", "token_hs256_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, v: object) -> object:
        return split_commas(v)

    @field_validator("accept_pull_token", mode="before")
    @classmethod
    def _accept_list(cls, v: object) -> object:
        if v is None:
            return None
        if isinstance(v, str) and v.strip().lower() == "off":
            return []
        return split_commas(v)

    @field_validator(
        "cache_disk_max_bytes",
        "cache_memory_max_bytes",
        "cache_memory_max_object_bytes",
        "max_header_bytes",
        mode="before",
    )
    @classmethod
    def _size(cls, v: object) -> int:
        size = parse_size(v)
        if size < 0:
            raise ValueError("a size cannot be negative")
        return size

    @field_validator("upstream")
    @classmethod
    def _upstreams(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one upstream is required")
        schemes = [urlsplit(u).scheme.lower() for u in v]
        if any(s in STORE_SCHEMES for s in schemes):
            if len(v) != 1:
                raise ValueError("a store URL upstream must be the only upstream")
            return v
        out = []
        for url, scheme in zip(v, schemes, strict=True):
            parts = urlsplit(url)
            if scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"{url!r} is neither an http(s) base URL nor a file://, s3:// or gs:// "
                    "store URL"
                )
            if parts.query or parts.fragment:
                raise ValueError(f"upstream {url!r} must not carry a query or fragment")
            out.append(url.rstrip("/"))
        if len(set(out)) != len(out):
            raise ValueError("an upstream is listed twice")
        return out

    @field_validator("token_hs256_secrets")
    @classmethod
    def _secret_length(cls, v: list[str]) -> list[str]:
        return check_hs256_secrets(v)

    @field_validator("token_jwks_url")
    @classmethod
    def _jwks_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        scheme = urlsplit(v).scheme.lower()
        if scheme in ("http", "https") and not urlsplit(v).netloc:
            raise ValueError(f"{v!r} is not a URL")
        if scheme not in ("http", "https", "file", ""):
            raise ValueError("expected an http(s) URL (or a file path) of a JWKS document")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> EdgeSettings:
        if not (self.token_public_keys or self.token_hs256_secrets or self.token_jwks_url):
            raise ValueError(
                "no stream-token verification key: set EDGE_TOKEN_JWKS_URL, "
                "EDGE_TOKEN_PUBLIC_KEYS and/or EDGE_TOKEN_HS256_SECRETS"
            )
        if self.cache_memory_max_object_bytes > self.cache_memory_max_bytes:
            raise ValueError(
                "EDGE_CACHE_MEMORY_MAX_OBJECT_BYTES cannot exceed EDGE_CACHE_MEMORY_MAX_BYTES"
            )
        return self

    # -- derived values (file I/O: call once at start-up) ------------------------------

    @property
    def upstream_is_store(self) -> bool:
        return urlsplit(self.upstream[0]).scheme.lower() in STORE_SCHEMES

    def resolve_pull_token(self) -> str | None:
        """The pull token sent upstream; generated in dev mode at the default path."""
        if self.pull_token is not None:
            return self.pull_token.get_secret_value().strip() or None
        path = self.pull_token_file
        if path.exists() or (self.dev_mode and path == DEFAULT_PULL_TOKEN_FILE):
            return ensure_secret(path)
        if self.upstream_is_store:
            return None
        raise EdgeConfigError(
            f"EDGE_PULL_TOKEN_FILE: {str(path)!r} does not exist "
            "(set EDGE_PULL_TOKEN or create the file; EDGE_DEV_MODE=true generates one)"
        )

    def resolve_accepted_pull_tokens(self, own: str | None) -> list[str]:
        if self.accept_pull_token is None:
            return [own] if own else []
        return list(self.accept_pull_token)

    @property
    def configured_public_keys(self) -> list[str]:
        """``EDGE_TOKEN_PUBLIC_KEYS``; its default file is not read when a JWKS gives keys."""
        if self.token_jwks_url and "token_public_keys" not in self.model_fields_set:
            return []
        return list(self.token_public_keys)

    def resolve_verification_keys(self) -> list[VerificationKey]:
        """The configured keys (files and secrets); a JWKS adds its own later (edge.jwks)."""
        keys: list[VerificationKey] = []
        for name in self.configured_public_keys:
            path = Path(name)
            if not path.exists() and self.dev_mode and path == DEFAULT_PUBLIC_KEY:
                ensure_dev_keypair(DEFAULT_KEYS_DIR)
            try:
                keys.append(eddsa_verification_key(path.read_bytes()))
            except FileNotFoundError:
                hint = (
                    " (EDGE_DEV_MODE=true generates a dev key pair)"
                    if path == DEFAULT_PUBLIC_KEY
                    else ""
                )
                raise EdgeConfigError(
                    f"EDGE_TOKEN_PUBLIC_KEYS: {name!r} does not exist{hint}"
                ) from None
            except (KeyConfigError, ValueError) as exc:
                raise EdgeConfigError(f"EDGE_TOKEN_PUBLIC_KEYS: {name!r}: {exc}") from None
        for secret in self.token_hs256_secrets:
            keys.append(hs256_verification_key(secret))
        return keys


def load_settings(options: Mapping[str, str] | None = None, **overrides: object) -> EdgeSettings:
    """The environment, ``overrides`` on top (``None``: not given), read once.

    Raises :class:`EdgeSettingsError` (an :class:`EdgeConfigError`): one line per bad value
    naming its variable, or its command-line option when ``options`` maps the field to one.
    """
    try:
        return build_settings(EdgeSettings, "EDGE", overrides, options)
    except InvalidSettings as exc:
        raise EdgeSettingsError(exc.lines) from None
