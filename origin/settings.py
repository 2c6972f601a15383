"""The origin's settings: ``ORIGIN_*`` environment variables, one :class:`OriginSettings`.

Each variable is described once, in its ``Field(description=...)``; the README's
configuration table is generated from those (``python -m scripts.settings_tables``).
``origin``'s command line reads them once (:func:`load_settings`, its options on
top) and hands the model down; a bad value stops it with one line naming the
variable (or the option) and exit status 2.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from common.setting_values import (
    BodyTimeoutS,
    HeaderTimeoutS,
    IdleTimeoutS,
    InvalidSettings,
    MaxConnections,
    MaxHeaderBytes,
    build_settings,
    setting_error_lines,
)
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


def check_store_url(value: str) -> str:
    """``value`` if it names a store backend (``file``, ``s3``, ``gs``); one line otherwise."""
    if store_scheme(value) not in ("file", "s3", "gs", "gcs"):
        raise ValueError(
            f"unsupported store URL {value!r}: use file:///abs/path, file://./relative, "
            "s3://bucket/prefix or gs://bucket/prefix"
        )
    return value


class OriginSettings(BaseSettings):
    """Every setting of the origin (descriptions: the README table, generated from them)."""

    model_config = SettingsConfigDict(env_prefix="ORIGIN_", extra="ignore", frozen=True)

    store: str = Field(
        "file://./data/origin",
        description="store URL: `file:///abs/path`, `file://./relative`, "
        "`s3://bucket/prefix?endpoint_url=...&region=...`, `gs://bucket/prefix` (honours "
        "`STORAGE_EMULATOR_HOST`); `--store` overrides",
    )
    host: str = Field("127.0.0.1", description="listen address of `origin serve`")
    port: int = Field(8090, ge=1, le=65535, description="listen port of `origin serve`")
    pull_token: SecretStr | None = Field(
        None,
        description="accepted Bearer pull tokens, comma-separated (rotation: list the new and "
        f"the old, move the edges over, drop the old); each >= {MIN_TOKEN_LENGTH} printable ASCII "
        "characters "
        "without spaces; empty: the token file",
    )
    pull_token_file: Path = Field(
        DEFAULT_PULL_TOKEN_FILE,
        description="read when `ORIGIN_PULL_TOKEN` is unset; a random token is written there "
        "(mode 0600) at first use",
    )
    log_level: LogLevel = Field(
        "info", description="`debug`, `info`, `warning`, `error` or `critical`"
    )
    max_header_bytes: MaxHeaderBytes = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s: HeaderTimeoutS = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: IdleTimeoutS = DEFAULT_IDLE_TIMEOUT_S
    body_timeout_s: BodyTimeoutS = DEFAULT_BODY_TIMEOUT_S
    max_connections: MaxConnections = DEFAULT_MAX_CONNECTIONS

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return check_store_url(value)

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
        try:
            return parse_pull_tokens(ensure_secret(self.pull_token_file))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            line = f"ORIGIN_PULL_TOKEN_FILE: {str(self.pull_token_file)!r}: {reason}"
            raise InvalidSettings([line]) from None


def load_settings(options: Mapping[str, str] | None = None, **overrides: object) -> OriginSettings:
    """The environment, ``overrides`` on top (``None``: not given), read once.

    Raises :class:`~common.setting_values.InvalidSettings`: one line per bad value naming
    its variable, or its command-line option when ``options`` maps the field to one.
    """
    return build_settings(OriginSettings, "ORIGIN", overrides, options)


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the offending variables, e.g. ``ORIGIN_PORT: Input should be ...``."""
    return "; ".join(setting_error_lines(exc, "ORIGIN"))
