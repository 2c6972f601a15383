"""Signed stream URLs: the token format of docs/architecture.md ("Stream URLs and tokens").

``GET {edge}/tracks/{id}/{version}/{bitrate}.ogg?token={JWT}``

The token is a compact JWT. Header: ``alg`` (``EdDSA`` preferred, so edges hold
only public keys; ``HS256`` supported) and ``kid``. Claims: ``path`` (exactly
the request path), ``exp``, ``iat``, ``sub`` and optionally ``ip``.

The delivery service signs with :func:`sign_stream_token`; the edge verifies
with :class:`TokenVerifier`. Both sides share this module so the format cannot
drift. Security choices, each deliberate:

* The algorithm allow-list is fixed (``EdDSA``, ``HS256``); ``none`` and every
  other algorithm are refused before any key is looked at.
* Each key is bound to ONE algorithm and PyJWT is told only that algorithm, so
  an HS256 token "signed" with an EdDSA public key can never verify.
* Failures carry distinct codes (:class:`TokenError.code`) so operators can
  tell an expired link from a forged one; all of them are 403 at the edge.
* Even a correctly signed token is bounded in time: ``iat`` may not lie in the
  future (beyond the leeway, at least :data:`MIN_IAT_SKEW_S`), and ``exp - iat``
  may not exceed the longest lifetime delivery issues (``max_lifetime_s``), so a
  leaked signing key or a signer bug cannot mint links that last for years.
  ``exp``/``iat`` must be plain JSON integers (no floats, booleans, ``Infinity``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from common.signing_keys import KeyConfigError, SigningKey, VerificationKey

ALLOWED_ALGORITHMS: tuple[str, ...] = ("EdDSA", "HS256")
# The longest stream-token lifetime accepted by default: DELIVERY_URL_TTL_MAX_S's ceiling.
DEFAULT_MAX_LIFETIME_S = 24 * 3600
# ``iat`` may be this far ahead of the edge's clock even with no leeway configured: delivery
# and edge clocks differ by milliseconds under NTP, and a fresh URL is fetched at once.
MIN_IAT_SKEW_S = 5


class TokenError(Exception):
    """A token that must be refused. ``code`` is stable and machine-readable."""

    code = "token_invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TokenMissing(TokenError):
    code = "token_missing"


class TokenMalformed(TokenError):
    code = "token_malformed"


class TokenBadSignature(TokenError):
    code = "token_bad_signature"


class TokenUnknownKid(TokenBadSignature):
    """Signed with a key id this verifier does not hold (yet: a JWKS refresh may bring it)."""


class TokenExpired(TokenError):
    code = "token_expired"


class TokenNotYetValid(TokenError):
    code = "token_not_yet_valid"


class TokenLifetimeTooLong(TokenError):
    code = "token_lifetime_too_long"


class TokenPathMismatch(TokenError):
    code = "token_path_mismatch"


class TokenIpMismatch(TokenError):
    code = "token_ip_mismatch"


@dataclass(frozen=True, slots=True)
class StreamClaims:
    path: str
    sub: str
    exp: int
    iat: int
    ip: str | None
    kid: str


# -- signing ---------------------------------------------------------------------


def sign_stream_token(
    path: str,
    *,
    key: SigningKey,
    ttl_s: int,
    sub: str,
    ip: str | None = None,
    now: float | None = None,
) -> str:
    """A token granting GET/HEAD of exactly ``path`` for ``ttl_s`` seconds."""
    if key.algorithm not in ALLOWED_ALGORITHMS:
        raise KeyConfigError(f"algorithm {key.algorithm!r} is not allowed")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"path": path, "sub": sub, "iat": issued, "exp": issued + int(ttl_s)}
    if ip:
        claims["ip"] = ip
    return jwt.encode(claims, key.key, algorithm=key.algorithm, headers={"kid": key.kid})


# -- verification ----------------------------------------------------------------


class TokenVerifier:
    """Verify stream tokens against a set of keys (several ``kid``s during a rotation).

    Verified tokens are remembered briefly (token string -> claims, for at most
    ``cache_ttl_s`` and never past ``exp``): a player sends dozens of range
    requests with one token, and the signature check is the most expensive thing
    on an edge's hit path. The path and address checks still run on every call.
    The memo is a plain dict emptied when full: cheaper on that hot path than
    LRU bookkeeping, and a refill costs one signature check per live token.
    (cachetools' ``TTLCache`` does not fit: its one TTL runs on its own timer,
    while an entry here lives until ``min(exp + leeway, now + ttl)`` measured on
    the caller's ``now``, and its lookup costs about 50 times a dict's.)
    """

    def __init__(
        self,
        keys: Iterable[VerificationKey],
        *,
        leeway_s: int = 0,
        cache_size: int = 65536,
        cache_ttl_s: float = 30.0,
        max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
        allow_no_keys: bool = False,
    ) -> None:
        self._configured: dict[str, VerificationKey] = {}
        for k in keys:
            if k.algorithm not in ALLOWED_ALGORITHMS:
                raise KeyConfigError(f"algorithm {k.algorithm!r} is not allowed")
            self._configured[k.kid] = k
        # allow_no_keys: every key will come from a JWKS (see set_published_keys).
        if not self._configured and not allow_no_keys:
            raise KeyConfigError("no verification keys configured")
        self._keys = dict(self._configured)
        self._leeway = leeway_s
        self._iat_skew = max(leeway_s, MIN_IAT_SKEW_S)
        self._max_lifetime = max_lifetime_s
        self._memo: dict[str, tuple[StreamClaims, float]] = {}
        self._memo_max = cache_size
        self._memo_ttl = cache_ttl_s

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def set_published_keys(self, keys: Iterable[VerificationKey]) -> None:
        """Replace the keys that came from a JWKS (key rotation without a restart).

        Configured keys stay, and win a ``kid`` clash; only EdDSA keys are taken. The
        new map is swapped in whole, so a concurrent :meth:`verify` sees old or new.
        Tokens already verified stay remembered for at most ``cache_ttl_s``.
        """
        published = {k.kid: k for k in keys if k.algorithm == "EdDSA"}
        published.update(self._configured)
        self._keys = published

    def verify(
        self,
        token: str | None,
        path: str,
        client_ip: str | None = None,
        now: float | None = None,
    ) -> StreamClaims:
        if not token:
            raise TokenMissing("no token: add ?token=... from the delivery service")
        current = time.time() if now is None else now
        memo = self._memo.get(token)
        if memo is not None and current < memo[1]:
            claims = memo[0]
        else:
            claims = self._decode(token, current)  # raises TokenExpired past exp + leeway
            if self._memo_max > 0:
                if len(self._memo) >= self._memo_max:
                    self._memo.clear()
                until = min(claims.exp + self._leeway, current + self._memo_ttl)
                self._memo[token] = (claims, until)
        return _bound(claims, path, client_ip)

    def remembered(
        self, token: str | None, path: str, client_ip: str | None, now: float
    ) -> StreamClaims | None:
        """The claims of a token :meth:`verify` accepted recently, checked against this
        request; None when it is not remembered (then :meth:`verify` must decide).

        No JSON or signature work, for the edge's hot path; the memo entry's own deadline
        (never past ``exp`` + leeway) is the expiry check, and the path and address are
        compared as in :meth:`verify` (raising the same errors).
        """
        memo = self._memo.get(token) if token else None
        if memo is None or now >= memo[1]:
            return None
        return _bound(memo[0], path, client_ip)

    def _decode(self, token: str, now: float) -> StreamClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenMalformed("token is not a compact JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenMalformed(f"token algorithm {str(alg)[:20]!r} is not allowed")
        kid = header.get("kid")
        if kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        elif isinstance(kid, str) and kid in self._keys:
            key = self._keys[kid]
        else:
            raise TokenUnknownKid("token signed with an unknown key id")
        if alg != key.algorithm:
            raise TokenBadSignature("token algorithm does not match its key")
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                options={"require": ["exp", "iat", "path", "sub"], "verify_iat": False},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("token expired: ask the delivery service for a fresh URL") from None
        except jwt.InvalidSignatureError:
            raise TokenBadSignature("token signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise TokenMalformed(f"token rejected: {exc}") from None
        except (OverflowError, ValueError, TypeError):
            # e.g. "exp": Infinity (Python's json accepts it; int() of it overflows in PyJWT).
            raise TokenMalformed("token exp/iat/nbf must be integers") from None
        path, sub, ip = payload.get("path"), payload.get("sub"), payload.get("ip")
        exp, iat = payload.get("exp"), payload.get("iat")
        if (
            not isinstance(path, str)
            or not isinstance(sub, str)
            or (ip is not None and not isinstance(ip, str))
        ):
            raise TokenMalformed("token claims have the wrong types")
        # type() rather than isinstance(): a JSON true is a Python bool, a subclass of int.
        if type(exp) is not int or type(iat) is not int:
            raise TokenMalformed("token exp/iat must be integers")
        if exp + self._leeway <= now:
            raise TokenExpired("token expired: ask the delivery service for a fresh URL")
        if iat > now + self._iat_skew:
            raise TokenNotYetValid("token issued in the future: check the signer's clock")
        if exp - iat > self._max_lifetime:
            raise TokenLifetimeTooLong(
                f"token lifetime exceeds {self._max_lifetime} s (EDGE_TOKEN_MAX_LIFETIME_S)"
            )
        return StreamClaims(path=path, sub=sub, exp=exp, iat=iat, ip=ip, kid=key.kid)


def _bound(claims: StreamClaims, path: str, client_ip: str | None) -> StreamClaims:
    """``claims`` when they grant ``path`` to ``client_ip``; else the refusal."""
    # Neither the path nor the address is a secret (the signature, checked by PyJWT,
    # is), so plain comparisons are fine here.
    if claims.path != path:
        raise TokenPathMismatch("token was issued for another path")
    if claims.ip is not None and claims.ip != client_ip:
        raise TokenIpMismatch("token is bound to another client address")
    return claims
