"""Failed Subsonic logins, limited per client address and user name.

Every request carries its credentials, so a guesser needs no session: each failure spends
one from a GCRA bucket (:mod:`delivery.ratelimit`, in the database or Redis, shared by
every worker and host) keyed by the client's address and the user name (or ``apiKey``).
While the bucket is empty, requests on that key are refused **before** the credentials
are looked at, with the same error 40 whether the guess was right or not, so a locked-out
guesser learns nothing. A rested key may fail ``DELIVERY_SUBSONIC_LOGIN_FAILURES_BURST``
times at once, then ``DELIVERY_SUBSONIC_LOGIN_FAILURES_PER_HOUR``. Keying by address too
means a stranger cannot lock a listener out from elsewhere. The limit fails open when its
engine is down (logged), as the stream limit does: it protects, it never refuses everyone.
"""

from __future__ import annotations

import logging
import math

from delivery.ratelimit import RateLimiter, RateLimitUnavailable
from delivery.subsonic.errors import WRONG_CREDENTIALS, SubsonicError

log = logging.getLogger("delivery.subsonic")


def throttle_key(client_ip: str | None, user: str | None) -> str:
    # User names are bounded (auth.MAX_USER) and addresses short: the key is too.
    return f"subsonic-login:{client_ip or '-'}:{user if user is not None else '(apiKey)'}"


class LoginThrottle:
    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def check(self, key: str) -> None:
        """Refuse (error 40) while ``key`` has spent its failures."""
        if not self.limiter.gcra.enabled:
            return
        try:
            wait = self.limiter.peek(key)
        except RateLimitUnavailable as exc:
            log.debug("subsonic login limit not checked: %s", exc)  # the guard logs outages
            return
        if wait > 0:
            raise SubsonicError(
                WRONG_CREDENTIALS,
                f"Too many failed logins; retry in {max(1, math.ceil(wait))} s",
            )

    def failed(self, key: str) -> None:
        if not self.limiter.gcra.enabled:
            return
        try:
            self.limiter.try_acquire(key)
        except RateLimitUnavailable as exc:
            log.debug("subsonic login failure not counted: %s", exc)
