"""Bearer credentials: parse ``Authorization: Bearer <token>`` and check it in constant time.

One implementation for every part (origin pull tokens, edge pull tokens, delivery
admin tokens)::

    token = bearer_token(headers.get("authorization"))
    if token is None or not matches_any(token, accepted_tokens):
        ...  # 401

:func:`bearer_token` parses strictly (RFC 6750 section 2.1, RFC 9110 section 11.4):
the scheme ``Bearer`` in any case, one or more spaces, then one token with no
whitespace or control characters inside; anything else (another scheme, no token,
``Bearer a b``, a tab instead of the space) gives ``None``. Whitespace around the
token is ignored, as the parts always did.

:func:`matches_any` compares the presented token with *every* accepted token, each
with :func:`hmac.compare_digest` and without stopping at a match, so the time taken
says nothing about which token matched or how much of one did. Empty accepted tokens
never match. Values are compared as bytes: ``bytes`` as given; a presented ``str`` as
the header value an ASGI server decoded (latin-1, so the bytes the client sent); an
accepted ``str`` (configuration) as UTF-8.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import overload

__all__ = ["bearer_token", "matches_any"]

_SCHEME = "bearer"


@overload
def bearer_token(header_value: str | None) -> str | None: ...
@overload
def bearer_token(header_value: bytes) -> bytes | None: ...
def bearer_token(header_value: str | bytes | None) -> str | bytes | None:
    """The token of an ``Authorization: Bearer <token>`` value, or ``None``.

    Returns the same type it is given (``bytes`` stay ``bytes``, for ASGI hot paths).
    ``None`` for a missing header, another scheme, an empty token or a token with
    whitespace or control characters inside.
    """
    if not header_value:
        return None
    if isinstance(header_value, bytes):
        text = header_value.decode("latin-1")
        token = bearer_token(text)
        return None if token is None else token.encode("latin-1")
    scheme, sep, rest = header_value.strip().partition(" ")
    if not sep or scheme.lower() != _SCHEME:
        return None
    token = rest.strip(" ")
    if not token or not token.isprintable() or " " in token:
        return None
    return token


def _as_bytes(value: str | bytes, encoding: str) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode(encoding)
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def matches_any(presented: str | bytes | None, accepted: Iterable[str | bytes]) -> bool:
    """Whether ``presented`` equals one of ``accepted``, in constant time per token.

    Every accepted token is compared (no early exit), each with
    :func:`hmac.compare_digest`. An empty or missing ``presented`` and empty accepted
    tokens never match; no accepted tokens means no match.
    """
    if not presented:
        return False
    given = _as_bytes(presented, "latin-1")
    matched = False
    for token in accepted:
        if not token:
            continue
        matched |= hmac.compare_digest(given, _as_bytes(token, "utf-8"))
    return matched
