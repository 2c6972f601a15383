"""Identity-provider stand-ins: asymmetric keys, JWKS documents and a real JWKS HTTP server."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


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

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.hits += 1
                body = server.document if server.status == 200 else b"{}"
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        # A short poll interval: shutdown() returns within 50 ms instead of 500.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
