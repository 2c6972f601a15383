"""The ``UrlSigner`` port: turn an object key into a short-lived URL a client can stream.

Backends live beside this module, one per CDN or store, and are chosen by
``DELIVERY_SIGNER`` through :func:`delivery.signing.registry.build_signer`:

=============  =================================================================
``edge``       our edge's JWT (``?token=``), shared with ``edge/token.py``
``nginx``      ``secure_link_md5`` (``?md5=&expires=``), so a plain nginx can serve
``cloudfront`` Amazon CloudFront canned / custom policy (RSA-SHA1, ``Key-Pair-Id``)
``cloudcdn``   Google Cloud CDN signed URL or URL prefix (HMAC-SHA1)
``s3``/``gcs`` presigned URLs straight from the bucket (the store's SDK)
=============  =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from origin.keys import parse_key


class SigningError(Exception):
    """A URL that cannot be signed (misconfiguration or missing request data)."""


@dataclass(frozen=True, slots=True)
class UrlRequest:
    """What a signer needs to know about one URL.

    ``client_ip`` is the caller's address when known; ``bind_ip`` says the URL
    must only work from it (``DELIVERY_BIND_CLIENT_IP``); ``region`` is the
    client's region when the load balancer says (edge routing). Times are epoch
    seconds.
    """

    key: str
    issued_at: int
    expires_at: int
    sub: str
    client_ip: str | None = None
    bind_ip: bool = False
    region: str | None = None

    @property
    def ttl_s(self) -> int:
        return self.expires_at - self.issued_at

    @property
    def version_prefix(self) -> str:
        """``tracks/{id}/{version}/``: what every rendition of this version shares."""
        parsed = parse_key(self.key)
        return f"tracks/{parsed.track_id}/{parsed.version}/"


class UrlSigner(Protocol):
    """Signs URLs for one CDN or store. Implementations are cheap, pure and thread-safe."""

    name: str

    def sign(self, request: UrlRequest) -> str:
        """The absolute URL granting GET (and HEAD, where the CDN allows) of
        ``request.key`` until ``request.expires_at``."""


def join_url(base_url: str, key: str) -> str:
    """``http://cdn/base`` + ``tracks/a/b`` -> ``http://cdn/base/tracks/a/b``."""
    return f"{base_url.rstrip('/')}/{key}"
