"""Identity-provider stand-ins: asymmetric keys, JWKS documents and a real JWKS HTTP server."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.support.http_stub import QuietHandler, StubServer


@dataclass
class IdpKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def generate(cls, alg: str, kid: str) -> IdpKey:
        if alg == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        elif alg == "EdDSA":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(alg)
        return cls(kid, alg, key)

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict:
        algo = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.alg]
        data = algo.to_jwk(self.private.public_key(), as_dict=True)
        data.pop("key_ops", None)
        return {**data, "kid": self.kid, "use": "sig"}

    def token(self, claims: dict, **header) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )


def jwks_document(*keys: IdpKey) -> bytes:
    return json.dumps({"keys": [k.jwk() for k in keys]}).encode()


def claims_for(user: str, *, issuer: str, audience: str, ttl_s: int = 600, **extra) -> dict:
    now = int(time.time())
    return {"sub": user, "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_s, **extra}


class JwksServer:
    """A real HTTP server (thread) serving a JWKS document we can rotate or break."""

    def __init__(self, document: bytes) -> None:
        self.document = document
        self.status = 200
        self.hits = 0
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.hits += 1
                body = server.document if server.status == 200 else b"{}"
                self.send_body(server.status, body)

        self._server = StubServer(Handler)
        self.url = f"{self._server.url}/.well-known/jwks.json"

    def stop(self) -> None:
        self._server.stop()
