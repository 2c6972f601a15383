"""User authentication: HS256 and JWKS (RS256/ES256/EdDSA), every way a token must fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from delivery.auth import JwksKeySet, JwtAuthenticator
from delivery.errors import Unauthorized
from delivery.settings import SettingsError
from tests.delivery.conftest import AUDIENCE, ISSUER, client_for
from tests.delivery.jwks import IdpKey, JwksServer, claims_for, jwks_document

pytestmark = pytest.mark.anyio


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge_hs256(claims: dict, secret: bytes, kid: str) -> str:
    """An HS256 token built by hand (PyJWT refuses PEM keys as HMAC secrets, attackers do not)."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{b64(hmac.new(secret, signing_input, hashlib.sha256).digest())}"


def unsigned(claims: dict) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def idp_keys() -> dict[str, IdpKey]:
    return {alg: IdpKey.generate(alg, f"kid-{alg.lower()}") for alg in ("RS256", "ES256", "EdDSA")}


@pytest.fixture
def jwks_file(tmp_path, idp_keys):
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks_document(*idp_keys.values()))
    return path


async def stream_status(app, token: str | None, headers: dict | None = None) -> tuple[int, dict]:
    async with client_for(app) as c:
        h = headers if headers is not None else (bearer(token) if token else {})
        r = await c.get("/v1/tracks/chirp/stream", headers=h)
        return r.status_code, {"body": r.json(), "www": r.headers.get("www-authenticate")}


async def test_missing_token_is_401_with_challenge(app):
    status, out = await stream_status(app, None)
    assert status == 401
    assert out["www"] == 'Bearer realm="delivery"'
    assert out["body"]["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer    ", "token abc"])
async def test_wrong_scheme_is_401(app, header):
    status, out = await stream_status(app, None, {"Authorization": header})
    assert status == 401
    assert out["body"]["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 9000, "eyJhbGciOi.eyJ.sig"])
async def test_malformed_tokens_are_401_invalid_token(app, token):
    status, out = await stream_status(app, token)
    assert status == 401
    assert out["body"]["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in out["www"]


async def test_valid_hs256_token(app, mint):
    status, out = await stream_status(app, mint("alice"))
    assert status == 200, out


async def test_expired_token_is_401_token_expired(app, mint):
    past = mint("alice", ttl_s=-120)  # expired two minutes ago; leeway is 30 s
    status, out = await stream_status(app, past)
    assert (status, out["body"]["error"]["code"]) == (401, "token_expired")
    assert 'error="invalid_token"' in out["www"]


async def test_small_clock_skew_is_tolerated(app, mint):
    status, _ = await stream_status(app, mint("alice", ttl_s=-5))
    assert status == 200


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "someone-else"},
        {"aud": "another-service"},
        {"sub": "has space"},
        {"sub": 42},
        {"nbf": int(time.time()) + 3600},
    ],
)
async def test_claims_are_checked(app, user_secret, change):
    claims = {**claims_for("alice", issuer=ISSUER, audience=AUDIENCE), **change}
    token = jwt.encode(claims, user_secret, algorithm="HS256")
    status, out = await stream_status(app, token)
    assert status == 401, out
    assert out["body"]["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("missing", ["exp", "sub", "iss", "aud"])
async def test_required_claims(app, user_secret, missing):
    claims = claims_for("alice", issuer=ISSUER, audience=AUDIENCE)
    del claims[missing]
    status, _ = await stream_status(app, jwt.encode(claims, user_secret, algorithm="HS256"))
    assert status == 401


async def test_wrong_secret_is_401(app):
    claims = claims_for("alice", issuer=ISSUER, audience=AUDIENCE)
    status, out = await stream_status(app, jwt.encode(claims, "x" * 40, algorithm="HS256"))
    assert status == 401
    assert "signature" in out["body"]["error"]["message"]


async def test_alg_none_is_refused(app):
    status, out = await stream_status(
        app, unsigned(claims_for("alice", issuer=ISSUER, audience=AUDIENCE))
    )
    assert status == 401
    assert "not allowed" in out["body"]["error"]["message"]


async def test_tampered_payload_is_refused(app, mint):
    header, payload, sig = mint("alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "mallory"
    status, _ = await stream_status(app, f"{header}.{b64(json.dumps(claims).encode())}.{sig}")
    assert status == 401


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_jwks_keys_verify(make_app, jwks_file, idp_keys, alg):
    app = make_app(jwks=str(jwks_file))
    token = idp_keys[alg].token(
        claims_for("idp-user", issuer=ISSUER, audience=AUDIENCE, tier="premium")
    )
    status, out = await stream_status(app, token)
    assert status == 200, out
    assert out["body"]["tier"] == "premium"


async def test_hs256_signed_with_the_rsa_public_key_is_refused(make_app, jwks_file, idp_keys):
    """The classic key-confusion attack: the public key PEM used as an HMAC secret."""
    app = make_app(jwks=str(jwks_file))
    rsa_key = idp_keys["RS256"]
    claims = claims_for("mallory", issuer=ISSUER, audience=AUDIENCE, tier="premium")
    for secret in (rsa_key.public_pem, rsa_key.public_pem.strip()):
        status, out = await stream_status(app, forge_hs256(claims, secret, rsa_key.kid))
        assert status == 401, out


async def test_algorithm_must_match_the_key(make_app, jwks_file, idp_keys):
    app = make_app(jwks=str(jwks_file))
    # Signed by the ES256 key but pointing at the RSA key's kid.
    es = idp_keys["ES256"]
    token = jwt.encode(
        claims_for("x", issuer=ISSUER, audience=AUDIENCE),
        es.private,
        algorithm="ES256",
        headers={"kid": idp_keys["RS256"].kid},
    )
    status, out = await stream_status(app, token)
    assert status == 401
    assert "does not match" in out["body"]["error"]["message"]


async def test_algorithm_outside_the_allow_list_is_refused(make_app, jwks_file, idp_keys):
    app = make_app(jwks=str(jwks_file), jwt_algorithms=["HS256", "ES256"])
    rs_token = idp_keys["RS256"].token(claims_for("x", issuer=ISSUER, audience=AUDIENCE))
    status, out = await stream_status(app, rs_token)
    assert status == 401
    assert "not allowed" in out["body"]["error"]["message"]
    es_token = idp_keys["ES256"].token(claims_for("x", issuer=ISSUER, audience=AUDIENCE))
    assert (await stream_status(app, es_token))[0] == 200


async def test_symmetric_keys_in_a_jwks_are_ignored(make_app, tmp_path, idp_keys, user_secret):
    path = tmp_path / "jwks.json"
    doc = json.loads(jwks_document(idp_keys["EdDSA"]))
    doc["keys"].append({"kty": "oct", "kid": "oct-1", "k": b64(b"k" * 32), "alg": "HS256"})
    path.write_text(json.dumps(doc))
    app = make_app(jwks=str(path), jwt_hs256_secrets=[], jwt_algorithms=["HS256", "EdDSA"])
    token = jwt.encode(
        claims_for("x", issuer=ISSUER, audience=AUDIENCE),
        b"k" * 32,
        algorithm="HS256",
        headers={"kid": "oct-1"},
    )
    assert (await stream_status(app, token))[0] == 401


async def test_jwks_rotation_is_picked_up_on_unknown_kid(make_app):
    old, new = IdpKey.generate("EdDSA", "2026-01"), IdpKey.generate("EdDSA", "2026-02")
    server = JwksServer(jwks_document(old))
    try:
        app = make_app(jwks=server.url, jwks_min_refresh_interval_s=0)
        assert server.hits == 1  # fetched at start-up
        claims = claims_for("rotated", issuer=ISSUER, audience=AUDIENCE)
        assert (await stream_status(app, old.token(claims)))[0] == 200
        assert (await stream_status(app, new.token(claims)))[0] == 401
        server.document = jwks_document(old, new)  # the IdP rotates
        status, out = await stream_status(app, new.token(claims))
        assert status == 200, out
        assert (await stream_status(app, old.token(claims)))[0] == 200
        hits = server.hits
        assert (await stream_status(app, new.token(claims)))[0] == 200
        assert server.hits == hits  # known kids (and cached tokens) do not refetch
    finally:
        server.stop()


async def test_unknown_kid_refreshes_are_rate_limited(make_app):
    key = IdpKey.generate("ES256", "k1")
    server = JwksServer(jwks_document(key))
    try:
        app = make_app(jwks=server.url, jwks_min_refresh_interval_s=3600)
        for i in range(5):
            junk = IdpKey.generate("ES256", f"junk-{i}")
            token = junk.token(claims_for("x", issuer=ISSUER, audience=AUDIENCE))
            assert (await stream_status(app, token))[0] == 401
        assert server.hits == 1
    finally:
        server.stop()


def test_refresh_after_interval_and_stale_keys_survive_an_outage():
    now = [1000.0]
    first, second = IdpKey.generate("RS256", "a"), IdpKey.generate("RS256", "b")
    server = JwksServer(jwks_document(first))
    try:
        keys = JwksKeySet(
            server.url, ["RS256"], cache_ttl_s=300, min_refresh_interval_s=30, clock=lambda: now[0]
        )
        keys.load()
        server.document = jwks_document(first, second)
        assert keys.key_for("b", allow_fetch=True) is None  # within 30 s of the last fetch
        now[0] += 31
        assert keys.key_for("b", allow_fetch=True) is not None
        server.status = 500  # the IdP goes down; the cache expires
        now[0] += 301
        assert keys.key_for("a", allow_fetch=True) is not None
        assert server.hits == 3
        for _ in range(20):  # the outage does not turn into a fetch per request
            assert keys.key_for("a", allow_fetch=True) is not None
        assert server.hits == 3
        now[0] += 31
        server.status = 200
        keys.key_for("a", allow_fetch=True)
        assert server.hits == 4 and keys.key_for("b", allow_fetch=False) is not None
    finally:
        server.stop()


def test_event_loop_path_never_fetches():
    from delivery.auth import _RefreshNeeded

    now = [0.0]
    key = IdpKey.generate("EdDSA", "a")
    server = JwksServer(jwks_document(key))
    try:
        keys = JwksKeySet(server.url, ["EdDSA"], min_refresh_interval_s=0, clock=lambda: now[0])
        keys.load()
        with pytest.raises(_RefreshNeeded):
            keys.key_for("unknown", allow_fetch=False)
        assert server.hits == 1
    finally:
        server.stop()


def test_unreachable_jwks_fails_at_start_up(make_app):
    server = JwksServer(b"{}")
    url = server.url
    server.stop()
    with pytest.raises(SettingsError, match="DELIVERY_JWKS"):
        make_app(jwks=url)


def test_jwks_without_usable_keys_fails_at_start_up(make_app, tmp_path):
    path = tmp_path / "empty.json"
    path.write_text('{"keys": []}')
    with pytest.raises(SettingsError, match="no usable signing key"):
        make_app(jwks=str(path))


async def test_tier_claim_can_be_disabled(make_app, mint, admin_token):
    app = make_app(tier_claim="")
    token = mint("dave", tier="premium")
    assert (await stream_status(app, token))[1]["body"]["tier"] == "free"
    async with client_for(app) as c:
        r = await c.put(
            "/v1/admin/users/dave/tier",
            json={"tier": "premium"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert r.status_code == 200
    assert (await stream_status(app, token))[1]["body"]["tier"] == "premium"


async def test_unknown_tier_claim_falls_back_to_default(app, mint):
    assert (await stream_status(app, mint("erin", tier="platinum")))[1]["body"]["tier"] == "free"


def test_sync_authenticate_for_module_dependencies(app, mint):
    authenticator: JwtAuthenticator = app.state.services.authenticator
    principal = authenticator.authenticate(f"Bearer {mint('frank', tier='premium')}")
    assert (principal.user_id, principal.tier) == ("frank", "premium")
    with pytest.raises(Unauthorized) as err:
        authenticator.authenticate("Bearer nope")
    assert err.value.headers["WWW-Authenticate"].startswith("Bearer")
