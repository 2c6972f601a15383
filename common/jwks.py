"""JWKS documents: fetch, parse and cache public signing keys (PyJWT's ``PyJWK``).

Shared by delivery (user tokens from an identity provider, ``DELIVERY_JWKS``) and the
edge (stream-token keys published by delivery, ``EDGE_TOKEN_JWKS_URL``), so there is
one JWKS client. Only asymmetric keys (RSA, EC, OKP) marked for signatures are ever
taken from a document: a symmetric (``oct``) key in a JWKS is the door to algorithm
confusion and is skipped. The set is cached, refreshed every ``cache_ttl_s`` and on an
unknown ``kid``, at most once per ``min_refresh_interval_s``; a failed refresh keeps the
last good keys. Fetches block (``httpx.Client``): async callers run them in a thread.

Why not PyJWT's ``PyJWKClient``: it refreshes on EVERY unknown ``kid`` (a client sending
random kids turns each request into a fetch of the identity provider's JWKS), raises
instead of keeping the last good keys when a refresh fails, takes ``oct`` keys, and reads
URLs only (the edge and tests also read a file). Its key parsing (``PyJWK``) is used here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
from cachetools import TTLCache

log = logging.getLogger("common.jwks")

_ASYMMETRIC_KTY = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}


class JwksError(Exception):
    """A JWKS document that cannot be fetched or parsed."""


class RefreshNeeded(Exception):
    """Raised on the event loop when verifying needs a (blocking) JWKS fetch."""


def parse_jwks(document: bytes | str, algorithms: Iterable[str]) -> dict[str, jwt.PyJWK]:
    """Signing keys by ``kid`` from a JWKS document; keys we must not use are skipped."""
    try:
        data = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        raise JwksError("JWKS is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError('JWKS must be an object with a "keys" list')
    allowed = set(algorithms)
    keys: dict[str, jwt.PyJWK] = {}
    for entry in data["keys"]:
        if not isinstance(entry, dict):
            continue
        kty = entry.get("kty")
        # Symmetric keys never come from a JWKS: that is the door to HS/RS confusion.
        if kty not in _ASYMMETRIC_KTY or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("skipping unusable JWKS key %r: %s", entry.get("kid"), exc)
            continue
        if key.algorithm_name not in allowed:
            continue
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else ""] = key
    return keys


class JwksKeySet:
    """Public keys from a JWKS file or URL, cached and refreshed on rotation."""

    def __init__(
        self,
        location: str,
        algorithms: Iterable[str],
        *,
        cache_ttl_s: float = 300.0,
        min_refresh_interval_s: float = 30.0,
        timeout_s: float = 5.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self._algorithms = tuple(algorithms)
        self._is_url = urlsplit(location).scheme in ("http", "https")
        self._client = client or (httpx.Client(timeout=timeout_s) if self._is_url else None)
        self._clock = clock
        self._min_interval = min_refresh_interval_s
        # One entry ("keys"): present while fresh; its expiry is the periodic refresh.
        self._fresh: TTLCache[str, dict[str, jwt.PyJWK]] = TTLCache(1, cache_ttl_s, timer=clock)
        self._keys: dict[str, jwt.PyJWK] = {}  # last good set, used while a refresh fails
        self._last_attempt = float("-inf")
        self._lock = threading.Lock()

    def _fetch(self) -> bytes:
        if not self._is_url:
            try:
                return Path(self.location.removeprefix("file://")).read_bytes()
            except OSError as exc:
                raise JwksError(f"cannot read JWKS file {self.location!r}: {exc}") from None
        try:
            response = self._client.get(self.location, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise JwksError(f"cannot fetch JWKS {self.location!r}: {exc}") from None
        if response.status_code != 200:
            raise JwksError(f"JWKS {self.location!r} answered {response.status_code}")
        return response.content

    def refresh(self) -> None:
        """Fetch now; raise :class:`JwksError` on failure (the old keys stay in use)."""
        self._last_attempt = self._clock()
        keys = parse_jwks(self._fetch(), self._algorithms)
        self._keys = keys
        self._fresh["keys"] = keys

    def load(self) -> None:
        """First fetch at start-up: failures here are loud."""
        with self._lock:
            self.refresh()
        if not self._keys:
            raise JwksError(f"JWKS {self.location!r} holds no usable signing key")

    @property
    def keys(self) -> dict[str, jwt.PyJWK]:
        """The current keys by ``kid`` (the last good set)."""
        return self._keys

    def due(self) -> bool:
        """True when a refresh would not break the rate limit."""
        return self._clock() - self._last_attempt >= self._min_interval

    _due = due

    def try_refresh(self, why: str) -> None:
        """Refresh unless the set is fresh (``why == "stale"``) or the rate limit says no;
        a failure is logged and the old keys stay."""
        self._try_refresh(why)

    def _try_refresh(self, why: str) -> None:
        with self._lock:
            # Re-checked under the lock: another thread may have refreshed while we waited.
            if (why == "stale" and "keys" in self._fresh) or not self._due():
                return
            try:
                self.refresh()
            except JwksError as exc:
                log.warning(
                    "JWKS refresh (%s) failed, keeping %d keys: %s", why, len(self._keys), exc
                )

    def key_for(self, kid: str | None, *, allow_fetch: bool) -> jwt.PyJWK | None:
        """The key for ``kid``; may refresh (blocking) unless ``allow_fetch`` is false.

        Refreshes happen when the set is older than the cache TTL, or for an unknown
        ``kid``; either way at most once per ``min_refresh_interval_s``, so neither
        junk kids nor an IdP outage (stale keys stay in use) turn into a fetch storm.
        """
        stale = "keys" not in self._fresh
        key = self._pick(kid)
        if (stale or key is None) and self._due():
            if not allow_fetch:
                raise RefreshNeeded
            self._try_refresh("stale" if stale else "unknown kid")
            key = self._pick(kid)
        return key

    def _pick(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        # A token without kid is only acceptable when the choice is unambiguous.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
