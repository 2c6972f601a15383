"""Who is calling: Subsonic's credential parameters, checked as pure functions.

The protocol offers three ways, and a request must use exactly one:

* ``u`` + ``t`` + ``s``: ``t`` is ``md5(password + s)`` in hex, with a salt the client
  draws for each request (the form every current app uses);
* ``u`` + ``p``: the password in clear or as ``enc:`` followed by its UTF-8 bytes in hex
  (legacy, still sent by some apps; only sensible over HTTPS);
* ``apiKey`` (the OpenSubsonic ``apiKeyAuthentication`` extension), without ``u``.

The passwords are the user's *app passwords* (``delivery users app-password create``),
never anything of the identity provider's. Codes, as the specs say: a missing parameter is
10, a wrong user or password 40, ``apiKey`` together with ``u`` or a password 43, an
unknown API key 44. Every parameter is bounded before any work is done, and secrets are
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from delivery.subsonic.errors import (
    CONFLICTING_AUTH,
    INVALID_API_KEY,
    WRONG_CREDENTIALS,
    SubsonicError,
    invalid,
    missing,
)

MAX_USER = 128
MAX_PASSWORD = 128  # characters of a clear password (app passwords are 24)
MAX_SALT = 64
MAX_API_KEY = 128
_TOKEN = re.compile(r"[0-9a-fA-F]{32}")  # an MD5 digest in hex
_SALT = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


@dataclass(frozen=True, slots=True)
class TokenLogin:
    user: str
    token: str  # lowercase hex
    salt: str


@dataclass(frozen=True, slots=True)
class PasswordLogin:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class ApiKeyLogin:
    api_key: str


Login = TokenLogin | PasswordLogin | ApiKeyLogin


def decode_password(p: str) -> str:
    """``p`` as sent: clear text, or ``enc:`` + hex of its UTF-8 bytes."""
    if not p.startswith("enc:"):
        return p
    hex_part = p[4:]
    if not _HEX.fullmatch(hex_part):
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password")
    try:
        return bytes.fromhex(hex_part).decode()
    except UnicodeDecodeError:
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password") from None


def parse_login(params: Mapping[str, str]) -> Login:
    """Which mechanism the request uses, its parameters bounded (SubsonicError otherwise)."""
    user, api_key = params.get("u"), params.get("apiKey")
    token, salt, password = params.get("t"), params.get("s"), params.get("p")
    if api_key is not None:
        if user is not None or token is not None or salt is not None or password is not None:
            raise SubsonicError(
                CONFLICTING_AUTH, "Multiple conflicting authentication mechanisms provided"
            )
        if not 1 <= len(api_key) <= MAX_API_KEY:
            raise SubsonicError(INVALID_API_KEY, "Invalid API key")
        return ApiKeyLogin(api_key)
    if user is None:
        raise missing("u")
    if not 1 <= len(user) <= MAX_USER:
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password")
    if token is not None or salt is not None:
        if token is None:
            raise missing("t")
        if salt is None:
            raise missing("s")
        if not _TOKEN.fullmatch(token):
            raise invalid("t", "expected 32 hexadecimal digits (md5)")
        if not _SALT.fullmatch(salt):
            raise invalid("s", f"expected 1-{MAX_SALT} printable characters")
        return TokenLogin(user, token.lower(), salt)
    if password is None:
        raise missing("p")
    if not 1 <= len(password) <= 2 * MAX_PASSWORD + 4:
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password")
    return PasswordLogin(user, decode_password(password))


def token_for(password: str, salt: str) -> str:
    """The token a client sends: ``md5(password + salt)`` in lowercase hex (as the spec
    requires; MD5 is the protocol's choice, not ours)."""
    return hashlib.md5((password + salt).encode(), usedforsecurity=False).hexdigest()


def password_matches(login: TokenLogin | PasswordLogin, candidates: Iterable[str]) -> bool:
    """Whether ``login`` proves one of the user's app passwords. Every candidate is
    compared (no early exit), each in constant time."""
    found = False
    for password in candidates:
        if isinstance(login, TokenLogin):
            expected = token_for(password, login.salt).encode()
            found |= hmac.compare_digest(expected, login.token.encode())
        else:
            found |= hmac.compare_digest(password.encode(), login.password.encode())
    return found


def api_key_digest(api_key: str) -> str:
    """What is stored for an API key: its SHA-256 (keys are 32 random bytes: no slow hash
    is needed, and a lookup by digest keeps the comparison out of Python)."""
    return hashlib.sha256(api_key.encode()).hexdigest()
