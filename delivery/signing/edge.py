"""``edge`` signer: the stream JWT (docs/architecture.md), made by ``edge/token.py``.

``GET {edge}/tracks/{id}/{version}/{bitrate}.ogg?token={JWT}``. The ``path``
claim is the URL's path exactly as the edge will see it. The ``sub`` claim is
an opaque, stable pseudonym of the user (a keyed hash derived from the signing
key): URLs get shared and logged, and a readable JWT payload must not carry
the account name, while abuse tracing at the edge still sees one id per user.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization

from common.signing_keys import SigningKey
from delivery.signing.port import UrlRequest, join_url
from edge.token import sign_stream_token


class EdgeTokenSigner:
    name = "edge"

    def __init__(self, base_url: str, key: SigningKey) -> None:
        self.base_url = base_url.rstrip("/")
        self._path_prefix = urlsplit(self.base_url).path.rstrip("/")
        self.key = key
        self._sub_key = _pseudonym_key(key)

    @property
    def kid(self) -> str:
        return self.key.kid

    def pseudonym(self, user_id: str) -> str:
        digest = hashlib.blake2b(user_id.encode(), key=self._sub_key, digest_size=12)
        return "u-" + digest.hexdigest()

    def sign(self, request: UrlRequest) -> str:
        token = sign_stream_token(
            f"{self._path_prefix}/{request.key}",
            key=self.key,
            ttl_s=request.ttl_s,
            sub=self.pseudonym(request.sub),
            ip=request.client_ip if request.bind_ip else None,
            now=request.issued_at,
        )
        # A compact JWT is base64url and dots only: nothing to escape.
        return f"{join_url(self.base_url, request.key)}?token={token}"


def _pseudonym_key(key: SigningKey) -> bytes:
    if key.algorithm == "EdDSA":
        material = key.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        material = bytes(key.key)
    return hashlib.sha256(b"audiocdn stream sub\0" + material).digest()
