"""The ``edge`` signer round trip through edge/token.py, and every way a token must fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.signing_keys import (
    eddsa_signing_key,
    eddsa_verification_key,
    hs256_signing_key,
    public_pem,
    verification_key_for,
)
from delivery.signing.edge import EdgeTokenSigner
from delivery.signing.port import UrlRequest
from edge.token import (
    TokenBadSignature,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenPathMismatch,
    TokenVerifier,
)

KEY = "tracks/abc123/0123456789abcdef/160.ogg"
PATH = "/" + KEY
NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture(scope="module")
def signer(stream_keys) -> EdgeTokenSigner:
    return EdgeTokenSigner("https://edge.example", eddsa_signing_key(stream_keys[0].read_bytes()))


@pytest.fixture(scope="module")
def verifier(stream_keys) -> TokenVerifier:
    return TokenVerifier([eddsa_verification_key(stream_keys[1].read_bytes())], cache_size=0)


def sign(signer, key=KEY, ttl=900, ip=None, bind=False) -> str:
    url = signer.sign(UrlRequest(key, NOW, NOW + ttl, "alice", client_ip=ip, bind_ip=bind))
    assert url.startswith(f"https://edge.example/{key}?token=")
    return parse_qs(urlsplit(url).query)["token"][0]


def test_round_trip(signer, verifier):
    token = sign(signer)
    claims = verifier.verify(token, PATH, now=NOW + 1)
    assert (claims.path, claims.exp, claims.iat, claims.ip) == (PATH, NOW + 900, NOW, None)
    assert claims.kid == signer.kid
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_valid_until_the_last_second(signer, verifier):
    token = sign(signer)
    verifier.verify(token, PATH, now=NOW + 899)
    with pytest.raises(TokenExpired):
        verifier.verify(token, PATH, now=NOW + 900)


def test_expired(signer, verifier):
    with pytest.raises(TokenExpired) as err:
        verifier.verify(sign(signer), PATH, now=NOW + 3600)
    assert err.value.code == "token_expired"


def test_other_path(signer, verifier):
    token = sign(signer)
    for other in (
        "/tracks/abc123/0123456789abcdef/320.ogg",
        "/tracks/other/0123456789abcdef/160.ogg",
        PATH + "x",
    ):
        with pytest.raises(TokenPathMismatch):
            verifier.verify(token, other, now=NOW)


def test_other_kid(signer):
    stranger = TokenVerifier(
        [eddsa_verification_key(public_pem(Ed25519PrivateKey.generate()))], cache_size=0
    )
    with pytest.raises(TokenBadSignature):
        stranger.verify(sign(signer), PATH, now=NOW)


def test_same_kid_other_key_fails_signature(signer):
    impostor = eddsa_verification_key(public_pem(Ed25519PrivateKey.generate()), kid=signer.kid)
    with pytest.raises(TokenBadSignature):
        TokenVerifier([impostor], cache_size=0).verify(sign(signer), PATH, now=NOW)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_tampered(signer, verifier, part):
    pieces = sign(signer).split(".")
    if part == 1:
        claims = json.loads(base64.urlsafe_b64decode(pieces[1] + "=="))
        claims["exp"] += 86400
        pieces[1] = b64(json.dumps(claims).encode())
    elif part == 0:
        pieces[0] = b64(json.dumps({"alg": "EdDSA", "kid": signer.kid, "typ": "x"}).encode())
    else:
        sig = bytearray(base64.urlsafe_b64decode(pieces[2] + "=="))
        sig[5] ^= 0x01
        pieces[2] = b64(bytes(sig))
    with pytest.raises((TokenBadSignature, TokenMalformed)):
        verifier.verify(".".join(pieces), PATH, now=NOW)


def test_alg_none(signer, verifier):
    header = b64(json.dumps({"alg": "none", "kid": signer.kid}).encode())
    payload = b64(json.dumps({"path": PATH, "sub": "x", "iat": NOW, "exp": NOW + 60}).encode())
    with pytest.raises(TokenMalformed):
        verifier.verify(f"{header}.{payload}.", PATH, now=NOW)


def test_hs256_signed_with_the_public_key_as_secret(signer, verifier, stream_keys):
    header = b64(json.dumps({"alg": "HS256", "kid": signer.kid, "typ": "JWT"}).encode())
    payload = b64(json.dumps({"path": PATH, "sub": "x", "iat": NOW, "exp": NOW + 60}).encode())
    pem = stream_keys[1].read_bytes()
    sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(TokenBadSignature):
        verifier.verify(f"{header}.{payload}.{b64(sig)}", PATH, now=NOW)


def test_missing_token(verifier):
    with pytest.raises(TokenMissing):
        verifier.verify("", PATH, now=NOW)


def test_hs256_signing_key_round_trip():
    key = hs256_signing_key("s" * 40)
    signer = EdgeTokenSigner("http://127.0.0.1:8080", key)
    verifier = TokenVerifier([verification_key_for(key)], cache_size=0)
    token = sign(EdgeTokenSigner("https://edge.example", key))
    assert verifier.verify(token, PATH, now=NOW).kid == key.kid
    assert signer.sign(UrlRequest(KEY, NOW, NOW + 5, "a")).startswith("http://127.0.0.1:8080/")


def test_rotation_old_and_new_keys_verify_during_the_overlap(signer):
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    new_signer = EdgeTokenSigner("https://edge.example", eddsa_signing_key(pem))
    assert new_signer.kid != signer.kid
    both = TokenVerifier(
        [verification_key_for(signer.key), verification_key_for(new_signer.key)], cache_size=0
    )
    assert both.verify(sign(signer), PATH, now=NOW).kid == signer.kid
    assert both.verify(sign(new_signer), PATH, now=NOW).kid == new_signer.kid


def test_ip_binding(signer, verifier):
    from edge.token import TokenIpMismatch

    token = sign(signer, ip="198.51.100.7", bind=True)
    assert verifier.verify(token, PATH, client_ip="198.51.100.7", now=NOW).ip == "198.51.100.7"
    with pytest.raises(TokenIpMismatch):
        verifier.verify(token, PATH, client_ip="198.51.100.8", now=NOW)
    # Not bound: the address is known but not put in the token.
    assert verifier.verify(sign(signer, ip="198.51.100.7"), PATH, client_ip="1.2.3.4", now=NOW)


def test_base_url_path_prefix_is_part_of_the_signed_path(stream_keys, verifier):
    signer = EdgeTokenSigner(
        "https://cdn.example/audio/", eddsa_signing_key(stream_keys[0].read_bytes())
    )
    url = signer.sign(UrlRequest(KEY, NOW, NOW + 60, "a"))
    assert url.startswith(f"https://cdn.example/audio/{KEY}?token=")
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert verifier.verify(token, "/audio/" + KEY, now=NOW)
