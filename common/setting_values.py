"""Value forms and error wording shared by every part's settings (ORIGIN_, EDGE_, DELIVERY_ ...).

The parts read lists from comma-separated variables and report bad values as
``PREFIX_NAME: reason`` lines, one per bad value; keeping both here means an
operator sees the same forms and the same wording whichever process refuses to
start. :func:`build_settings` is the one way a part turns its environment (and
the command-line options that override it) into its settings model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import NoDecode
from pydantic_settings import SettingsError as PydanticSettingsError

# NoDecode: pydantic-settings would otherwise expect JSON for a list variable.
CommaList = Annotated[list[str], NoDecode]

M = TypeVar("M", bound=BaseModel)


def split_commas(value: object) -> object:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; anything not a string passes through for pydantic."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _reason(message: str) -> str:
    # pydantic prefixes the message of a ValueError raised by a validator; the reason is enough.
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def setting_error_lines(
    exc: ValidationError, prefix: str, options: Mapping[str, str] | None = None
) -> list[str]:
    """One ``PREFIX_NAME: reason`` line per failed check, naming the environment variable.

    ``options`` maps a field to the command-line option its value came from
    (``{"port": "--port"}``): that line names the option instead. A check across
    several settings (no field) names its variables in its own message.
    """
    lines = []
    for err in exc.errors():
        field = "_".join(str(p) for p in err.get("loc", ()) if isinstance(p, str))
        reason = _reason(str(err.get("msg", "")))
        if not field:
            lines.append(reason)
        elif options and field in options:
            lines.append(f"{options[field]}: {reason}")
        else:
            lines.append(f"{prefix}_{field.upper()}: {reason}")
    return lines


class InvalidSettings(ValueError):
    """Settings that cannot work: ``lines`` holds one ``NAME: reason`` line per bad value."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def build_settings(
    model: type[M],
    prefix: str,
    overrides: Mapping[str, object],
    options: Mapping[str, str] | None = None,
) -> M:
    """``model`` read from the environment, ``overrides`` on top (``None`` values: not given).

    Raises :class:`InvalidSettings` with one line per bad value, each naming its
    variable (or, for a value in ``overrides`` listed in ``options``, its option).
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    named = {k: v for k, v in (options or {}).items() if k in given}
    try:
        return model(**given)
    except ValidationError as exc:
        raise InvalidSettings(setting_error_lines(exc, prefix, named)) from None
    except PydanticSettingsError as exc:
        # Raised before validation, when a value cannot even be decoded (a JSON setting).
        raise InvalidSettings([f"{prefix} settings: {' '.join(str(exc).split())}"]) from None


# The connection bounds every server has (common.serving), described once for every part.
MAX_HEADER_BYTES_DOC = (
    "largest request head (request line + headers); larger: 431 `headers_too_large` and "
    "the connection closed"
)
HEADER_TIMEOUT_DOC = (
    "seconds to receive a request's headers, from the connection's opening or a keep-alive "
    "request's first byte; then 408 and closed"
)
IDLE_TIMEOUT_DOC = (
    "seconds a connection may stay idle (no byte since it opened, or between keep-alive "
    "requests) before it is closed"
)
BODY_TIMEOUT_DOC = (
    "the longest pause, in seconds, in a request body still being sent; then 408 and closed "
    "(nginx's `client_body_timeout`)"
)
MAX_CONNECTIONS_DOC = (
    "open connections per worker process; the next one gets 503 `too_many_connections` "
    "and is closed"
)

# The bounds as field types, so each part declares them in one line each, in its own order:
# ``header_timeout_s: HeaderTimeoutS = DEFAULT_HEADER_TIMEOUT_S``.
MaxHeaderBytes = Annotated[int, Field(ge=1024, le=1 << 20, description=MAX_HEADER_BYTES_DOC)]
HeaderTimeoutS = Annotated[float, Field(gt=0, le=3600, description=HEADER_TIMEOUT_DOC)]
IdleTimeoutS = Annotated[float, Field(gt=0, le=3600, description=IDLE_TIMEOUT_DOC)]
BodyTimeoutS = Annotated[float, Field(gt=0, le=3600, description=BODY_TIMEOUT_DOC)]
MaxConnections = Annotated[int, Field(ge=1, le=1_000_000, description=MAX_CONNECTIONS_DOC)]
