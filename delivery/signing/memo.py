"""A signer that signs each distinct :class:`UrlRequest` once while it may be asked again.

Signing is a pure function of the request (the port's contract; Ed25519, HMAC, MD5 and
RSA PKCS#1 v1.5 signatures are deterministic), so handing back the URL made for an
equal request is exactly what signing it again would give. (A presigned bucket URL
carries the SDK's own clock, but the one handed back grants at least until the
request's ``expires_at`` too.) Requests only repeat when
the issuer reuses an issue time (:class:`delivery.streams.StreamIssuer`, within
``DELIVERY_URL_REUSE_S``), and then this saves the signature, the most expensive step
of a stream answer. The memo sits under the edge routing (:class:`RoutedSigner` wraps
one memo per edge), so an edge going down reroutes the very next answer.
"""

from __future__ import annotations

import threading

from cachetools import TTLCache

from delivery.signing.port import UrlRequest, UrlSigner

# ~0.5 KB an entry (the URL and its request): about 16 MB per worker when full.
DEFAULT_MAX_URLS = 32_768


class MemoizedSigner:
    """``signer`` with its URLs remembered for ``ttl_s`` seconds (LRU past ``max_urls``).

    An entry is only ever found again by an equal request, whose issue time the issuer
    keeps for at most its reuse window; ``ttl_s`` (that window) merely frees the memory.
    """

    def __init__(
        self, signer: UrlSigner, ttl_s: float, *, max_urls: int = DEFAULT_MAX_URLS
    ) -> None:
        self.inner = signer
        self.name = signer.name
        self._urls: TTLCache[UrlRequest, str] = TTLCache(max_urls, ttl_s)
        # The stream route signs on the event loop, other routes from threadpool threads,
        # and cachetools caches are not thread-safe.
        self._lock = threading.Lock()

    def sign(self, request: UrlRequest) -> str:
        try:
            with self._lock:
                return self._urls[request]  # a third of the cost of .get() on a TTLCache
        except KeyError:
            pass
        url = self.inner.sign(request)  # outside the lock: a signature takes ~35 us
        with self._lock:
            self._urls[request] = url
        return url
