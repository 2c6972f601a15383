"""``GET /.well-known/jwks.json``: delivery publishes its stream-token keys for edges."""

from __future__ import annotations

import httpx
import pytest

from common.jwks import parse_jwks
from common.signing_keys import eddsa_verification_key, ensure_dev_keypair, keys_from_jwks
from delivery.settings import SettingsError
from edge.token import TokenVerifier
from tests.delivery.conftest import client_for

pytestmark = pytest.mark.anyio

JWKS = "/.well-known/jwks.json"


async def test_the_signing_key_is_published_as_an_okp_jwk(make_app, stream_keys, auth):
    app = make_app()
    async with client_for(app) as c:
        r = await c.get(JWKS)
        answer = (await c.get("/v1/tracks/sine/stream", headers=auth("nina", "premium"))).json()
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    public = eddsa_verification_key(stream_keys[1].read_bytes())
    [jwk] = r.json()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (public.kid, "EdDSA", "sig")
    assert "d" not in jwk  # never the private part
    # An edge holding only this document verifies the URLs delivery signs.
    verifier = TokenVerifier(keys_from_jwks(parse_jwks(r.content, ["EdDSA"])))
    url = httpx.URL(answer["url"])
    claims = verifier.verify(url.params["token"], url.path)
    assert claims.kid == public.kid


async def test_extra_public_keys_are_published_for_the_rotation_overlap(
    make_app, stream_keys, tmp_path
):
    _, old_public = ensure_dev_keypair(tmp_path / "old")
    app = make_app(signing_extra_public_keys=str(old_public))
    async with client_for(app) as c:
        kids = [k["kid"] for k in (await c.get(JWKS)).json()["keys"]]
    current = eddsa_verification_key(stream_keys[1].read_bytes()).kid
    old = eddsa_verification_key(old_public.read_bytes()).kid
    assert kids == [current, old]


async def test_hs256_secrets_are_never_published(make_app):
    secret = "stream-secret-" + "x" * 40
    app = make_app(signing_hs256_secret=secret)
    async with client_for(app) as c:
        r = await c.get(JWKS)
    assert r.status_code == 200 and r.json() == {"keys": []}
    assert secret not in r.text


def test_an_unusable_extra_key_stops_start_up(make_app, tmp_path, stream_keys):
    with pytest.raises(SettingsError, match="DELIVERY_SIGNING_EXTRA_PUBLIC_KEYS"):
        make_app(signing_extra_public_keys=str(tmp_path / "missing.pem"))
    # A private key is not a public key.
    with pytest.raises(SettingsError, match="DELIVERY_SIGNING_EXTRA_PUBLIC_KEYS"):
        make_app(signing_extra_public_keys=str(stream_keys[0]))
