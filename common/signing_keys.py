"""Stream-signing keys: HS256 secrets and Ed25519 key pairs, their ``kid``s and JWKS form.

Shared by delivery (it signs stream tokens and user tokens, and publishes its public
keys as a JWKS) and the edge (it verifies stream tokens). Each key is bound to ONE
algorithm, so a key can never be used with another (no algorithm confusion); HS256
secrets shorter than :data:`MIN_HS256_SECRET_BYTES` are refused.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.secrets import write_secret_file

MIN_HS256_SECRET_BYTES = 32
DEFAULT_KEYS_DIR = Path("data") / "keys"


class KeyConfigError(ValueError):
    """A key that cannot be used (wrong type, too short a secret, unknown algorithm)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    key: Any  # Ed25519PrivateKey or bytes (HS256 secret)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    algorithm: str
    key: Any  # Ed25519PublicKey or bytes (HS256 secret)


def kid_for_public_key(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed-" + hashlib.sha256(raw).hexdigest()[:12]


def kid_for_secret(secret: bytes) -> str:
    # A truncated hash of a >= 32-byte random secret reveals nothing useful about it.
    return "hs-" + hashlib.sha256(b"kid:" + secret).hexdigest()[:12]


def check_hs256_secrets(secrets: list[str]) -> list[str]:
    """Refuse short HS256 secrets in settings (edge and delivery), as a ValueError that
    pydantic reports against the variable, before any key is built from them."""
    for secret in secrets:
        if len(secret.encode()) < MIN_HS256_SECRET_BYTES:
            raise ValueError(f"each HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes")
    return secrets


def _check_secret(secret: bytes) -> bytes:
    if len(secret) < MIN_HS256_SECRET_BYTES:
        raise KeyConfigError(
            f"HS256 secret is {len(secret)} bytes; use at least {MIN_HS256_SECRET_BYTES}"
        )
    return secret


def hs256_signing_key(secret: bytes | str, kid: str | None = None) -> SigningKey:
    raw = _check_secret(secret.encode() if isinstance(secret, str) else secret)
    return SigningKey(kid or kid_for_secret(raw), "HS256", raw)


def hs256_verification_key(secret: bytes | str, kid: str | None = None) -> VerificationKey:
    raw = _check_secret(secret.encode() if isinstance(secret, str) else secret)
    return VerificationKey(kid or kid_for_secret(raw), "HS256", raw)


def eddsa_signing_key(private_pem: bytes, kid: str | None = None) -> SigningKey:
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigError("EdDSA signing key must be an Ed25519 private key (PEM, PKCS#8)")
    return SigningKey(kid or kid_for_public_key(key.public_key()), "EdDSA", key)


def eddsa_verification_key(public_pem: bytes, kid: str | None = None) -> VerificationKey:
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyConfigError("EdDSA verification key must be an Ed25519 public key (PEM)")
    return VerificationKey(kid or kid_for_public_key(key), "EdDSA", key)


def verification_key_for(signing: SigningKey) -> VerificationKey:
    if signing.algorithm == "EdDSA":
        return VerificationKey(signing.kid, "EdDSA", signing.key.public_key())
    return VerificationKey(signing.kid, signing.algorithm, signing.key)


def public_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_jwk(key: VerificationKey) -> dict[str, str]:
    """An EdDSA verification key as an OKP JWK (RFC 8037) with ``kid``, ``alg`` and ``use``."""
    if key.algorithm != "EdDSA" or not isinstance(key.key, Ed25519PublicKey):
        raise KeyConfigError("only Ed25519 public keys are published; HS256 secrets never are")
    raw = key.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key.kid, "alg": "EdDSA", "use": "sig"}


def jwks_document(keys: Iterable[VerificationKey]) -> dict[str, list[dict[str, str]]]:
    """The JWKS delivery publishes for edges: its Ed25519 keys only (secrets are skipped)."""
    return {"keys": [public_jwk(k) for k in keys if k.algorithm == "EdDSA"]}


def keys_from_jwks(jwks: Mapping[str, Any]) -> list[VerificationKey]:
    """Verification keys from parsed JWKS entries (``kid`` -> ``jwt.PyJWK``): Ed25519 only."""
    return [
        VerificationKey(kid, "EdDSA", jwk.key)
        for kid, jwk in jwks.items()
        if kid and jwk.algorithm_name == "EdDSA" and isinstance(jwk.key, Ed25519PublicKey)
    ]


def ensure_dev_keypair(directory: str | Path) -> tuple[Path, Path]:
    """Create ``stream-signing.pem`` (0600) and ``stream-signing.pub.pem`` once; return both paths.

    For development only: production keys come from the operator's secret store.
    """
    directory = Path(directory)
    private_path = directory / "stream-signing.pem"
    public_path = directory / "stream-signing.pub.pem"
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_secret_file(private_path, pem, 0o600)
    if not public_path.exists():
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        write_secret_file(public_path, public_pem(key), 0o644)
    return private_path, public_path
