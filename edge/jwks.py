"""Stream-token keys from delivery's JWKS (``EDGE_TOKEN_JWKS_URL``): rotation without restarts.

Delivery publishes its Ed25519 verification keys at ``/.well-known/jwks.json``.
The edge fetches that document with the JWKS client delivery itself uses for
user tokens (:class:`common.jwks.JwksKeySet`) and hands the keys to its
:class:`edge.token.TokenVerifier`, which stays the one place tokens are checked:

* at start-up (a failure is fatal unless ``EDGE_TOKEN_PUBLIC_KEYS`` or
  ``EDGE_TOKEN_HS256_SECRETS`` also give keys; then it is a warning and the
  periodic refresh retries);
* every ``EDGE_TOKEN_JWKS_REFRESH_S``, in a background task;
* when a token names an unknown ``kid``: one refresh, at most one per
  ``EDGE_TOKEN_JWKS_MIN_REFRESH_INTERVAL_S`` for the whole process (junk kids
  cannot make the edge hammer delivery), shared by every request that arrives
  meanwhile; each waits for it at most ``EDGE_TOKEN_JWKS_TIMEOUT_S``, then is
  verified again (or refused ``token_bad_signature``).

Fetches block, so they run in a thread; the hit path never fetches and never
waits, except the requests carrying the unknown ``kid`` itself.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from common.jwks import JwksError, JwksKeySet
from common.signing_keys import keys_from_jwks
from edge.errors import EdgeConfigError
from edge.settings import EdgeSettings
from edge.tasks import cancel_and_wait
from edge.token import TokenVerifier

log = logging.getLogger("edge.jwks")


class JwksKeys:
    """Keeps a :class:`TokenVerifier`'s published keys in step with a JWKS document."""

    def __init__(
        self,
        location: str,
        verifier: TokenVerifier,
        *,
        refresh_s: float = 300.0,
        min_refresh_interval_s: float = 30.0,
        timeout_s: float = 3.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.location = location
        self.verifier = verifier
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.keyset = JwksKeySet(
            location,
            ["EdDSA"],
            cache_ttl_s=refresh_s,
            min_refresh_interval_s=min_refresh_interval_s,
            timeout_s=timeout_s,
            client=client,
        )
        self._inflight: asyncio.Future[bool] | None = None
        self._task: asyncio.Task | None = None

    def load(self) -> None:
        """The first fetch (blocking); raises :class:`JwksError` when it fails or is empty."""
        self.keyset.load()
        self._apply()

    def _apply(self) -> None:
        self.verifier.set_published_keys(keys_from_jwks(self.keyset.keys))

    def _refresh(self, why: str) -> bool:
        before = self.verifier.kids
        self.keyset.try_refresh(why)  # rate-limited; a failure keeps the old keys (logged)
        self._apply()
        return self.verifier.kids != before

    async def refresh_for_unknown_kid(self) -> bool:
        """One rate-limited refresh for a token with an unknown ``kid``; True when it
        brought new keys (verify the token again), False when refused, failed or slow."""
        future = self._inflight
        if future is None:
            if not self.keyset.due():
                return False
            future = self._inflight = asyncio.ensure_future(
                asyncio.to_thread(self._refresh, "unknown kid")
            )
            future.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            return False

    def _done(self, future: asyncio.Future) -> None:
        self._inflight = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("JWKS refresh failed: %s", future.exception())

    def start(self) -> None:
        """The periodic refresh, as a task on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._periodic(), name="edge-jwks-refresh")

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await asyncio.to_thread(self._refresh, "periodic")
            except Exception:  # never let the loop die: the old keys stay in use
                log.exception("periodic JWKS refresh failed")

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self.keyset.close()


def from_settings(settings: EdgeSettings, verifier: TokenVerifier) -> JwksKeys:
    assert settings.token_jwks_url is not None
    return JwksKeys(
        settings.token_jwks_url,
        verifier,
        refresh_s=settings.token_jwks_refresh_s,
        min_refresh_interval_s=settings.token_jwks_min_refresh_interval_s,
        timeout_s=settings.token_jwks_timeout_s,
    )


def load_or_warn(keys: JwksKeys, *, required: bool) -> None:
    """The start-up fetch: one clear line (:class:`EdgeConfigError`) when ``required`` (no
    configured keys besides the JWKS), else a warning, and the periodic refresh retries."""
    try:
        keys.load()
    except JwksError as exc:
        if required:
            raise EdgeConfigError(f"EDGE_TOKEN_JWKS_URL: {exc}") from None
        log.warning("EDGE_TOKEN_JWKS_URL: %s; using the configured keys until it answers", exc)
