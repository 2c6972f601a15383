"""``cloudcdn`` signer: Google Cloud CDN signed URLs, per URL or per URL prefix.

The algorithm of Google's own samples (``cdn/snippets.py``): HMAC-SHA1 with a
16-byte key, base64url with padding. In ``url_prefix`` mode every rendition of
one version is covered by the same prefix (``.../tracks/{id}/{version}/``), so
a player that switches bitrate reuses the grant. :func:`signed_cookie` gives
the cookie form for the same prefix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from delivery.signing.port import UrlRequest, join_url


def _signature(key: bytes, message: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, message.encode(), hashlib.sha1).digest()).decode()


def sign_url(url: str, *, key_name: str, key: bytes, expires: int) -> str:
    url = url.strip()
    sep = "&" if "?" in url else "?"
    to_sign = f"{url}{sep}Expires={expires}&KeyName={key_name}"
    return f"{to_sign}&Signature={_signature(key, to_sign)}"


def _prefix_policy(prefix: str, key_name: str, expires: int, sep: str) -> str:
    encoded = base64.urlsafe_b64encode(prefix.strip().encode()).decode()
    return sep.join((f"URLPrefix={encoded}", f"Expires={expires}", f"KeyName={key_name}"))


def sign_url_prefix(url: str, prefix: str, *, key_name: str, key: bytes, expires: int) -> str:
    url = url.strip()
    policy = _prefix_policy(prefix, key_name, expires, "&")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}{policy}&Signature={_signature(key, policy)}"


def signed_cookie(prefix: str, *, key_name: str, key: bytes, expires: int) -> str:
    """``Cloud-CDN-Cookie=...`` granting every URL under ``prefix`` until ``expires``."""
    policy = _prefix_policy(prefix, key_name, expires, ":")
    return f"Cloud-CDN-Cookie={policy}:Signature={_signature(key, policy)}"


class CloudCdnSigner:
    name = "cloudcdn"

    def __init__(self, base_url: str, key_name: str, key: bytes, *, mode: str = "url") -> None:
        if mode not in ("url", "url_prefix"):
            raise ValueError(f"unknown Cloud CDN signing mode {mode!r}")
        self.base_url = base_url.rstrip("/")
        self.key_name = key_name
        self._key = key
        self.mode = mode

    def sign(self, request: UrlRequest) -> str:
        url = join_url(self.base_url, request.key)
        if self.mode == "url":
            return sign_url(url, key_name=self.key_name, key=self._key, expires=request.expires_at)
        prefix = join_url(self.base_url, request.version_prefix)
        return sign_url_prefix(
            url, prefix, key_name=self.key_name, key=self._key, expires=request.expires_at
        )
