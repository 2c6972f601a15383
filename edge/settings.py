"""Typed settings of the edge: environment variables with the ``EDGE_`` prefix.

Read once at start-up (:func:`load_settings`) and validated loudly: a setting
that cannot work stops the process with a message naming the variable. Sizes
accept plain bytes or a unit (``512MiB``, ``2GiB``, ``64k``).

Serving
    ``EDGE_HOST`` / ``EDGE_PORT`` (``127.0.0.1:8080``)  Listen address.
    ``EDGE_WORKERS`` (``WEB_CONCURRENCY`` or ``1``)  worker processes; they share the disk
                                             cache and its fill locks.
    ``EDGE_FORWARDED_ALLOW_IPS`` (empty)     Proxies whose X-Forwarded-For is trusted for the
                                             client address (checked against a token's ``ip``).
                                             Empty: the socket peer address is used.
    ``EDGE_ACCESS_LOG`` (``-``)              JSON lines: ``-`` stdout, a file path, or ``off``.
    ``EDGE_LOG_LEVEL`` (``info``)
    ``EDGE_DEV_MODE`` (``false``)            Opt-in (``make run`` turns it on): generate the dev
                                             signing keypair and pull token at their default
                                             paths when missing (mode 0600).
    ``EDGE_MAX_HEADER_BYTES`` (``16KiB``)    Largest request head (request line and headers);
                                             larger: 431 and the connection closed.
    ``EDGE_HEADER_TIMEOUT_S`` (``10``)       Time to receive a request's headers, from the
                                             connection's opening or a keep-alive request's
                                             first byte; then 408 and closed.
    ``EDGE_IDLE_TIMEOUT_S`` (``5``)          A connection idle this long (no byte since it
                                             opened, or between keep-alive requests) is closed.
    ``EDGE_BODY_TIMEOUT_S`` (``30``)         Longest pause in a request body still being sent;
                                             then 408 (or a plain close) and closed.
    ``EDGE_MAX_CONNECTIONS`` (``1024``)      Open connections per worker; the next one gets
                                             503 and is closed (see :mod:`common.serving`).

Upstream
    ``EDGE_UPSTREAM`` (``http://127.0.0.1:8090``)  Comma-separated http(s) origins or parent
                                             edges (rendezvous-hashed shields with failover), or
                                             ONE store URL (``file://``, ``s3://``, ``gs://``).
    ``EDGE_PULL_TOKEN`` / ``EDGE_PULL_TOKEN_FILE`` (``./data/secrets/pull-token``)  Sent as
                                             ``Authorization: Bearer`` to http upstreams.
    ``EDGE_ACCEPT_PULL_TOKEN`` (unset)       Comma-separated pull tokens that child edges may
                                             present instead of ``?token=``. Unset: the edge's
                                             own pull token. ``off``: none.
    ``EDGE_UPSTREAM_CONNECT_TIMEOUT_S`` (``3``) / ``EDGE_UPSTREAM_READ_TIMEOUT_S`` (``30``)
    ``EDGE_UPSTREAM_RETRIES`` (``2``)        Extra attempts per upstream on connect errors,
                                             timeouts and 5xx, and resumes after a body broke.
    ``EDGE_UPSTREAM_BACKOFF_S`` (``0.2``)    First retry delay; doubles each attempt (jittered).
    ``EDGE_UPSTREAM_MAX_CONNECTIONS`` (``64``)
    ``EDGE_BREAKER_FAILURES`` (``5``)        Consecutive failures that open an upstream's
                                             circuit breaker ...
    ``EDGE_BREAKER_RESET_S`` (``10``)        ... for this long, then one probe is let through.

Stream tokens
    ``EDGE_TOKEN_PUBLIC_KEYS`` (``./data/keys/stream-signing.pub.pem``)  Comma-separated Ed25519
                                             public key PEM files (several kids at once).
    ``EDGE_TOKEN_HS256_SECRETS`` (empty)     Comma-separated HS256 secrets (>= 32 bytes).
    ``EDGE_TOKEN_JWKS_URL`` (unset)          Delivery's JWKS (``http://delivery:8000/.well-known/
                                             jwks.json``, or a file): its Ed25519 keys are
                                             fetched at start-up (failing it stops the edge
                                             unless the two settings above give keys too) and
                                             refreshed, so keys rotate without a restart. Set,
                                             the default ``EDGE_TOKEN_PUBLIC_KEYS`` is not read.
    ``EDGE_TOKEN_JWKS_REFRESH_S`` (``300``)  Periodic refresh of that JWKS ...
    ``EDGE_TOKEN_JWKS_MIN_REFRESH_INTERVAL_S`` (``30``)  ... and the rate limit on refreshes,
                                             which a token with an unknown ``kid`` triggers.
    ``EDGE_TOKEN_JWKS_TIMEOUT_S`` (``3``)    JWKS fetch timeout; also the longest a request with
                                             an unknown ``kid`` waits for that refresh.
    ``EDGE_TOKEN_LEEWAY_S`` (``0``)          Clock skew allowed on ``exp`` (and on ``iat``, which
                                             may be at least 5 s ahead of this clock anyway).
    ``EDGE_TOKEN_MAX_LIFETIME_S`` (``86400``)  Longest ``exp - iat`` accepted; longer-lived tokens
                                             are refused (``token_lifetime_too_long``). Keep it
                                             >= delivery's ``DELIVERY_URL_TTL_MAX_S``.
    ``EDGE_TOKEN_CACHE_SIZE`` (``16384``) / ``EDGE_TOKEN_CACHE_TTL_S`` (``30``)  Verified
                                             tokens remembered per worker, each for at most
                                             the TTL and never past ``exp`` (0: off).

Cache
    ``EDGE_CACHE_DIR`` (``./data/edge-cache``)  Disk tier, shared by every worker.
    ``EDGE_CACHE_DISK_MAX_BYTES`` (``2GiB``)    Size bound of the disk tier (LRU eviction).
    ``EDGE_CACHE_MEMORY_MAX_BYTES`` (``256MiB``)  Per-process memory tier (LRU by bytes).
    ``EDGE_CACHE_MEMORY_MAX_OBJECT_BYTES`` (``32MiB``)  Larger objects stay on disk only.
    ``EDGE_HOLD_UNVERIFIED`` (``true``)       While a fill is running, hold back the last byte
                                             of every response until the whole object's
                                             sha256 verified (see :mod:`edge.fill`).
    ``EDGE_PULL_MAX_AGE_S`` (``31536000``)   max-age of pull-token responses (child edges, a CDN
                                             or nginx in front): ``public, max-age=N, immutable``;
                                             ``?token=`` responses stay ``private``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.limits import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
)
from common.secrets import DEFAULT_PULL_TOKEN_FILE, ensure_secret
from common.setting_values import CommaList, setting_error_lines, split_commas
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


class EdgeSettings(BaseSettings):
    """Every setting of the edge (see the module docstring for each one)."""

    model_config = SettingsConfigDict(
        env_prefix="EDGE_", extra="ignore", validate_default=True, frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(default_factory=web_concurrency, ge=1, le=MAX_WORKERS)
    forwarded_allow_ips: str = ""
    access_log: str = "-"
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    dev_mode: bool = False
    max_header_bytes: int = Field(DEFAULT_MAX_HEADER_BYTES, ge=1024, le=1 << 20)
    header_timeout_s: float = Field(DEFAULT_HEADER_TIMEOUT_S, gt=0, le=3600)
    idle_timeout_s: float = Field(DEFAULT_IDLE_TIMEOUT_S, gt=0, le=3600)
    body_timeout_s: float = Field(DEFAULT_BODY_TIMEOUT_S, gt=0, le=3600)
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=1, le=1_000_000)

    upstream: CommaList = ["http://127.0.0.1:8090"]
    pull_token: SecretStr | None = None
    pull_token_file: Path = DEFAULT_PULL_TOKEN_FILE
    accept_pull_token: CommaList | None = None
    upstream_connect_timeout_s: float = Field(3.0, gt=0, le=120)
    upstream_read_timeout_s: float = Field(30.0, gt=0, le=600)
    upstream_retries: int = Field(2, ge=0, le=10)
    upstream_backoff_s: float = Field(0.2, ge=0, le=30)
    upstream_max_connections: int = Field(64, ge=1, le=4096)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_reset_s: float = Field(10.0, gt=0, le=3600)

    token_public_keys: CommaList = [str(DEFAULT_PUBLIC_KEY)]
    token_hs256_secrets: CommaList = []
    token_jwks_url: str | None = None
    token_jwks_refresh_s: float = Field(300.0, ge=1, le=86400)
    token_jwks_min_refresh_interval_s: float = Field(30.0, ge=0, le=3600)
    token_jwks_timeout_s: float = Field(3.0, gt=0, le=60)
    token_leeway_s: int = Field(0, ge=0, le=300)
    token_max_lifetime_s: int = Field(DEFAULT_MAX_LIFETIME_S, ge=60, le=30 * 86400)
    token_cache_size: int = Field(16384, ge=0)
    token_cache_ttl_s: float = Field(30.0, ge=0)

    cache_dir: Path = Path("data") / "edge-cache"
    cache_disk_max_bytes: int = 2 << 30
    cache_memory_max_bytes: int = 256 << 20
    cache_memory_max_object_bytes: int = 32 << 20
    hold_unverified: bool = True
    pull_max_age_s: int = Field(31536000, ge=0)

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


def load_settings(**overrides: object) -> EdgeSettings:
    """Read the environment once; raise :class:`EdgeConfigError` naming each bad variable."""
    try:
        return EdgeSettings(**overrides)
    except ValidationError as exc:
        lines = setting_error_lines(exc, "EDGE")
        raise EdgeConfigError("invalid edge settings:\n  " + "\n  ".join(lines)) from None
