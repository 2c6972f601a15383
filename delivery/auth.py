"""User authentication: ``Authorization: Bearer <JWT>`` verified with PyJWT.

Keys come from HS256 secrets (ours, e.g. minted by ``delivery token``) and/or a
JWKS document (file or URL) holding RS256 / ES256 / EdDSA public keys from an
identity provider. Security choices, each deliberate:

* The algorithm allow-list is explicit (settings); ``none`` is not even
  representable in it. The token's ``alg`` must be on the list AND equal to
  the algorithm the selected key is bound to, and PyJWT is given only that one
  algorithm — so an HS256 token "signed" with an RSA public key as the HMAC
  secret can never verify: HS256 only ever uses the configured secrets, and
  symmetric (``oct``) keys in a JWKS are ignored.
* JWKS keys are cached (cachetools) and refreshed every ``jwks_cache_ttl_s``;
  a token with an unknown ``kid`` triggers a refresh (a key rotation at the
  IdP), rate-limited to one per ``jwks_min_refresh_interval_s`` so junk kids
  cannot make us hammer the IdP. A failed refresh keeps the last good keys.
* Verified tokens are cached briefly (never past ``exp``): a player asks for
  many URLs with one token and signature checks dominate the hot path.

Failures are 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio.to_thread
import jwt
from cachetools import TTLCache

from common.jwks import JwksError as JwksError
from common.jwks import JwksKeySet as JwksKeySet
from common.jwks import RefreshNeeded as _RefreshNeeded
from common.jwks import parse_jwks as parse_jwks
from common.signing_keys import kid_for_secret
from delivery.errors import Unauthorized
from delivery.identity import Principal
from delivery.tiers import MISSING, InvalidUserId, TierResolver, validate_user_id

log = logging.getLogger("delivery.auth")


class AuthFailure(Exception):
    def __init__(self, message: str, code: str = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _www_authenticate(realm: str, failure: AuthFailure | None) -> str:
    if failure is None:
        return f'Bearer realm="{realm}"'
    # A header value: printable ASCII only, and no quote that would end the parameter.
    description = "".join(c if " " <= c <= "~" and c != '"' else "'" for c in failure.message)
    return f'Bearer realm="{realm}", error="invalid_token", error_description="{description}"'


class JwtAuthenticator:
    """The :class:`delivery.identity.Authenticator` of the delivery service."""

    realm = "delivery"

    def __init__(
        self,
        *,
        tiers: TierResolver,
        algorithms: Iterable[str],
        hs256_secrets: Iterable[bytes] = (),
        jwks: JwksKeySet | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: int = 30,
        cache_size: int = 10_000,
        cache_ttl_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.algorithms = frozenset(algorithms)
        secrets = list(hs256_secrets) if "HS256" in self.algorithms else []
        self._hs256 = secrets
        self._hs256_by_kid = {kid_for_secret(s): s for s in secrets}
        self._jwks = jwks
        if not self._hs256 and jwks is None:
            raise ValueError("no user-token verification keys configured")
        self._tiers = tiers
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._clock = clock
        self._require = ["exp", "sub"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
        self._cache: TTLCache[str, dict[str, Any]] | None = (
            TTLCache(cache_size, cache_ttl_s) if cache_size > 0 and cache_ttl_s > 0 else None
        )
        self._cache_lock = threading.Lock()

    # -- verification ---------------------------------------------------------------

    def _token(self, authorization: str | None) -> str:
        if not authorization:
            raise AuthFailure("missing bearer token", code="unauthorized")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthFailure("expected 'Authorization: Bearer <token>'", code="unauthorized")
        if len(token) > 8192:
            raise AuthFailure("token too long")
        return token

    def verify(self, token: str, *, allow_fetch: bool = True) -> dict[str, Any]:
        """Verified claims of ``token``; raises :class:`AuthFailure`."""
        now = self._clock()
        if self._cache is not None:
            # The lock: modules verify in threadpool threads while the stream route
            # verifies on the event loop, and cachetools caches are not thread-safe.
            try:
                with self._cache_lock:
                    claims = self._cache[token]  # a third of the cost of .get() on a TTLCache
            except KeyError:
                claims = None
            if claims is not None:
                if claims["exp"] + self._leeway <= now:
                    raise AuthFailure("token expired", code="token_expired")
                return claims
        claims = self._decode(token, allow_fetch)
        if self._cache is not None:
            with self._cache_lock:
                self._cache[token] = claims
        return claims

    def _decode(self, token: str, allow_fetch: bool) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthFailure("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthFailure(f"token algorithm {str(alg)[:16]!r} is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthFailure("token kid must be a string")
        if alg == "HS256":
            by_kid = self._hs256_by_kid.get(kid) if kid else None
            candidates: list[Any] = [by_kid] if by_kid is not None else list(self._hs256)
        else:
            key = self._jwks.key_for(kid, allow_fetch=allow_fetch) if self._jwks else None
            if key is None:
                raise AuthFailure("token signed with an unknown key")
            if key.algorithm_name != alg:
                raise AuthFailure("token algorithm does not match its key")
            candidates = [key.key]
        if not candidates:
            raise AuthFailure("token signed with an unknown key")
        options = {"require": self._require, "verify_aud": self._audience is not None}
        last: AuthFailure | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options=options,
                )
            except jwt.InvalidSignatureError:
                last = AuthFailure("token signature does not verify")
                continue
            except jwt.ExpiredSignatureError:
                raise AuthFailure("token expired", code="token_expired") from None
            except jwt.InvalidTokenError as exc:
                raise AuthFailure(f"token rejected: {exc}") from None
            return self._checked(claims)
        raise last or AuthFailure("token signature does not verify")

    def _checked(self, claims: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(claims.get("exp"), int | float):
            raise AuthFailure("token exp must be a number")
        try:
            validate_user_id(claims.get("sub"))
        except InvalidUserId:
            raise AuthFailure("token sub is not a valid user id") from None
        return claims

    # -- the Authenticator protocol -------------------------------------------------

    def _unauthorized(self, failure: AuthFailure) -> Unauthorized:
        header = _www_authenticate(self.realm, None if failure.code == "unauthorized" else failure)
        return Unauthorized(
            failure.message, code=failure.code, headers={"WWW-Authenticate": header}
        )

    def authenticate(self, authorization: str | None) -> Principal:
        """Blocking form (may fetch a JWKS or read the database); for sync dependencies."""
        try:
            claims = self.verify(self._token(authorization))
        except AuthFailure as failure:
            raise self._unauthorized(failure) from None
        user_id = claims["sub"]
        return Principal(user_id, self._tiers.resolve(user_id, claims), claims)

    async def authenticate_async(self, authorization: str | None) -> Principal:
        """Event-loop form: blocking work (JWKS fetch, uncached tier) goes to a thread."""
        try:
            token = self._token(authorization)
            try:
                claims = self.verify(token, allow_fetch=False)
            except _RefreshNeeded:
                claims = await anyio.to_thread.run_sync(self.verify, token)
        except AuthFailure as failure:
            raise self._unauthorized(failure) from None
        user_id = claims["sub"]
        tier = self._tiers.resolve_cached(user_id, claims)
        if tier is MISSING:
            tier = await anyio.to_thread.run_sync(self._tiers.resolve, user_id, claims)
        return Principal(user_id, tier, claims)

    def close(self) -> None:
        if self._jwks is not None:
            self._jwks.close()


def mint_user_token(
    secret: bytes,
    user_id: str,
    *,
    ttl_s: int,
    issuer: str | None,
    audience: str | None,
    extra: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """An HS256 user token (``delivery token``, tests and the bench)."""
    validate_user_id(user_id)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user_id, "iat": issued, "exp": issued + int(ttl_s)}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid_for_secret(secret)})
