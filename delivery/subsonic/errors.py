"""Subsonic's error codes and the one exception every endpoint raises.

A Subsonic client reads failures from the envelope (``status="failed"`` and an ``error``
element with a numeric code), not from the HTTP status, so every refusal is an HTTP 200
carrying one of these codes (:func:`delivery.subsonic.routes` maps the service's own
:class:`~delivery.errors.ApiError` tree onto them in one place).
"""

from __future__ import annotations

GENERIC = 0
MISSING_PARAMETER = 10
CLIENT_TOO_NEW = 20
SERVER_TOO_NEW = 30
WRONG_CREDENTIALS = 40
TOKEN_NOT_SUPPORTED = 41
AUTH_NOT_SUPPORTED = 42  # OpenSubsonic: the mechanism offered is not supported
CONFLICTING_AUTH = 43  # OpenSubsonic: more than one mechanism (e.g. apiKey with u)
INVALID_API_KEY = 44  # OpenSubsonic
NOT_AUTHORIZED = 50
NOT_FOUND = 70


class SubsonicError(Exception):
    """A failed ``subsonic-response``: ``code`` is one of the constants above."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def missing(name: str) -> SubsonicError:
    return SubsonicError(MISSING_PARAMETER, f"Required parameter is missing: {name}")


def invalid(name: str, why: str) -> SubsonicError:
    return SubsonicError(GENERIC, f"Invalid parameter {name}: {why}")


def not_found(what: str) -> SubsonicError:
    return SubsonicError(NOT_FOUND, f"{what} not found")
