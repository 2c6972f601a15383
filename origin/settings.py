"""Settings of the origin server (``ORIGIN_*`` environment variables), read once at start-up.

- ``ORIGIN_STORE`` (``file://./data/origin``): the store URL, file://, s3:// or gs://.
- ``ORIGIN_HOST`` (``127.0.0.1``) and ``ORIGIN_PORT`` (``8090``): where to listen.
- ``ORIGIN_PULL_TOKEN`` (unset): the accepted Bearer tokens, comma-separated (rotation:
  list the new and the old token, move the edges over, drop the old one).
- ``ORIGIN_PULL_TOKEN_FILE`` (``./data/secrets/pull-token``): read when ORIGIN_PULL_TOKEN
  is unset; a random token is written there (mode 0600) at first use.
- ``ORIGIN_LOG_LEVEL`` (``info``): debug, info, warning, error or critical.
- ``ORIGIN_MAX_HEADER_BYTES`` (``16384``): largest request head (request line and headers);
  larger: 431 and the connection closed.
- ``ORIGIN_HEADER_TIMEOUT_S`` (``10``): time to receive a request's headers, from the
  connection's opening or a keep-alive request's first byte; then 408 and closed.
- ``ORIGIN_IDLE_TIMEOUT_S`` (``5``): a connection idle this long (no byte since it opened,
  or between keep-alive requests) is closed.
- ``ORIGIN_BODY_TIMEOUT_S`` (``30``): the longest pause in a request body still being sent;
  then 408 (or a plain close) and closed.
- ``ORIGIN_MAX_CONNECTIONS`` (``1024``): open connections; the next one gets 503 and is closed.

Bad values stop the process at start-up with one line naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.limits import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
)
from common.secrets import DEFAULT_PULL_TOKEN_FILE, ensure_secret
from origin.store import store_scheme

MIN_TOKEN_LENGTH = 16
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def parse_pull_tokens(value: str) -> list[str]:
    """Split a comma-separated token list; refuse tokens too short or with odd characters."""
    tokens = [t.strip() for t in value.split(",") if t.strip()]
    if not tokens:
        raise ValueError("no token in the list")
    for token in tokens:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"a pull token must be at least {MIN_TOKEN_LENGTH} characters long")
        if not token.isascii() or not token.isprintable() or " " in token:
            raise ValueError("a pull token must be printable ASCII without spaces")
    return tokens


class OriginSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORIGIN_", extra="ignore", frozen=True)

    store: str = "file://./data/origin"
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    pull_token: SecretStr | None = None
    pull_token_file: Path = DEFAULT_PULL_TOKEN_FILE
    log_level: LogLevel = "info"
    max_header_bytes: int = Field(DEFAULT_MAX_HEADER_BYTES, ge=1024, le=1 << 20)
    header_timeout_s: float = Field(DEFAULT_HEADER_TIMEOUT_S, gt=0, le=3600)
    idle_timeout_s: float = Field(DEFAULT_IDLE_TIMEOUT_S, gt=0, le=3600)
    body_timeout_s: float = Field(DEFAULT_BODY_TIMEOUT_S, gt=0, le=3600)
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=1, le=1_000_000)

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if store_scheme(value) not in ("file", "s3", "gs", "gcs"):
            raise ValueError(
                f"unsupported store URL {value!r}: use file:///abs/path, file://./relative, "
                "s3://bucket/prefix or gs://bucket/prefix"
            )
        return value

    @field_validator("pull_token", mode="before")
    @classmethod
    def _tokens_are_usable(cls, value):
        if value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if not raw.strip():
            return None  # ORIGIN_PULL_TOKEN= (empty) means "use the token file"
        parse_pull_tokens(raw)
        return raw

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.lower() if isinstance(value, str) else value

    def pull_tokens(self) -> list[str]:
        """The accepted tokens: ORIGIN_PULL_TOKEN, else the token file (created at first use)."""
        if self.pull_token is not None:
            return parse_pull_tokens(self.pull_token.get_secret_value())
        return parse_pull_tokens(ensure_secret(self.pull_token_file))


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the offending variables, e.g. ``ORIGIN_PORT: Input should be ...``."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"ORIGIN_{field.upper()}: {message}")
    return "; ".join(parts)
