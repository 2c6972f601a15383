"""``GET /.well-known/jwks.json``: the stream-token verification keys, for edges.

Edges configured with ``EDGE_TOKEN_JWKS_URL`` fetch this document at start-up,
periodically, and when a token names a ``kid`` they do not know, so a signing
key rotates without restarting them (README "Key rotation"). It holds Ed25519
public keys only, as OKP JWKs with ``kid``, ``alg: EdDSA`` and ``use: sig``:
the edge signer's current key and ``DELIVERY_SIGNING_EXTRA_PUBLIC_KEYS``. HS256
secrets are never published (edges verifying HS256 need the shared secret).
The document is built once, when the app is (a bad key file fails start-up).
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import Response

from delivery import credentials
from delivery.settings import DeliverySettings

JWKS_PATH = "/.well-known/jwks.json"


def jwks_router(settings: DeliverySettings) -> APIRouter:
    body = json.dumps(credentials.stream_jwks(settings), separators=(",", ":")).encode()
    router = APIRouter(tags=["operations"])

    @router.get(JWKS_PATH, summary="Stream-token verification keys (JWKS) for edges")
    def stream_jwks() -> Response:
        # no-cache: a cache between delivery and an edge must not hide a new key.
        return Response(
            body,
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "no-cache"},
        )

    return router
