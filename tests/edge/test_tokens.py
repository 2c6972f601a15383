"""Every way a stream token can fail at the edge: a 403 with its own code, before any I/O."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.signing_keys import SigningKey, hs256_signing_key
from edge.app import create_app
from edge.token import TokenError, sign_stream_token
from tests.edge.conftest import KEY, PULL_TOKEN, put_random, serving

pytestmark = pytest.mark.anyio
PATH = "/" + KEY


def b64(obj) -> str:
    raw = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def upstream_calls():
    return []


@pytest.fixture
def app(make_settings, upstream_calls, store):
    data = put_random(store, KEY, 5000)

    def handler(request):
        upstream_calls.append(request)
        return httpx.Response(200, content=data, headers={"content-length": str(len(data))})

    return create_app(make_settings(), transport=httpx.MockTransport(handler))


@pytest.fixture
async def client(app):
    async with serving(app) as c:
        yield c


async def refused(client, target: str, headers=None) -> str:
    r = await client.get(target, headers=headers or {})
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    return r.json()["error"]["code"]


async def test_missing_token(client, upstream_calls):
    assert await refused(client, PATH) == "token_missing"
    assert await refused(client, PATH + "?token=") == "token_missing"
    assert upstream_calls == []


@pytest.mark.parametrize("token", ["abc", "a.b.c", "eyJhbGciOi.x.y", "%00%01"])
async def test_malformed_token(client, token, upstream_calls):
    assert await refused(client, f"{PATH}?token={token}") == "token_malformed"
    assert upstream_calls == []


async def test_bad_signature(client, sign, upstream_calls):
    token = sign(PATH)
    head, body, sig = token.split(".")
    forged_body = b64({**json.loads(base64.urlsafe_b64decode(body + "==")), "sub": "evil"})
    assert (
        await refused(client, f"{PATH}?token={head}.{forged_body}.{sig}") == "token_bad_signature"
    )
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert await refused(client, f"{PATH}?token={head}.{body}.{flipped}") == "token_bad_signature"
    assert upstream_calls == []


async def test_signed_by_a_stranger_key_with_our_kid(client, ed_key):
    stranger = SigningKey(ed_key.kid, "EdDSA", Ed25519PrivateKey.generate())
    token = sign_stream_token(PATH, key=stranger, ttl_s=60, sub="u")
    assert await refused(client, f"{PATH}?token={token}") == "token_bad_signature"


async def test_expired(client, sign):
    token = sign(PATH, ttl=60, now=time.time() - 120)
    assert await refused(client, f"{PATH}?token={token}") == "token_expired"


async def test_expiry_applies_to_cached_tokens_too(client, sign, monkeypatch):
    token = sign(PATH, ttl=60)
    assert (await client.get(f"{PATH}?token={token}")).status_code == 200
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    r = await client.get(f"{PATH}?token={token}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_expired"


async def test_path_mismatch(client, sign, upstream_calls):
    token = sign("/tracks/other/0123456789abcdef/160.ogg")
    r = await client.get(f"{PATH}?token={token}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_path_mismatch"
    # A token already verified (and cached) for one path is still refused on another.
    ok = await client.get(f"/tracks/other/0123456789abcdef/160.ogg?token={token}")
    assert ok.status_code == 200
    r = await client.get(f"{PATH}?token={token}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_path_mismatch"


async def test_ip_mismatch(client, sign):
    bound_elsewhere = sign(PATH, ip="203.0.113.9")
    assert await refused(client, f"{PATH}?token={bound_elsewhere}") == "token_ip_mismatch"
    bound_here = sign(PATH, ip="127.0.0.1")  # the test client's address
    assert (await client.get(f"{PATH}?token={bound_here}")).status_code == 200


async def test_alg_none_is_refused(client):
    claims = {"path": PATH, "sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60}
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert await refused(client, f"{PATH}?token={token}") == "token_malformed"


async def test_other_algorithms_are_refused(client):
    claims = {"path": PATH, "sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60}
    token = jwt.encode(claims, "x" * 64, algorithm="HS512")
    assert await refused(client, f"{PATH}?token={token}") == "token_malformed"


async def test_unknown_kid(client, ed_key):
    renamed = SigningKey("ed-unknown", "EdDSA", ed_key.key)
    token = sign_stream_token(PATH, key=renamed, ttl_s=60, sub="u")
    assert await refused(client, f"{PATH}?token={token}") == "token_bad_signature"


async def test_hs256_token_signed_with_the_public_key_as_secret_is_refused(client, keypair, ed_key):
    # The classic algorithm-confusion attack: HS256 "signed" with the EdDSA public key.
    claims = {"path": PATH, "sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60}
    token = jwt.encode(
        claims, "k" * 40, algorithm="HS256", headers={"kid": ed_key.kid}
    )  # kid of the EdDSA key
    assert await refused(client, f"{PATH}?token={token}") == "token_bad_signature"


async def test_eddsa_and_hs256_kids_are_accepted_at_once(client, sign, hs_key):
    ed = await client.get(f"{PATH}?token={sign(PATH)}")
    hs = await client.get(f"{PATH}?token={sign(PATH, key=hs_key)}")
    assert ed.status_code == 200 and hs.status_code == 200


async def test_hs256_with_a_wrong_secret_is_refused(client):
    other = hs256_signing_key("another-secret-" + "z" * 40)
    token = sign_stream_token(PATH, key=other, ttl_s=60, sub="u")
    assert await refused(client, f"{PATH}?token={token}") == "token_bad_signature"


async def test_pull_token_bearer(client, serving_way):
    ok = await client.get(PATH, headers={"authorization": f"Bearer {PULL_TOKEN}"})
    assert ok.status_code == 200
    assert ok.headers["cache-control"] == "public, max-age=31536000, immutable"
    code = await refused(client, PATH, headers={"authorization": "Bearer wrong"})
    assert code == "pull_token_invalid"
    # httpx refuses to send a header value ending in a space over a socket.
    trailing = [f"BEARER {PULL_TOKEN} "] if serving_way == "asgi" else []
    for value in (f"bearer  {PULL_TOKEN}", *trailing):
        assert (await client.get(PATH, headers={"authorization": value})).status_code == 200
    for value in (f"Bearer {PULL_TOKEN} x", f"Basic {PULL_TOKEN}", "Bearer"):
        code = await refused(client, PATH, headers={"authorization": value})
        assert code == "pull_token_invalid", value


async def test_pull_tokens_can_be_switched_off(make_settings, store):
    put_random(store, KEY, 100)
    app = create_app(make_settings(upstream=store.url, accept_pull_token="off"))
    async with serving(app) as client:
        code = await refused(client, PATH, headers={"authorization": f"Bearer {PULL_TOKEN}"})
    assert code == "pull_token_invalid"


# -- time bounds on correctly signed tokens (issue 11) ------------------------------------


def signed_claims(key: SigningKey, **claims) -> str:
    """A token with exactly these claims, correctly signed with ``key``."""
    body = {"path": PATH, "sub": "u", **claims}
    return jwt.encode(body, key.key, algorithm=key.algorithm, headers={"kid": key.kid})


YEAR = 365 * 86400


async def test_iat_years_in_the_future_is_not_yet_valid(client, sign, upstream_calls):
    token = sign(PATH, ttl=3600, now=time.time() + 3 * YEAR)
    assert await refused(client, f"{PATH}?token={token}") == "token_not_yet_valid"
    assert upstream_calls == []


async def test_iat_a_little_ahead_is_tolerated_as_clock_skew(client, sign):
    token = sign(PATH, ttl=600, now=time.time() + 3)
    assert (await client.get(f"{PATH}?token={token}")).status_code == 200


async def test_lifetime_beyond_the_maximum_is_refused(client, ed_key, upstream_calls):
    now = int(time.time())
    for exp in (now + 86400 + 1, 10**30, 2**63, 10**400):
        token = signed_claims(ed_key, iat=now, exp=exp)
        assert await refused(client, f"{PATH}?token={token}") == "token_lifetime_too_long", exp
    assert upstream_calls == []
    at_most = signed_claims(ed_key, iat=now, exp=now + 86400)
    assert (await client.get(f"{PATH}?token={at_most}")).status_code == 200


async def test_max_lifetime_is_a_setting(make_settings, store, ed_key):
    put_random(store, KEY, 100)
    app = create_app(make_settings(upstream=store.url, token_max_lifetime_s=600))
    now = int(time.time())
    async with serving(app) as client:
        ok = signed_claims(ed_key, iat=now, exp=now + 600)
        assert (await client.get(f"{PATH}?token={ok}")).status_code == 200
        long = signed_claims(ed_key, iat=now, exp=now + 601)
        assert await refused(client, f"{PATH}?token={long}") == "token_lifetime_too_long"


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": 0, "exp": 1e30},
        {"iat": 1.5e9, "exp": 1e30},
        {"iat": True, "exp": 10**10},
        {"iat": "now", "exp": 10**10},
        {"iat": 0, "exp": float("inf")},
        {"iat": 0, "exp": float("nan")},
        {"iat": float("-inf"), "exp": 10**10},
        {"iat": 0, "exp": 10**10, "nbf": float("inf")},
    ],
    ids=repr,
)
async def test_non_integer_or_non_finite_times_are_malformed(client, hs_key, claims):
    token = signed_claims(hs_key, **claims)
    assert await refused(client, f"{PATH}?token={token}") == "token_malformed"


def test_memo_never_outlives_exp_and_bounds_are_checked_before_memoising(ed_key):
    from common.signing_keys import verification_key_for
    from edge.token import TokenLifetimeTooLong, TokenVerifier

    verifier = TokenVerifier([verification_key_for(ed_key)], cache_ttl_s=3600)
    now = time.time()
    short = sign_stream_token(PATH, key=ed_key, ttl_s=60, sub="u", now=now)
    assert verifier.verify(short, PATH, now=now).exp == int(now) + 60
    with pytest.raises(TokenError) as err:
        verifier.verify(short, PATH, now=now + 61)  # a memo hit must not outlive exp
    assert err.value.code == "token_expired"
    long = signed_claims(ed_key, iat=int(now), exp=int(now) + 2 * 86400)
    for _ in range(2):  # refused every time: a refusal is never memoised
        with pytest.raises(TokenLifetimeTooLong):
            verifier.verify(long, PATH, now=now)
